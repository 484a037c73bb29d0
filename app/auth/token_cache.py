"""A per-user MSAL token cache with a bounded number of users, optionally shared by instances.

MSAL Python keeps one cache per application. Shared by every user of a middle tier, it grows
without bound and its lookups scan every entry. Here each user (keyed by a hash of their
incoming token, the same key MSAL.NET uses for OBO) gets a partition of their own; the
partition in use is chosen per thread through a context variable, so one
ConfidentialClientApplication serves all users concurrently. Partitions are evicted least
recently used first, and dropped once the incoming token they belong to has expired.

That is level 1. Level 2, when configured, is a store every instance of the API shares
(Redis: app.auth.shared_cache). When this process's copy of a partition lacks the token a
request needs, level 2's copy is merged in before Entra is asked (``refresh_from_shared``);
a partition MSAL changed (a token added by an exchange or a refresh, a token removed) is
written through to it when the block that changed it ends, to live as long as its tokens do
(``entry_lifetime``). Instances take turns to call Entra for one user (``exclusive``).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, Protocol

import msal

SWEEP_EVERY_SECONDS = 60.0
# MSAL treats an access token this close to expiry as expired, and refreshes it.
MSAL_EXPIRY_MARGIN = 5 * 60
ACCESS_TOKEN = msal.TokenCache.CredentialType.ACCESS_TOKEN
REFRESH_TOKEN = msal.TokenCache.CredentialType.REFRESH_TOKEN


class SharedPartitions(Protocol):
    """Level 2: partitions kept where every instance finds them."""

    def load(self, key: str) -> dict[str, Any] | None: ...

    def save(self, key: str, partition: dict[str, Any], ttl: float) -> None: ...

    def exclusive(self, name: str) -> AbstractContextManager[None]: ...


@dataclass
class _Partition:
    key: str
    expires_at: float
    data: dict[str, Any] = field(default_factory=dict)
    changes: int = 0  # MSAL writes so far, to tell whether a block changed the partition


class PartitionedTokenCache(msal.TokenCache):  # type: ignore[misc]
    """An msal.TokenCache whose storage is the current user's partition."""

    def __init__(
        self,
        max_users: int,
        clock: Callable[[], float] = time.time,
        shared: SharedPartitions | None = None,
    ) -> None:
        self._partitions: OrderedDict[str, _Partition] = OrderedDict()
        self._partitions_lock = threading.Lock()
        self._current: ContextVar[_Partition | None] = ContextVar(
            f"token_cache_partition_{id(self)}", default=None
        )
        self._max_users = max_users
        self._clock = clock
        self._next_sweep = clock() + SWEEP_EVERY_SECONDS
        self._shared = shared
        super().__init__()

    # MSAL reads and writes ``self._cache`` (under ``self._lock``); route it to the partition.
    @property
    def _cache(self) -> dict[str, Any]:
        return self._in_use().data

    @_cache.setter
    def _cache(self, value: dict[str, Any]) -> None:
        """TokenCache.__init__ assigns an empty dict; the partitions hold all data."""

    def modify(
        self,
        credential_type: str,
        old_entry: dict[str, Any],
        new_key_value_pairs: dict[str, Any] | None = None,
    ) -> None:
        """MSAL adds, changes and removes every entry through here; count the change."""
        with self._lock:
            super().modify(credential_type, old_entry, new_key_value_pairs)
            self._in_use().changes += 1

    def __len__(self) -> int:
        return len(self._partitions)

    def __bool__(self) -> bool:
        # MSAL takes ``token_cache or TokenCache()``: an empty cache must not read as "no
        # cache", or every user would share a plain one.
        return True

    @property
    def is_shared(self) -> bool:
        """Whether there is a level 2."""
        return self._shared is not None

    @contextmanager
    def partition(self, key: str, expires_at: float) -> Iterator[None]:
        """Make ``key``'s partition the one MSAL sees in this thread for the block; if MSAL
        changed it, write it through to level 2 when the block ends."""
        data = self._checkout(key, expires_at)
        changes = data.changes
        token = self._current.set(data)
        try:
            yield
        finally:
            self._current.reset(token)
            if self._shared is not None and data.changes != changes:
                self._write_through(self._shared, data)

    def holds_access_token(self, scopes: tuple[str, ...]) -> bool:
        """Whether the current partition has an access token for ``scopes`` that MSAL's
        silent lookup returns without calling Entra: by MSAL's rules, one more than 5 minutes
        from expiry and not past its ``refresh_on``."""
        now = self._clock()
        return any(
            _epoch_field(entry, "expires_on") - now >= MSAL_EXPIRY_MARGIN
            and _epoch_field(entry, "refresh_on", default=math.inf) > now
            for entry in self.search(ACCESS_TOKEN, target=list(scopes))
        )

    def refresh_from_shared(self, scopes: tuple[str, ...]) -> bool:
        """Merge level 2's copy of the current partition into it (another instance may have
        obtained tokens this process has not seen); then whether it holds an access token for
        ``scopes``."""
        if self._shared is not None:
            self._merge_shared(self._shared, self._in_use())
        return self.holds_access_token(scopes)

    @contextmanager
    def exclusive(self, key: str, purpose: str) -> Iterator[None]:
        """Across instances, one block at a time for ``key``'s ``purpose`` (a call to Entra).
        On entry, what another instance wrote to level 2 meanwhile (while this one waited its
        turn, or just before) is merged into this process's partition."""
        if self._shared is None:
            yield
            return
        with self._shared.exclusive(f"{key}:{purpose}"):
            with self._partitions_lock:
                held = self._partitions.get(key)
            if held is not None:  # else the next block starts empty and refreshes
                self._merge_shared(self._shared, held)
            yield

    def remove_access_tokens(self, scopes: tuple[str, ...]) -> int:
        """Remove the current partition's access tokens for ``scopes``; the refresh token,
        the account and other APIs' tokens stay. Returns how many were removed."""
        found = list(self.search(ACCESS_TOKEN, target=list(scopes)))
        for entry in found:
            self.remove_at(entry)
        return len(found)

    def _in_use(self) -> _Partition:
        data = self._current.get()
        if data is None:
            raise RuntimeError("token cache used outside a user partition")
        return data

    def _checkout(self, key: str, expires_at: float) -> _Partition:
        now = self._clock()
        with self._partitions_lock:
            if now >= self._next_sweep:
                self._sweep(now)
            data = self._partitions.get(key)
            if data is None or data.expires_at <= now:
                data = _Partition(key, expires_at)
                self._partitions[key] = data
            self._partitions.move_to_end(key)
            while len(self._partitions) > self._max_users:
                self._partitions.popitem(last=False)
            return data

    def _sweep(self, now: float) -> None:
        expired = [key for key, part in self._partitions.items() if part.expires_at <= now]
        for key in expired:
            del self._partitions[key]
        self._next_sweep = now + SWEEP_EVERY_SECONDS

    def _write_through(self, shared: SharedPartitions, data: _Partition) -> None:
        now = self._clock()
        with self._lock:
            live = live_entries(data.data, now)
        shared.save(data.key, live, entry_lifetime(live, data.expires_at, now))

    def _merge_shared(self, shared: SharedPartitions, data: _Partition) -> None:
        """Level 2's entries over this process's: they are another instance's, newer."""
        stored = shared.load(data.key)
        if not stored:
            return
        with self._lock:
            for credential_type, entries in stored.items():
                data.data.setdefault(credential_type, {}).update(entries)


def live_entries(partition: dict[str, Any], now: float) -> dict[str, Any]:
    """A copy of ``partition`` without expired access tokens. MSAL replaces an entry rather
    than editing it, so copying two levels is a snapshot."""
    copy = {credential_type: dict(entries) for credential_type, entries in partition.items()}
    if ACCESS_TOKEN in copy:
        copy[ACCESS_TOKEN] = {
            key: entry
            for key, entry in copy[ACCESS_TOKEN].items()
            if _epoch_field(entry, "expires_on") > now
        }
    return copy


def entry_lifetime(partition: dict[str, Any], expires_at: float, now: float) -> float:
    """Seconds a stored partition is worth keeping.

    Never past ``expires_at``, the incoming token's expiry: the partition's key is that
    token's hash, and an expired token is refused before the cache is asked. Within that, as
    long as its tokens live: a refresh token (Entra does not say how long it lives; days)
    lasts the whole time; without one, the last access token's expiry ends it. Nothing live
    left: 0, and the entry is deleted.
    """
    if partition.get(REFRESH_TOKEN):
        end = expires_at
    else:
        expiries = [
            _epoch_field(entry, "expires_on") for entry in partition.get(ACCESS_TOKEN, {}).values()
        ]
        end = min(expires_at, max(expiries, default=now))
    return max(0.0, end - now)


def _epoch_field(entry: dict[str, Any], name: str, default: float = 0) -> float:
    """A time MSAL keeps in an entry (epoch seconds as a string), or ``default``."""
    value = entry.get(name)
    if isinstance(value, str) and 0 < len(value) <= 12 and value.isascii() and value.isdigit():
        return int(value)
    return default
