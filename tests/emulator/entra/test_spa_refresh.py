"""The SPA's refresh tokens: rotated on each use, the old one refused, redeemed only
cross-origin, a fixed 24-hour lifetime, and `claims` challenges honoured."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import requests

from emulator import API_CLIENT_ID, MFA_POLICY_ID, SPA_CLIENT_ID, TENANT_ID, USERS, Emulator
from emulator.entra.refresh_tokens import RefreshTokenCodec, RefreshTokenRejected
from tests.emulator.support import (
    SPA_ORIGIN,
    Browser,
    Pkce,
    assert_entra_error,
    authorize_params,
    claims_of,
    redeem_code,
    spa_refresh,
)

MFA_CHALLENGE = json.dumps(
    {"access_token": {"capolids": {"essential": True, "values": [MFA_POLICY_ID]}}}
)


def _refresh_token(
    emulator: Emulator, browser: Browser, http: requests.Session, user: str = "alice"
) -> str:
    pkce = Pkce.generate()
    code = browser.sign_in(user, authorize_params(pkce))["code"]
    return str(redeem_code(http, emulator, code, pkce).json()["refresh_token"])


def test_refresh_rotates_the_token_and_refuses_the_old_one(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    first = _refresh_token(emulator, browser, http)

    rotated = spa_refresh(http, emulator, first)
    reused = spa_refresh(http, emulator, first)

    assert rotated.status_code == 200
    assert rotated.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    body = rotated.json()
    assert body["refresh_token"] != first
    assert body["refresh_token_expires_in"] <= 86400
    assert claims_of(body["access_token"])["oid"] == USERS["alice"].id
    assert reused.status_code == 400
    assert reused.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert_entra_error(reused.json(), "invalid_grant", 70000)
    assert spa_refresh(http, emulator, body["refresh_token"]).status_code == 200
    assert emulator.counters()["token.refresh_token"] == 3


def test_a_spa_refresh_token_must_be_redeemed_cross_origin(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    token = _refresh_token(emulator, browser, http)

    refused = spa_refresh(http, emulator, token, origin=None)
    accepted = spa_refresh(http, emulator, token)

    assert refused.status_code == 400
    assert "Access-Control-Allow-Origin" not in refused.headers
    assert_entra_error(refused.json(), "invalid_request", 9002327)
    assert accepted.status_code == 200  # the refused attempt did not spend it
    assert accepted.json()["token_type"] == "Bearer"


def test_a_spa_refresh_token_is_bound_to_its_client(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    token = _refresh_token(emulator, browser, http)
    form = {
        "grant_type": "refresh_token",
        "client_id": API_CLIENT_ID,
        "client_secret": "emulator-secret-not-for-production",
        "refresh_token": token,
        "scope": "https://graph.microsoft.com/User.Read",
    }

    response = http.post(
        f"{emulator.authority}/oauth2/v2.0/token", data=form, headers={"Origin": SPA_ORIGIN}
    )

    assert response.status_code == 400
    assert "Access-Control-Allow-Origin" not in response.headers  # not a SPA client
    assert_entra_error(response.json(), "invalid_grant", 70000)


def test_a_step_up_challenge_on_refresh_needs_an_mfa_sign_in(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    token = _refresh_token(emulator, browser, http, "dave")

    response = spa_refresh(http, emulator, token, claims=MFA_CHALLENGE)

    assert response.status_code == 400
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    body = response.json()
    assert_entra_error(body, "invalid_grant", 50076)
    assert body["suberror"] == "basic_action"
    assert json.loads(body["claims"])["access_token"]["capolids"]["values"] == [MFA_POLICY_ID]


def test_a_cae_challenge_on_refresh_gets_a_fresh_token(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    token = _refresh_token(emulator, browser, http)
    challenge = json.dumps(
        {"access_token": {"nbf": {"essential": True, "value": "1"}, "xms_cc": {"values": ["cp1"]}}}
    )

    response = spa_refresh(http, emulator, token, claims=challenge)

    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert claims_of(response.json()["access_token"])["xms_cc"] == ["cp1"]


def test_refresh_tokens_from_an_mfa_sign_in_keep_it(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    pkce = Pkce.generate()
    code = browser.sign_in("dave", authorize_params(pkce, claims=MFA_CHALLENGE))["code"]
    token = redeem_code(http, emulator, code, pkce).json()["refresh_token"]

    rotated = spa_refresh(http, emulator, token, claims=MFA_CHALLENGE)
    again = spa_refresh(http, emulator, rotated.json()["refresh_token"], claims=MFA_CHALLENGE)

    assert rotated.status_code == again.status_code == 200
    assert again.headers["Access-Control-Allow-Origin"] == SPA_ORIGIN
    assert claims_of(again.json()["access_token"])["oid"] == USERS["dave"].id


def test_spa_refresh_tokens_live_24_hours_from_the_sign_in(tmp_path: Path) -> None:
    codec = RefreshTokenCodec(tmp_path / "refresh.key")
    token = codec.issue(
        user_id=USERS["alice"].id,
        tenant_id=TENANT_ID,
        client_id=SPA_CLIENT_ID,
        spa=True,
        signed_in_at=1000.0,
    )

    with pytest.raises(RefreshTokenRejected) as expired:
        codec.redeem(token, now=1000.0 + 24 * 3600 + 1)
    grant = codec.redeem(token, now=1000.0 + 24 * 3600 - 1)

    assert expired.value.reason == "spa_expired"
    assert grant.spa and grant.signed_in_at == 1000.0
    rotated = codec.issue(
        user_id=grant.user_id,
        tenant_id=TENANT_ID,
        client_id=SPA_CLIENT_ID,
        spa=True,
        signed_in_at=grant.signed_in_at,
    )
    with pytest.raises(RefreshTokenRejected) as late:
        codec.redeem(rotated, now=1000.0 + 24 * 3600 + 1)
    assert late.value.reason == "spa_expired"  # rotation does not extend the lifetime
