"""The end-session endpoint: the session cookie goes, then back to the app or a page."""

from __future__ import annotations

import pytest
import requests

from emulator import TENANT_ID, Emulator
from tests.emulator.support import (
    PAGE_SECURITY_HEADERS,
    SPA_REDIRECT_URI,
    Browser,
    Pkce,
    authorize_params,
    reply_fields,
)


def _logout_url(emulator: Emulator) -> str:
    return f"{emulator.base_url}/{TENANT_ID}/oauth2/v2.0/logout"


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_logout_ends_the_session_and_returns_to_a_registered_uri(
    emulator: Emulator, browser: Browser, method: str
) -> None:
    browser.sign_in("alice", authorize_params(Pkce.generate()))
    params = {"post_logout_redirect_uri": SPA_REDIRECT_URI, "state": "bye"}

    response = browser.session.request(
        method,
        _logout_url(emulator),
        allow_redirects=False,
        params=params if method == "GET" else None,
        data=params if method == "POST" else None,
    )

    assert response.status_code == 302
    assert response.headers["Location"] == f"{SPA_REDIRECT_URI}?state=bye"
    assert response.headers["Set-Cookie"].startswith("emulator_session=;")
    assert "Max-Age=0" in response.headers["Set-Cookie"]
    assert "emulator_session" not in browser.session.cookies
    silent = browser.authorize(authorize_params(Pkce.generate(), prompt="none"))
    assert reply_fields(silent.headers["Location"])["error"] == "login_required"
    assert emulator.counters()["logout"] == 1


def test_the_session_is_gone_even_if_the_cookie_is_replayed(
    emulator: Emulator, browser: Browser
) -> None:
    browser.sign_in("alice", authorize_params(Pkce.generate()))
    cookie = browser.session.cookies["emulator_session"]
    browser.session.get(_logout_url(emulator), allow_redirects=False)

    with requests.Session() as replay:
        replay.trust_env = False
        replay.verify = str(emulator.ca_bundle)
        replay.cookies.set("emulator_session", cookie)
        silent = replay.get(
            f"{emulator.authority}/oauth2/v2.0/authorize",
            params=authorize_params(Pkce.generate(), prompt="none"),
            allow_redirects=False,
        )

    assert silent.status_code == 302
    assert reply_fields(silent.headers["Location"])["error"] == "login_required"
    assert silent.headers["Cache-Control"] == "no-store, no-cache"


@pytest.mark.parametrize("target", [None, "https://evil.example/"])
def test_without_a_registered_uri_logout_shows_a_signed_out_page(
    emulator: Emulator, browser: Browser, target: str | None
) -> None:
    params = {"post_logout_redirect_uri": target} if target else {}

    response = browser.session.get(_logout_url(emulator), params=params, allow_redirects=False)

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    for header in PAGE_SECURITY_HEADERS:
        assert response.headers[header]
    assert 'id="signed-out"' in response.text
    assert "evil.example" not in response.text
    assert "Location" not in response.headers
