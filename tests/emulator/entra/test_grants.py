"""The other grants: client credentials, username/password (ROPC), refresh tokens; client
authentication and request validation at the token endpoint."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msal
import pytest
import requests

from emulator import (
    API_APP_ID_URI,
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    DAEMON_CLIENT_ID,
    DAEMON_CLIENT_SECRET,
    GRAPH_APP_ID,
    OTHER_TENANT_ID,
    SPA_CLIENT_ID,
    TENANT_ID,
    Emulator,
)
from tests.emulator.support import assert_entra_error, bearer, claims_of, obo_form, token_url

Verify = Callable[..., dict[str, Any]]


def _daemon(emulator: Emulator, http: requests.Session) -> msal.ConfidentialClientApplication:
    return msal.ConfidentialClientApplication(
        DAEMON_CLIENT_ID,
        client_credential=DAEMON_CLIENT_SECRET,
        authority=emulator.authority,
        instance_discovery=False,
        http_client=http,
    )


def _ropc(
    emulator: Emulator, http: requests.Session, username: str, tenant: str = TENANT_ID
) -> dict[str, Any]:
    """The SPA's password grant, as MSAL sends it. (MSAL's own ROPC flow first calls user
    realm discovery on port 443 of the authority host, so it cannot reach the emulator.)"""
    form = {
        "grant_type": "password",
        "client_id": SPA_CLIENT_ID,
        "username": username,
        "password": "any-password",
        "client_info": "1",
        "scope": f"{API_APP_ID_URI}/access_as_user openid profile offline_access",
    }
    return dict(http.post(token_url(emulator, tenant), data=form).json())


def test_client_credentials_gives_an_app_only_api_token(
    emulator: Emulator, http: requests.Session, jwks_verify: Verify
) -> None:
    result = _daemon(emulator, http).acquire_token_for_client([f"{API_APP_ID_URI}/.default"])

    assert result["token_type"] == "Bearer"
    assert not {"refresh_token", "id_token", "scope"} & result.keys()
    assert 3600 <= result["expires_in"] <= 5400
    claims = jwks_verify(result["access_token"], audience=API_CLIENT_ID)
    assert claims["roles"] == ["Reports.Read.All"]
    assert claims["azp"] == DAEMON_CLIENT_ID
    # v2 app-only token: roles, no scp, no optional claims such as idtyp.
    assert claims.keys() == {
        "aud",
        "iss",
        "iat",
        "nbf",
        "exp",
        "aio",
        "azp",
        "azpacr",
        "oid",
        "rh",
        "roles",
        "sub",
        "tid",
        "uti",
        "ver",
    }
    assert emulator.counters()["token.client_credentials"] == 1


def test_api_app_token_for_graph_lists_users_but_not_me(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication, http: requests.Session
) -> None:
    result = api_app.acquire_token_for_client(["https://graph.microsoft.com/.default"])
    token = result["access_token"]

    assert claims_of(token)["aud"] == GRAPH_APP_ID
    assert claims_of(token)["roles"] == ["User.Read.All"]
    users = http.get(f"{emulator.graph_url}/users", headers=bearer(token))
    assert users.status_code == 200
    me = http.get(f"{emulator.graph_url}/me", headers=bearer(token))
    assert me.status_code == 400
    assert me.json()["error"]["message"] == (
        "/me request is only valid with delegated authentication flow."
    )


def test_client_credentials_needs_a_default_scope(
    emulator: Emulator, http: requests.Session
) -> None:
    result = _daemon(emulator, http).acquire_token_for_client([f"{API_APP_ID_URI}/access_as_user"])

    assert_entra_error(result, "invalid_scope", 1002012)


def test_a_public_client_has_no_client_credentials(
    emulator: Emulator, http: requests.Session
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": SPA_CLIENT_ID,
        "scope": f"{API_APP_ID_URI}/.default",
    }

    raw = http.post(token_url(emulator), data=form)

    assert raw.status_code == 401
    assert_entra_error(raw.json(), "invalid_client", 7000218)


def test_ropc_gives_the_spa_a_user_token_for_the_api(
    emulator: Emulator, http: requests.Session, jwks_verify: Verify
) -> None:
    result = _ropc(emulator, http, "alice")

    claims = jwks_verify(result["access_token"], audience=API_CLIENT_ID)
    assert claims["scp"] == "access_as_user"
    assert claims["azp"] == SPA_CLIENT_ID
    assert claims["azpacr"] == "0"
    assert claims["preferred_username"] == "alice@contoso.test"
    assert claims["roles"] == ["Reports.Read.All"]
    assert {"sub", "aio", "uti", "iat", "nbf", "exp"} <= claims.keys()
    assert result["id_token"] and result["refresh_token"] and result["client_info"]
    assert emulator.counters()["token.password"] == 1


def test_ropc_user_token_is_a_valid_obo_assertion(
    emulator: Emulator, http: requests.Session, api_app: msal.ConfidentialClientApplication
) -> None:
    user_token = _ropc(emulator, http, "dave@contoso.test")["access_token"]

    result = api_app.acquire_token_on_behalf_of(user_token, ["User.Read"])

    # A password sign-in is not an MFA sign-in.
    assert_entra_error(result, "invalid_grant", 50076)
    assert result["suberror"] == "basic_action"


@pytest.mark.parametrize(
    ("user", "error", "code", "suberror"),
    [
        ("dave", "invalid_grant", 50076, "basic_action"),
        ("judy", "interaction_required", 50076, None),
        ("laura", "invalid_grant", 53003, "message_only"),
        ("mike", "invalid_grant", 50055, "user_password_expired"),
    ],
)
def test_refresh_for_graph_applies_the_users_policy(
    emulator: Emulator,
    http: requests.Session,
    user: str,
    error: str,
    code: int,
    suberror: str | None,
) -> None:
    signed_in = _ropc(emulator, http, user)  # policies target Graph/ARM, not the API
    form = {
        "grant_type": "refresh_token",
        "client_id": SPA_CLIENT_ID,
        "refresh_token": signed_in["refresh_token"],
        "scope": "User.Read openid",
    }

    raw = http.post(token_url(emulator), data=form)

    assert "access_token" in signed_in
    assert raw.status_code == 400
    assert raw.headers["Pragma"] == "no-cache"
    assert_entra_error(raw.json(), error, code)
    assert raw.json().get("suberror") == suberror


def test_ropc_for_an_unknown_user_fails(emulator: Emulator, http: requests.Session) -> None:
    result = _ropc(emulator, http, "mallory@contoso.test")

    assert_entra_error(result, "invalid_grant", 50034)


def test_users_sign_in_to_their_own_tenant_only(emulator: Emulator, http: requests.Session) -> None:
    assert_entra_error(_ropc(emulator, http, "ivan@fabrikam.test"), "invalid_grant", 50034)

    claims = claims_of(_ropc(emulator, http, "ivan", OTHER_TENANT_ID)["access_token"])

    assert claims["tid"] == OTHER_TENANT_ID
    assert claims["iss"] == f"{emulator.base_url}/{OTHER_TENANT_ID}/v2.0"


def test_user_realm_discovery(emulator: Emulator, http: requests.Session) -> None:
    known = http.get(
        f"{emulator.base_url}/common/userrealm/alice@contoso.test", params={"api-version": "1.0"}
    )
    unknown = http.get(f"{emulator.base_url}/common/userrealm/nobody@nowhere.test")

    assert known.status_code == 200
    assert known.json()["account_type"] == "Managed"
    assert known.json()["domain_name"] == "contoso.test"
    assert unknown.json()["account_type"] == "Unknown"


@pytest.mark.parametrize(
    ("refresh_token", "code"),
    [("garbage", 9002313), ("0.gAAAAABnotreallyfernet", 9002313)],
)
def test_bad_refresh_tokens_are_invalid_grant(
    emulator: Emulator, http: requests.Session, refresh_token: str, code: int
) -> None:
    form = {
        "grant_type": "refresh_token",
        "client_id": API_CLIENT_ID,
        "client_secret": API_CLIENT_SECRET,
        "refresh_token": refresh_token,
        "scope": "https://graph.microsoft.com/User.Read offline_access",
    }

    raw = http.post(token_url(emulator), data=form)

    assert raw.status_code == 400
    assert_entra_error(raw.json(), "invalid_grant", code)


def test_a_refresh_token_is_bound_to_its_client(emulator: Emulator, http: requests.Session) -> None:
    obo = http.post(token_url(emulator), data=obo_form(emulator.issue_user_token("alice")))
    form = {
        "grant_type": "refresh_token",
        "client_id": DAEMON_CLIENT_ID,
        "client_secret": DAEMON_CLIENT_SECRET,
        "refresh_token": obo.json()["refresh_token"],
        "scope": "https://graph.microsoft.com/User.Read",
    }

    raw = http.post(token_url(emulator), data=form)

    assert_entra_error(raw.json(), "invalid_grant", 70000)


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_id": API_CLIENT_ID}, 400, "invalid_request", 900144),
        (
            {"grant_type": "device_code", "client_id": API_CLIENT_ID},
            400,
            "unsupported_grant_type",
            70003,
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": "0f0f0f0f-1111-4000-8000-000000000000",
                "client_secret": "x",
                "scope": f"{API_APP_ID_URI}/.default",
            },
            400,
            "unauthorized_client",
            700016,
        ),
        (
            {
                "grant_type": "client_credentials",
                "client_id": API_CLIENT_ID,
                "scope": f"{API_APP_ID_URI}/.default",
            },
            401,
            "invalid_client",
            7000218,
        ),
        (
            {
                "grant_type": "password",
                "client_id": SPA_CLIENT_ID,
                "client_secret": "x",
                "username": "alice",
                "password": "x",
            },
            401,
            "invalid_client",
            700025,
        ),
    ],
    ids=["no-grant-type", "unsupported-grant", "unknown-client", "no-secret", "public-with-secret"],
)
def test_malformed_token_requests(
    emulator: Emulator,
    http: requests.Session,
    form: dict[str, str],
    status: int,
    error: str,
    code: int,
) -> None:
    raw = http.post(token_url(emulator), data=form)

    assert raw.status_code == status
    assert_entra_error(raw.json(), error, code)


def test_errors_echo_the_client_request_id(emulator: Emulator, http: requests.Session) -> None:
    request_id = "0f0f0f0f-2222-4000-8000-000000000000"

    raw = http.post(
        token_url(emulator),
        data={"client_id": API_CLIENT_ID},
        headers={"client-request-id": request_id},
    )

    assert raw.json()["correlation_id"] == request_id
    assert raw.headers["client-request-id"] == request_id
    assert raw.headers["x-ms-request-id"] == raw.json()["trace_id"]
