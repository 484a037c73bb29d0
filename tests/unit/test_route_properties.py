"""Property-based tests of every route: whatever the query string, headers or path, with a valid
token the API never answers 5xx, and every refusal keeps the error contract's shape.

One app serves the whole module (Entra, Graph and ARM stubbed), and one valid token is reused,
so each example costs one request and no new exchange.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from tests.support.contract import assert_error_shape
from tests.support.stubs import BASE_ENV, stub_services
from tests.support.tokens import Signer, TokenFactory, bearer

PROPERTY = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


class Env:
    """The module's app, a client and a valid token (not a dataclass: Hypothesis prints it)."""

    def __init__(self, app: Flask, token: str) -> None:
        self.app = app
        self.client: FlaskClient = app.test_client()
        self.token = token

    def __repr__(self) -> str:
        return "Env()"


@pytest.fixture(scope="module")
def env(signer: Signer) -> Iterator[Env]:
    with stub_services(signer) as services:
        del services.subscriptions[2:]  # one ARM page per request
        yield Env(create_app(BASE_ENV), TokenFactory(signer).valid())


def routes() -> list[str]:
    """Every GET route without path arguments, as the app registers them."""
    with stub_services():
        app = create_app(BASE_ENV)
    return sorted(
        rule.rule
        for rule in app.url_map.iter_rules()
        if "GET" in (rule.methods or ()) and not rule.arguments
    )


def check(response: Any) -> None:
    with response:  # a file response (the docs page) holds its file open until closed
        assert response.status_code < 500, (response.status_code, response.text)
        if response.status_code >= 400:
            assert_error_shape(response)


# --- strategies -------------------------------------------------------------------------------

# The test client refuses CR and LF in header values; every other character goes through.
header_value = st.text(st.characters(blacklist_characters="\r\n"), max_size=80)
QUERY_NAMES = [
    "$top",
    "$select",
    "$filter",
    "$skiptoken",
    "api-version",
    "access_token",
    "$count",
    "$expand",
]
# Numbers as a client might type them, in any script: ², ٣ and ５ are digits to str.isdigit().
numbers = st.text(
    st.one_of(st.characters(categories=("Nd", "No")), st.sampled_from("0123456789+-.e ")),
    max_size=6,
)
query_value = st.one_of(numbers, st.text(max_size=40))
query_pairs = st.one_of(
    st.dictionaries(st.sampled_from(QUERY_NAMES), query_value, max_size=4).map(
        lambda pairs: list(pairs.items())
    ),
    st.lists(st.tuples(st.text(max_size=12), query_value), max_size=4),
)
# Raw query strings too: stray %, &, = and +, and percent-encoded bytes of any value.
raw_query = st.one_of(
    st.text(st.sampled_from("$top=&%+;abc0129²٣ "), max_size=40),
    st.sampled_from(QUERY_NAMES).flatmap(
        lambda name: st.one_of(
            numbers.map(quote), st.binary(max_size=12).map(lambda raw: quote(raw, safe=""))
        ).map(lambda value: f"{name}={value}")
    ),
)
HEADER_NAMES = [
    "Accept",
    "Accept-Encoding",
    "Accept-Language",
    "Content-Type",
    "Cookie",
    "Origin",
    "If-None-Match",
    "If-Modified-Since",
    "Range",
    "X-Request-ID",
    "X-Forwarded-For",
    "Forwarded",
    "Access-Control-Request-Method",
    "Content-Length",
    "Transfer-Encoding",
    "Expect",
    "Host",
]
headers = st.dictionaries(st.sampled_from(HEADER_NAMES), header_value, max_size=4)


# --- properties --------------------------------------------------------------------------------


@pytest.mark.parametrize("route", routes())
@PROPERTY
@given(query=st.one_of(query_pairs.map(urlencode), raw_query), extra=headers)
def test_any_query_and_headers(env: Env, route: str, query: str, extra: dict[str, str]) -> None:
    check(env.client.get(f"{route}?{query}", headers={**extra, **bearer(env.token)}))


@PROPERTY
@given(
    prefix=st.sampled_from(["/", "/api/", "/api/me/", "/docs/", "/static/", "/readyz/"]),
    rest=st.text(max_size=40),
    query=raw_query,
)
def test_any_path(env: Env, prefix: str, rest: str, query: str) -> None:
    path = prefix + quote(rest, safe="/;:@&=+$,%")
    check(env.client.get(f"{path}?{query}", headers=bearer(env.token)))
