"""Downstream calls: CAE claims challenges, paging safety and body limits."""

from __future__ import annotations

import base64
import json

import responses
from flask.testing import FlaskClient

from app.downstream import MAX_BODY_BYTES
from tests.unit.conftest import (
    ARM_URL,
    StubServices,
    TokenFactory,
    bearer,
    challenge_params,
)

CAE_CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
CAE_HEADER = {
    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
    'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", '
    f'error="insufficient_claims", claims="{base64.b64encode(CAE_CLAIMS.encode()).decode()}"'
}


def test_cae_challenge_gets_one_new_exchange_and_one_retry(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.graph_responses.append((401, {"error": {"code": "InvalidAuthenticationToken"}},
                                  CAE_HEADER))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert response.json["token"] == "graph-token-2"
    assert stubs.token_calls == 2
    sent_claims = json.loads(stubs.issued[1]["form"]["claims"])
    assert sent_claims["access_token"]["nbf"] == {"essential": True, "value": "1700000000"}
    assert sent_claims["access_token"]["xms_cc"] == {"values": ["cp1"]}
    first_claims = json.loads(stubs.issued[0]["form"]["claims"])
    assert first_claims == {"access_token": {"xms_cc": {"values": ["cp1"]}}}


def test_arm_claims_challenge_worded_as_invalid_token_is_a_claims_challenge(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    # ARM's CAE challenge: error="invalid_token" with claims, not insufficient_claims.
    encoded = base64.b64encode(CAE_CLAIMS.encode()).decode()
    header = {"WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", '
              'error="invalid_token", error_description="User session has been revoked", '
              f'claims="{encoded}"'}
    stubs.graph_responses.append((401, {"error": {"code": "InvalidAuthenticationToken"}},
                                  header))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert stubs.token_calls == 2
    sent_claims = json.loads(stubs.issued[1]["form"]["claims"])
    assert sent_claims["access_token"]["nbf"] == {"essential": True, "value": "1700000000"}


def test_401_without_claims_is_not_retried(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    header = {"WWW-Authenticate": 'Bearer error="invalid_token", error_description="expired"'}
    stubs.graph_responses.append((401, {"error": {"code": "InvalidAuthenticationToken"}},
                                  header))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 401
    assert response.json["error"] == "downstream_error"
    assert stubs.token_calls == 1


def test_cae_retry_that_needs_the_user_returns_the_claims_challenge(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    token = tokens.valid()
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    stubs.graph_responses.append((401, {"error": {"code": "InvalidAuthenticationToken"}},
                                  CAE_HEADER))
    mfa = '{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}'
    stubs.obo_errors.append((400, {"error": "interaction_required", "error_codes": [50076],
                                   "error_description": "AADSTS50076: MFA", "claims": mfa}, {}))
    response = client.get("/api/me", headers=bearer(token))
    assert response.status_code == 401
    assert response.json["error"] == "interaction_required"
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_claims"
    assert base64.b64decode(params["claims"]).decode() == mfa


def test_cae_is_retried_only_once(client: FlaskClient, stubs: StubServices,
                                  tokens: TokenFactory) -> None:
    for _ in range(2):
        stubs.graph_responses.append((401, {"error": {"code": "InvalidAuthenticationToken",
                                                      "message": "revoked"}}, CAE_HEADER))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 401
    assert response.json["error"] == "downstream_error"
    assert response.json["downstream"]["error"]["code"] == "InvalidAuthenticationToken"
    assert stubs.token_calls == 2


def test_next_link_to_another_host_is_not_followed(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.mock.replace(responses.GET, f"{ARM_URL}/subscriptions", json={
        "value": [{"subscriptionId": "s1"}],
        "nextLink": "https://attacker.example/subscriptions?$skiptoken=1"})
    response = client.get("/api/subscriptions", headers=bearer(tokens.valid()))
    assert response.status_code == 502
    assert response.json == {"error": "bad_gateway",
                             "error_description": "arm returned a next link to another host"}
    assert stubs.calls_to("https://attacker.example") == 0


def test_huge_downstream_body_is_refused(client: FlaskClient, stubs: StubServices,
                                         tokens: TokenFactory) -> None:
    huge = json.dumps({"value": ["x" * 1024] * (MAX_BODY_BYTES // 1024 + 10)})
    stubs.graph_responses.append((200, huge, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 502
    assert response.json["error"] == "bad_gateway"
    assert f"over {MAX_BODY_BYTES} bytes" in response.json["error_description"]
