"""The shared token cache on a real redis-server: read-through and write-through between
instances, lifetimes, what is at rest, unreadable entries, key rotation, a Redis that stops,
fills up or comes back, and one exchange for concurrent cold requests.

An "instance" here is an app (or a token provider) of its own, with its own in-process cache,
in this process; they share Redis and the stubbed Entra ID, as instances of the API share
Redis and the real one.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import redis
import responses
from cryptography.fernet import Fernet
from flask.testing import FlaskClient

from app import create_app
from app.auth.circuit_breaker import CircuitState
from app.auth.obo import DownstreamTokenProvider
from app.auth.shared_cache import (
    LOCK_SECONDS,
    EntryCipher,
    RedisPartitionStore,
    open_shared_cache,
)
from app.auth.token_cache import PartitionedTokenCache
from app.config import ConfigError, RedisAddress, load_settings
from tests.support.redis_server import RedisServer, cache_entry_key, stored_bytes
from tests.support.stubs import BASE_ENV, TOKEN_URL, LoopbackTls, StubServices, token_response
from tests.support.tokens import TENANT_ID, TokenFactory, bearer

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
GRAPH = load_settings(BASE_ENV).downstream["graph"]
THREADS = 16


class Clock:
    """The circuit breaker's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def cache_env(
    url: str, key: str = KEY_A, previous: str | None = None, **extra: str
) -> dict[str, str]:
    env = {**BASE_ENV, "TOKEN_CACHE_URL": url, "TOKEN_CACHE_ENCRYPTION_KEY": key, **extra}
    if previous is not None:
        env["TOKEN_CACHE_ENCRYPTION_KEY_PREVIOUS"] = previous
    return env


def instance(env: dict[str, str]) -> FlaskClient:
    """One instance of the API: an app with its own in-process token cache."""
    return create_app(env).test_client()


def provider(store: RedisPartitionStore | None) -> DownstreamTokenProvider:
    """One instance's token provider, on ``store`` as its level 2."""
    return DownstreamTokenProvider(
        load_settings(BASE_ENV), PartitionedTokenCache(max_users=100, shared=store)
    )


def shared_store(
    url: str, *keys: str, clock: Clock | None = None, lock_seconds: float = LOCK_SECONDS
) -> RedisPartitionStore:
    settings = load_settings(cache_env(url, *keys)).token_cache
    store = open_shared_cache(settings, clock or time.monotonic, lock_seconds)
    assert store is not None
    return store


def assert_me(response: Any, graph_token: str) -> None:
    """A 200 from /api/me made with ``graph_token`` (the stub echoes the token it got)."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert response.json == {
        "displayName": "Alice Example",
        "mail": "alice@contoso.test",
        "token": graph_token,
    }


def cache_warnings(caplog: pytest.LogCaptureFixture, text: str) -> list[str]:
    return [
        record.getMessage()
        for record in caplog.records
        if record.name == "app.auth.shared_cache"
        and record.levelno == logging.WARNING
        and text in record.getMessage()
    ]


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """One redis-server for the module's tests that keep it running."""
    with RedisServer(tmp_path_factory.mktemp("redis")) as server:
        yield server


@pytest.fixture()
def stored(redis_server: RedisServer) -> Iterator[redis.Redis]:
    """The shared Redis, emptied for the test: the test's own view of what is at rest."""
    client = redis_server.client()
    client.flushall()
    yield client
    client.close()


@pytest.fixture()
def shared_env(redis_server: RedisServer, stored: redis.Redis) -> dict[str, str]:
    return cache_env(redis_server.url)


@pytest.fixture()
def own_redis(tmp_path: Path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, to stop, restart or fill up."""
    with RedisServer(tmp_path / "redis") as server:
        yield server


# --- read-through and write-through ------------------------------------------------------------


def test_an_instance_uses_the_token_another_instance_obtained(
    stubs: StubServices, tokens: TokenFactory, shared_env: dict[str, str], stored: redis.Redis
) -> None:
    first, second = instance(shared_env), instance(shared_env)
    token = tokens.valid()
    assert_me(first.get("/api/me", headers=bearer(token)), "graph-token-1")
    assert_me(second.get("/api/me", headers=bearer(token)), "graph-token-1")
    assert stubs.token_calls == 1
    assert stored.keys() == [cache_entry_key(token).encode()]  # the entry; no lock left


def test_a_token_obtained_by_refresh_is_written_through(
    stubs: StubServices, tokens: TokenFactory, shared_env: dict[str, str]
) -> None:
    first, second = instance(shared_env), instance(shared_env)
    token = tokens.valid()
    assert_me(first.get("/api/me", headers=bearer(token)), "graph-token-1")
    assert first.get("/api/subscriptions", headers=bearer(token)).status_code == 200
    response = second.get("/api/subscriptions", headers=bearer(token))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    assert len(response.json["value"]) == 5
    # OBO for Graph, then ARM's token by the refresh token; the second instance needs neither.
    assert [call["form"]["grant_type"] for call in stubs.issued] == [
        "urn:ietf:params:oauth:grant-type:jwt-bearer",
        "refresh_token",
    ]


def test_a_token_dropped_after_a_downstream_401_is_dropped_for_every_instance(
    stubs: StubServices, tokens: TokenFactory, shared_env: dict[str, str]
) -> None:
    first, second = instance(shared_env), instance(shared_env)
    token = tokens.valid()
    stubs.graph_responses.append(
        (401, {"error": {"code": "InvalidAuthenticationToken", "message": "Token revoked"}}, {})
    )
    assert_me(first.get("/api/me", headers=bearer(token)), "graph-token-2")
    assert_me(second.get("/api/me", headers=bearer(token)), "graph-token-2")
    assert stubs.token_calls == 2


# --- lifetime and what is at rest --------------------------------------------------------------


def test_an_entry_with_a_refresh_token_lives_until_the_incoming_token_expires(
    stubs: StubServices, tokens: TokenFactory, shared_env: dict[str, str], stored: redis.Redis
) -> None:
    expires = int(time.time()) + 600  # before the access token's 3599 s
    token = tokens.valid(exp=expires)
    before = time.time()
    assert_me(instance(shared_env).get("/api/me", headers=bearer(token)), "graph-token-1")
    ttl = stored.pttl(cache_entry_key(token)) / 1000
    after = time.time()
    assert expires - after - 1 <= ttl <= expires - before + 1


def test_an_entry_without_a_refresh_token_lives_as_long_as_its_access_token(
    stubs: StubServices, tokens: TokenFactory, shared_env: dict[str, str], stored: redis.Redis
) -> None:
    token = tokens.valid()  # expires in an hour
    answer = token_response(
        {"assertion": token, "scope": GRAPH.scopes[0]}, "graph-token-1", 1, expires_in=300
    )
    del answer["refresh_token"]
    stubs.obo_errors.append((200, answer, {}))  # the next answer of the token endpoint
    before = time.time()
    assert_me(instance(shared_env).get("/api/me", headers=bearer(token)), "graph-token-1")
    ttl = stored.pttl(cache_entry_key(token)) / 1000
    after = time.time()
    assert 300 - (after - before) - 1 <= ttl <= 300 + 1


def test_nothing_at_rest_shows_a_token_or_a_claim(
    stubs: StubServices, tokens: TokenFactory, shared_env: dict[str, str], stored: redis.Redis
) -> None:
    oid = "3f2b8c1e-5d4a-4e6f-9a7b-2c1d0e9f8a76"
    token = tokens.valid(oid=oid, preferred_username="zoe@contoso.test", name="Zoe Zebra")
    client = instance(shared_env)
    assert_me(client.get("/api/me", headers=bearer(token)), "graph-token-1")
    assert client.get("/api/subscriptions", headers=bearer(token)).status_code == 200
    at_rest = stored_bytes(stored)
    header, payload, signature = token.split(".")
    secrets = [
        token,
        header,
        payload,
        signature,
        "graph-token-",
        "arm-token-",
        f"rt.{oid}",
        oid,
        "zoe@contoso.test",
        "Zoe Zebra",
        "alice@contoso.test",
        TENANT_ID,
        "AccessToken",
        "RefreshToken",
    ]
    found = [secret for secret in secrets if secret.encode() in at_rest]
    assert found == []
    assert stored.keys() == [cache_entry_key(token).encode()]


# --- entries that cannot be used ---------------------------------------------------------------


def test_a_tampered_entry_is_a_miss(
    stubs: StubServices,
    tokens: TokenFactory,
    shared_env: dict[str, str],
    stored: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = instance(shared_env), instance(shared_env)
    token = tokens.valid()
    assert_me(first.get("/api/me", headers=bearer(token)), "graph-token-1")
    name = cache_entry_key(token)
    sealed = bytearray(stored.get(name) or b"")
    middle = len(sealed) // 2
    sealed[middle] = ord("A") if sealed[middle] != ord("A") else ord("B")
    stored.set(name, bytes(sealed), keepttl=True)
    assert_me(second.get("/api/me", headers=bearer(token)), "graph-token-2")
    assert stubs.token_calls == 2
    assert len(cache_warnings(caplog, "undecryptable")) == 1


def test_an_entry_copied_to_another_users_key_is_a_miss(
    stubs: StubServices,
    tokens: TokenFactory,
    shared_env: dict[str, str],
    stored: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first, second = instance(shared_env), instance(shared_env)
    victim, attacker = tokens.valid(), tokens.valid()
    assert_me(first.get("/api/me", headers=bearer(victim)), "graph-token-1")
    stored.set(cache_entry_key(attacker), stored.get(cache_entry_key(victim)) or b"", ex=600)
    assert_me(second.get("/api/me", headers=bearer(attacker)), "graph-token-2")
    assert stubs.token_calls == 2
    assert stubs.issued[1]["form"]["assertion"] == attacker
    assert len(cache_warnings(caplog, "sealed for another key")) == 1


def test_an_entry_sealed_with_another_key_is_a_miss_logged_once(
    stubs: StubServices,
    tokens: TokenFactory,
    redis_server: RedisServer,
    stored: redis.Redis,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = instance(cache_env(redis_server.url, KEY_A))
    second = instance(cache_env(redis_server.url, KEY_B))
    alice, bob = tokens.valid(), tokens.valid()
    assert_me(first.get("/api/me", headers=bearer(alice)), "graph-token-1")
    assert_me(first.get("/api/me", headers=bearer(bob)), "graph-token-2")
    assert_me(second.get("/api/me", headers=bearer(alice)), "graph-token-3")
    assert_me(second.get("/api/me", headers=bearer(bob)), "graph-token-4")
    assert stubs.token_calls == 4
    logged = cache_warnings(caplog, "undecryptable")
    assert len(logged) == 1
    assert KEY_A not in caplog.text and KEY_B not in caplog.text


def test_the_previous_key_still_opens_entries_and_new_ones_use_the_current_key(
    stubs: StubServices, tokens: TokenFactory, redis_server: RedisServer, stored: redis.Redis
) -> None:
    old = instance(cache_env(redis_server.url, KEY_A))
    rotated = instance(cache_env(redis_server.url, KEY_B, previous=KEY_A))
    alice, bob = tokens.valid(), tokens.valid()
    assert_me(old.get("/api/me", headers=bearer(alice)), "graph-token-1")
    assert_me(rotated.get("/api/me", headers=bearer(alice)), "graph-token-1")
    assert_me(rotated.get("/api/me", headers=bearer(bob)), "graph-token-2")
    assert stubs.token_calls == 2
    cipher = EntryCipher((KEY_B,))
    assert cipher.open(cache_entry_key(bob), stored.get(cache_entry_key(bob)) or b"")


def test_an_entry_with_nothing_left_to_use_is_deleted(
    redis_server: RedisServer, stored: redis.Redis
) -> None:
    store = shared_store(redis_server.url, KEY_A)
    store.save("a" * 64, {"AccessToken": {}}, ttl=60)
    assert stored.exists("obo:v1:" + "a" * 64) == 1
    store.save("a" * 64, {"AccessToken": {}}, ttl=0)
    assert stored.exists("obo:v1:" + "a" * 64) == 0


@pytest.mark.parametrize(
    "plaintext",
    [b"not json", b'["a list"]', b'{"key": "obo:v1:%s", "cache": {"AccessToken": ["x"]}}'],
    ids=["not JSON", "not an object", "not MSAL's shape"],
)
def test_a_malformed_entry_is_a_miss(
    redis_server: RedisServer,
    stored: redis.Redis,
    caplog: pytest.LogCaptureFixture,
    plaintext: bytes,
) -> None:
    key = "b" * 64
    stored.set("obo:v1:" + key, Fernet(KEY_A).encrypt(plaintext.replace(b"%s", key.encode())))
    store = shared_store(redis_server.url, KEY_A)
    assert store.load(key) is None
    assert len(cache_warnings(caplog, "malformed")) == 1


def test_a_lock_never_released_holds_others_back_only_until_it_expires(
    redis_server: RedisServer, stored: redis.Redis
) -> None:
    stored.set("obo:v1:lock:alice:graph", "another instance", px=60_000)
    store = shared_store(redis_server.url, KEY_A, lock_seconds=0.2)
    entered = []
    with store.exclusive("alice:graph"):
        entered.append(True)
    assert entered == [True]
    assert stored.get("obo:v1:lock:alice:graph") == b"another instance"  # not ours to delete


def test_a_lock_is_released_when_its_block_ends(
    redis_server: RedisServer, stored: redis.Redis
) -> None:
    store = shared_store(redis_server.url, KEY_A)
    with store.exclusive("alice:graph"):
        assert 0 < stored.pttl("obo:v1:lock:alice:graph") <= LOCK_SECONDS * 1000
    assert stored.exists("obo:v1:lock:alice:graph") == 0


def test_a_lock_held_when_redis_stops_is_left_to_expire(own_redis: RedisServer) -> None:
    store = shared_store(own_redis.url, KEY_A)
    with store.exclusive("alice:graph"):
        own_redis.stop()
    assert store.redis.breaker.state is CircuitState.CLOSED  # one failure, below the threshold


# --- Redis down, full, back --------------------------------------------------------------------


def test_requests_succeed_with_redis_unreachable(
    stubs: StubServices,
    tokens: TokenFactory,
    own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    env = cache_env(own_redis.url, TOKEN_CACHE_BREAKER_FAILURES="2")
    own_redis.stop()
    client = instance(env)
    for number in range(1, 4):
        assert_me(client.get("/api/me", headers=bearer(tokens.valid())), f"graph-token-{number}")
    assert len(cache_warnings(caplog, "failed (ConnectionError")) == 2
    assert len(cache_warnings(caplog, "not trying it for 5s")) == 1


def test_the_breaker_skips_a_stopped_redis_and_closes_when_it_returns(
    stubs: StubServices, tokens: TokenFactory, own_redis: RedisServer
) -> None:
    clock = Clock()
    store = shared_store(own_redis.url, KEY_A, clock=clock)
    tokens_provider = provider(store)
    expires = time.time() + 3600
    assert tokens_provider.acquire(GRAPH, tokens.valid(), expires) == "graph-token-1"
    own_redis.stop()
    assert tokens_provider.acquire(GRAPH, tokens.valid(), expires) == "graph-token-2"
    assert store.redis.breaker.state is CircuitState.OPEN  # read, lock, read: 3 failures
    calls = store.redis.calls
    for number in range(3, 6):
        assert tokens_provider.acquire(GRAPH, tokens.valid(), expires) == f"graph-token-{number}"
    assert store.redis.calls == calls  # skipped, not tried

    own_redis.start()
    clock.now += store.redis.breaker.cooldown
    shared = tokens.valid()
    assert tokens_provider.acquire(GRAPH, shared, expires) == "graph-token-6"
    assert store.redis.breaker.state is CircuitState.CLOSED
    assert store.redis.calls > calls
    # Sharing resumed: another instance finds the token.
    assert provider(shared_store(own_redis.url, KEY_A)).acquire(GRAPH, shared, expires) == (
        "graph-token-6"
    )
    assert stubs.token_calls == 6


def test_a_failed_trial_opens_the_breaker_again(
    stubs: StubServices, tokens: TokenFactory, own_redis: RedisServer
) -> None:
    clock = Clock()
    store = shared_store(own_redis.url, KEY_A, clock=clock)
    own_redis.stop()
    tokens_provider = provider(store)
    expires = time.time() + 3600
    assert tokens_provider.acquire(GRAPH, tokens.valid(), expires) == "graph-token-1"
    calls = store.redis.calls
    clock.now += store.redis.breaker.cooldown
    assert tokens_provider.acquire(GRAPH, tokens.valid(), expires) == "graph-token-2"
    assert store.redis.calls == calls + 1  # one trial
    assert store.redis.breaker.state is CircuitState.OPEN


def test_requests_succeed_with_redis_full(
    stubs: StubServices,
    tokens: TokenFactory,
    own_redis: RedisServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    with own_redis.client() as admin:
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", "1")  # every write is refused with OOM
        client = instance(cache_env(own_redis.url))
        token = tokens.valid()
        assert_me(client.get("/api/me", headers=bearer(token)), "graph-token-1")
        assert_me(client.get("/api/me", headers=bearer(token)), "graph-token-1")
        assert stubs.token_calls == 1
        assert cache_warnings(caplog, "OutOfMemoryError")
        assert admin.dbsize() == 0


def test_password_and_tls(
    stubs: StubServices,
    tokens: TokenFactory,
    tmp_path: Path,
    tls: LoopbackTls,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(tls.ca_file))  # trust the test CA, as a system CA
    with RedisServer(tmp_path / "redis", password="s3cret/pass", tls=tls) as server:
        assert server.url.startswith("rediss://")
        env = cache_env(server.url, TOKEN_CACHE_PASSWORD="s3cret/pass")
        token = tokens.valid()
        assert_me(instance(env).get("/api/me", headers=bearer(token)), "graph-token-1")
        assert_me(instance(env).get("/api/me", headers=bearer(token)), "graph-token-1")
        assert stubs.token_calls == 1
        with server.client() as client:
            assert client.exists(cache_entry_key(token)) == 1


# --- single-flight ------------------------------------------------------------------------------


class Arrivals:
    """Counts requests as they reach the app, before any work of its own."""

    def __init__(self) -> None:
        self._count = 0
        self._changed = threading.Condition()

    def one_more(self) -> None:
        with self._changed:
            self._count += 1
            self._changed.notify_all()

    def wait_for(self, count: int) -> None:
        with self._changed:
            self._changed.wait_for(lambda: self._count >= count, timeout=30)


def hold_token_endpoint(stubs: StubServices, until: Callable[[], None]) -> None:
    """Make Entra's token endpoint answer each request only once ``until()`` returns."""
    token_endpoint = next(
        registered
        for registered in stubs.mock.registered()
        if registered.method == "POST" and registered.url == TOKEN_URL
    )
    answer = token_endpoint.callback

    def held(request: Any) -> Any:
        until()
        return answer(request)

    stubs.mock.replace(responses.CallbackResponse("POST", TOKEN_URL, callback=held))


@pytest.mark.parametrize("level_2", [False, True], ids=["in-process only", "with Redis"])
def test_concurrent_cold_requests_of_one_user_make_one_exchange(
    stubs: StubServices,
    tokens: TokenFactory,
    redis_server: RedisServer,
    stored: redis.Redis,
    level_2: bool,
) -> None:
    app = create_app(cache_env(redis_server.url) if level_2 else BASE_ENV)
    arrivals = Arrivals()
    app.before_request(arrivals.one_more)
    # Whoever reaches Entra first waits there until every request is in the app: without
    # single-flight, the others would be on their way to Entra too.
    hold_token_endpoint(stubs, lambda: arrivals.wait_for(THREADS))
    token = tokens.valid()
    start = threading.Barrier(THREADS)

    def call(_: int) -> Any:
        client = app.test_client()
        start.wait(timeout=30)
        return client.get("/api/me", headers=bearer(token))

    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(call, range(THREADS)))
    for answer in answers:
        assert_me(answer, "graph-token-1")
    assert stubs.token_calls == 1


def test_concurrent_cold_requests_on_two_instances_make_one_exchange(
    stubs: StubServices, tokens: TokenFactory, redis_server: RedisServer, stored: redis.Redis
) -> None:
    # A bound on waiting for the other instance that no loaded machine reaches.
    instances = [provider(shared_store(redis_server.url, KEY_A, lock_seconds=60)) for _ in range(2)]
    token, expires = tokens.valid(), time.time() + 3600
    start = threading.Barrier(THREADS)

    def call(number: int) -> str:
        start.wait(timeout=30)
        return instances[number % 2].acquire(GRAPH, token, expires)

    with ThreadPoolExecutor(THREADS) as pool:
        assert set(pool.map(call, range(THREADS))) == {"graph-token-1"}
    assert stubs.token_calls == 1
    assert stored.keys() == [cache_entry_key(token).encode()]


# --- settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("redis://127.0.0.1:6379/0", RedisAddress(False, "127.0.0.1", 6379, 0)),
        ("redis://cache.internal:6379", RedisAddress(False, "cache.internal", 6379, 0)),
        (
            "rediss://:p%40ss@contoso.redis.cache.windows.net:6380/2",
            RedisAddress(True, "contoso.redis.cache.windows.net", 6380, 2, None, "p@ss"),
        ),
        ("rediss://api:pw@[::1]:6380/0", RedisAddress(True, "::1", 6380, 0, "api", "pw")),
    ],
)
def test_a_redis_url_is_read(url: str, address: RedisAddress) -> None:
    settings = load_settings(cache_env(url, previous=KEY_B)).token_cache
    assert settings is not None
    assert settings.address == address
    assert settings.encryption_keys == (KEY_A, KEY_B)
    assert (settings.connect_timeout, settings.timeout) == (0.25, 0.25)
    assert (settings.breaker_failures, settings.breaker_seconds) == (3, 5)
    assert KEY_A not in repr(settings) and "p@ss" not in repr(settings)
    assert "p@ss" not in str(settings.address) and "pw" not in str(settings.address)


def test_without_a_url_there_is_no_shared_cache() -> None:
    assert load_settings({**BASE_ENV, "TOKEN_CACHE_ENCRYPTION_KEY": "ignored"}).token_cache is None


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:6379/0",
        "unix:///run/redis.sock",
        "redis://127.0.0.1/0",
        "redis://127.0.0.1:0/0",
        "redis://127.0.0.1:65536/0",
        "redis://127.0.0.1:６３７９/0",
        "redis://127.0.0.1:6379/x",
        "redis://127.0.0.1:6379/",
        "redis://127.0.0.1:6379/0?ssl=1",
        "redis://127.0.0.1:6379/0#top",
        "redis://:6379/0",
        "redis://h st:6379/0",
        "redis://:hunter2@host:port/0",
        "redis://ho\u0301st:6379/0",
    ],
)
def test_a_malformed_redis_url_stops_start_up_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError, match="^TOKEN_CACHE_URL must be redis://") as caught:
        load_settings(cache_env(url))
    assert "hunter2" not in str(caught.value)


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (
            {"TOKEN_CACHE_ENCRYPTION_KEY": ""},
            "TOKEN_CACHE_ENCRYPTION_KEY is required when TOKEN_CACHE_URL is set; make one with: "
            "python -c",
        ),
        (
            {"TOKEN_CACHE_ENCRYPTION_KEY": "short"},
            "TOKEN_CACHE_ENCRYPTION_KEY must be 32 random bytes in URL-safe base64",
        ),
        (
            {"TOKEN_CACHE_ENCRYPTION_KEY": "+" * 43 + "="},  # standard base64, not URL-safe
            "TOKEN_CACHE_ENCRYPTION_KEY must be 32 random bytes",
        ),
        (
            {"TOKEN_CACHE_ENCRYPTION_KEY_PREVIOUS": KEY_B[:-2]},
            "TOKEN_CACHE_ENCRYPTION_KEY_PREVIOUS must be 32 random bytes",
        ),
        (
            {"TOKEN_CACHE_PASSWORD": "x"},
            "TOKEN_CACHE_PASSWORD is set and TOKEN_CACHE_URL holds a password too",
        ),
        ({"TOKEN_CACHE_TIMEOUT": "1e-1"}, "TOKEN_CACHE_TIMEOUT must be a number"),
        ({"TOKEN_CACHE_CONNECT_TIMEOUT": "0"}, "TOKEN_CACHE_CONNECT_TIMEOUT must be a number"),
        ({"TOKEN_CACHE_BREAKER_FAILURES": "0"}, "TOKEN_CACHE_BREAKER_FAILURES must be a whole"),
        ({"TOKEN_CACHE_BREAKER_SECONDS": "nan"}, "TOKEN_CACHE_BREAKER_SECONDS must be a number"),
    ],
)
def test_a_bad_shared_cache_setting_names_its_variable(extra: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({**cache_env("redis://:pw@127.0.0.1:6379/0"), **extra})
    assert str(caught.value).startswith(message), str(caught.value)
