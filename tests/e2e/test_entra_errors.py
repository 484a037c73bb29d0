"""Entra's refusals of the OBO exchange, and Graph or ARM refusing the token it gave, end to
end: what the client gets, and how often the API calls Entra and the downstream API.

Each refusal comes from a user of the emulator's directory whose policy Entra enforces on
tokens for Graph and ARM (``python -m emulator users``).
"""

from __future__ import annotations

import json
from typing import NamedTuple

import pytest

from scripts.stack import Stack
from tests.support.contract import assert_refusal, challenge_claims

pytestmark = pytest.mark.e2e

ROUTES = {"graph": "/api/me", "arm": "/api/subscriptions"}
ARM_PAGES = 3  # five subscriptions, pages of two
MFA = "AADSTS50076"


class Refusal(NamedTuple):
    status: int
    error: str
    challenge: str | None  # the WWW-Authenticate error, None for no challenge
    code: str  # the AADSTS code the description leads with


ENTRA_REFUSALS = {
    # invalid_grant, suberror basic_action, with an MFA claims challenge
    "dave": Refusal(401, "interaction_required", "insufficient_claims", MFA),
    # the older interaction_required, with the claims challenge
    "judy": Refusal(401, "interaction_required", "insufficient_claims", MFA),
    # invalid_grant, basic_action, no claims: only a new interactive sign-in helps
    "kevin": Refusal(401, "interaction_required", "insufficient_user_authentication", MFA),
    # invalid_grant, message_only: blocked by policy; signing in again does not help
    "laura": Refusal(403, "access_denied", None, "AADSTS53003"),
    # invalid_grant, user_password_expired
    "mike": Refusal(401, "interaction_required", "insufficient_user_authentication", "AADSTS50055"),
}
CLAIMS_CHALLENGED = [
    user for user, refusal in ENTRA_REFUSALS.items() if refusal.challenge == "insufficient_claims"
]
MFA_USERS = [user for user, refusal in ENTRA_REFUSALS.items() if refusal.code == MFA]


@pytest.mark.parametrize("api", ["graph", "arm"])
@pytest.mark.parametrize("user", ENTRA_REFUSALS)
def test_entra_refusal_reaches_the_client(stack: Stack, user: str, api: str) -> None:
    refusal = ENTRA_REFUSALS[user]
    response = stack.get(ROUTES[api], stack.emulator.issue_user_token(user))
    assert_refusal(
        response,
        refusal.status,
        refusal.error,
        description=refusal.code,
        challenge=refusal.challenge,
    )
    counters = stack.emulator.counters()
    assert counters["token.on_behalf_of"] == 1  # a refusal is not retried
    assert counters[api] == 0


@pytest.mark.parametrize("user", CLAIMS_CHALLENGED)
def test_claims_challenge_carries_the_policy_to_the_client(stack: Stack, user: str) -> None:
    response = stack.get("/api/me", stack.emulator.issue_user_token(user))
    claims = challenge_claims(response)
    assert claims["access_token"]["capolids"]["essential"] is True
    assert json.loads(response.json()["claims"]) == claims  # for MSAL.js's `claims`


@pytest.mark.parametrize("user", MFA_USERS)
def test_token_from_an_mfa_sign_in_is_exchanged(stack: Stack, user: str) -> None:
    token = stack.emulator.issue_user_token(user, mfa=True)  # the step-up the client did
    response = stack.get("/api/me", token)
    assert response.status_code == 200, response.text
    assert response.json()["userPrincipalName"] == f"{user}@contoso.test"
    assert stack.emulator.counters()["token.on_behalf_of"] == 1


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_downstream_401_gets_one_fresh_exchange_and_one_retry(stack: Stack, api: str) -> None:
    stack.emulator.add_fault(api, "status", status=401, count=1)  # no claims: not CAE
    response = stack.get(ROUTES[api], stack.emulator.issue_user_token("grace"))
    assert response.status_code == 200, response.text
    counters = stack.emulator.counters()
    assert counters["token.on_behalf_of"] == 2  # the first exchange, then a fresh one
    assert counters[api] == 1 + (1 if api == "graph" else ARM_PAGES)


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_downstream_401_after_a_fresh_token_is_502(stack: Stack, api: str) -> None:
    stack.emulator.add_fault(api, "status", status=401, count=2)
    response = stack.get(ROUTES[api], stack.emulator.issue_user_token("grace"))
    body = assert_refusal(
        response, 502, "bad_gateway", description=f"{api} refused a newly acquired token"
    )
    assert body["downstream"]["status"] == 401
    counters = stack.emulator.counters()
    assert counters["token.on_behalf_of"] == 2  # one fresh exchange, no more
    assert counters[api] == 2
