"""Helpers shared by the emulator tests (builders and assertions, no fixtures)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jwt
import requests

from emulator import API_CLIENT_ID, API_CLIENT_SECRET, TENANT_ID, Emulator

REPO_ROOT = Path(__file__).resolve().parents[2]
GRAPH_USER_READ = "https://graph.microsoft.com/User.Read"
ARM_SCOPE = "https://management.azure.com/user_impersonation"


def trusting_session(emu: Emulator) -> requests.Session:
    session = requests.Session()
    # REQUESTS_CA_BUNDLE, if set, would override Session.verify; ignore the environment.
    session.trust_env = False
    session.verify = str(emu.ca_bundle)
    return session


def token_url(emu: Emulator, tenant: str = TENANT_ID) -> str:
    return f"{emu.base_url}/{tenant}/oauth2/v2.0/token"


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
