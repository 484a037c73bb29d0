"""Signing keys and OpenID metadata end to end: rotation, random kids, outages, slow refreshes.

Each test runs on a stack of its own: the API's key cache (and its once-per-5-minutes refresh
for unknown kids) is process-wide state that one test would otherwise spend for the next.
"""

from __future__ import annotations

import json
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import jwt
import pytest

from emulator import Emulator
from emulator.signing import KEYS_FILE, TenantSigner
from scripts.stack import Stack
from tests.e2e.conftest import StartStack
from tests.e2e.emulator_watch import watch_requests
from tests.support.contract import assert_refusal
from tests.support.tokens import with_kid

pytestmark = pytest.mark.e2e

UNKNOWN_KEY = "signed with a key this tenant does not publish"
# Long enough that no retry falls between the test's first requests on a busy machine.
COLD_RETRY_SECONDS = 3
SLOW_KEYS_SECONDS = 4
OUTAGES: dict[str, dict[str, Any]] = {
    "status-503": {"mode": "status", "status": 503},
    "html": {"mode": "html"},
    "empty-keys": {"mode": "empty_keys"},
}


def emulator_signing_key(emulator: Emulator) -> TenantSigner:
    """The key the emulator signs with, read from its state directory."""
    records = json.loads((emulator.state_dir / KEYS_FILE).read_text(encoding="utf-8"))["keys"]
    return TenantSigner.from_record(records[0])


def key_fetches(stack: Stack) -> tuple[int, int]:
    counters = stack.emulator.counters()
    return counters["openid-configuration"], counters["keys"]


def test_rotated_key_is_fetched_once_and_accepted(start_stack: StartStack) -> None:
    stack = start_stack()
    before = stack.emulator.issue_user_token("alice")
    assert stack.get("/api/me", before).status_code == 200
    new_kid = stack.emulator.rotate_keys()
    stack.emulator.reset_counters()

    after = stack.emulator.issue_user_token("bob")
    assert jwt.get_unverified_header(after)["kid"] == new_kid
    response = stack.get("/api/me", after)
    assert response.status_code == 200, response.text
    assert response.json()["userPrincipalName"] == "bob@contoso.test"
    assert key_fetches(stack) == (1, 1)
    assert stack.get("/api/me", before).status_code == 200  # the old key is still published
    assert key_fetches(stack) == (1, 1)


def test_random_kids_cost_at_most_one_key_fetch(start_stack: StartStack) -> None:
    stack = start_stack()
    stack.emulator.reset_counters()
    genuine = stack.emulator.issue_user_token("alice")
    real_key = emulator_signing_key(stack.emulator).private_key
    # Half forged, half signed by the tenant's real key under a kid it does not publish.
    tokens = [with_kid(genuine) for _ in range(15)]
    tokens += [with_kid(genuine, key=real_key) for _ in range(15)]
    for token in tokens:
        response = stack.get("/api/me", token)
        assert_refusal(
            response, 401, "invalid_token", description=UNKNOWN_KEY, challenge="invalid_token"
        )
    assert key_fetches(stack) == (1, 1)  # the first unknown kid refreshed; then none for 300 s
    assert stack.emulator.counters()["token"] == 0


@pytest.mark.parametrize("outage", OUTAGES.values(), ids=OUTAGES.keys())
def test_key_endpoint_down_keeps_the_cached_keys(
    start_stack: StartStack, outage: dict[str, Any]
) -> None:
    stack = start_stack()
    known = stack.emulator.issue_user_token("alice")
    assert stack.get("/api/me", known).status_code == 200
    stack.emulator.add_fault("keys", **outage)
    stack.emulator.reset_counters()

    for _ in range(2):  # the first one refreshes (and meets the outage), the second may not
        response = stack.get("/api/me", with_kid(known))
        assert_refusal(
            response, 401, "invalid_token", description=UNKNOWN_KEY, challenge="invalid_token"
        )
    assert key_fetches(stack) == (1, 1)
    for user in ("alice", "bob"):
        response = stack.get("/api/me", stack.emulator.issue_user_token(user))
        assert response.status_code == 200, response.text
    assert stack.get("/readyz").status_code == 200
    assert key_fetches(stack) == (1, 1)


@pytest.mark.parametrize("target", ["openid-configuration", "keys"])
def test_outage_at_cold_start_is_503_until_keys_load(start_stack: StartStack, target: str) -> None:
    stack = start_stack(
        faults=[{"target": target, "mode": "status", "status": 503}],
        wait_ready=False,
        extra_env={"KEYS_COLD_RETRY_SECONDS": str(COLD_RETRY_SECONDS)},
    )
    token = stack.emulator.issue_user_token("alice")

    refused = stack.get("/api/me", token)
    assert_refusal(
        refused,
        503,
        "temporarily_unavailable",
        description="signing keys",
        retry_after=range(1, COLD_RETRY_SECONDS + 1),
    )
    not_ready = stack.get("/readyz")
    assert_refusal(
        not_ready,
        503,
        "temporarily_unavailable",
        description="signing keys",
        retry_after=range(1, 6),
    )
    assert stack.emulator.counters()[target] == 1  # one attempt per retry interval
    assert stack.emulator.counters()["token"] == 0

    stack.emulator.clear_faults()
    time.sleep(int(refused.headers["Retry-After"]) + 0.1)  # the retry interval itself
    response = stack.get("/api/me", token)
    assert response.status_code == 200, response.text
    assert response.json()["displayName"] == "Alice Anders"
    assert stack.get("/readyz").json()["status"] == "ready"


def test_slow_key_endpoint_never_stalls_a_cached_key(start_stack: StartStack) -> None:
    stack = start_stack()
    known = stack.emulator.issue_user_token("alice")
    assert stack.get("/api/me", known).status_code == 200
    stack.emulator.add_fault("keys", "delay", seconds=SLOW_KEYS_SECONDS)
    stack.emulator.reset_counters()

    with (
        ThreadPoolExecutor(max_workers=1) as pool,
        watch_requests(stack.emulator, "/discovery/v2.0/keys") as keys_request,
    ):
        waiting = pool.submit(stack.get, "/api/me", with_kid(known))
        assert keys_request.arrived.wait(timeout=30), "no key refresh for the unknown kid"
        response = stack.get("/api/me", known)
        assert response.status_code == 200, response.text
        # Served while the refresh was still waiting for the key endpoint's answer.
        assert not keys_request.answered.is_set()
        refused = waiting.result(timeout=30)
    assert_refusal(
        refused, 401, "invalid_token", description=UNKNOWN_KEY, challenge="invalid_token"
    )
    assert key_fetches(stack) == (1, 1)
