"""TokenValidator's own work: each segment decoded once, one RSA verification per token, the
verified-token cache (lifetime and scopes still checked on every request, entries gone with
their key), and one spelling per segment. Work is counted, never timed."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
import requests
from flask.testing import FlaskClient

import app.auth.tokens as validation
from app.auth.keys import SigningKeyCache
from app.auth.tokens import TokenValidator, VerifiedTokens, parse_segments
from app.errors import InvalidToken
from tests.support.contract import assert_refusal
from tests.support.stubs import METADATA_URL, StubServices
from tests.support.tokens import CLIENT_ID, Signer, TokenFactory, bearer, json_segment

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


class Clock:
    """A clock that stands still until moved."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class Calls:
    """Counts calls to a function of app.auth.tokens while still making them."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
        self.count = 0
        real: Callable[..., Any] = getattr(validation, name)

        def counting(*args: Any) -> Any:
            self.count += 1
            return real(*args)

        monkeypatch.setattr(validation, name, counting)


@pytest.fixture()
def signature_checks(monkeypatch: pytest.MonkeyPatch) -> Calls:
    return Calls(monkeypatch, "_check_signature")


@pytest.fixture()
def key_clock() -> Clock:
    return Clock(5000.0)


@pytest.fixture()
def keys(stubs: StubServices, key_clock: Clock) -> SigningKeyCache:
    return SigningKeyCache(
        METADATA_URL, requests.Session(), min_refresh_seconds=300, clock=key_clock
    )


@pytest.fixture()
def wall() -> Clock:
    return Clock(time.time())


def validator(keys: SigningKeyCache, wall: Clock, max_entries: int = 100) -> TokenValidator:
    return TokenValidator(keys, (CLIENT_ID,), clock=wall, verified=VerifiedTokens(max_entries))


# --- one verification per token ---------------------------------------------------------------


def test_a_token_seen_before_is_not_verified_again(
    keys: SigningKeyCache, wall: Clock, tokens: TokenFactory, signature_checks: Calls
) -> None:
    check = validator(keys, wall)
    token = tokens.valid()
    first = check.validate(token)
    for _ in range(5):
        assert check.validate(token) == first
    assert signature_checks.count == 1
    check.validate(tokens.valid())
    assert signature_checks.count == 2


def test_the_claims_handed_out_are_a_copy(
    keys: SigningKeyCache, wall: Clock, tokens: TokenFactory
) -> None:
    check = validator(keys, wall)
    token = tokens.valid()
    check.validate(token)["scp"] = "Admin.All"
    assert check.validate(token)["scp"] == "access_as_user"


def test_each_segment_of_a_new_token_is_decoded_once(
    keys: SigningKeyCache, wall: Clock, tokens: TokenFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    validation._decode_header.cache_clear()
    decodes = Calls(monkeypatch, "_decode_base64url")
    check = validator(keys, wall)
    check.validate(tokens.valid())
    assert decodes.count == 3  # header, payload, signature
    check.validate(tokens.valid())
    assert decodes.count == 5  # Entra signs every token of a key under the same header


def test_a_refused_token_is_not_remembered(
    keys: SigningKeyCache, wall: Clock, tokens: TokenFactory, signature_checks: Calls
) -> None:
    check = validator(keys, wall)
    token = tokens.wrong_audience()
    for _ in range(2):
        with pytest.raises(InvalidToken, match="audience"):
            check.validate(token)
    assert signature_checks.count == 2


def test_the_cache_keeps_the_most_recently_used_tokens(
    keys: SigningKeyCache, wall: Clock, tokens: TokenFactory, signature_checks: Calls
) -> None:
    check = validator(keys, wall, max_entries=2)
    a, b, c = tokens.valid(), tokens.valid(), tokens.valid()
    for token in (a, b, a, c):  # c pushes out b, the least recently used
        check.validate(token)
    assert signature_checks.count == 3
    check.validate(a)
    assert signature_checks.count == 3
    check.validate(b)
    assert signature_checks.count == 4


# --- what a cached token still goes through -------------------------------------------------------


def test_lifetime_is_checked_on_every_request(
    keys: SigningKeyCache, wall: Clock, tokens: TokenFactory, signature_checks: Calls
) -> None:
    now = int(wall.now)
    token = tokens.valid(iat=now - 30, nbf=now - 30, exp=now + 120)
    check = validator(keys, wall)
    check.validate(token)
    wall.now = now - 100  # the host's clock steps back: nbf is beyond the leeway again
    with pytest.raises(InvalidToken, match="not valid yet"):
        check.validate(token)
    wall.now = now + 120 + 59  # expired, but within the leeway
    check.validate(token)
    assert signature_checks.count == 1
    wall.now = now + 120 + 60
    with pytest.raises(InvalidToken, match="expired"):
        check.validate(token)


def test_scopes_are_checked_on_every_request(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, signature_checks: Calls
) -> None:
    token = tokens.missing_scope()
    for _ in range(3):
        assert_refusal(
            client.get("/api/me", headers=bearer(token)),
            403,
            "insufficient_scope",
            description="lacks the access_as_user scope",
            challenge="insufficient_scope",
        )
    assert signature_checks.count == 1
    assert stubs.token_calls == 0


# --- entries go with their key ------------------------------------------------------------------


def test_a_token_is_refused_once_its_key_leaves_the_key_set(
    keys: SigningKeyCache,
    wall: Clock,
    key_clock: Clock,
    stubs: StubServices,
    tokens: TokenFactory,
    second_signer: Signer,
) -> None:
    check = validator(keys, wall)
    old = tokens.valid()
    check.validate(old)
    stubs.signers[:] = [second_signer]  # key-1 rotated out
    key_clock.now += 301
    check.validate(tokens.build(signer=second_signer))  # an unknown kid: the keys are reloaded
    with pytest.raises(InvalidToken, match="does not publish"):
        check.validate(old)


def test_reloaded_keys_verify_each_token_once_more(
    keys: SigningKeyCache,
    wall: Clock,
    key_clock: Clock,
    stubs: StubServices,
    tokens: TokenFactory,
    second_signer: Signer,
    signature_checks: Calls,
) -> None:
    check = validator(keys, wall)
    token = tokens.valid()
    check.validate(token)
    stubs.signers.append(second_signer)
    key_clock.now += 301
    check.validate(tokens.build(signer=second_signer))
    assert signature_checks.count == 2
    for _ in range(3):
        check.validate(token)  # key-1 is still published, as a new key object
    assert signature_checks.count == 3


# --- one spelling per segment -------------------------------------------------------------------


def respelled(segment: str) -> str:
    """``segment`` with its last character's unused low bits set: the same bytes, if the
    decoder ignored those bits."""
    return segment[:-1] + ALPHABET[ALPHABET.index(segment[-1]) + 1]


def token_with_uneven_segments(tokens: TokenFactory) -> str:
    """A signed token whose header and payload lengths are not multiples of 4."""
    for pad in range(4):
        header = tokens.header(pad="x" * pad)
        claims = tokens.claims(pad="x" * pad)
        if len(json_segment(header)) % 4 and len(json_segment(claims)) % 4:
            return tokens.sign_raw(header, claims)
    raise AssertionError("no padding gave uneven segments")


@pytest.fixture()
def uneven(tokens: TokenFactory) -> list[str]:
    return token_with_uneven_segments(tokens).split(".")


@pytest.mark.parametrize(("index", "name"), [(0, "header"), (1, "payload"), (2, "signature")])
def test_a_segment_spelled_another_way_is_refused(
    client: FlaskClient, stubs: StubServices, uneven: list[str], index: int, name: str
) -> None:
    assert client.get("/api/me", headers=bearer(".".join(uneven))).status_code == 200
    parts = list(uneven)
    parts[index] = respelled(parts[index])
    response = client.get("/api/me", headers=bearer(".".join(parts)))
    assert_refusal(
        response,
        401,
        "invalid_token",
        description=f"malformed token: the {name} is not canonical base64url",
        challenge="invalid_token",
    )
    assert stubs.token_calls == 1


def test_canonical_spellings_are_exactly_those_that_encode_back(tokens: TokenFactory) -> None:
    header, payload, signature = token_with_uneven_segments(tokens).split(".")
    canonical = parse_segments(f"{header}.{payload}.{signature}").signature
    for last in ALPHABET:
        spelled = signature[:-1] + last
        try:
            accepted = parse_segments(f"{header}.{payload}.{spelled}").signature == canonical
        except InvalidToken:
            accepted = False
        assert accepted is (spelled == signature), last
