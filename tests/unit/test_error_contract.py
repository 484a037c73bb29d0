"""Every row of the error contract: status, JSON body and WWW-Authenticate."""

from __future__ import annotations

import base64
import json
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient

from tests.unit.conftest import (
    ARM_URL,
    CLIENT_ID,
    METADATA_URL,
    TOKEN_URL,
    Signer,
    StubServices,
    TokenFactory,
    bearer,
    challenge_params,
)

REALM = f"api://{CLIENT_ID}"


def assert_error(response: Any, status: int, error: str, description: str | None = None) -> None:
    assert response.status_code == status
    assert response.headers["Content-Type"] == "application/json"
    assert response.json["error"] == error
    assert isinstance(response.json["error_description"], str)
    if description is not None:
        assert description in response.json["error_description"]


# --- the request carries no usable credentials --------------------------------------------

@pytest.mark.parametrize("headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"},
                                     {"Authorization": "Negotiate abc"}])
def test_missing_or_other_scheme_is_bare_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/api/me", headers=headers)
    assert_error(response, 401, "unauthorized")
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{REALM}"'


@pytest.mark.parametrize(("value", "description"), [
    ("Bearer", "empty"),
    ("Bearer    ", "empty"),
    ("Bearer abc def", "more than one token"),
    ("Bearer a.b.c,Bearer d.e.f", "more than one token"),
    ("Bearer abc$def", "token grammar"),
])
def test_malformed_header_is_400_invalid_request(
    client: FlaskClient, stubs: StubServices, value: str, description: str
) -> None:
    response = client.get("/api/me", headers={"Authorization": value})
    assert_error(response, 400, "invalid_request", description)
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["realm"] == REALM
    assert params["error"] == "invalid_request"
    assert description in params["error_description"]
    assert len(stubs.mock.calls) == 0


# --- token validation failures: 401 invalid_token -----------------------------------------

@pytest.mark.parametrize(("builder", "description"), [
    ("expired", "expired"),
    ("wrong_audience", "audience api://someone-else is not accepted"),
    ("graph_audience", "for Microsoft Graph"),
    ("v1", "v1 token; set accessTokenAcceptedVersion to 2"),
    ("other_tenant", "is not the expected issuer"),
    ("id_token", "not an access token"),
])
def test_invalid_tokens_are_401_invalid_token(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, builder: str,
    description: str
) -> None:
    response = client.get("/api/me", headers=bearer(getattr(tokens, builder)()))
    assert_error(response, 401, "invalid_token", description)
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["error"] == "invalid_token"
    assert description in params["error_description"]
    assert stubs.token_calls == 0


def test_foreign_key_is_401(client: FlaskClient, stubs: StubServices, tokens: TokenFactory,
                            foreign_signer: Signer) -> None:
    response = client.get("/api/me", headers=bearer(tokens.foreign_key(foreign_signer)))
    assert_error(response, 401, "invalid_token", "signature verification failed")
    assert challenge_params(response.headers["WWW-Authenticate"])["error"] == "invalid_token"
    assert stubs.token_calls == 0


# --- authorization: 403 insufficient_scope -------------------------------------------------

@pytest.mark.parametrize(("builder", "description"), [
    ("missing_scope", "lacks the access_as_user scope"),
    ("app_only", "app-only token"),
])
def test_scope_failures_are_403(client: FlaskClient, stubs: StubServices, tokens: TokenFactory,
                                builder: str, description: str) -> None:
    response = client.get("/api/me", headers=bearer(getattr(tokens, builder)()))
    assert_error(response, 403, "insufficient_scope", description)
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_scope"
    assert params["scope"] == "access_as_user"
    assert stubs.token_calls == 0


# --- OBO failures ---------------------------------------------------------------------------

def entra_error(code: int, error: str, **extra: Any) -> dict[str, Any]:
    return {"error": error, "error_description": f"AADSTS{code}: something.\r\nTrace ID: x",
            "error_codes": [code], "timestamp": "2026-11-21 10:00:00Z",
            "trace_id": "t", "correlation_id": "c", **extra}


def test_mfa_claims_challenge_is_401_insufficient_claims(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    claims = '{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}'
    stubs.obo_errors.append((400, entra_error(50076, "interaction_required",
                                              suberror="basic_action", claims=claims), {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 401, "interaction_required", "AADSTS50076")
    assert response.json["claims"] == claims
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_claims"
    assert base64.b64decode(params["claims"]).decode() == claims


def test_consent_missing_is_403_consent_required(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.obo_errors.append((400, entra_error(65001, "invalid_grant",
                                              suberror="consent_required"), {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 403, "consent_required", "admin consent")
    assert "knownClientApplications" in response.json["error_description"]
    assert "WWW-Authenticate" not in response.headers


def test_expired_assertion_is_401_invalid_token(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.obo_errors.append((400, entra_error(500133, "invalid_grant"), {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 401, "invalid_token", "AADSTS500133")
    assert challenge_params(response.headers["WWW-Authenticate"])["error"] == "invalid_token"


@pytest.mark.parametrize(("status", "headers", "retry_after"), [
    (429, {"Retry-After": "17"}, "17"),
    (503, {"Retry-After": "9"}, "9"),
    (500, {}, "5"),
])
def test_entra_throttling_or_failure_is_503(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, status: int,
    headers: dict[str, str], retry_after: str
) -> None:
    stubs.obo_errors.append((status, entra_error(90000, "temporarily_unavailable"), headers))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 503, "temporarily_unavailable")
    assert response.headers["Retry-After"] == retry_after
    assert "WWW-Authenticate" not in response.headers


def test_entra_unreachable_is_503(client: FlaskClient, stubs: StubServices,
                                  tokens: TokenFactory) -> None:
    stubs.mock.replace(responses.POST, TOKEN_URL, body=requests.ConnectionError("refused"))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 503, "temporarily_unavailable")
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("failure", [{"status": 503}, {"body": requests.ConnectionError("x")}])
def test_entra_metadata_down_at_the_first_exchange_is_503(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, failure: dict[str, Any]
) -> None:
    assert client.get("/readyz").status_code == 200  # keys loaded; MSAL not created yet
    stubs.mock.replace(responses.GET, METADATA_URL, **failure)
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 503, "temporarily_unavailable")
    assert response.headers["Retry-After"] == "5"
    assert stubs.token_calls == 0


# --- downstream failures ------------------------------------------------------------------

def test_downstream_4xx_is_passed_on(client: FlaskClient, stubs: StubServices,
                                     tokens: TokenFactory) -> None:
    error = {"code": "Request_ResourceNotFound", "message": "Resource does not exist."}
    stubs.graph_responses.append((404, {"error": error}, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 404, "downstream_error", "Request_ResourceNotFound")
    assert response.json["downstream"] == {"status": 404, "error": error}
    assert "graph-token" not in response.get_data(as_text=True)


def test_downstream_429_keeps_retry_after(client: FlaskClient, stubs: StubServices,
                                          tokens: TokenFactory) -> None:
    stubs.graph_responses.append((429, {"error": {"code": "TooManyRequests"}},
                                  {"Retry-After": "30"}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 429, "throttled")
    assert response.headers["Retry-After"] == "30"


def test_downstream_5xx_is_502(client: FlaskClient, stubs: StubServices,
                               tokens: TokenFactory) -> None:
    stubs.graph_responses.append((503, {"error": {"code": "serviceNotAvailable"}}, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 502, "bad_gateway", "graph answered HTTP 503")


@pytest.mark.parametrize(("exception", "status", "error"), [
    (requests.ConnectionError("reset"), 502, "bad_gateway"),
    (requests.ReadTimeout("slow"), 504, "gateway_timeout"),
    (requests.ConnectTimeout("slow"), 504, "gateway_timeout"),
])
def test_downstream_network_failures(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, exception: Exception,
    status: int, error: str
) -> None:
    stubs.mock.replace(responses.GET, f"{ARM_URL}/subscriptions", body=exception)
    response = client.get("/api/subscriptions", headers=bearer(tokens.valid()))
    assert_error(response, status, error, "arm")
    assert "WWW-Authenticate" not in response.headers


def test_downstream_non_json_is_502(client: FlaskClient, stubs: StubServices,
                                    tokens: TokenFactory) -> None:
    stubs.graph_responses.append((200, "<html>proxy error</html>", {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 502, "bad_gateway", "not a JSON object")


def test_unexpected_error_is_generic_500(
    app: Flask, client: FlaskClient, stubs: StubServices, tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(app.extensions["downstream"], "get", explode)
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_error(response, 500, "server_error")
    body = response.get_data(as_text=True)
    assert "internal detail" not in body and "Traceback" not in body
    assert json.loads(body) == {"error": "server_error",
                                "error_description": "the server could not handle the request"}

