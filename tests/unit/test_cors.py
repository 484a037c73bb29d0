"""CORS for browser frontends: off by default, exact origins, refusals readable by the SPA."""

from __future__ import annotations

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.config import ConfigError, load_settings

SPA = "http://localhost:3000"
ENV = {
    "AZURE_TENANT_ID": "9188040d-6c67-4c5b-b112-36a304b66dad",
    "AZURE_CLIENT_ID": "6e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
    "AZURE_CLIENT_SECRET": "unit-test-secret-value",
}
PREFLIGHT = {
    "Access-Control-Request-Method": "GET",
    "Access-Control-Request-Headers": "authorization, x-request-id",
}


def _client(origins: str | None) -> FlaskClient:
    env = dict(ENV) if origins is None else {**ENV, "CORS_ALLOWED_ORIGINS": origins}
    return create_app(env).test_client()


def test_preflight_from_an_allowed_origin_succeeds_without_a_token() -> None:
    response = _client(SPA).options("/api/me", headers={"Origin": SPA, **PREFLIGHT})
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    assert set(response.headers["Access-Control-Allow-Methods"].split(", ")) >= {"GET"}
    allowed_headers = response.headers["Access-Control-Allow-Headers"].split(",")
    allowed = {name.strip().lower() for name in allowed_headers}
    assert allowed == {"authorization", "x-request-id"}
    assert response.headers["Access-Control-Max-Age"] == "600"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert "Origin" in response.headers["Vary"]
    assert "WWW-Authenticate" not in response.headers


@pytest.mark.parametrize("token_header", [None, "Bearer not-a-jwt"])
def test_refusals_carry_cors_headers_so_the_spa_can_read_the_challenge(
    token_header: str | None,
) -> None:
    headers = {"Origin": SPA}
    if token_header:
        headers["Authorization"] = token_header
    response = _client(SPA).get("/api/me", headers=headers)
    assert response.status_code == 401
    assert response.json is not None
    assert response.json["error"] in {"unauthorized", "invalid_token"}
    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert response.headers["Access-Control-Allow-Origin"] == SPA
    exposed = {h.strip() for h in response.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"WWW-Authenticate", "Retry-After"} <= exposed
    assert "Origin" in response.headers["Vary"]


def test_a_disallowed_origin_gets_no_allow_origin() -> None:
    client = _client(SPA)
    preflight = client.options("/api/me", headers={"Origin": "http://evil.test", **PREFLIGHT})
    assert preflight.status_code == 200
    assert "Access-Control-Allow-Origin" not in preflight.headers
    response = client.get("/api/me", headers={"Origin": "http://localhost:3001"})
    assert response.status_code == 401
    assert response.json is not None and response.json["error"] == "unauthorized"
    assert "Access-Control-Allow-Origin" not in response.headers
    assert "Origin" in response.headers["Vary"]


def test_cors_is_off_by_default() -> None:
    response = _client(None).get("/healthz", headers={"Origin": SPA})
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert not [name for name in response.headers.keys() if name.startswith("Access-Control-")]


def test_wildcard_only_when_configured_alone() -> None:
    response = _client("*").get("/healthz", headers={"Origin": "http://anything.test"})
    assert response.status_code == 200
    assert response.headers["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response.headers


@pytest.mark.parametrize(
    "value",
    [
        "*, http://localhost:3000",
        "http://localhost:3000/",
        "localhost:3000",
        "http://localhost:3000/app",
        "ftp://x.test",
        "http://a.test,,http://b.test",
        "http://local host:3000",
    ],
)
def test_malformed_origins_stop_start_up_naming_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="CORS_ALLOWED_ORIGINS"):
        load_settings({**ENV, "CORS_ALLOWED_ORIGINS": value})
