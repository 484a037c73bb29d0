"""OpenID metadata discovery and the tenant's signing keys, cached per process.

Known keys are served from memory without locking. Keys are refreshed on a schedule (in the
background, so a slow key endpoint never stalls a request whose key is cached) and when a token
names an unknown ``kid`` -- at most once per ``min_refresh`` seconds, single-flight, failures
included, so random kids cannot turn into a request flood against Entra. A fetched document is
checked before it replaces the last good one.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric.rsa import RSAPublicKey

from app.http import json_object
from app.logs import describe_exception
from app.observability import metrics

log = logging.getLogger(__name__)

MAX_DOCUMENT_BYTES = 512 * 1024
# Scheduled refresh: Entra rolls keys over with weeks of notice; a day keeps up with that.
REFRESH_SECONDS = 24 * 3600.0
# Refreshes for an unknown kid, at most one per this interval (failures included).
MIN_REFRESH_SECONDS = 300.0
# Until keys first load every request fails, so cold retries come sooner than refreshes.
COLD_RETRY_SECONDS = 10.0
# RFC 7518 section 3.3: RS256 keys MUST be 2048 bits or larger.
MIN_RSA_KEY_BITS = 2048


class KeysUnavailable(Exception):
    """No signing keys could be loaded yet; the caller should answer 503."""

    def __init__(self, retry_after: int) -> None:
        super().__init__(f"signing keys unavailable; retry in {retry_after}s")
        self.retry_after = retry_after


class UnknownSigningKey(LookupError):
    """The token names a key the tenant does not publish."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    key: RSAPublicKey
    issuer: str | None  # Entra publishes the issuer a key may sign for, possibly templated


@dataclass(frozen=True)
class KeySet:
    issuer: str
    jwks_uri: str
    keys: dict[str, SigningKey]
    fetched_at: float


class SigningKeyCache:
    """The tenant's issuer and RSA signing keys, keyed by ``kid``."""

    def __init__(
        self,
        metadata_url: str,
        session: requests.Session,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        min_refresh_seconds: float = MIN_REFRESH_SECONDS,
        cold_retry_seconds: float = COLD_RETRY_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._metadata_url = metadata_url
        self._session = session
        self._refresh_seconds = refresh_seconds
        self._min_refresh = min_refresh_seconds
        self._cold_retry = cold_retry_seconds
        self._clock = clock
        self._current: KeySet | None = None
        self._lock = threading.Lock()
        self._last_attempt: float | None = None  # cold-start loads
        self._last_on_demand: float | None = None  # refreshes for unknown kids
        self._next_scheduled = 0.0
        self._background: threading.Thread | None = None

    @property
    def current(self) -> KeySet | None:
        return self._current

    def issuer(self) -> str:
        """The discovered issuer, loading metadata on first use."""
        return self._loaded().issuer

    def get(self, kid: str) -> SigningKey:
        """The key named ``kid``; refreshes at most once per interval when it is unknown."""
        current = self._current
        if current is not None and kid in current.keys:
            self._maybe_refresh_in_background()
            return current.keys[kid]
        if current is None:
            current = self._loaded()
        else:
            self._refresh_for_unknown_kid()
            current = self._loaded()
        if kid not in current.keys:
            raise UnknownSigningKey(kid)
        return current.keys[kid]

    def _loaded(self) -> KeySet:
        if self._current is None:
            self._refresh_if_allowed()
        current = self._current
        if current is None:
            raise KeysUnavailable(self._seconds_until_next_attempt())
        return current

    def _seconds_until_next_attempt(self) -> int:
        if self._last_attempt is None:
            return 1
        remaining = self._last_attempt + self._cold_retry - self._clock()
        return max(1, int(remaining + 0.999))

    def _refresh_if_allowed(self) -> None:
        """Load keys at a cold start, retrying failures every ``cold_retry_seconds``."""
        with self._lock:  # single flight: waiters find the attempt just made and return
            now = self._clock()
            if self._current is not None:
                return
            if self._last_attempt is not None and now - self._last_attempt < self._cold_retry:
                return
            self._last_attempt = now
            self._refresh_locked()

    def _refresh_for_unknown_kid(self) -> None:
        """Refresh for a kid we do not know, at most once per ``min_refresh`` seconds.

        Only these refreshes (failed ones included) count toward the limit: a key rotated in
        right after start-up or a scheduled refresh is still picked up at once.
        """
        with self._lock:
            now = self._clock()
            if self._last_on_demand is not None and now - self._last_on_demand < self._min_refresh:
                return
            self._last_on_demand = now
            self._refresh_locked()

    def _maybe_refresh_in_background(self) -> None:
        if self._clock() < self._next_scheduled or self._lock.locked():
            return
        background = self._background
        if background is not None and background.is_alive():
            return
        self._background = threading.Thread(
            target=self._scheduled_refresh, name="signing-key-refresh", daemon=True
        )
        self._background.start()

    def _scheduled_refresh(self) -> None:
        with self._lock:
            if self._clock() >= self._next_scheduled:
                self._refresh_locked()

    def _refresh_locked(self) -> None:
        try:
            keyset = self._fetch()
        except (requests.RequestException, ValueError) as exc:
            # Keep the last good keys; try the schedule again after the short interval.
            log.warning(
                "signing key refresh failed, keeping %s: %s",
                "previous keys" if self._current else "no keys",
                describe_exception(exc),
            )
            self._next_scheduled = self._clock() + self._min_refresh
            metrics.signing_key_refresh("failed")
            return
        self._current = keyset
        metrics.signing_key_refresh("ok")
        jitter = random.uniform(0.9, 1.1)  # noqa: S311 - spreads refreshes across workers
        self._next_scheduled = keyset.fetched_at + self._refresh_seconds * jitter
        log.info("loaded %d signing keys from %s", len(keyset.keys), keyset.jwks_uri)

    def _fetch(self) -> KeySet:
        metadata = self._get_json(self._metadata_url)
        issuer, jwks_uri = _parse_metadata(metadata)
        keys = _parse_jwks(self._get_json(jwks_uri))
        return KeySet(issuer=issuer, jwks_uri=jwks_uri, keys=keys, fetched_at=self._clock())

    def _get_json(self, url: str) -> dict[str, Any]:
        response = self._session.get(url)  # a TimeoutSession: the body is read, bounded
        if response.status_code != 200:
            raise ValueError(f"{url} answered HTTP {response.status_code}")
        return json_object(response)


def _parse_metadata(document: dict[str, Any]) -> tuple[str, str]:
    issuer = document.get("issuer")
    jwks_uri = document.get("jwks_uri")
    if not isinstance(issuer, str) or not issuer.startswith("https://"):
        raise ValueError("OpenID configuration has no https issuer")
    if not isinstance(jwks_uri, str) or urlsplit(jwks_uri).scheme != "https":
        raise ValueError("OpenID configuration has no https jwks_uri")
    return issuer, jwks_uri


def _parse_jwks(document: dict[str, Any]) -> dict[str, SigningKey]:
    entries = document.get("keys")
    if not isinstance(entries, list):
        raise ValueError("JWKS has no keys list")
    keys = {}
    for entry in entries:
        key = _parse_signing_key(entry)
        if key is not None:
            keys[key.kid] = key
    if not keys:
        raise ValueError("JWKS has no usable RSA signing key")
    return keys


def _parse_signing_key(entry: object) -> SigningKey | None:
    """An RSA signature key with a kid, or None for anything else (skipped, not fatal)."""
    if not isinstance(entry, dict) or entry.get("kty") != "RSA":
        return None
    if entry.get("use", "sig") != "sig" or not isinstance(entry.get("kid"), str):
        return None
    issuer = entry.get("issuer")
    try:
        parsed = jwt.PyJWK(entry, algorithm="RS256")
    except jwt.PyJWTError:
        return None
    if not isinstance(parsed.key, RSAPublicKey):
        return None  # a private key published by mistake: not a key to verify with
    if parsed.key.key_size < MIN_RSA_KEY_BITS:
        log.warning(
            "ignoring signing key %r: RSA key of %d bits, under the %d RFC 7518 requires",
            entry["kid"][:64],
            parsed.key.key_size,
            MIN_RSA_KEY_BITS,
        )
        return None
    return SigningKey(
        kid=entry["kid"], key=parsed.key, issuer=issuer if isinstance(issuer, str) else None
    )
