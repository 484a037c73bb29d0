"""The signing-key cache: discovery, rate-limited refresh, rotation and outages."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator

import pytest
import requests
import responses
from flask.testing import FlaskClient

from app.auth.keys import KeysUnavailable, SigningKeyCache, UnknownSigningKey
from tests.support.contract import assert_refusal
from tests.support.stubs import JWKS_URL, METADATA_URL, StubServices
from tests.support.tokens import ISSUER, Signer, TokenFactory, bearer


class Clock:
    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def mock() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.get(METADATA_URL, json={"issuer": ISSUER, "jwks_uri": JWKS_URL})
        yield rsps


def publish(mock: responses.RequestsMock, *signers: Signer, **kwargs: object) -> None:
    mock.replace(responses.GET, JWKS_URL, json={"keys": [s.jwk() for s in signers]}, **kwargs)


def jwks_calls(mock: responses.RequestsMock) -> int:
    return sum(1 for call in mock.calls if call.request.url == JWKS_URL)


def new_cache(clock: Clock) -> SigningKeyCache:
    return SigningKeyCache(
        METADATA_URL, requests.Session(), refresh_seconds=3600, min_refresh_seconds=300, clock=clock
    )


def test_keys_are_fetched_once_and_served_from_memory(
    mock: responses.RequestsMock, signer: Signer
) -> None:
    mock.get(JWKS_URL, json={"keys": [signer.jwk()]})
    cache = new_cache(Clock())
    for _ in range(50):
        assert cache.get("key-1").kid == "key-1"
    assert cache.issuer() == ISSUER
    assert jwks_calls(mock) == 1


def test_unknown_kids_refresh_at_most_once_per_interval(
    mock: responses.RequestsMock, signer: Signer
) -> None:
    mock.get(JWKS_URL, json={"keys": [signer.jwk()]})
    clock = Clock()
    cache = new_cache(clock)
    cache.get("key-1")
    clock.now += 301
    for n in range(100):
        with pytest.raises(UnknownSigningKey):
            cache.get(f"random-{n}")
    assert jwks_calls(mock) == 2  # the first load, then a single refresh
    clock.now += 301
    with pytest.raises(UnknownSigningKey):
        cache.get("random-again")
    assert jwks_calls(mock) == 3


def test_rotated_key_is_found_by_refresh(
    mock: responses.RequestsMock, signer: Signer, second_signer: Signer
) -> None:
    mock.get(JWKS_URL, json={"keys": [signer.jwk()]})
    clock = Clock()
    cache = new_cache(clock)
    cache.get("key-1")
    publish(mock, signer, second_signer)
    # Right after start-up: the initial load does not count toward the unknown-kid limit.
    assert cache.get("key-2").kid == "key-2"
    assert cache.get("key-1").kid == "key-1"
    assert jwks_calls(mock) == 2


@pytest.mark.parametrize(
    "bad",
    [
        {"status": 500, "json": {"error": "down"}},
        {"status": 200, "body": "<html>maintenance</html>"},
        {"status": 200, "json": {"keys": []}},
        {"status": 200, "json": {"keys": [{"kty": "EC", "kid": "ec", "crv": "P-256"}]}},
        {"status": 200, "json": ["not", "an", "object"]},
        {"body": requests.ConnectionError("refused")},
    ],
)
def test_a_bad_refresh_keeps_the_last_good_keys(
    mock: responses.RequestsMock, signer: Signer, second_signer: Signer, bad: dict[str, object]
) -> None:
    mock.get(JWKS_URL, json={"keys": [signer.jwk()]})
    clock = Clock()
    cache = new_cache(clock)
    cache.get("key-1")
    mock.replace(responses.GET, JWKS_URL, **bad)  # type: ignore[arg-type]
    clock.now += 301
    with pytest.raises(UnknownSigningKey):
        cache.get("key-2")
    assert cache.get("key-1").kid == "key-1"
    assert cache.issuer() == ISSUER


def test_cold_start_outage_is_unavailable_not_unknown(mock: responses.RequestsMock) -> None:
    mock.get(JWKS_URL, status=503)
    clock = Clock()
    cache = new_cache(clock)
    with pytest.raises(KeysUnavailable) as caught:
        cache.get("key-1")
    assert caught.value.retry_after == 10
    clock.now += 4
    with pytest.raises(KeysUnavailable) as caught:
        cache.get("key-1")
    assert caught.value.retry_after == 6
    assert jwks_calls(mock) == 1  # failures count toward the limit too
    with pytest.raises(KeysUnavailable):
        cache.issuer()


def test_scheduled_refresh_runs_in_the_background(
    mock: responses.RequestsMock, signer: Signer, second_signer: Signer
) -> None:
    mock.get(JWKS_URL, json={"keys": [signer.jwk()]})
    clock = Clock()
    cache = new_cache(clock)
    cache.get("key-1")
    publish(mock, second_signer)
    clock.now += 4000  # past refresh_seconds plus jitter
    assert cache.get("key-1").kid == "key-1"  # served at once from the old set
    deadline = time.monotonic() + 5
    while jwks_calls(mock) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    deadline = time.monotonic() + 5
    while cache.current is not None and "key-2" not in cache.current.keys:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert set(cache.current.keys) == {"key-2"}


def test_non_signing_keys_are_skipped(mock: responses.RequestsMock, signer: Signer) -> None:
    encryption = {**signer.jwk(), "kid": "enc", "use": "enc"}
    no_kid = {key: value for key, value in signer.jwk().items() if key != "kid"}
    mock.get(JWKS_URL, body=json.dumps({"keys": [encryption, no_kid, signer.jwk()]}))
    cache = new_cache(Clock())
    assert cache.get("key-1").issuer == ISSUER
    assert cache.current is not None and set(cache.current.keys) == {"key-1"}


# --- key strength (RFC 7518 section 3.3) ------------------------------------------------------


def test_a_published_key_under_2048_bits_is_not_trusted(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    weak_signer: Signer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    stubs.signers.append(weak_signer)
    caplog.set_level(logging.WARNING, logger="app.auth.keys")
    response = client.get("/api/me", headers=bearer(tokens.signed_by(weak_signer)))
    assert_refusal(
        response, 401, "invalid_token", description="does not publish", challenge="invalid_token"
    )
    assert (
        "ignoring signing key 'weak-key': RSA key of 1024 bits, under the 2048 RFC 7518 requires"
    ) in caplog.messages
    assert stubs.token_calls == 0
    assert client.get("/api/me", headers=bearer(tokens.valid())).status_code == 200


def test_a_key_set_of_only_weak_keys_is_a_key_set_without_usable_keys(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, weak_signer: Signer
) -> None:
    stubs.signers[:] = [weak_signer]
    assert_refusal(
        client.get("/readyz"),
        503,
        "temporarily_unavailable",
        description="signing keys",
        retry_after=10,
    )
    response = client.get("/api/me", headers=bearer(tokens.signed_by(weak_signer)))
    assert_refusal(
        response,
        503,
        "temporarily_unavailable",
        description="signing keys",
        retry_after=range(1, 11),
    )
    assert stubs.token_calls == 0


def test_a_failed_refresh_logs_the_cause(
    mock: responses.RequestsMock, caplog: pytest.LogCaptureFixture
) -> None:
    mock.get(JWKS_URL, status=503)
    with pytest.raises(KeysUnavailable):
        new_cache(Clock()).get("key-1")
    assert caplog.messages == [
        f"signing key refresh failed, keeping no keys: ValueError: {JWKS_URL} answered HTTP 503"
    ]
