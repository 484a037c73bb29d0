"""Property-based tests: no header or token, however broken, makes the API fail.

Every answer is a 400, 401 or 403 with the JSON error body (or a 200, only for a token that is
valid by the rules restated in ``acceptable`` below), and the validator's functions let only
``ApiError`` escape. One app serves the whole module so each example costs one request.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app import create_app
from app.auth.tokens import TokenValidator, check_header, parse_segments
from app.errors import ApiError
from tests.support.stubs import BASE_ENV, StubServices, stub_services
from tests.support.tokens import CLIENT_ID, ISSUER, Signer, TokenFactory, b64url, json_segment

# Bounded so the module stays within seconds; deadline off because RSA signing varies.
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LEEWAY = 60
MAX_NUMERIC_DATE = 253402300799


class Env:
    """One app for the module, its stubs, and builders. Not a dataclass: Hypothesis prints
    its arguments field by field, and the stubs' call log grows large."""

    def __init__(
        self,
        client: FlaskClient,
        stubs: StubServices,
        tokens: TokenFactory,
        validator: TokenValidator,
    ) -> None:
        self.client = client
        self.stubs = stubs
        self.tokens = tokens
        self.validator = validator

    def __repr__(self) -> str:
        return "Env()"


@pytest.fixture(scope="module")
def env(signer: Signer) -> Iterator[Env]:
    with stub_services(signer) as stubs:
        app = create_app(BASE_ENV)
        yield Env(app.test_client(), stubs, TokenFactory(signer), app.extensions["auth"].validator)


def request(env: Env, authorization: str) -> int:
    """Send one Authorization header; check the answer keeps the contract; return the status."""
    obo_before = env.stubs.token_calls
    response = env.client.get("/api/me", headers={"Authorization": authorization})
    status = response.status_code
    assert status in (200, 400, 401, 403), (status, response.get_data(as_text=True))
    if status == 200:
        assert env.stubs.token_calls - obo_before <= 1
        return status
    body = response.get_json()
    assert isinstance(body, dict)
    assert isinstance(body.get("error"), str) and body["error"]
    assert isinstance(body.get("error_description"), str) and body["error_description"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
    assert env.stubs.token_calls == obo_before
    return status


def refused(env: Env, authorization: str) -> None:
    assert request(env, authorization) != 200


def only_api_errors(call: Callable[[], Any]) -> Any:
    """Run ``call``; an ApiError is an answer, anything else escapes and fails the test."""
    try:
        return call()
    except ApiError as exc:
        assert 400 <= exc.status < 500 or exc.status == 503
        return None


# --- strategies -------------------------------------------------------------------------------

# The test client refuses CR and LF in header values; every other character goes through.
header_text = st.text(st.characters(blacklist_characters="\r\n"), max_size=120)
latin1_text = (
    st.binary(max_size=120)
    .map(lambda raw: raw.decode("latin-1"))
    .filter(lambda text: "\r" not in text and "\n" not in text)
)
prefixes = st.sampled_from(
    ["", "Bearer ", "bearer ", "BEARER ", "Bearer  ", "Bearer\t", "Basic ", " Bearer ", "Bearer"]
)
token_chars = st.text(st.sampled_from('AZaz09-_.+/=~ ,$"\t\x0b\x85\xa0\u00e9'), max_size=80)

segment = st.one_of(
    st.binary(max_size=96).map(b64url),
    latin1_text,
    token_chars,
)

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.text(max_size=16),
    st.floats(allow_nan=False, allow_infinity=False),
)
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4), st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
json_objects = st.dictionaries(st.text(max_size=8), json_values, max_size=6)

HEADER_NAMES = ["alg", "kid", "typ", "cty", "crit", "b64", "jku", "x5u", "jwk", "x5c", "zip"]
CLAIM_NAMES = [
    "aud",
    "iss",
    "exp",
    "nbf",
    "iat",
    "ver",
    "scp",
    "roles",
    "tid",
    "oid",
    "azp",
    "sub",
    "idtyp",
    "nonce",
]


@dataclass(frozen=True)
class FromNow:
    """A NumericDate relative to the time the token is built (strategies must not read clocks)."""

    seconds: int


# Values a claim might hold: the right ones, near misses, times around now, anything JSON.
claim_values = st.one_of(
    st.sampled_from(
        [
            CLIENT_ID,
            ISSUER,
            "2.0",
            "1.0",
            "access_as_user",
            "User.Read access_as_user",
            ["access_as_user"],
            [],
            None,
        ]
    ),
    st.integers(-3 * LEEWAY, 3 * LEEWAY).map(FromNow),
    json_values,
)


# --- the Authorization header -----------------------------------------------------------------


@FUZZ
@given(value=st.one_of(header_text, latin1_text))
def test_any_header_value(env: Env, value: str) -> None:
    refused(env, value)


@FUZZ
@given(prefix=prefixes, rest=st.one_of(header_text, latin1_text, token_chars))
def test_any_credentials_after_a_scheme(env: Env, prefix: str, rest: str) -> None:
    refused(env, prefix + rest)


ODD_SPACE = " \t\x0b\x0c\x1c\x1f\x85\xa0\u2003\u3000,;"


@FUZZ
@given(
    scheme=st.sampled_from(["Bearer", "bearer", "BEARER", "Bearer:", "\xa0Bearer", "Bear"]),
    separator=st.text(st.sampled_from(ODD_SPACE), max_size=3),
    after=st.text(st.sampled_from(ODD_SPACE), max_size=3),
)
def test_valid_token_amid_odd_whitespace(env: Env, scheme: str, separator: str, after: str) -> None:
    status = request(env, f"{scheme}{separator}{env.tokens.valid()}{after}")
    if status == 200:
        # RFC 6750 2.1: "Bearer" 1*SP b64token; only SP and HTAB may trail a header value.
        assert scheme.lower() == "bearer" and separator and not separator.strip(" ")
        assert not after.strip(" \t")


# --- the three segments -------------------------------------------------------------------------


@FUZZ
@given(parts=st.lists(segment, min_size=1, max_size=6))
def test_any_segments(env: Env, parts: list[str]) -> None:
    refused(env, "Bearer " + ".".join(parts))


@FUZZ
@given(index=st.integers(0, 2), replacement=segment)
def test_one_segment_of_a_valid_token_replaced(env: Env, index: int, replacement: str) -> None:
    parts = env.tokens.valid().split(".")
    if parts[index] == replacement:
        return
    parts[index] = replacement
    refused(env, "Bearer " + ".".join(parts))


# --- arbitrary JSON as header and payload ---------------------------------------------------------


@FUZZ
@given(header=json_values, payload=json_values, signature=st.binary(max_size=300))
def test_any_json_unsigned(env: Env, header: Any, payload: Any, signature: bytes) -> None:
    token = env.tokens.unsigned(json.dumps(header), json.dumps(payload), b64url(signature))
    refused(env, "Bearer " + token)


@FUZZ
@given(header=json_values, payload=json_values)
def test_any_json_signed_with_the_real_key(env: Env, header: Any, payload: Any) -> None:
    refused(env, "Bearer " + env.tokens.sign_raw(json.dumps(header), json.dumps(payload)))


@FUZZ
@given(
    fields=st.dictionaries(st.sampled_from(HEADER_NAMES), json_values, max_size=4),
    extra=json_objects,
)
def test_valid_token_with_any_header_fields(
    env: Env, fields: dict[str, Any], extra: dict[str, Any]
) -> None:
    header = {**extra, **env.tokens.header(**fields)}
    status = request(env, "Bearer " + env.tokens.sign_raw(header, env.tokens.claims()))
    header_ok = (
        header.get("alg") == "RS256"
        and header.get("kid") == "key-1"
        and "crit" not in header
        and header.get("cty") is None
        and header.get("typ", "JWT") in ("JWT", "at+jwt")
        # Only b64=false changes the meaning (RFC 7797), and PyJWT refuses it here.
        and header.get("b64") is not False
    )
    if status == 200:
        assert header_ok, header


def acceptable(claims: dict[str, Any], now: float) -> bool | None:
    """The rules for a token this API accepts on /api/me; None when too close to call."""
    times = [claims[name] for name in ("exp", "nbf", "iat") if name in claims]
    if len(times) < 3 or not all(
        type(value) is int and 0 <= value <= MAX_NUMERIC_DATE for value in times
    ):
        return False
    exp, nbf, iat = times
    if any(
        abs(edge) <= 3
        for edge in (exp - (now - LEEWAY), nbf - (now + LEEWAY), iat - (now + LEEWAY))
    ):
        return None  # the clock may tick between building and checking
    strings = ("scp", "tid", "oid", "azp")
    roles = claims.get("roles", [])
    return (
        claims.get("iss") == ISSUER
        and claims.get("aud") == CLIENT_ID
        and claims.get("ver") == "2.0"
        and exp > now - LEEWAY
        and nbf <= now + LEEWAY
        and iat <= now + LEEWAY
        and all(isinstance(claims[name], str) for name in strings if name in claims)
        and "azp" in claims
        and isinstance(roles, list)
        and all(isinstance(role, str) for role in roles)
        and "access_as_user" in str(claims.get("scp", "")).split(" ")
    )


@FUZZ
@given(data=st.data())
def test_signed_claims_are_accepted_exactly_when_valid(env: Env, data: st.DataObject) -> None:
    overrides = data.draw(st.dictionaries(st.sampled_from(CLAIM_NAMES), claim_values, max_size=4))
    dropped = data.draw(
        st.sets(
            st.sampled_from(["exp", "nbf", "iat", "ver", "azp", "scp", "aud", "iss"]), max_size=2
        )
    )
    now = int(time.time())
    claims = {
        **env.tokens.claims(),
        **{
            name: now + value.seconds if isinstance(value, FromNow) else value
            for name, value in overrides.items()
        },
    }
    for name in dropped:
        claims.pop(name, None)
    expected = acceptable(claims, time.time())
    status = request(env, "Bearer " + env.tokens.exact(claims))
    if expected is not None:
        assert (status == 200) == expected, (status, claims)


# --- the validator's functions, called directly ------------------------------------------------


@FUZZ
@given(
    token=st.one_of(
        st.text(max_size=200), token_chars, st.lists(segment, min_size=1, max_size=5).map(".".join)
    )
)
def test_parse_segments_raises_only_api_errors(token: str) -> None:
    segments = only_api_errors(lambda: parse_segments(token))
    assert segments is None or isinstance(segments.header, dict)


@FUZZ
@given(header=st.one_of(json_objects, st.dictionaries(st.sampled_from(HEADER_NAMES), json_values)))
def test_check_header_raises_only_api_errors(header: dict[str, Any]) -> None:
    kid = only_api_errors(lambda: check_header(header))
    assert kid is None or (isinstance(kid, str) and header.get("alg") == "RS256")


@FUZZ
@given(
    token=st.one_of(
        st.text(max_size=200),
        st.lists(segment, min_size=3, max_size=3).map(".".join),
        st.tuples(json_values, json_values).map(
            lambda pair: f"{json_segment(json.dumps(pair[0]))}.{json_segment(json.dumps(pair[1]))}."
        ),
    )
)
def test_validate_raises_only_api_errors(env: Env, token: str) -> None:
    claims = only_api_errors(lambda: env.validator.validate(token))
    assert claims is None


@FUZZ
@given(header=json_values, payload=json_values)
def test_validate_signed_json_raises_only_api_errors(env: Env, header: Any, payload: Any) -> None:
    token = env.tokens.sign_raw(json.dumps(header), json.dumps(payload))
    only_api_errors(lambda: env.validator.validate(token))
