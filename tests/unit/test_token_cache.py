"""The per-user token cache: partitions, LRU bound and expiry."""

from __future__ import annotations

import pytest

from app.auth.token_cache import PartitionedTokenCache


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_partitions_are_isolated() -> None:
    cache = PartitionedTokenCache(max_users=10)
    with cache.partition("alice", expires_at=10**10):
        cache._cache["AccessToken"] = {"k": {"secret": "a"}}
    with cache.partition("bob", expires_at=10**10):
        assert cache._cache == {}
    with cache.partition("alice", expires_at=10**10):
        assert cache._cache == {"AccessToken": {"k": {"secret": "a"}}}
    assert len(cache) == 2


def test_use_outside_a_partition_is_a_bug() -> None:
    cache = PartitionedTokenCache(max_users=10)
    with pytest.raises(RuntimeError, match="outside a user partition"):
        list(cache.search("AccessToken"))


def test_least_recently_used_user_is_evicted() -> None:
    cache = PartitionedTokenCache(max_users=2)
    for user in ("a", "b"):
        with cache.partition(user, expires_at=10**10):
            cache._cache["x"] = user
    with cache.partition("a", expires_at=10**10):  # a is now the most recent
        pass
    with cache.partition("c", expires_at=10**10):
        pass
    assert len(cache) == 2
    with cache.partition("b", expires_at=10**10):
        assert cache._cache == {}  # b was evicted and starts empty
    with cache.partition("a", expires_at=10**10):
        assert cache._cache == {}  # ...and re-adding b evicted a


def test_expired_partitions_are_dropped() -> None:
    clock = Clock()
    cache = PartitionedTokenCache(max_users=100, clock=clock)
    with cache.partition("old", expires_at=clock.now + 30):
        cache._cache["x"] = 1
    clock.now += 31
    with cache.partition("old", expires_at=clock.now + 30):
        assert cache._cache == {}  # an expired partition is never served
    with cache.partition("other", expires_at=clock.now + 10):
        pass
    clock.now += 61  # past the sweep interval: both are expired and swept
    with cache.partition("new", expires_at=clock.now + 3600):
        pass
    assert len(cache) == 1
