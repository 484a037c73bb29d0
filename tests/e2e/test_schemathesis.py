"""The running API against its own OpenAPI document, with schemathesis.

Schemathesis sends every operation the document's examples, boundary and type-mutation cases,
then random valid and invalid requests (at most ``MAX_EXAMPLES`` each), with a valid token;
each answer must not be a 5xx and must have a documented status, content type, headers and
body. The refusals schemathesis cannot provoke (Entra, Graph and ARM failing, MFA, missing
consent) are provoked here one by one and held to the document the same way.

Checks left out, because they cannot hold for this API:
- ``positive_data_acceptance``: any non-blank ``$select`` or ``$filter`` is schema-valid, but
  few are OData Graph accepts; Graph's refusal is passed on as a documented 400.
- ``negative_data_rejection`` for query parameters the document does not name: the API ignores
  those (``allow_extra_parameters`` is off); every other kind of invalid input is checked.
- ``use_after_free``, ``ensure_resource_availability``: nothing is created or deleted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import settings
from schemathesis import Case
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    ignored_auth,
    missing_required_header,
    negative_data_rejection,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from app.openapi import build_document
from emulator import Emulator
from emulator.directory import API_APP_ID_URI, API_SCOPE
from scripts.stack import Stack
from tests.e2e.conftest import StartStack
from tests.e2e.leaks import Traffic
from tests.support.contract import assert_error_shape

pytestmark = pytest.mark.e2e

MAX_EXAMPLES = 40
TIME_LIMIT_SECONDS = 120  # per operation
SLOW = 3  # seconds an injected delay lasts: beyond the 1 s read timeout of timeout_stack

# Built here, with the function the API serves it from: schemathesis's loader from a fixture
# (``schemathesis.pytest.from_fixture``) does not run under pytest 9, so the document cannot be
# fetched from the running stack at collection time. test_the_served_document_is_the_one_tested
# shows the two are the same.
DOCUMENT = build_document(realm=API_APP_ID_URI, scope=API_SCOPE, authority=None, server_url="/")
schema = schemathesis.openapi.from_dict(DOCUMENT)
schema.config.generation.update(allow_extra_parameters=False)

CONFORMANCE = [
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]
CHECKS = [
    not_a_server_error,
    *CONFORMANCE,
    negative_data_rejection,
    ignored_auth,
    unsupported_method,
    missing_required_header,
]


@pytest.fixture(scope="module")
def authorization(stack: Stack, traffic: Traffic) -> dict[str, str]:
    """A valid delegated token for the API, recorded for the session's leak check."""
    token = stack.emulator.issue_user_token("alice")
    traffic.tokens.append(token)
    return {"Authorization": f"Bearer {token}"}


def test_the_served_document_is_the_one_tested(stack: Stack) -> None:
    response = requests.get(f"{stack.api_url}/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    served = response.json()
    # Deployment values aside (the tenant's sign-in URLs, when the app knows them), the same.
    served["components"]["securitySchemes"].pop("entra", None)
    served["security"] = [
        requirement for requirement in served["security"] if "entra" not in requirement
    ]
    assert served == DOCUMENT


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, derandomize=True, database=None)
@pytest.mark.timeout(TIME_LIMIT_SECONDS)
def test_api_conforms_to_its_document(
    case: Case, stack: Stack, authorization: dict[str, str]
) -> None:
    case.call_and_validate(base_url=stack.api_url, headers=authorization, checks=CHECKS)


# --- refusals, provoked one by one ------------------------------------------------------------

TokenFor = Callable[[Emulator], str]


def user(name: str, **claims: Any) -> TokenFor:
    return lambda emulator: emulator.issue_user_token(name, **claims)


@dataclass(frozen=True)
class Refusal:
    path: str
    status: int
    error: str
    token: TokenFor | None = None
    authorization: str | None = None  # a raw Authorization header, when there is no token
    query: dict[str, str] = field(default_factory=dict)
    fault: dict[str, Any] | None = None  # Emulator.add_fault's arguments, for one request

    def provoke(self, stack: Stack) -> requests.Response:
        if self.fault is not None:
            stack.emulator.add_fault(count=1, **self.fault)
        if self.token is not None:
            return stack.get(self.path, self.token(stack.emulator), params=self.query)
        headers = {"Authorization": self.authorization} if self.authorization else {}
        return stack.get(self.path, headers=headers, params=self.query)


def assert_documented(refusal: Refusal, response: requests.Response) -> None:
    assert response.status_code == refusal.status, response.text
    assert assert_error_shape(response)["error"] == refusal.error
    case = schema[refusal.path]["GET"].Case(query=refusal.query)
    case.validate_response(response, checks=CONFORMANCE)


BOB = user("bob")
REFUSALS = {
    "no-token": Refusal("/api/me", 401, "unauthorized"),
    "two-tokens": Refusal("/api/me", 400, "invalid_request", authorization="Bearer a b"),
    "not-a-jwt": Refusal("/api/me", 401, "invalid_token", authorization="Bearer not.a.jwt"),
    "scope-missing": Refusal(
        "/api/me", 403, "insufficient_scope", token=user("bob", scope="User.Read")
    ),
    "app-only": Refusal(
        "/api/subscriptions",
        403,
        "insufficient_scope",
        token=lambda emulator: emulator.issue_app_token(),
    ),
    "mfa-required": Refusal("/api/me", 401, "interaction_required", token=user("dave")),
    "consent-missing": Refusal("/api/me", 403, "consent_required", token=user("erin")),
    "top-out-of-range": Refusal(
        "/api/users", 400, "invalid_request", token=BOB, query={"$top": "1000"}
    ),
    "filter-refused": Refusal(
        "/api/users", 400, "downstream_error", token=BOB, query={"$filter": "nonsense("}
    ),
    "graph-404": Refusal(
        "/api/me",
        404,
        "downstream_error",
        token=BOB,
        fault={"target": "graph", "mode": "status", "status": 404},
    ),
    "arm-403": Refusal(
        "/api/subscriptions",
        403,
        "downstream_error",
        token=BOB,
        fault={"target": "arm", "mode": "status", "status": 403},
    ),
    "graph-429": Refusal(
        "/api/users",
        429,
        "throttled",
        token=BOB,
        fault={"target": "graph", "mode": "status", "status": 429, "retry_after": 3},
    ),
    "graph-500": Refusal(
        "/api/me",
        502,
        "bad_gateway",
        token=BOB,
        fault={"target": "graph", "mode": "status", "status": 500},
    ),
    "arm-reset": Refusal(
        "/api/subscriptions",
        502,
        "bad_gateway",
        token=BOB,
        fault={"target": "arm", "mode": "reset"},
    ),
}


@pytest.mark.parametrize("refusal", REFUSALS.values(), ids=REFUSALS.keys())
def test_refusal_is_documented(stack: Stack, refusal: Refusal) -> None:
    assert_documented(refusal, refusal.provoke(stack))


def test_downstream_timeout_is_documented(timeout_stack: Stack) -> None:
    refusal = Refusal(
        "/api/me",
        504,
        "gateway_timeout",
        token=BOB,
        fault={"target": "graph", "mode": "delay", "seconds": SLOW},
    )
    assert_documented(refusal, refusal.provoke(timeout_stack))


# Each leaves state behind in the API process (a throttle window, keys not loaded, a refused
# credential), so each runs on a stack of its own.
OWN_STACK_REFUSALS = {
    "entra-503": (
        {},
        Refusal(
            "/api/me",
            503,
            "temporarily_unavailable",
            token=BOB,
            fault={"target": "token", "mode": "status", "status": 503, "retry_after": 4},
        ),
    ),
    "keys-not-loaded": (
        {"faults": [{"target": "keys", "mode": "status", "status": 503}], "wait_ready": False},
        Refusal("/readyz", 503, "temporarily_unavailable"),
    ),
    "credential-refused": (
        {"extra_env": {"AZURE_CLIENT_SECRET": "not-the-api-secret"}},
        Refusal("/api/me", 500, "server_error", token=BOB),
    ),
}


@pytest.mark.parametrize(
    ("options", "refusal"), OWN_STACK_REFUSALS.values(), ids=OWN_STACK_REFUSALS.keys()
)
def test_refusal_on_a_stack_of_its_own_is_documented(
    start_stack: StartStack, options: dict[str, Any], refusal: Refusal
) -> None:
    assert_documented(refusal, refusal.provoke(start_stack(**options)))
