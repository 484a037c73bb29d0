"""`make bench`: latency, outbound calls and token-cache cost, measured against the emulator.

1. Token validation in process (signature + claims, keys cached).
2. HTTP through gunicorn: a user's repeated calls (token reused) against a new user per
   request (an OBO exchange per request, which is what an API without a per-user cache pays).
3. MSAL token cache with many users: one shared cache (MSAL's default) against a partition
   per user, for the silent lookup every request makes, and the memory each user costs.

Bounded: a fixed number of requests per phase; the whole run takes well under a minute.
"""

from __future__ import annotations

import argparse
import base64
import copy
import json
import os
import statistics
import tempfile
import time
import tracemalloc
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msal
import requests

from app.auth.keys import SigningKeyCache
from app.auth.token_cache import PartitionedTokenCache
from app.auth.tokens import TokenValidator
from app.http import TimeoutSession
from emulator.directory import API_CLIENT_ID, API_CLIENT_SECRET
from scripts.stack import Stack

GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]


def percentiles(samples: list[float]) -> str:
    ordered = sorted(samples)
    q = statistics.quantiles(ordered, n=100)
    return (f"p50 {ordered[len(ordered) // 2] * 1000:7.2f} ms   p95 {q[94] * 1000:7.2f} ms   "
            f"p99 {q[98] * 1000:7.2f} ms")


def timed(call: Callable[[], Any]) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def bench_validation(stack: Stack, count: int) -> None:
    keys = SigningKeyCache(f"{stack.emulator.authority}/v2.0/.well-known/openid-configuration",
                           TimeoutSession((3.0, 10.0)))
    validator = TokenValidator(keys, (API_CLIENT_ID,))
    token = stack.emulator.issue_user_token("alice")
    validator.validate(token)  # loads the keys once
    samples = [timed(lambda: validator.validate(token)) for _ in range(count)]
    print(f"validate_access_token x{count}: {percentiles(samples)}   "
          f"({count / sum(samples):,.0f}/s on one core)")


def _load(stack: Stack, tokens: list[str], concurrency: int) -> tuple[list[float], float]:
    session = requests.Session()

    def call(token: str) -> float:
        start = time.perf_counter()
        response = session.get(f"{stack.api_url}/api/me", timeout=30,
                               headers={"Authorization": f"Bearer {token}"})
        if response.status_code != 200:
            raise RuntimeError(f"/api/me answered {response.status_code}: {response.text}")
        return time.perf_counter() - start

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        samples = list(pool.map(call, tokens))
    return samples, time.perf_counter() - start


def bench_http(stack: Stack, count: int, concurrency: int) -> None:
    emulator = stack.emulator
    warm_token = emulator.issue_user_token("alice")
    _load(stack, [warm_token] * 20, concurrency)  # first exchange + connection pools
    for label, tokens in (
        ("same user, token reused", [warm_token] * count),
        ("new user each request ", [emulator.issue_user_token("bob") for _ in range(count)]),
    ):
        emulator.reset_counters()
        samples, elapsed = _load(stack, tokens, concurrency)
        counters = emulator.counters()
        print(f"GET /api/me, {label}: {count / elapsed:6.0f} req/s   {percentiles(samples)}   "
              f"token-endpoint calls {counters['token']:4d}   key fetches {counters['keys']}")


def _recorded_obo_event(stack: Stack) -> dict[str, Any]:
    """One real OBO exchange, recording the event MSAL writes to its cache."""
    events: list[dict[str, Any]] = []
    cache = msal.TokenCache()
    original_add = cache.add
    cache.add = lambda event, **kw: (events.append(copy.deepcopy(event)), original_add(event, **kw))
    app = msal.ConfidentialClientApplication(
        API_CLIENT_ID, client_credential=API_CLIENT_SECRET, authority=stack.emulator.authority,
        instance_discovery=False, token_cache=cache)
    result = app.acquire_token_on_behalf_of(stack.emulator.issue_user_token("carol"),
                                            GRAPH_SCOPES)
    if "access_token" not in result:
        raise RuntimeError(f"OBO failed: {result.get('error')}")
    return events[-1]


def _event_for_new_user(template: dict[str, Any]) -> dict[str, Any]:
    event = copy.deepcopy(template)
    oid = str(uuid.uuid4())
    response = event["response"]
    tid = json.loads(_b64decode(response["client_info"]))["utid"]
    response["client_info"] = _b64encode(json.dumps({"uid": oid, "utid": tid}))
    header, payload, signature = response["id_token"].split(".")
    claims = json.loads(_b64decode(payload))
    claims.update(oid=oid, sub=oid, preferred_username=f"{oid}@contoso.test")
    response["id_token"] = ".".join([header, _b64encode(json.dumps(claims)), signature])
    response["access_token"] = "at-" + oid
    response["refresh_token"] = "rt-" + oid
    return event


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _b64encode(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).rstrip(b"=").decode()


def bench_cache(stack: Stack, user_counts: list[int], lookups: int) -> None:
    template = _recorded_obo_event(stack)
    for users in user_counts:
        events = [_event_for_new_user(template) for _ in range(users)]
        shared = msal.TokenCache()
        tracemalloc.start()
        for event in events:
            shared.add(copy.deepcopy(event))
        shared_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        partitioned = PartitionedTokenCache(max_users=users)
        tracemalloc.start()
        for index, event in enumerate(events):
            with partitioned.partition(str(index), time.time() + 3600):
                partitioned.add(copy.deepcopy(event))
        partitioned_bytes = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        shared_time = _silent_time(stack, shared, None, lookups)
        partitioned_time = _silent_time(stack, partitioned, "0", lookups)
        print(f"{users:6d} users: silent lookup shared cache {shared_time * 1000:8.3f} ms, "
              f"per-user partition {partitioned_time * 1000:6.3f} ms   memory per user: "
              f"shared {shared_bytes / users / 1024:5.1f} KiB, "
              f"partitioned {partitioned_bytes / users / 1024:5.1f} KiB")


def _silent_time(stack: Stack, cache: msal.TokenCache, partition: str | None,
                 lookups: int) -> float:
    app = msal.ConfidentialClientApplication(
        API_CLIENT_ID, client_credential=API_CLIENT_SECRET, authority=stack.emulator.authority,
        instance_discovery=False, token_cache=cache)

    def lookup() -> None:
        accounts = app.get_accounts()
        account = accounts[0]
        result = app.acquire_token_silent(GRAPH_SCOPES, account=account)
        if not result or "access_token" not in result:
            raise RuntimeError("silent lookup missed")

    samples = []
    for _ in range(lookups):
        if isinstance(cache, PartitionedTokenCache) and partition is not None:
            with cache.partition(partition, time.time() + 3600):
                samples.append(timed(lookup))
        else:
            samples.append(timed(lookup))
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--users", default="100,1000,10000")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as state, open(os.devnull, "w") as log, \
            Stack(Path(state), log=log, workers=2) as stack:
        os.environ["REQUESTS_CA_BUNDLE"] = str(stack.emulator.ca_bundle)
        print(f"machine: {os.cpu_count()} cores; API: gunicorn, 2 workers x 4 threads; "
              f"emulator on {stack.emulator.base_url}\n")
        bench_validation(stack, 2000)
        print()
        bench_http(stack, args.requests, args.concurrency)
        print()
        bench_cache(stack, [int(n) for n in args.users.split(",")], lookups=20)


if __name__ == "__main__":
    main()
