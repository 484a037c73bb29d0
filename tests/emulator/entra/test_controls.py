"""Entra's part of the control plane: token lifetime, the SPA's redirect URIs, minted tokens."""

from __future__ import annotations

import pytest
import requests

from emulator import API_CLIENT_ID, DEFAULT_SPA_REDIRECT_URIS, USERS, Emulator
from tests.emulator.support import Browser, Pkce, authorize_params, claims_of, obo_form, token_url


def _control(emu: Emulator, path: str) -> str:
    return f"{emu.base_url}/_emulator/{path}"


def test_settings_fix_the_lifetime_of_issued_tokens(
    emulator: Emulator, http: requests.Session
) -> None:
    rejected = http.post(_control(emulator, "settings"), json={"token_lifetime": 5})
    updated = http.post(_control(emulator, "settings"), json={"token_lifetime": 120})

    response = http.post(token_url(emulator), data=obo_form(emulator.issue_user_token("alice")))

    assert rejected.status_code == 400
    assert rejected.json()["error"] == "bad_request"
    assert updated.status_code == 200
    assert updated.json() == {"token_lifetime": 120}
    assert response.json()["expires_in"] == 120
    claims = claims_of(response.json()["access_token"])
    assert claims["exp"] - claims["iat"] == 120


def test_the_default_lifetime_is_entras_random_60_to_90_minutes(
    emulator: Emulator, http: requests.Session
) -> None:
    reset = http.post(_control(emulator, "settings"), json={"token_lifetime": None})
    lifetimes = set()

    for _ in range(8):
        body = http.post(
            token_url(emulator), data=obo_form(emulator.issue_user_token("alice"))
        ).json()
        claims = claims_of(body["access_token"])
        assert claims["exp"] - claims["iat"] == body["expires_in"]
        lifetimes.add(body["expires_in"])

    assert reset.status_code == 200
    assert reset.json() == {"token_lifetime": None}
    assert all(3600 <= lifetime <= 5400 for lifetime in lifetimes)
    assert len(lifetimes) > 1


def test_redirect_uris_can_be_registered_at_run_time(
    emulator: Emulator, http: requests.Session, browser: Browser
) -> None:
    uri = "http://127.0.0.1:5173/auth/callback"
    listed = http.get(_control(emulator, "spa/redirect-uris"))

    added = http.post(_control(emulator, "spa/redirect-uris"), json={"redirect_uris": [uri]})
    signed_in = browser.authorize(
        authorize_params(Pkce.generate(), redirect_uri=uri, login_hint="alice")
    )

    assert listed.status_code == 200
    assert listed.json()["redirect_uris"][:2] == list(DEFAULT_SPA_REDIRECT_URIS)
    assert added.status_code == 200
    assert uri in added.json()["redirect_uris"]
    assert uri in emulator.spa_redirect_uris
    assert signed_in.status_code == 302
    assert signed_in.headers["Location"].startswith(f"{uri}#code=")


@pytest.mark.parametrize(
    "body",
    [
        {"redirect_uris": ["http://example.com/"]},
        {"redirect_uris": ["https://x.test/#f"]},
        {"redirect_uris": ["javascript:alert(1)"]},
        {"redirect_uris": ["https://x.test/ a"]},
        {"redirect_uris": ["https://x.test/" + "a" * 300]},
        {"redirect_uris": []},
        {"redirect_uris": "https://x.test/"},
        ["https://x.test/"],
    ],
    ids=[
        "http-not-localhost",
        "fragment",
        "not-http",
        "space",
        "too-long",
        "empty",
        "not-a-list",
        "not-an-object",
    ],
)
def test_invalid_redirect_uris_are_refused(
    emulator: Emulator, http: requests.Session, body: object
) -> None:
    before = emulator.spa_redirect_uris

    response = http.post(_control(emulator, "spa/redirect-uris"), json=body)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "bad_request"
    assert emulator.spa_redirect_uris == before


def test_minted_tokens(emulator: Emulator, http: requests.Session) -> None:
    minted = http.post(_control(emulator, "tokens"), json={"user": "bob", "lifetime": 60})

    assert minted.status_code == 200
    assert minted.headers["Content-Type"] == "application/json"
    claims = claims_of(minted.json()["access_token"])
    assert claims["oid"] == USERS["bob"].id
    assert claims["aud"] == API_CLIENT_ID
    assert claims["exp"] - claims["iat"] == 60


@pytest.mark.parametrize(
    "body",
    [
        {"user": "mallory"},
        {},
        {"user": "bob", "mfa": "yes"},
        {"user": "bob", "scope": ""},
        {"user": "bob", "lifetime": True},
        {"user": "bob", "lifetime": 10**9},
    ],
)
def test_minting_refuses_bad_requests(
    emulator: Emulator, http: requests.Session, body: dict[str, object]
) -> None:
    response = http.post(_control(emulator, "tokens"), json=body)

    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["error"] == "bad_request"
    assert "access_token" not in response.json()
