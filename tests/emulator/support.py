"""Helpers shared by the emulator tests: request builders, a minimal browser for the sign-in
pages, and assertions on Entra's shapes. No fixtures here (see conftest.py)."""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import jwt
import msal
import requests

from emulator import (
    API_APP_ID_URI,
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    SPA_CLIENT_ID,
    TENANT_ID,
    Emulator,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
# Makes the middle-tier API as MSAL sees it, with the given client credential (conftest).
AppFactory = Callable[..., msal.ConfidentialClientApplication]
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"
ARM_SCOPE = "https://management.azure.com/user_impersonation"
API_USER_SCOPE = f"{API_APP_ID_URI}/access_as_user"
SPA_ORIGIN = "http://localhost:3000"
SPA_REDIRECT_URI = "http://localhost:3000/"
SPA_SCOPES = f"{API_USER_SCOPE} openid profile offline_access"
PAGE_SECURITY_HEADERS = ("Content-Security-Policy", "X-Frame-Options", "X-Content-Type-Options")


def trusting_session(emu: Emulator) -> requests.Session:
    session = requests.Session()
    # REQUESTS_CA_BUNDLE, if set, would override Session.verify; ignore the environment.
    session.trust_env = False
    session.verify = str(emu.ca_bundle)
    return session


def token_url(emu: Emulator, tenant: str = TENANT_ID) -> str:
    return f"{emu.base_url}/{tenant}/oauth2/v2.0/token"


def authorize_url(emu: Emulator, tenant: str = TENANT_ID) -> str:
    return f"{emu.base_url}/{tenant}/oauth2/v2.0/authorize"


def obo_form(assertion: str, scope: str = GRAPH_USER_READ, **extra: str) -> dict[str, str]:
    return {
        "grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "requested_token_use": "on_behalf_of",
        "client_id": API_CLIENT_ID,
        "client_secret": API_CLIENT_SECRET,
        "assertion": assertion,
        "scope": f"{scope} openid profile offline_access",
        **extra,
    }


def claims_of(token: str) -> dict[str, Any]:
    return dict(jwt.decode(token, options={"verify_signature": False}))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def assert_entra_error(body: dict[str, Any], error: str, code: int) -> None:
    """Entra's error JSON: the AADSTS code leads the description, ids and time follow."""
    assert body["error"] == error
    assert body["error_codes"] == [code]
    assert body["error_description"].startswith(f"AADSTS{code}: ")
    for part in ("\r\nTrace ID: ", "\r\nCorrelation ID: ", "\r\nTimestamp: "):
        assert part in body["error_description"]
    assert {"timestamp", "trace_id", "correlation_id", "error_uri"} <= body.keys()
    assert body["error_uri"].endswith(f"error?code={code}")


# -- PKCE and the authorize endpoint -------------------------------------------------------


@dataclass(frozen=True)
class Pkce:
    verifier: str
    challenge: str

    @classmethod
    def generate(cls) -> Pkce:
        verifier = secrets.token_urlsafe(48)
        digest = hashlib.sha256(verifier.encode()).digest()
        return cls(verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode())


def authorize_params(pkce: Pkce, **overrides: str | None) -> dict[str, str]:
    """An authorize request as MSAL.js (msal-browser) sends it; None drops a parameter."""
    params: dict[str, str | None] = {
        "client_id": SPA_CLIENT_ID,
        "scope": SPA_SCOPES,
        "redirect_uri": SPA_REDIRECT_URI,
        "client-request-id": "0f0f0f0f-3333-4000-8000-000000000000",
        "response_mode": "fragment",
        "response_type": "code",
        "client_info": "1",
        "nonce": secrets.token_urlsafe(12),
        "state": secrets.token_urlsafe(12),
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        **overrides,
    }
    return {k: v for k, v in params.items() if v is not None}


def reply_fields(location: str) -> dict[str, str]:
    """What the authorize endpoint sent the app: the fragment's or the query's fields."""
    parts = urlsplit(location)
    return dict(parse_qsl(parts.fragment or parts.query, keep_blank_values=True))


class _FormReader(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.action = ""
        self.fields: dict[str, str] = {}
        self.buttons: dict[str, dict[str, str]] = {}

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "form" and not self.action:
            self.action = values.get("action", "")
        elif tag == "input" and values.get("type") == "hidden":
            self.fields[values["name"]] = values.get("value", "")
        elif tag == "button" and "id" in values:
            self.buttons[values["id"]] = values


@dataclass
class Page:
    """A sign-in page as the browser got it, with what its forms would post."""

    response: requests.Response
    action: str = ""
    fields: dict[str, str] = field(default_factory=dict)
    buttons: dict[str, dict[str, str]] = field(default_factory=dict)

    @classmethod
    def of(cls, response: requests.Response) -> Page:
        reader = _FormReader()
        reader.feed(response.text)
        return cls(response, reader.action, reader.fields, reader.buttons)


class Browser:
    """Just enough of a browser for the sign-in pages: a cookie jar, forms, no redirects
    followed (the test reads where the emulator sends the app)."""

    def __init__(self, emu: Emulator) -> None:
        self.emu = emu
        self.session = trusting_session(emu)

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc: object) -> None:
        self.session.close()

    def authorize(self, params: dict[str, str], tenant: str = TENANT_ID) -> requests.Response:
        return self.session.get(
            authorize_url(self.emu, tenant), params=params, allow_redirects=False
        )

    def click(self, page: Page, button_id: str) -> requests.Response:
        """Submit the page's form with the button `button_id`, as the browser would."""
        button = page.buttons[button_id]
        form = {**page.fields, button["name"]: button["value"]}
        return self.session.post(
            f"{self.emu.base_url}{page.action}",
            data=form,
            allow_redirects=False,
            headers={"Origin": self.emu.base_url},
        )

    def sign_in(self, user: str, params: dict[str, str]) -> dict[str, str]:
        """Pick `user` if asked, approve MFA if asked; the fields sent back to the app."""
        response = self.authorize(params)
        for button in (f"user-{user}", "mfa-approve"):
            page = Page.of(response)
            if response.status_code == 200 and button in page.buttons:
                response = self.click(page, button)
        assert response.status_code == 302, response.text
        return reply_fields(response.headers["Location"])


def redeem_code(
    http: requests.Session,
    emu: Emulator,
    code: str,
    pkce: Pkce,
    *,
    origin: str | None = SPA_ORIGIN,
    **extra: str,
) -> requests.Response:
    """The SPA's code redemption, as MSAL.js posts it from the browser."""
    form = {
        "client_id": SPA_CLIENT_ID,
        "redirect_uri": SPA_REDIRECT_URI,
        "scope": SPA_SCOPES,
        "code": code,
        "code_verifier": pkce.verifier,
        "grant_type": "authorization_code",
        "client_info": "1",
        **extra,
    }
    headers = {"Origin": origin} if origin else {}
    return http.post(token_url(emu), data=form, headers=headers)


def spa_refresh(
    http: requests.Session,
    emu: Emulator,
    refresh_token: str,
    *,
    origin: str | None = SPA_ORIGIN,
    **extra: str,
) -> requests.Response:
    form = {
        "client_id": SPA_CLIENT_ID,
        "grant_type": "refresh_token",
        "scope": SPA_SCOPES,
        "refresh_token": refresh_token,
        "client_info": "1",
        **extra,
    }
    headers = {"Origin": origin} if origin else {}
    return http.post(token_url(emu), data=form, headers=headers)
