"""Request ids: taken when safe, else made; on every response; passed to Graph and Entra ID."""

from __future__ import annotations

import logging
import re

import pytest
from flask import Flask
from flask.testing import FlaskClient

from app.observability.request_id import RequestIdFilter, accept_request_id
from app.observability.request_record import begin_request, end_request
from tests.support.contract import assert_refusal
from tests.support.stubs import GRAPH_URL, METADATA_URL, TOKEN_URL, StubServices
from tests.support.tokens import TokenFactory, bearer

GENERATED = re.compile(r"[0-9a-f]{32}")  # a UUID4 in hex


@pytest.mark.parametrize(
    "value",
    [
        "a",
        "abc-123",
        "req.2025-01-01T10:00:00Z",
        "0f3c9a1e-5d7b-4e2a-9c11-7a5e4d3c2b1a",
        "A_b.c:d-e",
        "x" * 128,
    ],
)
def test_a_safe_request_id_is_taken_as_it_is(value: str) -> None:
    assert accept_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "x" * 129,
        "has space",
        "tab\there",
        "semi;colon",
        "slash/ed",
        'quote"d',
        "é",
        "٣",
        "a,b",
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0",  # token-shaped: never logged
    ],
)
def test_an_unsafe_or_missing_request_id_is_replaced(value: str | None) -> None:
    replaced = accept_request_id(value)
    assert GENERATED.fullmatch(replaced) and replaced != value


def test_generated_ids_differ() -> None:
    assert accept_request_id(None) != accept_request_id(None)


def test_the_response_carries_the_clients_request_id(client: FlaskClient) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": "client-id-1"})
    assert response.status_code == 200
    assert response.json == {"status": "ok"}
    assert response.headers["X-Request-ID"] == "client-id-1"


@pytest.mark.parametrize("value", ["x" * 129, "two words", "é"])
def test_the_response_carries_a_new_id_in_place_of_an_unsafe_one(
    client: FlaskClient, value: str
) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": value})
    assert response.status_code == 200
    assert GENERATED.fullmatch(response.headers["X-Request-ID"])


def test_each_request_without_an_id_gets_its_own(client: FlaskClient) -> None:
    first, second = client.get("/healthz"), client.get("/healthz")
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2 and all(GENERATED.fullmatch(value) for value in ids)


@pytest.mark.parametrize(
    ("method", "path", "status", "error"),
    [
        ("GET", "/api/me", 401, "unauthorized"),
        ("GET", "/api/nothing-here", 404, "not_found"),
        ("POST", "/healthz", 405, "method_not_allowed"),
    ],
)
def test_refusals_carry_the_request_id(
    client: FlaskClient, method: str, path: str, status: int, error: str
) -> None:
    response = client.open(path, method=method, headers={"X-Request-ID": "refused-1"})
    assert_refusal(response, status, error, challenge="" if status == 401 else None)
    assert response.headers["X-Request-ID"] == "refused-1"


def test_an_unexpected_error_carries_the_request_id(app: Flask, client: FlaskClient) -> None:
    @app.get("/api/explodes")
    def explodes() -> None:
        raise RuntimeError("a bug")

    response = client.get("/api/explodes", headers={"X-Request-ID": "boom-1"})
    assert_refusal(response, 500, "server_error")
    assert response.headers["X-Request-ID"] == "boom-1"


def test_graph_and_entra_get_the_request_id_as_client_request_id(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    response = client.get("/api/me", headers={**bearer(tokens.valid()), "X-Request-ID": "r-42"})
    assert response.status_code == 200
    assert response.json["displayName"] == "Alice Example"
    assert response.headers["X-Request-ID"] == "r-42"
    sent: dict[str, list[str | None]] = {}
    for call in stubs.mock.calls:
        url = call.request.url.split("?")[0]
        sent.setdefault(url, []).append(call.request.headers.get("client-request-id"))
    # MSAL's correlation id, its client-request-id header, on its metadata and token requests
    # (the key cache fetches the metadata too, on its own session).
    assert "r-42" in sent[METADATA_URL]
    assert sent[TOKEN_URL] == ["r-42"]
    assert sent[f"{GRAPH_URL}/me"] == ["r-42"]


def test_each_request_sends_its_own_id(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    for request_id in ("first-1", "second-2"):
        response = client.get(
            "/api/me", headers={**bearer(tokens.valid()), "X-Request-ID": request_id}
        )
        assert response.status_code == 200
    graph = [
        call.request.headers["client-request-id"]
        for call in stubs.mock.calls
        if call.request.url.startswith(f"{GRAPH_URL}/me")
    ]
    tokens_sent = [
        call.request.headers["client-request-id"]
        for call in stubs.mock.calls
        if call.request.url.startswith(TOKEN_URL)
    ]
    assert graph == ["first-1", "second-2"]
    assert tokens_sent == ["first-1", "second-2"]  # two users (two tokens): two exchanges


def test_the_log_filter_adds_the_current_request_id() -> None:
    record = logging.makeLogRecord({"msg": "hello"})
    log_filter = RequestIdFilter()
    assert log_filter.filter(record) and record.request_id == "-"
    begin_request("in-a-request")
    try:
        assert log_filter.filter(record) and record.request_id == "in-a-request"
    finally:
        end_request()
    assert log_filter.filter(record) and record.request_id == "-"
