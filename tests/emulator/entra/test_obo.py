"""The On-Behalf-Of flow with the real MSAL ConfidentialClientApplication over HTTPS."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator import (
    API_CLIENT_ID,
    GRAPH_APP_ID,
    MFA_POLICY_ID,
    SPA_CLIENT_ID,
    TENANT_ID,
    USERS,
    Emulator,
)
from tests.emulator.support import (
    ARM_SCOPE,
    GRAPH_USER_READ,
    assert_entra_error,
    bearer,
    claims_of,
    obo_form,
    token_url,
)

Verify = Callable[..., dict[str, Any]]
# Microsoft's v2 access token claims reference: no optional claims (upn, amr, idtyp, ...).
V2_USER_CLAIMS = {
    "aud",
    "iss",
    "iat",
    "nbf",
    "exp",
    "aio",
    "azp",
    "azpacr",
    "name",
    "oid",
    "preferred_username",
    "rh",
    "scp",
    "sub",
    "tid",
    "uti",
    "ver",
}


def test_obo_for_graph_returns_entra_token_response(
    emulator: Emulator,
    api_app: msal.ConfidentialClientApplication,
    jwks_verify: Verify,
    http: requests.Session,
) -> None:
    result = api_app.acquire_token_on_behalf_of(
        emulator.issue_user_token("alice"), [GRAPH_USER_READ]
    )

    assert result["token_type"] == "Bearer"
    assert 3600 <= result["expires_in"] <= 5400  # Entra's random 60 to 90 minutes
    assert result["ext_expires_in"] == result["expires_in"]
    assert GRAPH_USER_READ in result["scope"].split()
    assert result["refresh_token"]
    assert result["id_token_claims"]["aud"] == API_CLIENT_ID
    assert result["id_token_claims"]["oid"] == USERS["alice"].id
    assert result["token_source"] == "identity_provider"
    claims = jwks_verify(result["access_token"], audience=GRAPH_APP_ID)
    assert claims["scp"] == "User.Read User.ReadBasic.All"
    assert claims["azp"] == API_CLIENT_ID
    assert claims["oid"] == USERS["alice"].id
    assert claims["tid"] == TENANT_ID
    assert claims["preferred_username"] == "alice@contoso.test"
    assert claims["ver"] == "2.0"
    assert claims["exp"] - claims["iat"] == result["expires_in"]
    assert claims.keys() == V2_USER_CLAIMS
    me = http.get(f"{emulator.graph_url}/me", headers=bearer(result["access_token"]))
    assert me.status_code == 200
    assert me.json()["userPrincipalName"] == "alice@contoso.test"
    assert emulator.counters()["token.on_behalf_of"] == 1


def test_msal_keys_its_cache_by_client_info(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication
) -> None:
    api_app.acquire_token_on_behalf_of(emulator.issue_user_token("bob"), [GRAPH_USER_READ])

    (account,) = api_app.get_accounts()
    assert account["home_account_id"] == f"{USERS['bob'].id}.{TENANT_ID}"
    assert account["username"] == "bob@contoso.test"
    cached = api_app.acquire_token_silent([GRAPH_USER_READ], account=account)
    assert cached["token_source"] == "cache"
    assert emulator.counters()["token"] == 1


def test_silent_refresh_redeems_the_obo_refresh_token(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication, jwks_verify: Verify
) -> None:
    # MSAL treats tokens with under five minutes left as expired and refreshes them.
    emulator.set_token_lifetime(120)
    first = api_app.acquire_token_on_behalf_of(
        emulator.issue_user_token("carol"), [GRAPH_USER_READ]
    )
    (account,) = api_app.get_accounts()

    refreshed = api_app.acquire_token_silent([GRAPH_USER_READ], account=account)

    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert jwks_verify(refreshed["access_token"], audience=GRAPH_APP_ID)["oid"] == USERS["carol"].id
    counts = emulator.counters()
    assert (counts["token.on_behalf_of"], counts["token.refresh_token"]) == (1, 1)


def test_obo_for_arm_gets_an_arm_audience(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication, jwks_verify: Verify
) -> None:
    result = api_app.acquire_token_on_behalf_of(emulator.issue_user_token("alice"), [ARM_SCOPE])

    claims = jwks_verify(result["access_token"], audience="https://management.azure.com")
    assert claims["scp"] == "user_impersonation"
    assert result["scope"] == ARM_SCOPE


def test_default_scope_grants_every_consented_permission(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication
) -> None:
    scope = "https://graph.microsoft.com/.default"
    result = api_app.acquire_token_on_behalf_of(emulator.issue_user_token("alice"), [scope])

    assert claims_of(result["access_token"])["scp"] == "User.Read User.ReadBasic.All"
    assert scope in result["scope"].split()
    (account,) = api_app.get_accounts()
    assert api_app.acquire_token_silent([scope], account=account)["token_source"] == "cache"


def test_client_capabilities_become_xms_cc(
    emulator: Emulator, make_api_app: Callable[..., msal.ConfidentialClientApplication]
) -> None:
    app = make_api_app(client_capabilities=["cp1"])

    result = app.acquire_token_on_behalf_of(emulator.issue_user_token("alice"), [GRAPH_USER_READ])

    assert claims_of(result["access_token"])["xms_cc"] == ["cp1"]


POLICY_REFUSALS = [
    ("dave", "invalid_grant", 50076, "basic_action", True),
    ("judy", "interaction_required", 50076, None, True),
    ("kevin", "invalid_grant", 50076, "basic_action", False),
    ("laura", "invalid_grant", 53003, "message_only", False),
    ("mike", "invalid_grant", 50055, "user_password_expired", False),
    ("erin", "invalid_grant", 65001, "consent_required", False),
]


@pytest.mark.parametrize(
    ("user", "error", "code", "suberror", "has_claims"),
    POLICY_REFUSALS,
    ids=[row[0] for row in POLICY_REFUSALS],
)
@pytest.mark.parametrize("scope", [GRAPH_USER_READ, ARM_SCOPE], ids=["graph", "arm"])
def test_policy_users_fail_obo_with_entra_errors(
    emulator: Emulator,
    http: requests.Session,
    scope: str,
    user: str,
    error: str,
    code: int,
    suberror: str | None,
    has_claims: bool,
) -> None:
    raw = http.post(token_url(emulator), data=obo_form(emulator.issue_user_token(user), scope))

    assert raw.status_code == 400
    assert raw.headers["Cache-Control"] == "no-store, no-cache"
    body = raw.json()
    assert_entra_error(body, error, code)
    assert body.get("suberror") == suberror
    assert ("claims" in body) is has_claims
    assert "access_token" not in body


@pytest.mark.parametrize("user", ["dave", "judy"])
def test_mfa_users_get_a_claims_challenge(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication, user: str
) -> None:
    result = api_app.acquire_token_on_behalf_of(emulator.issue_user_token(user), [GRAPH_USER_READ])

    challenge = json.loads(result["claims"])
    assert challenge == {
        "access_token": {"capolids": {"essential": True, "values": [MFA_POLICY_ID]}}
    }
    assert "AADSTS50076: Due to a configuration change" in result["error_description"]
    assert "access_token" not in result


@pytest.mark.parametrize("user", ["dave", "judy", "kevin"])
def test_mfa_users_succeed_with_a_token_from_an_mfa_sign_in(
    emulator: Emulator,
    api_app: msal.ConfidentialClientApplication,
    http: requests.Session,
    user: str,
) -> None:
    result = api_app.acquire_token_on_behalf_of(
        emulator.issue_user_token(user, mfa=True), [GRAPH_USER_READ]
    )

    assert result["token_type"] == "Bearer"
    assert claims_of(result["access_token"])["oid"] == USERS[user].id
    me = http.get(f"{emulator.graph_url}/me", headers=bearer(result["access_token"]))
    assert me.status_code == 200
    assert me.json()["userPrincipalName"] == f"{user}@contoso.test"
    assert me.headers["request-id"]


def test_an_amr_claim_does_not_satisfy_mfa(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication
) -> None:
    """Entra decides MFA from how it issued the assertion, not from the claims it carries."""
    assertion = emulator.issue_user_token("dave", amr=["pwd", "mfa"])

    result = api_app.acquire_token_on_behalf_of(assertion, [GRAPH_USER_READ])

    assert_entra_error(result, "invalid_grant", 50076)
    assert result["suberror"] == "basic_action"
    assert "access_token" not in result


def test_the_refresh_token_of_an_mfa_exchange_keeps_its_mfa(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication, http: requests.Session
) -> None:
    emulator.set_token_lifetime(120)  # MSAL refreshes tokens with under 5 minutes left
    first = api_app.acquire_token_on_behalf_of(
        emulator.issue_user_token("dave", mfa=True), [ARM_SCOPE]
    )
    (account,) = api_app.get_accounts()

    refreshed = api_app.acquire_token_silent([ARM_SCOPE], account=account)

    assert first["token_type"] == refreshed["token_type"] == "Bearer"
    assert refreshed["token_source"] == "identity_provider"
    assert refreshed["access_token"] != first["access_token"]
    assert emulator.counters()["token.refresh_token"] == 1
    subscriptions = http.get(
        f"{emulator.arm_url}/subscriptions",
        headers=bearer(refreshed["access_token"]),
        params={"api-version": "2022-12-01"},
    )
    assert subscriptions.status_code == 200
    assert subscriptions.json()["count"]["value"] == 5
    assert subscriptions.headers["x-ms-request-id"]


def test_throttled_user_gets_429_with_retry_after(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication, http: requests.Session
) -> None:
    raw = http.post(token_url(emulator), data=obo_form(emulator.issue_user_token("frank")))

    assert raw.status_code == 429
    assert raw.headers["Retry-After"] == "7"
    assert_entra_error(raw.json(), "temporarily_unavailable", 90055)
    result = api_app.acquire_token_on_behalf_of(
        emulator.issue_user_token("frank"), [GRAPH_USER_READ]
    )
    assert_entra_error(result, "temporarily_unavailable", 90055)


def test_wrong_client_secret_is_invalid_client(
    emulator: Emulator,
    make_api_app: Callable[..., msal.ConfidentialClientApplication],
    http: requests.Session,
) -> None:
    app = make_api_app(secret="not-the-secret")

    result = app.acquire_token_on_behalf_of(emulator.issue_user_token("alice"), [GRAPH_USER_READ])

    assert_entra_error(result, "invalid_client", 7000215)
    raw = http.post(
        token_url(emulator), data=obo_form(emulator.issue_user_token("alice"), client_secret="nope")
    )
    assert raw.status_code == 401


def test_client_secret_may_come_in_basic_auth(emulator: Emulator, http: requests.Session) -> None:
    form = obo_form(emulator.issue_user_token("alice"))
    secret = form.pop("client_secret")

    raw = http.post(token_url(emulator), data=form, auth=(API_CLIENT_ID, secret))

    assert raw.status_code == 200
    assert raw.headers["Cache-Control"] == "no-store, no-cache"
    assert raw.json()["token_type"] == "Bearer"


def test_expired_assertion_is_outside_its_valid_time_range(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication
) -> None:
    result = api_app.acquire_token_on_behalf_of(
        emulator.issue_user_token("alice", lifetime=-60), [GRAPH_USER_READ]
    )

    assert_entra_error(result, "invalid_grant", 500133)
    assert "Assertion is not within its valid time range" in result["error_description"]


def _foreign_token(claims: dict[str, Any]) -> str:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": "not-a-published-key"})


@pytest.mark.parametrize(
    ("make_assertion", "error", "code", "text"),
    [
        (
            lambda emu: emu.issue_user_token("alice", audience=GRAPH_APP_ID),
            "invalid_grant",
            500131,
            "Assertion audience does not match",
        ),
        (
            lambda emu: emu.issue_app_token(),
            "unauthorized_client",
            7000114,
            "not allowed to make application on-behalf-of calls",
        ),
        (
            lambda emu: _foreign_token(claims_of(emu.issue_user_token("alice"))),
            "invalid_grant",
            50013,
            "The key was not found",
        ),
        (
            lambda emu: emu.issue_user_token("alice")[:-4] + "AAAA",
            "invalid_grant",
            50013,
            "did not match the expected signature",
        ),
        (lambda emu: "not-a-jwt", "invalid_request", 50027, "invalid or malformed"),
        (lambda emu: emu.issue_user_token("ivan"), "invalid_grant", 50013, "not a valid issuer"),
    ],
    ids=["wrong-audience", "app-only", "unknown-key", "bad-signature", "malformed", "other-tenant"],
)
def test_bad_assertions_are_refused_like_entra(
    emulator: Emulator,
    api_app: msal.ConfidentialClientApplication,
    make_assertion: Callable[[Emulator], str],
    error: str,
    code: int,
    text: str,
) -> None:
    result = api_app.acquire_token_on_behalf_of(make_assertion(emulator), [GRAPH_USER_READ])

    assert_entra_error(result, error, code)
    assert text in result["error_description"]


@pytest.mark.parametrize(
    ("scopes", "error", "code"),
    [
        ([GRAPH_USER_READ, ARM_SCOPE], "invalid_scope", 28000),
        (["https://graph.microsoft.com/Mail.Read"], "invalid_grant", 65001),
        (["https://graph.microsoft.com/No.Such.Scope"], "invalid_scope", 70011),
        (["https://unknown.example/read"], "invalid_resource", 500011),
    ],
    ids=["two-resources", "not-consented", "unknown-scope", "unknown-resource"],
)
def test_bad_scopes_are_refused_like_entra(
    emulator: Emulator,
    api_app: msal.ConfidentialClientApplication,
    scopes: list[str],
    error: str,
    code: int,
) -> None:
    result = api_app.acquire_token_on_behalf_of(emulator.issue_user_token("alice"), scopes)

    assert_entra_error(result, error, code)


def test_a_public_client_cannot_do_obo(emulator: Emulator, http: requests.Session) -> None:
    form = obo_form(emulator.issue_user_token("alice"), client_id=SPA_CLIENT_ID)
    del form["client_secret"]

    raw = http.post(token_url(emulator), data=form)

    assert raw.status_code == 401
    assert_entra_error(raw.json(), "invalid_client", 7000218)
