"""Entra, Graph and ARM misbehaving, end to end: what the API answers and how often it calls.

Faults that leave state in the API (Entra's throttle windows) run on stacks of their own;
timeouts run on ``timeout_stack`` (1 s outbound timeouts); the rest share the session stack.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import requests

from app.downstream import MAX_BODY_BYTES
from scripts.stack import Stack
from tests.e2e.conftest import StartStack
from tests.support.contract import assert_refusal, challenge_claims

pytestmark = pytest.mark.e2e

ROUTES = {"graph": "/api/me", "arm": "/api/subscriptions"}
ARM_PAGES = 3  # five subscriptions, pages of two
SLOW = 3  # seconds an injected delay lasts: beyond the 1 s read timeout of timeout_stack


def assert_served(api: str, response: requests.Response, user: str) -> None:
    """200 with the user's data: their Graph profile, or every ARM subscription."""
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Cache-Control"] == "no-store"
    if api == "graph":
        assert response.json()["userPrincipalName"] == f"{user}@contoso.test"
    else:
        assert len(response.json()["value"]) == 5


# -- Entra's token endpoint ---------------------------------------------------------------


ENTRA_REFUSALS: dict[str, tuple[str, dict[str, Any], int]] = {
    # fault mode and parameters, the Retry-After the API must give
    # (windows of some seconds: the test's second request must come while it is open)
    "429": ("status", {"status": 429, "retry_after": 3}, 3),
    "500": ("status", {"status": 500}, 5),  # MSAL's throttle time when there is no header
    "503": ("status", {"status": 503, "retry_after": 4}, 4),
    "502-html": ("html", {"status": 502}, 5),  # a proxy's error page
}


@pytest.mark.parametrize(
    ("mode", "params", "expected"), ENTRA_REFUSALS.values(), ids=ENTRA_REFUSALS.keys()
)
def test_entra_refusal_is_503_with_its_retry_after(
    start_stack: StartStack, mode: str, params: dict[str, Any], expected: int
) -> None:
    stack = start_stack()  # the refusal opens a throttle window in the API
    stack.emulator.add_fault("token", mode, **params)
    response = stack.get("/api/me", stack.emulator.issue_user_token("alice"))
    assert_refusal(
        response,
        503,
        "temporarily_unavailable",
        description=f"Entra ID answered HTTP {params['status']}",
        retry_after=expected,
    )
    # Until it passes, other users are held back without a call to Entra.
    response = stack.get("/api/me", stack.emulator.issue_user_token("bob"))
    assert_refusal(
        response,
        503,
        "temporarily_unavailable",
        description="throttling",
        retry_after=range(1, expected + 1),
    )
    assert stack.emulator.counters()["token"] == 1
    assert stack.emulator.counters()["graph"] == 0


@pytest.mark.parametrize(
    ("mode", "params"),
    [
        ("delay", {"seconds": SLOW}),
        ("reset", {}),
        ("html", {}),
    ],
    ids=["delay", "reset", "html"],
)
def test_entra_unreachable_is_503_within_the_timeout(
    timeout_stack: Stack, mode: str, params: dict[str, Any]
) -> None:
    stack = timeout_stack
    stack.emulator.add_fault("token", mode, count=1, **params)
    # Entra would answer after SLOW seconds: a 503 means the API gave up first.
    response = stack.get("/api/me", stack.emulator.issue_user_token("carol"))
    assert_refusal(
        response, 503, "temporarily_unavailable", description="retry later", retry_after=5
    )
    assert stack.emulator.counters()["token"] == 1  # no retry against a failing Entra
    assert stack.emulator.counters()["graph"] == 0


@pytest.mark.parametrize(
    ("mode", "params"),
    [
        ("status", {"status": 503}),
        ("reset", {}),
        ("html", {}),
    ],
    ids=["503", "reset", "html"],
)
def test_metadata_outage_at_the_first_exchange_is_503(
    start_stack: StartStack, mode: str, params: dict[str, Any]
) -> None:
    # Keys load at start-up; MSAL reads the metadata when the first exchange needs it.
    stack = start_stack()
    stack.emulator.add_fault("openid-configuration", mode, count=1, **params)
    token = stack.emulator.issue_user_token("alice")
    response = stack.get("/api/me", token)
    assert_refusal(
        response, 503, "temporarily_unavailable", description="retry later", retry_after=5
    )
    assert stack.emulator.counters()["openid-configuration"] == 2  # keys, then MSAL
    assert stack.emulator.counters()["token"] == 0
    assert_served("graph", stack.get("/api/me", token), "alice")


def test_entra_throttling_holds_back_one_downstream_api_for_everyone(
    start_stack: StartStack,
) -> None:
    stack, window = start_stack(), 3
    emulator = stack.emulator
    cached = emulator.issue_user_token("alice")
    assert stack.get("/api/me", cached).status_code == 200
    emulator.add_fault("token", "status", status=429, retry_after=window, count=1)
    emulator.reset_counters()

    response = stack.get("/api/me", emulator.issue_user_token("bob"))
    window_ends = time.monotonic() + window  # the API opened it before answering
    assert_refusal(
        response, 503, "temporarily_unavailable", description="HTTP 429", retry_after=window
    )
    assert emulator.counters()["token"] == 1

    carol = emulator.issue_user_token("carol")
    response = stack.get("/api/me", carol)
    assert_refusal(
        response,
        503,
        "temporarily_unavailable",
        description="throttling",
        retry_after=range(1, window + 1),
    )
    assert emulator.counters()["token"] == 1  # carol's exchange never reached Entra
    assert_served("arm", stack.get("/api/subscriptions", carol), "carol")  # ARM is not held
    assert_served("graph", stack.get("/api/me", cached), "alice")  # her Graph token is cached
    assert emulator.counters()["token"] == 2  # carol's ARM exchange only

    time.sleep(max(0.0, window_ends - time.monotonic()) + 0.1)  # the window itself
    assert_served("graph", stack.get("/api/me", carol), "carol")
    assert emulator.counters()["token"] == 3


# -- Continuous Access Evaluation ---------------------------------------------------------


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_claims_challenge_gets_one_new_exchange_and_one_retry(stack: Stack, api: str) -> None:
    token = stack.emulator.issue_user_token("grace")
    assert stack.get(ROUTES[api], token).status_code == 200
    calls = stack.emulator.counters()[api]
    stack.emulator.add_fault(api, "cae", count=1)  # revokes tokens issued before it

    assert_served(api, stack.get(ROUTES[api], token), "grace")
    counters = stack.emulator.counters()
    assert counters["token"] == 2  # the first exchange, then one with the claims
    assert counters[api] == 2 * calls + 1  # the challenged call, then the same calls again


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_claims_challenge_that_needs_the_user_goes_to_the_client(stack: Stack, api: str) -> None:
    token = stack.emulator.issue_user_token("heidi")
    assert stack.get(ROUTES[api], token).status_code == 200
    calls = stack.emulator.counters()[api]
    stack.emulator.add_fault(api, "cae", count=1)
    stack.emulator.add_fault("token", "interaction", count=1)

    response = stack.get(ROUTES[api], token)
    body = assert_refusal(
        response,
        401,
        "interaction_required",
        description="AADSTS50076",
        challenge="insufficient_claims",
    )
    claims = challenge_claims(response)
    assert claims["access_token"]
    assert json.loads(body["claims"]) == claims
    counters = stack.emulator.counters()
    assert counters["token"] == 2
    assert counters[api] == calls + 1  # no retry without a new token


# -- Graph and ARM ------------------------------------------------------------------------

DOWNSTREAM_FAULTS: list[tuple[str, dict[str, Any], int, str, str, int | None]] = [
    # mode, params, status, error, description, Retry-After
    ("status", {"status": 429, "retry_after": 3}, 429, "throttled", "is throttling", 3),
    ("status", {"status": 500}, 502, "bad_gateway", "answered HTTP 500", None),
    ("status", {"status": 503, "retry_after": 2}, 502, "bad_gateway", "answered HTTP 503", None),
    ("reset", {}, 502, "bad_gateway", "could not be reached", None),
    ("html", {}, 502, "bad_gateway", "answered with a body that is not a JSON object", None),
    (
        "huge",
        {"size": MAX_BODY_BYTES + 1024 * 1024},
        502,
        "bad_gateway",
        f"answered with a body over {MAX_BODY_BYTES} bytes",
        None,
    ),
]


@pytest.mark.parametrize("api", ["graph", "arm"])
@pytest.mark.parametrize(
    ("mode", "params", "status", "error", "description", "retry_after"),
    DOWNSTREAM_FAULTS,
    ids=["429", "500", "503", "reset", "html", "huge"],
)
def test_downstream_failure_is_passed_on(
    stack: Stack,
    api: str,
    mode: str,
    params: dict[str, Any],
    status: int,
    error: str,
    description: str,
    retry_after: int | None,
) -> None:
    stack.emulator.add_fault(api, mode, count=1, **params)
    response = stack.get(ROUTES[api], stack.emulator.issue_user_token("bob"))
    assert_refusal(
        response, status, error, description=f"{api} {description}", retry_after=retry_after
    )
    counters = stack.emulator.counters()
    assert counters[api] == 1  # no retry against a failing downstream API
    assert counters["token"] == 1


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_large_downstream_body_under_the_limit_is_served(stack: Stack, api: str) -> None:
    stack.emulator.add_fault(api, "huge", count=1, size=MAX_BODY_BYTES // 2)
    response = stack.get(ROUTES[api], stack.emulator.issue_user_token("bob"))
    assert_served(api, response, "bob")
    if api == "graph":  # the padding is part of the profile Graph sent
        assert len(response.content) > MAX_BODY_BYTES // 2 - 1024
    assert stack.emulator.counters()[api] == (1 if api == "graph" else ARM_PAGES)


@pytest.mark.parametrize("api", ["graph", "arm"])
@pytest.mark.parametrize("status", [403, 404])
def test_downstream_4xx_is_passed_on_without_the_token(stack: Stack, api: str, status: int) -> None:
    token = stack.emulator.issue_user_token("bob")
    stack.emulator.add_fault(api, "status", count=1, status=status)
    response = stack.get(ROUTES[api], token)
    body = assert_refusal(
        response, status, "downstream_error", description=f"{api} answered HTTP {status}"
    )
    assert body["downstream"]["status"] == status
    assert body["downstream"]["error"]["code"] in {
        "accessDenied",
        "itemNotFound",
        "AuthorizationFailed",
        "NotFound",
    }
    assert token not in response.text and token.split(".")[2] not in response.text


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_slow_downstream_is_504_within_the_timeout(timeout_stack: Stack, api: str) -> None:
    stack = timeout_stack
    stack.emulator.add_fault(api, "delay", count=1, seconds=SLOW)
    # The API answers 200 if it waits SLOW seconds, 504 if it gives up after its 1 s.
    response = stack.get(ROUTES[api], stack.emulator.issue_user_token("bob"))
    assert_refusal(response, 504, "gateway_timeout", description=f"{api} did not answer")
    assert stack.emulator.counters()[api] == 1
