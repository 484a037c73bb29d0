"""Outbound calls end by HTTP_TOTAL_TIMEOUT, body included: against a real socket that trickles.

Each trickle below would take 5 s to finish, with every piece well within the read timeout;
the total timeout is 1 s. The answers are checked, not the time taken.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from typing import Any

import pytest
import requests
import responses
from flask.testing import FlaskClient

from app import create_app
from app.http import BodyTooLarge, TimeoutSession, TotalTimeout
from tests.support.contract import assert_refusal
from tests.support.stubs import (
    BASE_ENV,
    LoopbackServer,
    Route,
    StubServices,
    json_route,
    metadata_document,
)
from tests.support.tokens import TENANT_ID, Signer, TokenFactory, bearer

TRICKLE = (2, 0.25)  # 2 bytes every 0.25 s
PROFILE = {"displayName": "Alice Example", "mail": "alice@contoso.test"}  # 50 bytes: 6 s


def api_client(**env: str) -> FlaskClient:
    return create_app(
        {**BASE_ENV, "HTTP_TOTAL_TIMEOUT": "1", "HTTP_READ_TIMEOUT": "10", **env}
    ).test_client()


def serve_tenant(server: LoopbackServer, signer: Signer, **routes: Route) -> None:
    """The tenant's metadata and keys from ``server``, plus ``routes`` by endpoint name."""
    base = f"/{TENANT_ID}"
    server.routes[f"{base}/v2.0/.well-known/openid-configuration"] = json_route(
        metadata_document(base=server.url)
    )
    server.routes[f"{base}/discovery/v2.0/keys"] = routes.get(
        "keys", json_route({"keys": [signer.jwk()]})
    )
    if "token" in routes:
        server.routes[f"{base}/oauth2/v2.0/token"] = routes["token"]


def test_a_prompt_answer_over_a_real_socket_is_served(
    loopback: LoopbackServer, stubs: StubServices, tokens: TokenFactory
) -> None:
    loopback.routes["/v1.0/me"] = json_route(PROFILE)
    client = api_client(GRAPH_URL=f"{loopback.url}/v1.0")
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200
    assert response.json == PROFILE


def test_a_trickling_graph_answer_is_504(
    loopback: LoopbackServer, stubs: StubServices, tokens: TokenFactory
) -> None:
    loopback.routes["/v1.0/me"] = json_route(PROFILE, trickle=TRICKLE)
    client = api_client(GRAPH_URL=f"{loopback.url}/v1.0")
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 504, "gateway_timeout", description="graph did not answer in time")
    assert loopback.requests == ["/v1.0/me"]


def test_a_trickling_arm_answer_is_504(
    loopback: LoopbackServer, stubs: StubServices, tokens: TokenFactory
) -> None:
    loopback.routes["/subscriptions"] = json_route(
        {"value": [{"subscriptionId": "s1"}]}, trickle=TRICKLE
    )
    client = api_client(ARM_URL=loopback.url)
    response = client.get("/api/subscriptions", headers=bearer(tokens.valid()))
    assert_refusal(response, 504, "gateway_timeout", description="arm did not answer in time")


def test_a_trickling_token_endpoint_is_503(
    loopback: LoopbackServer, signer: Signer, tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    answer = json.dumps({"token_type": "Bearer", "access_token": "never-complete"}).encode()
    serve_tenant(loopback, signer, token=Route(answer, trickle=TRICKLE))
    client = api_client(AZURE_AUTHORITY_HOST=loopback.url)
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 503, "temporarily_unavailable", retry_after=5)
    assert f"/{TENANT_ID}/oauth2/v2.0/token" in loopback.requests
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == "app.auth.obo" and record.levelno == logging.WARNING
    ]
    assert warnings == [
        "token request for graph failed: TotalTimeout: no complete response within 1 s"
    ]


def test_a_trickling_key_endpoint_is_503(
    loopback: LoopbackServer, signer: Signer, tokens: TokenFactory
) -> None:
    keys = json.dumps({"keys": [signer.jwk()]}).encode()
    serve_tenant(loopback, signer, keys=Route(keys, trickle=TRICKLE))
    client = api_client(AZURE_AUTHORITY_HOST=loopback.url)
    assert_refusal(
        client.get("/readyz"),
        503,
        "temporarily_unavailable",
        description="signing keys",
        retry_after=range(1, 11),
    )
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(
        response,
        503,
        "temporarily_unavailable",
        description="signing keys",
        retry_after=range(1, 11),
    )


def test_the_session_raises_total_timeout_and_refuses_large_bodies(
    loopback: LoopbackServer,
) -> None:
    loopback.routes["/slow"] = json_route(PROFILE, trickle=TRICKLE)
    loopback.routes["/large"] = Route(b"x" * 2048)
    session = TimeoutSession((5, 10), total=1, max_body=1024)
    with pytest.raises(TotalTimeout):
        session.get(f"{loopback.url}/slow")
    with pytest.raises(BodyTooLarge):
        session.get(f"{loopback.url}/large")
    loopback.routes["/small"] = Route(b'{"ok": true}')
    response = session.get(f"{loopback.url}/small")
    assert response.json() == {"ok": True}
    assert b"".join(response.iter_content(4)) == b'{"ok": true}'


# --- the environment, read when the session is built --------------------------------------------


def test_the_ca_bundle_from_the_environment_is_used(
    loopback: LoopbackServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The loopback fixture sets REQUESTS_CA_BUNDLE to its CA, as the e2e stack does: only
    # that bundle lets the session trust the loopback server.
    loopback.routes["/small"] = Route(b'{"ok": true}')
    session = TimeoutSession((5, 10), total=5, max_body=1024)
    assert session.verify == os.environ["REQUESTS_CA_BUNDLE"]
    assert session.trust_env is False  # so requests reads neither it nor ~/.netrc per call
    assert session.get(f"{loopback.url}/small").json() == {"ok": True}
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    monkeypatch.delenv("CURL_CA_BUNDLE", raising=False)
    assert TimeoutSession((5, 10), total=5, max_body=1024).verify is True  # the system CAs


def test_curl_ca_bundle_is_the_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REQUESTS_CA_BUNDLE", raising=False)
    monkeypatch.setenv("CURL_CA_BUNDLE", "/etc/curl-bundle.pem")
    assert TimeoutSession((5, 10), total=5, max_body=1024).verify == "/etc/curl-bundle.pem"


def test_calls_read_neither_the_environment_nor_netrc(monkeypatch: pytest.MonkeyPatch) -> None:
    reads = {"netrc": 0, "environment": 0}

    def counting(name: str, real: Callable[..., Any]) -> Callable[..., Any]:
        def count(*args: Any, **kwargs: Any) -> Any:
            reads[name] += 1
            return real(*args, **kwargs)

        return count

    monkeypatch.setattr(
        requests.sessions, "get_netrc_auth", counting("netrc", requests.sessions.get_netrc_auth)
    )
    monkeypatch.setattr(
        requests.sessions,
        "get_environ_proxies",
        counting("environment", requests.sessions.get_environ_proxies),
    )
    monkeypatch.setattr(
        requests.sessions,
        "resolve_proxies",
        counting("environment", requests.sessions.resolve_proxies),
    )
    session = TimeoutSession((5, 10), total=5, max_body=1024)
    with responses.RequestsMock() as mock:
        mock.get("https://graph.microsoft.com/v1.0/me", json={"ok": True})
        for _ in range(3):
            assert session.get("https://graph.microsoft.com/v1.0/me").json() == {"ok": True}
    assert reads == {"netrc": 0, "environment": 0}


def test_proxy_variables_are_honoured_no_proxy_included(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:3128")
    monkeypatch.setenv("NO_PROXY", "localhost,.microsoftonline.com")
    session = TimeoutSession((5, 10), total=5, max_body=1024)
    with responses.RequestsMock() as mock:
        for url in (
            "https://graph.microsoft.com/v1.0/me",
            "https://login.microsoftonline.com/tenant/v2.0/keys",
        ):
            mock.get(url, json={})
            session.get(url)
        sent = [call.request.req_kwargs["proxies"] for call in mock.calls]
    assert sent[0]["https"] == "http://proxy.example:3128"
    assert "https" not in sent[1]
