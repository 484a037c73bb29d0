"""Redeeming the SPA's authorization code: PKCE (S256), single use, binding to the client and
redirect URI, the cross-origin requirement of `spa` redirect URIs, and CORS."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from typing import Any

import pytest
import requests

from emulator import (
    API_CLIENT_ID,
    GRAPH_APP_ID,
    OTHER_TENANT_ID,
    SPA_CLIENT_ID,
    TENANT_ID,
    USERS,
    Emulator,
)
from emulator.entra.sessions import CODE_LIFETIME, AuthorizationCode, CodeRejected, SignInStore
from tests.emulator.support import (
    SPA_ORIGIN,
    Browser,
    Pkce,
    assert_entra_error,
    authorize_params,
    bearer,
    claims_of,
    redeem_code,
    token_url,
)

Verify = Callable[..., dict[str, Any]]


def _signed_in(
    browser: Browser, user: str = "alice", **overrides: str | None
) -> tuple[str, Pkce, dict[str, str]]:
    pkce = Pkce.generate()
    params = authorize_params(pkce, **overrides)
    return browser.sign_in(user, params)["code"], pkce, params


def test_the_code_redeems_for_entra_shaped_tokens(
    emulator: Emulator, browser: Browser, http: requests.Session, jwks_verify: Verify
) -> None:
    code, pkce, params = _signed_in(browser)

    response = redeem_code(http, emulator, code, pkce)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "Origin" in response.headers["Vary"]
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    body = response.json()
    assert list(body) == [
        "token_type",
        "scope",
        "expires_in",
        "ext_expires_in",
        "access_token",
        "refresh_token",
        "refresh_token_expires_in",
        "id_token",
        "client_info",
    ]
    assert body["token_type"] == "Bearer"
    assert body["scope"] == f"api://{API_CLIENT_ID}/access_as_user"
    assert 3600 <= body["expires_in"] <= 5400
    assert body["ext_expires_in"] == body["expires_in"]
    assert 86000 < body["refresh_token_expires_in"] <= 86400
    access = jwks_verify(body["access_token"], audience=API_CLIENT_ID)
    assert access["azp"] == SPA_CLIENT_ID
    assert access["azpacr"] == "0"
    assert access["scp"] == "access_as_user"
    assert access["oid"] == USERS["alice"].id
    identity = jwks_verify(body["id_token"], audience=SPA_CLIENT_ID)
    assert identity["nonce"] == params["nonce"]
    assert identity.keys() == {
        "aud",
        "iss",
        "iat",
        "nbf",
        "exp",
        "aio",
        "name",
        "nonce",
        "oid",
        "preferred_username",
        "rh",
        "sub",
        "tid",
        "uti",
        "ver",
    }
    assert identity["sub"] != access["sub"]  # pairwise per application
    info = json.loads(base64.urlsafe_b64decode(body["client_info"] + "=="))
    assert info == {"uid": USERS["alice"].id, "utid": TENANT_ID}
    assert emulator.counters()["token.authorization_code"] == 1


def test_the_access_token_is_accepted_by_the_api_exchange(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    code, pkce, _ = _signed_in(browser, "bob")
    access_token = redeem_code(http, emulator, code, pkce).json()["access_token"]
    form = {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "requested_token_use": "on_behalf_of",
        "client_id": API_CLIENT_ID,
        "client_secret": "emulator-secret-not-for-production",
        "assertion": access_token,
        "scope": "https://graph.microsoft.com/User.Read",
    }

    obo = http.post(token_url(emulator), data=form)
    me = http.get(f"{emulator.graph_url}/me", headers=bearer(obo.json()["access_token"]))

    assert obo.status_code == 200
    assert "Access-Control-Allow-Origin" not in obo.headers  # no Origin: a server's call
    assert me.status_code == 200
    assert me.json()["userPrincipalName"] == "bob@contoso.test"


def test_openid_scopes_alone_get_a_graph_token(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    scopes = "openid profile offline_access"
    code, pkce, _ = _signed_in(browser, scope=scopes)

    response = redeem_code(http, emulator, code, pkce, scope=scopes)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    body = response.json()
    assert body["scope"] == "User.Read openid profile"
    claims = claims_of(body["access_token"])
    assert claims["aud"] == GRAPH_APP_ID
    assert claims["scp"] == "User.Read openid profile"
    me = http.get(f"{emulator.graph_url}/me", headers=bearer(body["access_token"]))
    assert me.status_code == 200


def test_a_code_is_single_use(emulator: Emulator, browser: Browser, http: requests.Session) -> None:
    code, pkce, _ = _signed_in(browser)
    first = redeem_code(http, emulator, code, pkce)

    second = redeem_code(http, emulator, code, pkce)

    assert first.status_code == 200
    assert second.status_code == 400
    assert second.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN  # readable by the SPA
    assert_entra_error(second.json(), "invalid_grant", 54005)
    assert "already redeemed" in second.json()["error_description"]


@pytest.mark.parametrize(
    ("change", "error", "code"),
    [
        ({"code_verifier": "x" * 43}, "invalid_grant", 501481),
        ({"code_verifier": "short"}, "invalid_grant", 501481),
        ({"code_verifier": ""}, "invalid_request", 900144),
        ({"redirect_uri": "http://localhost:3000"}, "invalid_grant", 70000),
        ({"code": "1.not-a-code"}, "invalid_grant", 9002313),
    ],
    ids=[
        "wrong-verifier",
        "malformed-verifier",
        "no-verifier",
        "other-redirect-uri",
        "unknown-code",
    ],
)
def test_bad_redemptions_are_refused(
    emulator: Emulator,
    browser: Browser,
    http: requests.Session,
    change: dict[str, str],
    error: str,
    code: int,
) -> None:
    issued, pkce, _ = _signed_in(browser)

    response = redeem_code(http, emulator, change.pop("code", issued), pkce, **change)

    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert_entra_error(response.json(), error, code)
    assert "access_token" not in response.json()


def test_a_failed_verifier_spends_the_code(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    code, pkce, _ = _signed_in(browser)
    redeem_code(http, emulator, code, pkce, code_verifier="y" * 43)

    retried = redeem_code(http, emulator, code, pkce)

    assert retried.status_code == 400
    assert_entra_error(retried.json(), "invalid_grant", 54005)
    assert retried.headers["Pragma"] == "no-cache"


def test_the_code_is_bound_to_its_tenant(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    code, pkce, _ = _signed_in(browser)
    form = {
        "client_id": SPA_CLIENT_ID,
        "redirect_uri": "http://localhost:3000/",
        "code": code,
        "code_verifier": pkce.verifier,
        "grant_type": "authorization_code",
        "scope": "openid",
    }

    response = http.post(
        token_url(emulator, OTHER_TENANT_ID), data=form, headers={"Origin": SPA_ORIGIN}
    )

    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert_entra_error(response.json(), "invalid_grant", 700005)


def test_a_spa_code_must_be_redeemed_cross_origin(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    code, pkce, _ = _signed_in(browser)

    without_origin = redeem_code(http, emulator, code, pkce, origin=None)
    with_origin = redeem_code(http, emulator, code, pkce)

    assert without_origin.status_code == 400
    assert "Access-Control-Allow-Origin" not in without_origin.headers
    assert_entra_error(without_origin.json(), "invalid_request", 9002327)
    assert without_origin.json()["error_description"].startswith(
        "AADSTS9002327: Tokens issued for the 'Single-Page Application' client-type may only "
        "be redeemed via cross-origin requests."
    )
    assert with_origin.status_code == 200  # the refused attempt did not spend the code
    assert with_origin.json()["token_type"] == "Bearer"


def test_the_token_endpoint_answers_cors_preflight(
    emulator: Emulator, http: requests.Session
) -> None:
    response = http.options(
        token_url(emulator),
        headers={
            "Origin": SPA_ORIGIN,
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type, x-anchormailbox",
        },
    )

    assert response.status_code == 204
    assert response.content == b""
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert response.headers["Access-Control-Allow-Methods"] == "POST, OPTIONS"
    assert response.headers["Access-Control-Allow-Headers"] == "content-type, x-anchormailbox"
    assert response.headers["Access-Control-Max-Age"] == "86400"
    assert emulator.counters()["token"] == 0  # a preflight is not a token request


def test_a_preflight_does_not_echo_malformed_header_lists(
    emulator: Emulator, http: requests.Session
) -> None:
    response = http.options(
        token_url(emulator),
        headers={"Origin": SPA_ORIGIN, "Access-Control-Request-Headers": "x-a\tb; evil"},
    )

    assert response.status_code == 204
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert "Access-Control-Allow-Headers" not in response.headers


def test_confidential_clients_get_no_cors_headers(
    emulator: Emulator, http: requests.Session
) -> None:
    form = {
        "grant_type": "client_credentials",
        "client_id": API_CLIENT_ID,
        "client_secret": "emulator-secret-not-for-production",
        "scope": "https://graph.microsoft.com/.default",
    }

    response = http.post(token_url(emulator), data=form, headers={"Origin": SPA_ORIGIN})

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response.headers
    assert response.json()["token_type"] == "Bearer"


def test_codes_expire_after_ten_minutes() -> None:
    store = SignInStore()
    grant = AuthorizationCode(
        client_id=SPA_CLIENT_ID,
        redirect_uri="http://localhost:3000/",
        tenant_id=TENANT_ID,
        user_id=USERS["alice"].id,
        scope="openid",
        code_challenge="c" * 43,
        nonce=None,
        mfa=False,
        signed_in_at=0.0,
    )
    fresh, stale = store.issue_code(grant), store.issue_code(grant)
    now = time.time()

    redeemed = store.redeem_code(fresh, now=now + CODE_LIFETIME - 1)
    with pytest.raises(CodeRejected) as expired:
        store.redeem_code(stale, now=now + CODE_LIFETIME + 1)
    with pytest.raises(CodeRejected) as reused:
        store.redeem_code(fresh, now=now + CODE_LIFETIME - 1)

    assert redeemed.user_id == USERS["alice"].id
    assert expired.value.reason == "expired"
    assert reused.value.reason == "redeemed"
