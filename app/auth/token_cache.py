"""A per-user MSAL token cache with a bounded number of users.

MSAL Python keeps one cache per application. Shared by every user of a middle tier, it grows
without bound and its lookups scan every entry. Here each user (keyed by a hash of their
incoming token, the same key MSAL.NET uses for OBO) gets a partition of their own; the
partition in use is chosen per thread through a context variable, so one
ConfidentialClientApplication serves all users concurrently. Partitions are evicted least
recently used first, and dropped once the incoming token they belong to has expired.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import msal

SWEEP_EVERY_SECONDS = 60.0


@dataclass
class _Partition:
    expires_at: float
    data: dict[str, Any] = field(default_factory=dict)


class PartitionedTokenCache(msal.TokenCache):  # type: ignore[misc]
    """An msal.TokenCache whose storage is the current user's partition."""

    def __init__(self, max_users: int, clock: Callable[[], float] = time.time) -> None:
        self._partitions: OrderedDict[str, _Partition] = OrderedDict()
        self._partitions_lock = threading.Lock()
        self._current: ContextVar[dict[str, Any] | None] = ContextVar(
            f"token_cache_partition_{id(self)}", default=None
        )
        self._max_users = max_users
        self._clock = clock
        self._next_sweep = clock() + SWEEP_EVERY_SECONDS
        super().__init__()

    # MSAL reads and writes ``self._cache`` (under ``self._lock``); route it to the partition.
    @property
    def _cache(self) -> dict[str, Any]:
        data = self._current.get()
        if data is None:
            raise RuntimeError("token cache used outside a user partition")
        return data

    @_cache.setter
    def _cache(self, value: dict[str, Any]) -> None:
        """TokenCache.__init__ assigns an empty dict; the partitions hold all data."""

    def __len__(self) -> int:
        return len(self._partitions)

    @contextmanager
    def partition(self, key: str, expires_at: float) -> Iterator[None]:
        """Make ``key``'s partition the one MSAL sees in this thread for the block."""
        data = self._checkout(key, expires_at)
        token = self._current.set(data)
        try:
            yield
        finally:
            self._current.reset(token)

    def remove_access_tokens(self, scopes: tuple[str, ...]) -> int:
        """Remove the current partition's access tokens for ``scopes``; the refresh token,
        the account and other APIs' tokens stay. Returns how many were removed."""
        found = list(self.search(self.CredentialType.ACCESS_TOKEN, target=list(scopes)))
        for entry in found:
            self.remove_at(entry)
        return len(found)

    def _checkout(self, key: str, expires_at: float) -> dict[str, Any]:
        now = self._clock()
        with self._partitions_lock:
            if now >= self._next_sweep:
                self._sweep(now)
            partition = self._partitions.get(key)
            if partition is None or partition.expires_at <= now:
                partition = _Partition(expires_at=expires_at)
                self._partitions[key] = partition
            self._partitions.move_to_end(key)
            while len(self._partitions) > self._max_users:
                self._partitions.popitem(last=False)
            return partition.data

    def _sweep(self, now: float) -> None:
        expired = [key for key, part in self._partitions.items() if part.expires_at <= now]
        for key in expired:
            del self._partitions[key]
        self._next_sweep = now + SWEEP_EVERY_SECONDS
