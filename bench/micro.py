"""In-process micro-benchmarks, run in a fresh process of their own (``python -m bench.micro``)
so that memory deltas are not blurred by the harness; prints one JSON document.

- Token cache scaling: the API's level-1 cache (``PartitionedTokenCache`` + MSAL silent
  lookup) with 10, 10,000 and 100,000 users; memory per user by resident set size and by
  tracemalloc; and, with ``--redis-url``, a model of a Redis level (GET + AES-GCM decrypt +
  JSON parse of one user's entry) at the same sizes.
- Validation cost: ``TokenValidator.validate`` against the bare RSA-2048 signature check of the
  same token with ``cryptography``, for tokens never seen and for a token seen before.
"""

from __future__ import annotations

import argparse
import base64
import copy
import cProfile
import functools
import gc
import hashlib
import json
import os
import pstats
import statistics
import sys
import time
import tracemalloc
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import msal
import requests
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from app import create_app
from app.auth.token_cache import PartitionedTokenCache
from app.auth.tokens import TokenValidator
from emulator import API_CLIENT_ID, API_CLIENT_SECRET, TENANT_ID

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]
LOOKUPS_PER_ROUND = 200
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def spread(values: Sequence[float], digits: int = 3) -> dict[str, float]:
    """Median and range of per-round values."""
    return {
        "median": round(statistics.median(values), digits),
        "min": round(min(values), digits),
        "max": round(max(values), digits),
    }


def rss_bytes() -> int:
    """Resident set size of this process, from /proc/self/statm."""
    return int(Path("/proc/self/statm").read_text().split()[1]) * PAGE_SIZE


def settled_rss() -> int:
    gc.collect()
    return rss_bytes()


# -- the cache entries of one OBO exchange, multiplied into many users --------------------


def record_obo_event(authority: str, user_token: str) -> dict[str, Any]:
    """One real OBO exchange against the emulator; the event MSAL writes to its cache."""
    events: list[dict[str, Any]] = []

    class Recorder(msal.TokenCache):  # type: ignore[misc]
        def add(self, event: dict[str, Any], **kwargs: Any) -> None:
            events.append(copy.deepcopy(event))
            super().add(event, **kwargs)

    client = msal.ConfidentialClientApplication(
        API_CLIENT_ID,
        client_credential=API_CLIENT_SECRET,
        authority=authority,
        instance_discovery=False,
        token_cache=Recorder(),
    )
    result = client.acquire_token_on_behalf_of(user_token, GRAPH_SCOPES)
    if "access_token" not in result:
        raise RuntimeError(f"OBO failed: {result.get('error')}")
    return events[-1]


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def event_for_user(template: dict[str, Any], index: int) -> dict[str, Any]:
    """The template's OBO event as another user's: own oid, own secrets of the same sizes."""
    event = copy.deepcopy(template)
    oid = str(uuid.UUID(int=index + 1))
    response = event["response"]
    response["client_info"] = _b64encode(json.dumps({"uid": oid, "utid": TENANT_ID}).encode())
    header, payload, signature = response["id_token"].split(".")
    claims = json.loads(_b64decode(payload))
    claims.update(oid=oid, sub=oid, preferred_username=f"user{index}@contoso.test")
    tag = f"{index:012d}"
    response["id_token"] = ".".join(
        [header, _b64encode(json.dumps(claims).encode()), signature[:-12] + tag]
    )
    response["access_token"] = response["access_token"][:-12] + tag
    response["refresh_token"] = response["refresh_token"][:-12] + tag
    return event


def partition_key(index: int) -> str:
    """The partition key of synthetic user ``index`` (the API hashes the incoming token)."""
    return hashlib.sha256(f"incoming-token-of-user-{index}".encode()).hexdigest()


def fill(cache: PartitionedTokenCache, template: dict[str, Any], users: int) -> None:
    expires_at = time.time() + 3600
    for index in range(users):
        with cache.partition(partition_key(index), expires_at):
            cache.add(event_for_user(template, index))


# -- level 1: the in-process partitioned cache ----------------------------------------------


def level1_lookup(client: Any, cache: PartitionedTokenCache, index: int) -> None:
    """What the API does per request once warm: hash, partition, accounts, silent lookup."""
    with cache.partition(partition_key(index), time.time() + 3600):
        accounts = client.get_accounts()
        result = client.acquire_token_silent_with_error(GRAPH_SCOPES, account=accounts[0])
    if not result or "access_token" not in result:
        raise RuntimeError("silent lookup missed; the cache was not filled as expected")


def per_call_ms(call: Callable[[int], None], count: int, stride: int, wall: bool = False) -> float:
    """Median time of ``count`` calls over indices spread across ``stride`` users.

    Thread CPU time unless ``wall``: on a shared machine, time spent descheduled is not the
    code's cost; a call that waits for Redis is timed by the wall clock.
    """
    clock = time.perf_counter if wall else time.thread_time
    samples = []
    for step in range(count):
        index = (step * 7919) % stride
        start = clock()
        call(index)
        samples.append(clock() - start)
    return statistics.median(samples) * 1000


def bench_level1(
    authority: str,
    template: dict[str, Any],
    sizes: Sequence[int],
    rounds: int,
    tracemalloc_users: int,
) -> dict[str, Any]:
    caches: dict[int, PartitionedTokenCache] = {}
    memory: dict[str, Any] = {"rss_bytes_per_user": {}}
    for users in sizes:
        cache = PartitionedTokenCache(max_users=users)
        before = settled_rss()
        started = time.perf_counter()
        fill(cache, template, users)
        elapsed = time.perf_counter() - started
        after = settled_rss()
        if users >= 1000:
            memory["rss_bytes_per_user"][str(users)] = round((after - before) / users)
        print(f"  level 1: {users:,} users cached in {elapsed:.1f}s", file=sys.stderr)
        caches[users] = cache
    memory["tracemalloc_bytes_per_user"] = _traced_bytes_per_user(template, tracemalloc_users)
    memory["tracemalloc_users"] = tracemalloc_users
    memory["secret_chars_per_user"] = {
        name: len(template["response"][name])
        for name in ("access_token", "refresh_token", "id_token")
    }
    clients = {
        users: msal.ConfidentialClientApplication(
            API_CLIENT_ID,
            client_credential=API_CLIENT_SECRET,
            authority=authority,
            instance_discovery=False,
            token_cache=cache,
        )
        for users, cache in caches.items()
    }

    def lookup(users: int, index: int) -> None:
        level1_lookup(clients[users], caches[users], index)

    return {**_scaling(_interleaved(sizes, rounds, lookup)), "memory": memory}


def _traced_bytes_per_user(template: dict[str, Any], users: int) -> int:
    # Events are built while tracing: the cache keeps their token strings, and a deep copy
    # shares strings, so events built beforehand would leave the tokens out of the count.
    cache = PartitionedTokenCache(max_users=users)
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    fill(cache, template, users)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return round((after - before) / users)


# -- level 2: the API's Redis level, or a model of one ----------------------------------------


def product_shared_level() -> Any | None:
    """The API's own Redis level (app.auth.shared_cache) when it has one and TOKEN_CACHE_URL
    is set in the environment, else None."""
    try:
        from app.auth.shared_cache import open_shared_cache
    except ImportError:
        return None
    from app.config import load_settings

    return open_shared_cache(getattr(load_settings(dict(os.environ)), "token_cache", None))


def level2_assertion(users: int, index: int) -> str:
    """A stand-in incoming token: the API keys a user's partition by its SHA-256."""
    return f"bench-level-2-{users}-{index}"


def bench_redis_product(
    store: Any, redis_url: str, template: dict[str, Any], sizes: Sequence[int], rounds: int
) -> dict[str, Any]:
    """A level-2 hit as the API takes it: its token provider (built by create_app, level 1
    holding a single user, so that every lookup of another user misses it) finds the user's
    partition in Redis and returns the cached Graph token. Wall time: the round trip counts."""
    import redis

    from app.config import load_settings
    from app.errors import ApiError

    env = {**os.environ, "OBO_CACHE_MAX_USERS": "1"}
    provider = create_app(env).extensions["auth"].tokens
    graph = load_settings(env).downstream["graph"]
    serial = msal.SerializableTokenCache()
    serial.add(copy.deepcopy(template))
    partition = json.loads(serial.serialize())
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    memory: dict[str, int] = {}
    for users in sizes:
        before = int(client.info("memory")["used_memory"])
        started = time.perf_counter()
        for index in range(users):
            store.save(_sha256(level2_assertion(users, index)), partition, 3600)
        memory[str(users)] = round((int(client.info("memory")["used_memory"]) - before) / users)
        print(
            f"  level 2: {users:,} users stored in {time.perf_counter() - started:.1f}s",
            file=sys.stderr,
        )
    _wait_until_readable(store, _sha256(level2_assertion(min(sizes), 0)))
    misses: dict[str, int] = {str(users): 0 for users in sizes}

    def lookup(users: int, index: int) -> None:
        try:
            provider.acquire(graph, level2_assertion(users, index), time.time() + 3600)
        except ApiError:  # not found in Redis: the exchange of a stand-in token fails
            misses[str(users)] += 1

    samples = _interleaved(sizes, rounds, lookup, wall=True)
    client.flushdb()
    return {
        "kind": "the API's Redis level (level-1 miss, level-2 hit, wall time)",
        **_scaling(samples),
        "entry_bytes": len(json.dumps(partition)),
        "redis_used_memory_bytes_per_user": memory,
        "misses": misses,
    }


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def _wait_until_readable(store: Any, key: str, limit: float = 30.0) -> None:
    """A write that timed out during the fill may have opened the API's circuit breaker,
    which then skips Redis for a while: measure hits, not that pause."""
    deadline = time.monotonic() + limit
    while store.load(key) is None and time.monotonic() < deadline:
        time.sleep(0.5)


def _interleaved(
    sizes: Sequence[int], rounds: int, lookup: Callable[[int, int], None], wall: bool = False
) -> dict[int, list[float]]:
    samples: dict[int, list[float]] = {users: [] for users in sizes}
    for round_index in range(rounds):
        order = list(sizes) if round_index % 2 == 0 else list(reversed(sizes))
        for users in order:
            samples[users].append(
                per_call_ms(functools.partial(lookup, users), LOOKUPS_PER_ROUND, users, wall)
            )
    return samples


def _scaling(samples: dict[int, list[float]]) -> dict[str, Any]:
    smallest, largest = min(samples), max(samples)
    ratios = [big / small for big, small in zip(samples[largest], samples[smallest], strict=True)]
    return {
        "lookup_ms": {str(users): spread(values) for users, values in samples.items()},
        f"ratio_{largest}_over_{smallest}": spread(ratios),
    }


# -- a Redis level, modelled: one GET, AES-GCM decrypt and JSON parse per lookup -----------


def bench_redis_model(
    redis_url: str, template: dict[str, Any], sizes: Sequence[int], rounds: int
) -> dict[str, Any]:
    import redis
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    cache = PartitionedTokenCache(max_users=1)
    with cache.partition(partition_key(0), time.time() + 3600):
        cache.add(event_for_user(template, 0))
        plain = json.dumps(cache._cache).encode()  # the user's partition, as MSAL holds it
    aead = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    blob = nonce + aead.encrypt(nonce, plain, None)
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    memory: dict[str, int] = {}
    for users in sizes:
        before = int(client.info("memory")["used_memory"])
        for start in range(0, users, 1000):
            with client.pipeline(transaction=False) as pipe:
                for index in range(start, min(users, start + 1000)):
                    pipe.set(f"bench:{users}:{partition_key(index)}", blob, ex=3600)
                pipe.execute()
        memory[str(users)] = round((int(client.info("memory")["used_memory"]) - before) / users)

    def lookup(users: int, index: int) -> None:
        raw = client.get(f"bench:{users}:{partition_key(index)}")
        if not isinstance(raw, bytes):
            raise RuntimeError("Redis lost an entry")
        json.loads(aead.decrypt(raw[:12], raw[12:], None))

    samples = _interleaved(sizes, rounds, lookup, wall=True)
    client.flushdb()
    return {
        "kind": "model (GET + AES-GCM + JSON, wall time)",
        **_scaling(samples),
        "entry_bytes": len(blob),
        "redis_used_memory_bytes_per_user": memory,
    }


# -- validation cost --------------------------------------------------------------------------


def public_keys(authority: str) -> dict[str, rsa.RSAPublicKey]:
    """The tenant's RSA keys by kid, read from its JWKS without the API's code."""
    session = requests.Session()
    metadata = session.get(f"{authority}/v2.0/.well-known/openid-configuration", timeout=10).json()
    keys = {}
    for jwk in session.get(metadata["jwks_uri"], timeout=10).json()["keys"]:
        numbers = rsa.RSAPublicNumbers(
            int.from_bytes(_b64decode(jwk["e"]), "big"), int.from_bytes(_b64decode(jwk["n"]), "big")
        )
        keys[jwk["kid"]] = numbers.public_key()
    return keys


def bare_verify(keys: dict[str, rsa.RSAPublicKey], token: str) -> None:
    """Only the RS256 signature check: PKCS#1 v1.5 with SHA-256 over header.payload."""
    signing_input, _, signature = token.rpartition(".")
    kid = json.loads(_b64decode(signing_input.split(".", 1)[0]))["kid"]
    keys[kid].verify(
        _b64decode(signature), signing_input.encode(), padding.PKCS1v15(), hashes.SHA256()
    )


def per_token_us(check: Callable[[str], Any], tokens: Sequence[str]) -> float:
    """Mean thread CPU time per token (see ``per_call_ms``)."""
    start = time.thread_time()
    for token in tokens:
        check(token)
    return (time.thread_time() - start) / len(tokens) * 1e6


def bench_validation(authority: str, fresh: Sequence[str], rounds: int) -> dict[str, Any]:
    # The validator as the API composes it from its settings (the environment given to us).
    validator: TokenValidator = create_app(dict(os.environ)).extensions["auth"].validator
    rsa_keys = public_keys(authority)
    seen = fresh[0]
    validator.validate(seen)  # loads the keys; this token is "seen" from now on
    bare_verify(rsa_keys, seen)
    batch = max(1, (len(fresh) - 1) // rounds)
    results: dict[str, list[float]] = {
        name: [] for name in ("validate_new_us", "bare_new_us", "validate_seen_us", "bare_seen_us")
    }
    for round_index in range(rounds):
        new = fresh[1 + round_index * batch : 1 + (round_index + 1) * batch]
        repeated = [seen] * batch
        pairs = [
            ("validate_new_us", validator.validate, new),
            ("bare_new_us", lambda t: bare_verify(rsa_keys, t), new),
            ("validate_seen_us", validator.validate, repeated),
            ("bare_seen_us", lambda t: bare_verify(rsa_keys, t), repeated),
        ]
        if round_index % 2:
            pairs.reverse()
        for name, check, tokens in pairs:
            results[name].append(per_token_us(check, tokens))
    report: dict[str, Any] = {name: spread(values, 1) for name, values in results.items()}
    for kind in ("new", "seen"):
        ratios = [
            v / b
            for v, b in zip(results[f"validate_{kind}_us"], results[f"bare_{kind}_us"], strict=True)
        ]
        report[f"ratio_{kind}"] = spread(ratios, 2)
    report["tokens_per_round"] = batch
    report["profile"] = profile_validation(validator, seen)
    return report


def profile_validation(
    validator: TokenValidator, token: str, count: int = 2000
) -> list[dict[str, Any]]:
    """Where validate() spends its time: the top functions by own time under cProfile."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        validator.validate(token)
    profiler.disable()
    stats = pstats.Stats(profiler)
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values())
    rows = sorted(raw.items(), key=lambda item: item[1][2], reverse=True)[:12]
    return [
        {
            "function": f"{Path(file).name}:{line}({name})",
            "calls_per_validate": round(entry[1] / count, 1),
            "own_share": round(entry[2] / total, 3),
        }
        for (file, line, name), entry in rows
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--authority", required=True, help="the emulator's tenant authority")
    parser.add_argument(
        "--tokens-file",
        type=Path,
        required=True,
        help="fresh access tokens for the API, one a line",
    )
    parser.add_argument("--users", default="10,10000,100000")
    parser.add_argument("--tracemalloc-users", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--redis-url", help="a Redis to model the Redis level with")
    args = parser.parse_args(argv)
    sizes = sorted({int(n) for n in args.users.split(",")})
    tokens = [t for t in args.tokens_file.read_text().split() if t]
    template = record_obo_event(args.authority, tokens[0])
    report: dict[str, Any] = {
        "validation": bench_validation(args.authority, tokens[1:], args.rounds),
        "level1": bench_level1(
            args.authority, template, sizes, args.rounds, args.tracemalloc_users
        ),
    }
    if args.redis_url:
        store = product_shared_level()
        report["redis_model"] = (
            bench_redis_product(store, args.redis_url, template, sizes, args.rounds)
            if store is not None
            else bench_redis_model(args.redis_url, template, sizes, args.rounds)
        )
    json.dump(report, sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
