"""Level 2 of the token cache: user partitions shared by every instance through Redis.

One Redis entry per partition, ``obo:v1:<partition key>`` (the partition key is already a
SHA-256 of the incoming token; the token itself is never stored or sent). Each entry is the
partition's JSON sealed with Fernet (AES-CBC + HMAC-SHA256) under TOKEN_CACHE_ENCRYPTION_KEY,
with the entry's own Redis key inside the authenticated plaintext: an entry copied to another
key, tampered with, or sealed with a key this instance does not hold reads as a miss.

Redis is a cache, never a dependency: every call has short timeouts, and a circuit breaker
skips Redis altogether after consecutive failures. Any failure reads as a miss, and a write
that fails is dropped; the caller's request goes on with its own process's cache.
"""

from __future__ import annotations

import json
import logging
import secrets
import threading
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeGuard, TypeVar

import redis
from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from redis.backoff import NoBackoff
from redis.retry import Retry

from app.auth.circuit_breaker import CircuitBreaker
from app.config import SharedCacheSettings
from app.logs import describe_exception

log = logging.getLogger(__name__)

T = TypeVar("T")

ENTRY_PREFIX = "obo:v1:"
LOCK_PREFIX = "obo:v1:lock:"
# How long one instance may hold the right to exchange a user's token before others stop
# waiting for it: an OBO exchange takes well under a second; past this, each goes its own way.
LOCK_SECONDS = 3.0
LOCK_POLL_SECONDS = 0.05
# Deletes the lock only if it still holds our value: it may have expired and been taken since.
_RELEASE_SCRIPT = """
if redis.call("get", KEYS[1]) == ARGV[1] then
    return redis.call("del", KEYS[1])
end
return 0
"""


class CacheUnavailable(Exception):
    """Redis did not answer (or the circuit breaker skipped it); the caller carries on."""


class UnreadableEntry(Exception):
    """An entry that cannot be used; ``kind`` says why, for a log line without key material."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class GuardedRedis:
    """A Redis client behind a circuit breaker; counts the calls it actually sends."""

    def __init__(self, client: redis.Redis, breaker: CircuitBreaker) -> None:
        self.client = client
        self.breaker = breaker
        self.calls = 0

    def run(self, operation: str, command: Callable[[redis.Redis], T]) -> T:
        """``command(client)``'s answer; CacheUnavailable if Redis fails or is being skipped."""
        if not self.breaker.allow():
            raise CacheUnavailable(operation)
        self.calls += 1
        try:
            answer = command(self.client)
        except (redis.RedisError, OSError) as exc:
            self._failed(operation, exc)
            raise CacheUnavailable(operation) from exc
        if self.breaker.succeeded():
            log.info("token cache: Redis answers again; sharing tokens between instances")
        return answer

    def _failed(self, operation: str, exc: BaseException) -> None:
        log.warning(
            "token cache: Redis %s failed (%s); this request uses the in-process cache",
            operation,
            describe_exception(exc),
        )
        if self.breaker.failed():
            log.warning(
                "token cache: Redis is failing; not trying it for %gs", self.breaker.cooldown
            )


class EntryCipher:
    """Seals a partition for one Redis key, and opens it only under that key."""

    def __init__(self, keys: tuple[str, ...]) -> None:
        self._fernet = MultiFernet([Fernet(key) for key in keys])

    def seal(self, name: str, partition: dict[str, Any]) -> bytes:
        plaintext = json.dumps({"key": name, "cache": partition}, separators=(",", ":"))
        return self._fernet.encrypt(plaintext.encode("utf-8"))

    def open(self, name: str, sealed: bytes | str) -> dict[str, Any]:
        try:
            document = json.loads(self._fernet.decrypt(sealed))
        except InvalidToken:
            raise UnreadableEntry(
                "undecryptable: tampered with, or sealed with a key this instance does not hold"
            ) from None
        except ValueError:
            raise UnreadableEntry("malformed") from None
        if not isinstance(document, dict) or not _is_partition(document.get("cache")):
            raise UnreadableEntry("malformed")
        if document.get("key") != name:
            raise UnreadableEntry("sealed for another key: copied from another user's entry")
        partition: dict[str, Any] = document["cache"]
        return partition


def _is_partition(value: object) -> TypeGuard[dict[str, Any]]:
    """MSAL's cache shape: {credential type: {entry key: {field: value}}}."""
    return isinstance(value, dict) and all(
        isinstance(entries, dict) and all(isinstance(entry, dict) for entry in entries.values())
        for entries in value.values()
    )


class RedisPartitionStore:
    """Partitions in Redis, sealed; what ``PartitionedTokenCache`` uses as its level 2."""

    def __init__(
        self, guarded: GuardedRedis, cipher: EntryCipher, lock_seconds: float = LOCK_SECONDS
    ) -> None:
        self.redis = guarded
        self._cipher = cipher
        self._lock_seconds = lock_seconds
        self._release = guarded.client.register_script(_RELEASE_SCRIPT)
        self._warned: set[str] = set()
        self._warned_lock = threading.Lock()
        # A store that is dropped (an app built and discarded, as tests do) closes its
        # connections, rather than leaving their sockets to the garbage collector.
        weakref.finalize(self, guarded.client.close)

    def load(self, key: str) -> dict[str, Any] | None:
        """The partition stored under ``key``, or None (missing, unreadable, Redis down)."""
        name = ENTRY_PREFIX + key
        try:
            sealed = self.redis.run("read", lambda client: client.get(name))
        except CacheUnavailable:
            return None
        if sealed is None:
            return None
        try:
            return self._cipher.open(name, sealed)
        except UnreadableEntry as exc:
            self._warn_once(exc.kind)
            return None

    def save(self, key: str, partition: dict[str, Any], ttl: float) -> None:
        """Store ``partition`` for ``ttl`` seconds; a ttl under a millisecond deletes it."""
        name = ENTRY_PREFIX + key
        millis = int(ttl * 1000)
        sealed = self._cipher.seal(name, partition) if millis > 0 else b""
        try:
            if millis > 0:
                self.redis.run("write", lambda client: client.set(name, sealed, px=millis))
            else:
                self.redis.run("delete", lambda client: client.delete(name))
        except CacheUnavailable:
            pass  # logged by GuardedRedis; the next write of this partition tries again

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        """Across instances, one holder of ``name`` at a time: a Redis lock (SET NX PX) that
        expires after LOCK_SECONDS. If another instance holds it, wait (bounded by that
        expiry) until it is released, then go ahead: by then that instance has written its
        result. Without Redis, go ahead at once."""
        lock = LOCK_PREFIX + name
        owner = secrets.token_hex(16)
        millis = int(self._lock_seconds * 1000)
        acquired: bool | None
        try:
            acquired = bool(
                self.redis.run("lock", lambda client: client.set(lock, owner, nx=True, px=millis))
            )
        except CacheUnavailable:
            acquired = None  # nothing to coordinate with: go ahead unlocked
        if acquired is False:
            self._wait_released(lock)
            yield
            return
        try:
            yield
        finally:
            if acquired:
                self._unlock(lock, owner)

    def _unlock(self, lock: str, owner: str) -> None:
        try:
            self.redis.run(
                "unlock", lambda client: self._release(keys=[lock], args=[owner], client=client)
            )
        except CacheUnavailable:
            pass  # it expires by itself

    def _wait_released(self, lock: str) -> None:
        deadline = time.monotonic() + self._lock_seconds
        try:
            while self.redis.run("wait", lambda client: client.exists(lock)):
                if time.monotonic() >= deadline:
                    return
                time.sleep(LOCK_POLL_SECONDS)
        except CacheUnavailable:
            return

    def _warn_once(self, kind: str) -> None:
        with self._warned_lock:
            if kind in self._warned:
                return
            self._warned.add(kind)
        log.warning(
            "token cache: a Redis entry was %s; treated as a miss (logged once per kind)", kind
        )


def open_shared_cache(
    settings: SharedCacheSettings | None,
    clock: Callable[[], float] = time.monotonic,
    lock_seconds: float = LOCK_SECONDS,
) -> RedisPartitionStore | None:
    """The Redis level of the token cache, or None when TOKEN_CACHE_URL is not set.

    Nothing connects here: start-up never waits for Redis."""
    if settings is None:
        return None
    address = settings.address
    client = redis.Redis(
        host=address.host,
        port=address.port,
        db=address.db,
        username=address.username,
        password=address.password,
        ssl=address.tls,
        socket_connect_timeout=settings.connect_timeout,
        socket_timeout=settings.timeout,
        retry=Retry(NoBackoff(), 0),  # one try: the circuit breaker decides what comes next
        client_name="entra-obo-api",
    )
    breaker = CircuitBreaker(settings.breaker_failures, settings.breaker_seconds, clock)
    log.info("token cache: level 2 on Redis at %s", address)
    return RedisPartitionStore(
        GuardedRedis(client, breaker), EntryCipher(settings.encryption_keys), lock_seconds
    )
