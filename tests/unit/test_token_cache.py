"""The per-user token cache: partitions, LRU bound, expiry, and writing through to level 2."""

from __future__ import annotations

import copy
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import msal
import pytest
import responses

from app.auth.token_cache import PartitionedTokenCache, entry_lifetime, live_entries


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@responses.activate
def test_an_empty_cache_is_still_the_cache_msal_uses() -> None:
    authority = "https://login.microsoftonline.com/9188040d-6c67-4c5b-b112-36a304b66dad"
    responses.get(
        f"{authority}/v2.0/.well-known/openid-configuration",
        json={
            "authorization_endpoint": f"{authority}/oauth2/v2.0/authorize",
            "token_endpoint": f"{authority}/oauth2/v2.0/token",
            "issuer": f"{authority}/v2.0",
        },
    )
    cache = PartitionedTokenCache(max_users=10)
    app = msal.ConfidentialClientApplication(
        "6e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b",
        client_credential="unit-test-secret-value",
        authority=authority,
        instance_discovery=False,
        token_cache=cache,
    )
    assert len(cache) == 0
    assert app.token_cache is cache


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


# --- level 2 ------------------------------------------------------------------------------------

ACCESS_TOKEN = {
    "credential_type": "AccessToken",
    "secret": "at",
    "home_account_id": "u.t",
    "environment": "login.microsoftonline.com",
    "client_id": "c",
    "realm": "t",
    "target": "https://graph.microsoft.com/.default",
    "expires_on": "2000",
}
REFRESH_TOKEN = {
    "credential_type": "RefreshToken",
    "secret": "rt",
    "home_account_id": "u.t",
    "environment": "login.microsoftonline.com",
    "client_id": "c",
}


class MemoryShared:
    """Level 2 in a dict, counting what the cache asks of it."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.loads = 0
        self.saves: list[tuple[str, float]] = []

    def load(self, key: str) -> dict[str, Any] | None:
        self.loads += 1
        return copy.deepcopy(self.entries.get(key))

    def save(self, key: str, partition: dict[str, Any], ttl: float) -> None:
        self.saves.append((key, ttl))
        self.entries[key] = copy.deepcopy(partition)

    @contextmanager
    def exclusive(self, name: str) -> Iterator[None]:
        yield


def test_what_msal_changes_is_written_through_when_the_block_ends() -> None:
    clock, shared = Clock(), MemoryShared()
    cache = PartitionedTokenCache(max_users=10, clock=clock, shared=shared)
    with cache.partition("alice", expires_at=clock.now + 600):
        cache.modify("AccessToken", ACCESS_TOKEN, ACCESS_TOKEN)
        cache.modify("RefreshToken", REFRESH_TOKEN, REFRESH_TOKEN)
        assert shared.saves == []  # once, at the end of the block
    assert shared.saves == [("alice", 600)]
    assert [
        entry["secret"]
        for entries in shared.entries["alice"].values()
        for entry in entries.values()
    ] == ["at", "rt"]


def test_a_block_that_only_reads_writes_nothing() -> None:
    clock, shared = Clock(), MemoryShared()
    cache = PartitionedTokenCache(max_users=10, clock=clock, shared=shared)
    with cache.partition("alice", expires_at=clock.now + 600):
        cache.modify("AccessToken", ACCESS_TOKEN, ACCESS_TOKEN)
    with cache.partition("alice", expires_at=clock.now + 600):
        assert cache._get("AccessToken", cache.key_makers["AccessToken"](**ACCESS_TOKEN))
    assert len(shared.saves) == 1


def test_level_2_is_read_only_when_asked_and_merged_over_what_the_process_holds() -> None:
    clock, shared = Clock(), MemoryShared()
    cache = PartitionedTokenCache(max_users=10, clock=clock, shared=shared)
    live = {**ACCESS_TOKEN, "expires_on": str(int(time.time()) + 3600)}  # MSAL drops expired
    arm = {**live, "secret": "arm", "target": "https://management.azure.com/.default"}
    shared.entries["alice"] = {"AccessToken": {"arm": arm}}
    with cache.partition("alice", expires_at=clock.now + 600):
        cache._cache["AccessToken"] = {"graph": live}
        assert shared.loads == 0
        assert cache.refresh_from_shared(("https://management.azure.com/.default",))
        assert cache._cache == {"AccessToken": {"graph": live, "arm": arm}}
    assert shared.loads == 1
    assert shared.saves == []  # what came from level 2 is not written back


def test_the_exclusive_block_merges_what_another_instance_stored_meanwhile() -> None:
    clock, shared = Clock(), MemoryShared()
    cache = PartitionedTokenCache(max_users=10, clock=clock, shared=shared)
    with cache.partition("alice", expires_at=clock.now + 600):
        pass
    shared.entries["alice"] = {"AccessToken": {"k": ACCESS_TOKEN}}  # by another instance
    with cache.exclusive("alice", "graph"):
        with cache.partition("alice", expires_at=clock.now + 600):
            assert cache._cache == {"AccessToken": {"k": ACCESS_TOKEN}}
    with cache.exclusive("bob", "graph"):  # not held here: nothing to merge into
        pass
    assert shared.loads == 1


def test_without_level_2_nothing_is_shared() -> None:
    cache = PartitionedTokenCache(max_users=10)
    assert not cache.is_shared
    with cache.exclusive("alice", "graph"), cache.partition("alice", expires_at=10**10):
        cache.modify("AccessToken", ACCESS_TOKEN, ACCESS_TOKEN)
        assert not cache.refresh_from_shared(("https://graph.microsoft.com/.default",))


@pytest.mark.parametrize(
    ("partition", "incoming_expiry", "lifetime"),
    [
        ({"RefreshToken": {"r": REFRESH_TOKEN}, "AccessToken": {"a": ACCESS_TOKEN}}, 1600, 600),
        ({"AccessToken": {"a": ACCESS_TOKEN}}, 5000, 1000),  # expires_on 2000
        ({"AccessToken": {"a": ACCESS_TOKEN}}, 1600, 600),
        (
            {"AccessToken": {"a": ACCESS_TOKEN, "b": {**ACCESS_TOKEN, "expires_on": "1300"}}},
            5000,
            1000,
        ),
        ({"AccessToken": {"a": {**ACCESS_TOKEN, "expires_on": "1000"}}}, 1600, 0),
        ({"AccessToken": {"a": {**ACCESS_TOKEN, "expires_on": "２０００"}}}, 1600, 0),
        ({"Account": {"x": {}}, "IdToken": {"y": {}}}, 1600, 0),
        ({}, 1600, 0),
    ],
    ids=[
        "refresh token: until the incoming token expires",
        "access token: until it expires",
        "never past the incoming token",
        "the last access token",
        "expired",
        "not ASCII digits",
        "no token",
        "empty",
    ],
)
def test_an_entry_lives_until_its_tokens_or_the_incoming_token_expire(
    partition: dict[str, Any], incoming_expiry: float, lifetime: float
) -> None:
    assert entry_lifetime(partition, incoming_expiry, now=1000) == lifetime


def test_expired_access_tokens_are_not_stored() -> None:
    partition = {
        "AccessToken": {"old": {**ACCESS_TOKEN, "expires_on": "999"}, "new": ACCESS_TOKEN},
        "RefreshToken": {"r": REFRESH_TOKEN},
    }
    live = live_entries(partition, now=1000)
    assert live == {"AccessToken": {"new": ACCESS_TOKEN}, "RefreshToken": {"r": REFRESH_TOKEN}}
    assert "old" in partition["AccessToken"]  # a copy; the cache itself is MSAL's to prune
