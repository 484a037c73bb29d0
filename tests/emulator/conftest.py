"""Emulator fixtures: one HTTPS emulator per session on loopback, real MSAL clients against it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests

from emulator import API_CLIENT_ID, API_CLIENT_SECRET, TENANT_ID, Emulator
from tests.emulator.support import AppFactory, Browser, trusting_session


@pytest.fixture(scope="session")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path_factory.mktemp("emulator-state")) as emu:
        yield emu


@pytest.fixture(autouse=True)
def clean_emulator(emulator: Emulator) -> Iterator[None]:
    """Every test starts with no faults, zero counters and Entra's token lifetimes."""
    emulator.clear_faults()
    emulator.reset_counters()
    emulator.set_token_lifetime(None)
    yield
    emulator.clear_faults()


@pytest.fixture
def fresh_emulator(tmp_path: Path) -> Iterator[Emulator]:
    """A private emulator, for tests that change keys or restart it."""
    with Emulator(state_dir=tmp_path / "state") as emu:
        yield emu


@pytest.fixture
def http(emulator: Emulator) -> Iterator[requests.Session]:
    with trusting_session(emulator) as session:
        yield session


@pytest.fixture
def browser(emulator: Emulator) -> Iterator[Browser]:
    """A fresh browser profile (no session cookie) for the sign-in pages."""
    with Browser(emulator) as fresh:
        yield fresh


@pytest.fixture
def make_api_app(emulator: Emulator, http: requests.Session) -> AppFactory:
    """The middle-tier API as MSAL sees it (fresh app, so a fresh token and HTTP cache)."""

    def make(secret: str = API_CLIENT_SECRET, **kwargs: Any) -> msal.ConfidentialClientApplication:
        return msal.ConfidentialClientApplication(
            API_CLIENT_ID,
            client_credential=secret,
            authority=emulator.authority,
            instance_discovery=False,
            http_client=http,
            **kwargs,
        )

    return make


@pytest.fixture
def api_app(make_api_app: AppFactory) -> msal.ConfidentialClientApplication:
    return make_api_app()


@pytest.fixture
def jwks_verify(emulator: Emulator, http: requests.Session) -> Callable[..., dict[str, Any]]:
    """Verify a JWT against the emulator's published JWKS, as a resource server would."""

    def verify(token: str, audience: str, tenant: str = TENANT_ID) -> dict[str, Any]:
        keys = http.get(f"{emulator.base_url}/{tenant}/discovery/v2.0/keys").json()["keys"]
        kid = jwt.get_unverified_header(token)["kid"]
        jwk = jwt.PyJWK(next(k for k in keys if k["kid"] == kid))
        return dict(
            jwt.decode(
                token,
                jwk.key,
                algorithms=["RS256"],
                audience=audience,
                issuer=f"{emulator.base_url}/{tenant}/v2.0",
            )
        )

    return verify
