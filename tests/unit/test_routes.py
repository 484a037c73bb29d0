"""Happy paths of every route, and the token reuse that makes a middle tier cheap."""

from __future__ import annotations

import logging
from typing import Any

import pytest
import responses
from flask import Flask
from flask.testing import FlaskClient

from tests.support.contract import assert_refusal
from tests.support.stubs import GRAPH_URL, JWKS_URL, METADATA_URL, StubServices
from tests.support.tokens import ISSUER, TokenFactory, bearer


def test_me_returns_graph_profile_with_obo_token(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert response.json == {
        "displayName": "Alice Example",
        "mail": "alice@contoso.test",
        "token": "graph-token-1",
    }
    assert response.headers["Cache-Control"] == "no-store"
    assert response.headers["Content-Type"] == "application/json"
    exchange = stubs.issued[0]["form"]
    assert exchange["grant_type"] == "urn:ietf:params:oauth:grant-type:jwt-bearer"
    assert exchange["requested_token_use"] == "on_behalf_of"
    assert "https://graph.microsoft.com/.default" in exchange["scope"].split()
    assert exchange["client_secret"] == "unit-test-secret-value"


def test_users_forwards_odata_query(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    response = client.get(
        "/api/users?$top=5&$select=displayName,mail&$filter=startswith(displayName,'A')&x=1",
        headers=bearer(tokens.valid()),
    )
    assert response.status_code == 200
    assert response.json["value"] == [{"displayName": "Alice"}, {"displayName": "Bob"}]
    query = response.json["query"]
    assert "%24top=5" in query and "%24select=displayName%2Cmail" in query
    assert "%24filter=startswith%28displayName%2C%27A%27%29" in query
    assert "x=1" not in query


@pytest.mark.parametrize(
    "top",
    [
        "abc",
        "%C2%B2",
        "%D9%A3",
        "%EF%BC%95",
        "0",
        "1000",
        "+5",
        "-1",
        "5.0",
        "1e2",
        "0x10",
        "%205",
        "5%20",
        "",
        "0005",
        "9" * 5000,
    ],
)
def test_users_rejects_bad_top_without_outbound_call(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, top: str
) -> None:
    response = client.get(f"/api/users?$top={top}", headers=bearer(tokens.valid()))
    body = assert_refusal(response, 400, "invalid_request")
    assert body == {
        "error": "invalid_request",
        "error_description": "$top must be an integer from 1 to 999",
    }
    assert stubs.token_calls == 0


@pytest.mark.parametrize(("top", "sent"), [("1", "1"), ("999", "999"), ("007", "7")])
def test_users_passes_a_good_top_on(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, top: str, sent: str
) -> None:
    response = client.get(f"/api/users?$top={top}", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert f"%24top={sent}" in response.json["query"]


# --- paging through /api/users -------------------------------------------------------------

SKIPTOKEN = "RFNwdAIAAQAAACpVc2VyXzY4"
USERS_PAGE = {
    "@odata.context": f"{GRAPH_URL}/$metadata#users(displayName,mail)",
    "@odata.nextLink": f"{GRAPH_URL}/users?$top=2&$select=displayName,mail&$skiptoken={SKIPTOKEN}",
    "value": [{"displayName": "Alice"}, {"displayName": "Bob"}],
}


def test_users_next_link_is_the_apis_own_and_can_be_followed(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.graph_responses.append((200, USERS_PAGE, {}))
    token = bearer(tokens.valid())
    response = client.get("/api/users?$top=2&$select=displayName,mail", headers=token)
    assert response.status_code == 200
    assert response.json == {
        "value": [{"displayName": "Alice"}, {"displayName": "Bob"}],
        "@odata.nextLink": f"/api/users?$top=2&$select=displayName,mail&$skiptoken={SKIPTOKEN}",
    }
    following = client.get(response.json["@odata.nextLink"], headers=token)
    assert following.status_code == 200
    query = following.json["query"]  # what Graph was asked
    assert f"%24skiptoken={SKIPTOKEN}" in query
    assert "%24top=2" in query and "%24select=displayName%2Cmail" in query
    assert stubs.token_calls == 1


@pytest.mark.parametrize(
    "link",
    [
        f"https://attacker.example/v1.0/users?$skiptoken={SKIPTOKEN}",
        f"http://graph.microsoft.com/v1.0/users?$skiptoken={SKIPTOKEN}",
        f"https://graph.microsoft.com/beta/users?$skiptoken={SKIPTOKEN}",
        f"{GRAPH_URL}/groups?$skiptoken={SKIPTOKEN}",
        f"{GRAPH_URL}/users?$top=2",
        f"{GRAPH_URL}/users?$skiptoken=a&$skiptoken=b",
        f"{GRAPH_URL}/users?$skiptoken={'a' * 513}",
        f"{GRAPH_URL}/users?$skiptoken=a%20b",
        42,
    ],
)
def test_users_next_link_elsewhere_is_dropped(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    caplog: pytest.LogCaptureFixture,
    link: Any,
) -> None:
    stubs.graph_responses.append((200, {**USERS_PAGE, "@odata.nextLink": link}, {}))
    response = client.get("/api/users", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert response.json == {"value": USERS_PAGE["value"]}
    assert (
        f"dropped graph's @odata.nextLink: not a page of {GRAPH_URL}/users the API can pass on"
    ) in caplog.messages


def test_me_leaves_graphs_context_out(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    profile = {"@odata.context": f"{GRAPH_URL}/$metadata#users/$entity", "displayName": "A"}
    stubs.graph_responses.append((200, profile, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert response.json == {"displayName": "A"}


@pytest.mark.parametrize("skiptoken", ["", "a b", "a&b", "a%b", 'a"b', "\u00e9", "a" * 513])
def test_users_rejects_a_bad_skiptoken_without_outbound_call(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, skiptoken: str
) -> None:
    response = client.get(
        "/api/users", query_string={"$skiptoken": skiptoken}, headers=bearer(tokens.valid())
    )
    body = assert_refusal(response, 400, "invalid_request", description="$skiptoken must be")
    assert set(body) == {"error", "error_description"}
    assert stubs.token_calls == 0


@pytest.mark.parametrize("skiptoken", ["X'4453707402000100'", "a" * 512, "Ab0-._~()*!+/="])
def test_users_passes_a_good_skiptoken_on(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, skiptoken: str
) -> None:
    response = client.get(
        "/api/users", query_string={"$skiptoken": skiptoken}, headers=bearer(tokens.valid())
    )
    assert response.status_code == 200
    assert stubs.mock.calls[-1].request.params["$skiptoken"] == skiptoken


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("$top=5&$top=abc", "$top"),
        ("$top=abc&$top=5", "$top"),
        ("$top=5&$top=5", "$top"),
        ("%24top=5&$top=6", "$top"),
        ("$select=mail&$select=id", "$select"),
        ("$filter=a&$top=2&$filter=b", "$filter"),
        ("$skiptoken=a&$skiptoken=b", "$skiptoken"),
    ],
)
def test_users_refuses_a_repeated_option_whatever_the_order(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, query: str, name: str
) -> None:
    response = client.get(f"/api/users?{query}", headers=bearer(tokens.valid()))
    body = assert_refusal(response, 400, "invalid_request")
    assert body == {
        "error": "invalid_request",
        "error_description": f"{name} may be given only once",
    }
    assert stubs.token_calls == 0


@pytest.mark.parametrize(
    ("value", "status"),
    [
        ("a" * 1024, 200),
        ("\U0001f600" * 256, 200),
        ("\u00e9" * 512, 200),
        ("a" * 1025, 400),
        ("\U0001f600" * 256 + "a", 400),
        ("\u00e9" * 513, 400),
    ],
)
def test_users_caps_select_and_filter_in_utf8_bytes(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, value: str, status: int
) -> None:
    for name in ("$select", "$filter"):
        response = client.get(
            "/api/users", query_string={name: value}, headers=bearer(tokens.valid())
        )
        assert response.status_code == status, (name, len(value), response.json)
        if status == 400:
            assert response.json["error_description"] == (
                f"{name} must be non-blank and at most 1024 bytes in UTF-8"
            )


def test_there_is_no_static_files_route(app: Flask, client: FlaskClient) -> None:
    assert "static" not in {rule.endpoint for rule in app.url_map.iter_rules()}
    assert_refusal(client.get("/static/app.js"), 404, "not_found")


def test_subscriptions_follows_next_links(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    response = client.get("/api/subscriptions", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert [s["subscriptionId"] for s in response.json["value"]] == [f"sub-{n}" for n in range(5)]
    assert stubs.calls_to("https://management.azure.com/subscriptions") == 3
    assert "management.azure.com/user_impersonation" in stubs.issued[0]["form"]["scope"]
    assert stubs.token_calls == 1  # one exchange serves all three pages


def test_repeated_calls_by_one_user_make_one_exchange_and_one_key_fetch(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    token = tokens.valid()
    for _ in range(10):
        response = client.get("/api/me", headers=bearer(token))
        assert response.status_code == 200
        assert response.json["token"] == "graph-token-1"
    assert stubs.token_calls == 1
    assert stubs.jwks_calls == 1
    # Metadata once for the key cache and once for MSAL's client, keys once, one exchange.
    assert stubs.calls_to(METADATA_URL) == 2
    assert stubs.calls_to("https://login.microsoftonline.com") == 4
    # The ARM token is a different resource: one more exchange, then reuse again.
    for _ in range(3):
        assert client.get("/api/subscriptions", headers=bearer(token)).status_code == 200
    assert stubs.token_calls == 2


def test_each_user_gets_their_own_downstream_token(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    alice, bob = tokens.valid(), tokens.valid(name="Bob")
    assert client.get("/api/me", headers=bearer(alice)).json["token"] == "graph-token-1"
    assert client.get("/api/me", headers=bearer(bob)).json["token"] == "graph-token-2"
    assert client.get("/api/me", headers=bearer(alice)).json["token"] == "graph-token-1"
    assert stubs.token_calls == 2


def test_token_near_expiry_is_refreshed_not_reexchanged(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.expires_in = 60  # MSAL treats a token this close to expiry as stale
    token = tokens.valid()
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    assert client.get("/api/me", headers=bearer(token)).status_code == 200
    grants = [issued["form"]["grant_type"] for issued in stubs.issued]
    assert grants == ["urn:ietf:params:oauth:grant-type:jwt-bearer", "refresh_token"]


def test_healthz_makes_no_outbound_call(client: FlaskClient, stubs: StubServices) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert len(stubs.mock.calls) == 0


def test_readyz_loads_keys(client: FlaskClient, stubs: StubServices) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json == {"status": "ready", "issuer": ISSUER, "keys": 1}
    assert stubs.jwks_calls == 1


def test_unknown_route_is_json_404(client: FlaskClient) -> None:
    assert_refusal(client.get("/api/nothing"), 404, "not_found")


def test_wrong_method_is_json_405(client: FlaskClient) -> None:
    response = client.post("/api/me")
    assert_refusal(response, 405, "method_not_allowed")
    assert "GET" in response.headers["Allow"]


def test_readyz_is_503_with_retry_after_until_keys_load(
    client: FlaskClient, stubs: StubServices
) -> None:
    stubs.mock.replace(responses.GET, JWKS_URL, status=503)
    response = client.get("/readyz")
    assert_refusal(
        response, 503, "temporarily_unavailable", description="signing keys", retry_after=10
    )  # the cold-start retry interval


def test_a_cold_readyz_logs_each_load_attempt_not_each_probe(
    client: FlaskClient, stubs: StubServices, caplog: pytest.LogCaptureFixture
) -> None:
    stubs.mock.replace(responses.GET, JWKS_URL, status=503)
    for _ in range(5):
        assert client.get("/readyz").status_code == 503
    assert stubs.jwks_calls == 1  # one load attempt within the cold-retry interval
    warnings = [
        record.getMessage() for record in caplog.records if record.levelno >= logging.WARNING
    ]
    assert warnings == [
        f"signing key refresh failed, keeping no keys: ValueError: {JWKS_URL} answered HTTP 503"
    ]
