"""Downstream calls: a 401 gets one new token and one retry (CAE or not); paging safety and
body limits."""

from __future__ import annotations

import base64
import json
from typing import Any

import jwt
import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from app.auth import Caller
from app.downstream import MAX_BODY_BYTES
from tests.support.contract import assert_refusal, challenge_params
from tests.support.stubs import ARM_URL, StubServices
from tests.support.tokens import TokenFactory, bearer

CAE_CLAIMS = '{"access_token":{"nbf":{"essential":true,"value":"1700000000"}}}'
CAE_HEADER = {
    "WWW-Authenticate": 'Bearer realm="", authorization_uri="https://login.microsoftonline.com/'
    'common/oauth2/authorize", client_id="00000003-0000-0000-c000-000000000000", '
    f'error="insufficient_claims", claims="{base64.b64encode(CAE_CLAIMS.encode()).decode()}"'
}


def test_cae_challenge_gets_one_new_exchange_and_one_retry(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.graph_responses.append(
        (401, {"error": {"code": "InvalidAuthenticationToken"}}, CAE_HEADER)
    )
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
    header = {
        "WWW-Authenticate": 'Bearer authorization_uri="https://login.windows.net/", '
        'error="invalid_token", error_description="User session has been revoked", '
        f'claims="{encoded}"'
    }
    stubs.graph_responses.append((401, {"error": {"code": "InvalidAuthenticationToken"}}, header))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert stubs.token_calls == 2
    sent_claims = json.loads(stubs.issued[1]["form"]["claims"])
    assert sent_claims["access_token"]["nbf"] == {"essential": True, "value": "1700000000"}


GRANT_OBO = "urn:ietf:params:oauth:grant-type:jwt-bearer"
REFUSED = {
    "error": {
        "code": "InvalidAuthenticationToken",
        "message": "Access token validation failure. Invalid audience.",
    }
}
NO_CLAIMS = {
    "WWW-Authenticate": 'Bearer realm="", error="invalid_token", '
    'error_description="Invalid audience"'
}
ROUTES = {"graph": "/api/me", "arm": "/api/subscriptions"}


def queue(stubs: StubServices, api: str) -> list[tuple[int, Any, dict[str, str]]]:
    return stubs.graph_responses if api == "graph" else stubs.arm_responses


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_401_without_claims_gets_a_fresh_exchange_and_one_retry(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, api: str
) -> None:
    token = tokens.valid()
    other = "arm" if api == "graph" else "graph"
    for route in (ROUTES[api], ROUTES[other]):
        assert client.get(route, headers=bearer(token)).status_code == 200
    queue(stubs, api).append((401, REFUSED, NO_CLAIMS))

    response = client.get(ROUTES[api], headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert stubs.token_calls == 3
    assert stubs.issued[2]["form"]["grant_type"] == GRANT_OBO  # an exchange, not a refresh
    assert stubs.issued[2]["token"] == f"{api}-token-3"
    # Only that API's token was dropped: both are served from the cache from now on.
    for route in (ROUTES[api], ROUTES[other]):
        assert client.get(route, headers=bearer(token)).status_code == 200
    assert stubs.token_calls == 3


@pytest.mark.parametrize("api", ["graph", "arm"])
def test_a_second_401_is_502_with_the_downstream_error(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, api: str
) -> None:
    queue(stubs, api).extend([(401, REFUSED, NO_CLAIMS), (401, REFUSED, NO_CLAIMS)])
    response = client.get(ROUTES[api], headers=bearer(tokens.valid()))
    body = assert_refusal(
        response, 502, "bad_gateway", description=f"{api} refused a newly acquired token (HTTP 401)"
    )
    assert body["downstream"] == {"status": 401, "error": REFUSED["error"]}
    assert stubs.token_calls == 2


def test_a_refused_token_that_entra_will_not_replace_is_entras_answer(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    token = tokens.valid()
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    stubs.graph_responses.append((401, REFUSED, NO_CLAIMS))
    stubs.obo_errors.append(
        (
            400,
            {
                "error": "interaction_required",
                "error_codes": [50076],
                "error_description": "AADSTS50076: MFA",
                "suberror": "basic_action",
            },
            {},
        )
    )
    response = client.get("/api/me", headers=bearer(token))
    assert_refusal(
        response,
        401,
        "interaction_required",
        description="AADSTS50076",
        challenge="insufficient_user_authentication",
    )


def test_cae_retry_that_needs_the_user_returns_the_claims_challenge(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    token = tokens.valid()
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    stubs.graph_responses.append(
        (401, {"error": {"code": "InvalidAuthenticationToken"}}, CAE_HEADER)
    )
    mfa = '{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}'
    stubs.obo_errors.append(
        (
            400,
            {
                "error": "interaction_required",
                "error_codes": [50076],
                "error_description": "AADSTS50076: MFA",
                "claims": mfa,
            },
            {},
        )
    )
    response = client.get("/api/me", headers=bearer(token))
    body = assert_refusal(
        response,
        401,
        "interaction_required",
        description="AADSTS50076",
        challenge="insufficient_claims",
    )
    assert body["claims"] == mfa
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert base64.b64decode(params["claims"]).decode() == mfa


def test_cae_is_retried_only_once(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    for _ in range(2):
        stubs.graph_responses.append(
            (
                401,
                {"error": {"code": "InvalidAuthenticationToken", "message": "revoked"}},
                CAE_HEADER,
            )
        )
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    body = assert_refusal(response, 502, "bad_gateway", description="graph refused")
    assert body["downstream"] == {
        "status": 401,
        "error": {"code": "InvalidAuthenticationToken", "message": "revoked"},
    }
    assert stubs.token_calls == 2


def test_cae_retry_that_entra_refuses_without_claims_needs_the_user(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    token = tokens.valid()
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    stubs.graph_responses.append(
        (401, {"error": {"code": "InvalidAuthenticationToken"}}, CAE_HEADER)
    )
    stubs.obo_errors.append(
        (
            400,
            {
                "error": "invalid_grant",
                "error_codes": [50076],
                "error_description": "AADSTS50076: MFA",
                "suberror": "basic_action",
            },
            {},
        )
    )
    response = client.get("/api/me", headers=bearer(token))
    assert_refusal(
        response,
        401,
        "interaction_required",
        description="AADSTS50076",
        challenge="insufficient_user_authentication",
    )
    assert stubs.calls_to("https://graph.microsoft.com") == 2  # no retry without a token


def test_next_link_to_another_host_is_not_followed(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.mock.replace(
        responses.GET,
        f"{ARM_URL}/subscriptions",
        json={
            "value": [{"subscriptionId": "s1"}],
            "nextLink": "https://attacker.example/subscriptions?$skiptoken=1",
        },
    )
    response = client.get("/api/subscriptions", headers=bearer(tokens.valid()))
    body = assert_refusal(response, 502, "bad_gateway")
    assert body == {
        "error": "bad_gateway",
        "error_description": "arm returned a next link to another host",
    }
    assert stubs.calls_to("https://attacker.example") == 0


def test_huge_downstream_body_is_refused(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    huge = json.dumps({"value": ["x" * 1024] * (MAX_BODY_BYTES // 1024 + 10)})
    stubs.graph_responses.append((200, huge, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(
        response,
        502,
        "bad_gateway",
        description=f"graph answered with a body over {MAX_BODY_BYTES} bytes",
    )


def test_the_client_is_given_its_caller(
    app: Flask, stubs: StubServices, tokens: TokenFactory
) -> None:
    token = tokens.valid()
    claims = jwt.decode(token, options={"verify_signature": False})
    with app.app_context():  # no request, so nothing in flask.g to reach for
        profile = app.extensions["downstream"].get(Caller(token, claims), "graph", "/me")
    assert profile["token"] == "graph-token-1"
    assert stubs.issued[0]["form"]["assertion"] == token


@pytest.mark.parametrize("length", ["²", "-1", "1e3", "9" * 5000])
def test_a_malformed_content_length_is_ignored_and_the_body_still_bounded(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, length: str
) -> None:
    stubs.graph_responses.append((200, {"displayName": "Alice"}, {"Content-Length": length}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert response.json == {"displayName": "Alice"}
