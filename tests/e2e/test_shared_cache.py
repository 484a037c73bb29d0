"""The shared token cache end to end: two API instances (separate gunicorn processes) on one
emulator and one real redis-server.

A user's token obtained by one instance serves the other; a Redis that stops costs nothing
but sharing, and sharing resumes when it returns; concurrent cold requests make one exchange
per process at most; and with far more users than a worker keeps in memory, so that every
request reads Redis, the worker's memory levels off.
"""

from __future__ import annotations

import os
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from cryptography.fernet import Fernet

from emulator import Emulator
from scripts.stack import ApiServer, api_environment
from tests.e2e.leaks import Traffic
from tests.e2e.server_output import ServerOutput
from tests.support.redis_server import RedisServer, cache_entry_key

pytestmark = pytest.mark.e2e

PROFILE_USERS = {
    "alice": "Alice Anders",
    "bob": "Bob Brown",
    "carol": "Carol Chen",
    "grace": "Grace Garcia",
    "heidi": "Heidi Huber",
}
CONCURRENT = 16
RECOVERY_DEADLINE = 60.0  # seconds for both instances to share again once Redis is back
LOG_WAIT = 10.0


@dataclass
class Instance:
    """One API instance: gunicorn with one worker, its output, and what was sent to it."""

    server: ApiServer
    output: ServerOutput
    traffic: Traffic

    def get(self, path: str, token: str) -> requests.Response:
        self.traffic.tokens.append(token)
        return requests.get(
            self.server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=60
        )

    def logged(self, text: str) -> bool:
        lines = self.output.wait_for(lambda seen: any(text in line for line in seen), LOG_WAIT)
        return any(text in line for line in lines)


@contextmanager
def api_instance(emulator: Emulator, env: dict[str, str], traffic: Traffic) -> Iterator[Instance]:
    output = ServerOutput()
    server = ApiServer(
        {**api_environment(emulator.base_url, emulator.ca_bundle), **env},
        log=output,
        keep_alive=False,
    )
    server.start()
    try:
        traffic.apis.append((server.url, output))
        yield Instance(server, output, traffic)
    finally:
        server.stop()


def shared_cache_env(redis: RedisServer, **extra: str) -> dict[str, str]:
    return {
        "TOKEN_CACHE_URL": redis.url,
        "TOKEN_CACHE_ENCRYPTION_KEY": Fernet.generate_key().decode(),
        "TOKEN_CACHE_BREAKER_SECONDS": "0.5",
        **extra,
    }


def assert_profile(response: requests.Response, user: str) -> None:
    assert response.status_code == 200, response.text[:300]
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["displayName"] == PROFILE_USERS[user]
    assert body["userPrincipalName"] == f"{user}@contoso.test"


def exchanges(emulator: Emulator) -> int:
    return emulator.counters()["token.on_behalf_of"]


@pytest.fixture()
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path / "emulator") as running:
        yield running


@pytest.fixture()
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    with RedisServer(tmp_path / "redis") as server:
        yield server


@pytest.fixture()
def instances(
    emulator: Emulator, redis_server: RedisServer, traffic: Traffic
) -> Iterator[list[Instance]]:
    """Two instances of the API sharing the emulator and Redis (and the encryption key)."""
    env = shared_cache_env(redis_server)
    with ExitStack() as running:
        yield [running.enter_context(api_instance(emulator, env, traffic)) for _ in range(2)]


def test_a_token_one_instance_obtained_serves_the_other(
    emulator: Emulator, redis_server: RedisServer, instances: list[Instance]
) -> None:
    first, second = instances
    token = emulator.issue_user_token("alice")
    assert_profile(first.get("/api/me", token), "alice")
    assert_profile(second.get("/api/me", token), "alice")
    assert exchanges(emulator) == 1
    # ARM's token, by the refresh token, on the second; the first then has it too.
    for instance in (second, first):
        response = instance.get("/api/subscriptions", token)
        assert response.status_code == 200, response.text[:300]
        assert response.headers["Cache-Control"] == "no-store"
        assert len(response.json()["value"]) == 5
    counters = emulator.counters()
    assert (counters["token.on_behalf_of"], counters["token.refresh_token"]) == (1, 1)
    with redis_server.client() as stored:
        assert stored.keys() == [cache_entry_key(token).encode()]


def test_requests_succeed_while_redis_is_down_and_sharing_resumes_when_it_is_back(
    emulator: Emulator, redis_server: RedisServer, instances: list[Instance]
) -> None:
    first, second = instances
    redis_server.stop()
    for user in PROFILE_USERS:
        token = emulator.issue_user_token(user)
        assert_profile(first.get("/api/me", token), user)
        assert_profile(second.get("/api/me", token), user)  # no sharing: its own exchange
    assert exchanges(emulator) == 2 * len(PROFILE_USERS)
    for instance in instances:
        assert instance.logged("token cache: Redis is failing; not trying it for 0.5s")

    redis_server.start()
    # Each instance tries Redis again after its breaker's cool-down: until then, a round may
    # still exchange twice. No waiting here beyond making requests.
    deadline = time.monotonic() + RECOVERY_DEADLINE
    while True:
        before = exchanges(emulator)
        token = emulator.issue_user_token("carol")
        assert_profile(first.get("/api/me", token), "carol")
        assert_profile(second.get("/api/me", token), "carol")
        if exchanges(emulator) - before == 1:
            break
        assert time.monotonic() < deadline, "the instances did not share tokens again"
    for instance in instances:
        assert instance.logged("token cache: Redis answers again")


def test_concurrent_cold_requests_make_one_exchange_per_process(
    emulator: Emulator, instances: list[Instance]
) -> None:
    token = emulator.issue_user_token("bob")
    start = threading.Barrier(CONCURRENT)

    def call(number: int) -> requests.Response:
        start.wait(timeout=60)
        return instances[number % 2].get("/api/me", token)

    with ThreadPoolExecutor(CONCURRENT) as pool:
        responses = list(pool.map(call, range(CONCURRENT)))
    for response in responses:
        assert_profile(response, "bob")
    # One per process at most; the Redis lock usually makes it one in all.
    assert 1 <= exchanges(emulator) <= len(instances)


# -- memory under a stream of users -------------------------------------------------------------

MAX_USERS = 50  # the worker's in-process bound
POOL = 8 * MAX_USERS  # distinct callers, cycled: every request misses the in-process cache
PASSES = 4  # about 25 s on a busy 2-core machine
LOAD_CLIENTS = 6
SAMPLE_EVERY = 25  # requests between two looks at the worker's memory
NOISE_KIB = 512  # allocator noise: growth below this never fails the test


def test_worker_memory_levels_off_under_a_stream_of_users(
    emulator: Emulator, redis_server: RedisServer, traffic: Traffic
) -> None:
    """POOL callers through a worker that keeps MAX_USERS: each request evicts a partition
    and reads one back from Redis. After the first pass has filled what is bounded (the
    in-process cache, the validated-token cache), more passes must not add memory."""
    env = shared_cache_env(
        redis_server, OBO_CACHE_MAX_USERS=str(MAX_USERS), TOKEN_CACHE_TIMEOUT="5"
    )
    users = list(PROFILE_USERS)
    pool = [emulator.issue_user_token(users[n % len(users)]) for n in range(POOL)]
    with api_instance(emulator, env, traffic) as api:
        worker = gunicorn_worker(api.server.port or 0)
        samples, outcomes = run_load(api, pool * PASSES, lambda: resident_kib(worker))
    assert outcomes == {(200, "no-store", True): POOL * PASSES}
    assert exchanges(emulator) == POOL  # evicted callers came back from Redis, not Entra
    rss = dict(samples)
    first = samples[0][1]
    ramp = rss[POOL] - first  # the first pass
    plateau = rss[POOL * PASSES] - rss[2 * POOL]  # the last passes
    assert plateau <= max(ramp / 4, NOISE_KIB), (
        f"resident memory grew {plateau} KiB over the last {(PASSES - 2) * POOL} requests, "
        f"after {ramp} KiB over the first {POOL}: {samples}"
    )


def outcome(response: requests.Response) -> tuple[int, str, bool]:
    """Status, Cache-Control, and whether the body is a user's Graph profile."""
    profile = response.status_code == 200 and response.json()["userPrincipalName"].endswith(
        "@contoso.test"
    )
    return response.status_code, response.headers.get("Cache-Control", ""), profile


def run_load(
    api: Instance, tokens: list[str], measure: Callable[[], int]
) -> tuple[list[tuple[int, int]], Counter[tuple[int, str, bool]]]:
    """GET /api/me with each of ``tokens`` in turn, from LOAD_CLIENTS threads: how many of each
    ``outcome``, and ``measure()`` every SAMPLE_EVERY requests as (requests so far, value)."""
    samples: list[tuple[int, int]] = []
    outcomes: Counter[tuple[int, str, bool]] = Counter()
    lock = threading.Lock()
    remaining = iter(tokens)

    def client(_: int) -> None:
        while True:
            with lock:
                token = next(remaining, None)
            if token is None:
                return
            seen = outcome(api.get("/api/me", token))
            with lock:
                outcomes[seen] += 1
                done = outcomes.total()
                if done % SAMPLE_EVERY == 0:
                    samples.append((done, measure()))

    with ThreadPoolExecutor(LOAD_CLIENTS) as pool:
        list(pool.map(client, range(LOAD_CLIENTS)))
    return samples, outcomes


def gunicorn_worker(port: int) -> int:
    """The pid of the worker serving ``port``: of the processes holding its listening socket
    (gunicorn's master and its workers), the one whose parent holds it too."""
    inode = listening_inode(port)
    holders = {pid for pid in descendants(os.getpid()) if holds_socket(pid, inode)}
    workers = [pid for pid in holders if parent(pid) in holders]
    assert len(workers) == 1, (holders, workers)
    return workers[0]


def listening_inode(port: int) -> str:
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == f"0100007F:{port:04X}" and fields[3] == "0A":  # 127.0.0.1, LISTEN
            return fields[9]
    raise AssertionError(f"nothing listens on 127.0.0.1:{port}")


def parent(pid: int) -> int:
    stat = Path(f"/proc/{pid}/stat").read_text()
    return int(stat.rpartition(")")[2].split()[1])


def descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                children.setdefault(parent(int(entry.name)), []).append(int(entry.name))
            except (FileNotFoundError, ProcessLookupError):
                continue  # ended meanwhile
    found, todo = [], [root]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def holds_socket(pid: int, inode: str) -> bool:
    try:
        return any(
            os.readlink(fd) == f"socket:[{inode}]" for fd in Path(f"/proc/{pid}/fd").iterdir()
        )
    except (FileNotFoundError, ProcessLookupError):
        return False


def resident_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS for {pid}")
