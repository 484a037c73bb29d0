"""``make bench``: the API against a bare proxy, the naive OBO pattern and itself with Redis,
under load, plus in-process micro-benchmarks; writes bench/results.json and bench/chart.png
and prints Markdown tables.

Processes: the emulator (``python -m emulator serve``), one gunicorn per configuration with
the production ``gunicorn.conf.py``, redis-server, wrk, and the micro-benchmarks each run in
a process of their own; this one only orchestrates. Every load run is bounded in time and
count. Each measurement set runs twice: on loopback as is, and with 30 ms injected by the
emulator on the token endpoint and on Graph. Rounds of the configurations alternate, and
every figure is a median over rounds with its min-max range, because the machine is shared.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from bench import profile, report
from bench.load import Load
from bench.servers import (
    ROOT,
    EmulatorProcess,
    Gunicorn,
    RedisServer,
    api_environment,
    cpu_seconds,
    ensure_debian_tool,
)

OUTPUT_DIR = Path(__file__).resolve().parent
LATENCY_SECONDS = 0.030
CONDITIONS = ("loopback", "latency")
MAX_WARMUP_PASSES = 20


@dataclass(frozen=True)
class Plan:
    """How much to measure: the full run takes about five minutes, --quick (no profile)
    about one and a half, on two cores shared with other work."""

    rounds: int = 3
    seconds: int = 4
    users: int = 100
    connections: int = 8
    profile_seconds: int = 5
    cache_sizes: str = "10,10000,100000"
    tracemalloc_users: int = 2000
    micro_rounds: int = 4
    validation_tokens: int = 200


QUICK = Plan(
    rounds=2,
    seconds=2,
    profile_seconds=0,
    cache_sizes="10,1000,10000",
    tracemalloc_users=1000,
    micro_rounds=3,
    validation_tokens=60,
)


@dataclass
class Target:
    """One configuration under load: a gunicorn server (and, for Redis, its twin)."""

    key: str
    label: str
    server: Gunicorn
    cached: bool  # the API, whose token cache is warmed before measuring
    twin: Gunicorn | None = None
    rounds: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    warmups: dict[str, dict[str, Any]] = field(default_factory=dict)


STARTED = time.monotonic()


def log(message: str) -> None:
    print(f"[{time.monotonic() - STARTED:5.0f}s] {message}", file=sys.stderr, flush=True)


def redis_cache_supported() -> bool:
    """The API takes a shared token cache once its settings know TOKEN_CACHE_URL."""
    return "TOKEN_CACHE_URL" in (ROOT / "app" / "config.py").read_text()


# -- one measured round --------------------------------------------------------------------


@dataclass
class Snapshot:
    """Emulator counters and CPU times at one moment, to subtract."""

    counters: dict[str, int]
    workers: dict[int, float]
    emulator: float
    extra: float

    @classmethod
    def take(cls, emulator: EmulatorProcess, target: Target, extra_pids: Sequence[int]) -> Snapshot:
        return cls(
            emulator.counters(),
            {pid: cpu_seconds(pid) for pid in target.server.worker_pids()},
            cpu_seconds(emulator.pid),
            sum(cpu_seconds(pid) for pid in extra_pids),
        )


def measure(
    emulator: EmulatorProcess, target: Target, load: Load, plan: Plan, extra_pids: Sequence[int]
) -> dict[str, Any]:
    """One wrk run against ``target`` with what it cost the servers and Entra."""
    before = Snapshot.take(emulator, target, extra_pids)
    result = load.run(plan.seconds, max_requests=plan.seconds * 5000)
    settle(emulator)
    after = Snapshot.take(emulator, target, extra_pids)
    worker_cpu = {pid: after.workers.get(pid, 0.0) - start for pid, start in before.workers.items()}
    busy = sum(worker_cpu.values())
    calls = {
        name: after.counters.get(name, 0) - before.counters.get(name, 0)
        for name in ("token", "keys", "openid-configuration", "graph")
    }
    per_request = 1000 / result.requests if result.requests else 0.0
    return {
        **result.to_dict(),
        "calls": calls,
        "server_cpu_ms_per_request": round(busy * per_request, 3),
        "emulator_cpu_ms_per_request": round((after.emulator - before.emulator) * per_request, 3),
        "redis_cpu_ms_per_request": round((after.extra - before.extra) * per_request, 3),
        "busiest_worker_share": round(max(worker_cpu.values(), default=0.0) / busy, 3)
        if busy
        else 0.0,
    }


def settle(emulator: EmulatorProcess, limit: float = 3.0) -> None:
    """Wait until requests still in flight when wrk stopped have reached the emulator, so
    that their calls count for the round that sent them, not the next one."""
    deadline = time.monotonic() + limit
    last = emulator.counters()
    while time.monotonic() < deadline:
        time.sleep(0.1)
        current = emulator.counters()
        if current == last:
            return
        last = current


# -- warm-up -------------------------------------------------------------------------------


def warm_up(
    emulator: EmulatorProcess, loads: Sequence[Load], per_worker_caches: int | None
) -> dict[str, Any]:
    """Send every token to every instance until every cache holds every user.

    A pass is one second of wrk per instance with a new connection per request, so that
    requests reach every worker. With ``per_worker_caches`` caches (one per worker process)
    that is done once the token endpoint has seen one exchange per user and cache; with a
    cache shared by all workers (Redis), after a pass that needed no exchange. Bounded:
    ``MAX_WARMUP_PASSES`` passes.
    """
    users = len(loads[0].tokens_file.read_text().split())
    settle(emulator)
    start = emulator.counters()
    passes = calls = failed = 0
    while passes < MAX_WARMUP_PASSES:
        passes += 1
        before = emulator.counters()["token"]
        for load in loads:
            result = load.run(1, max_requests=5000, close=True)
            failed += result.failed
            if result.requests and result.failed >= result.requests:
                raise RuntimeError(
                    f"warm-up of {load.url}: {result.statuses}, "
                    f"{result.socket_errors} socket errors"
                )
        settle(emulator)
        now = emulator.counters()["token"]
        calls = now - start["token"]
        if per_worker_caches is not None and calls >= users * per_worker_caches:
            break
        if per_worker_caches is None and passes >= 2 and now == before:
            break
    return {
        "passes": passes,
        "token_calls": calls,
        "key_fetches": emulator.counters()["keys"] - start["keys"],
        "token_calls_per_user": round(calls / users, 2),
        "failed_requests": failed,
    }


# -- the load phase --------------------------------------------------------------------------


def run_condition(
    condition: str,
    emulator: EmulatorProcess,
    targets: Sequence[Target],
    tokens_file: Path,
    plan: Plan,
    extra_pids: Sequence[int],
) -> None:
    for target in targets:
        servers = [target.server] + ([target.twin] if target.twin else [])
        # More connections than measured with: more requests per pass under latency.
        loads = [Load(s.url, tokens_file, connections=4 * plan.connections) for s in servers]
        if target.cached:
            caches = None if target.twin else target.server.workers
            target.warmups[condition] = warm_up(emulator, loads, caches)
            log(f"  {condition}: warmed {target.label}: {target.warmups[condition]}")
        else:
            loads[0].run(1, max_requests=5000)  # connection pools, first-use costs
            settle(emulator)
        target.rounds[condition] = []
    for round_index in range(plan.rounds):
        shift = round_index % len(targets)
        for target in [*targets[shift:], *targets[:shift]]:
            load = Load(target.server.url, tokens_file, connections=plan.connections)
            result = measure(emulator, target, load, plan, extra_pids)
            target.rounds[condition].append(result)
            log(
                f"  {condition} round {round_index + 1}/{plan.rounds} {target.label}: "
                f"{result['rps']:.0f} req/s, p50 {result['p50_ms']:.1f} ms, "
                f"p99 {result['p99_ms']:.1f} ms, token calls {result['calls']['token']}, "
                f"non-200 {sum(n for s, n in result['statuses'].items() if s != '200')}"
            )


@contextmanager
def injected_latency(emulator: EmulatorProcess, condition: str) -> Iterator[None]:
    if condition == "latency":
        emulator.add_fault("token", "delay", seconds=LATENCY_SECONDS)
        emulator.add_fault("graph", "delay", seconds=LATENCY_SECONDS)
    try:
        yield
    finally:
        emulator.clear_faults()


def profile_target(target: Target, tokens_file: Path, plan: Plan, work: Path) -> dict[str, Any]:
    """py-spy on the target's workers during one load run, with their CPU per request."""
    output = work / f"profile-{target.key}.txt"
    load = Load(target.server.url, tokens_file, connections=plan.connections)
    workers = target.server.worker_pids()
    cpu_before = sum(cpu_seconds(pid) for pid in workers)
    result, messages = profile.record_while(
        target.server.pid,
        plan.profile_seconds,
        output,
        lambda: load.run(plan.profile_seconds, plan.profile_seconds * 5000),
    )
    cpu = sum(cpu_seconds(pid) for pid in workers) - cpu_before
    if not output.exists():
        return {"error": (messages.strip().splitlines() or ["py-spy wrote nothing"])[-1]}
    summary = profile.summarise(output.read_text(), workers)
    summary["rps_while_sampled"] = round(result.rps, 1)
    summary["server_cpu_ms_per_request"] = round(cpu * 1000 / max(1, result.requests), 3)
    return summary


# -- start-up ------------------------------------------------------------------------------


def start_targets(
    stack: ExitStack,
    emulator: EmulatorProcess,
    work: Path,
    graph_token: str,
    redis: RedisServer | None,
) -> tuple[list[Target], dict[str, str]]:
    env = api_environment(emulator)
    targets = [
        Target(
            "bare",
            "bare proxy",
            Gunicorn(
                "bare", "bench.apps.bare_proxy:app", {**env, "BENCH_GRAPH_TOKEN": graph_token}, work
            ),
            cached=False,
        ),
        Target("api", "API (in-memory cache)", Gunicorn("api", "wsgi:app", env, work), cached=True),
        Target(
            "api_reuse_port",
            "API, gunicorn --reuse-port",
            Gunicorn("api-reuse-port", "wsgi:app", env, work, options=["--reuse-port"]),
            cached=True,
        ),
        Target(
            "naive",
            "naive OBO (sample pattern)",
            Gunicorn("naive", "bench.apps.naive_obo:app", env, work),
            cached=False,
        ),
    ]
    notes: dict[str, str] = {}
    if redis is not None:
        shared = {**env, **shared_cache_environment(redis)}
        targets.append(
            Target(
                "api_redis",
                "API (Redis cache)",
                Gunicorn("api-redis-a", "wsgi:app", shared, work),
                cached=True,
                twin=Gunicorn("api-redis-b", "wsgi:app", shared, work),
            )
        )
    for target in targets:
        for server in (target.server, target.twin):
            if server is not None:
                stack.callback(server.stop)
                server.start()
    ready = []
    for target in targets:
        try:
            for server in (target.server, target.twin):
                if server is not None:
                    server.wait_ready("/readyz" if target.cached else "/healthz")
            ready.append(target)
        except RuntimeError as exc:
            if target.key != "api_redis":
                raise
            notes["api_redis"] = f"the API did not start with TOKEN_CACHE_URL: {exc}"
            log(notes["api_redis"])
    return ready, notes


def shared_cache_environment(redis: RedisServer) -> dict[str, str]:
    """The API's settings for a token cache shared through ``redis``."""
    key = base64.urlsafe_b64encode(os.urandom(32)).decode()  # a Fernet key
    return {"TOKEN_CACHE_URL": redis.url, "TOKEN_CACHE_ENCRYPTION_KEY": key}


def run_micro(
    emulator: EmulatorProcess, tokens_file: Path, plan: Plan, redis: RedisServer | None
) -> dict[str, Any]:
    argv = [
        sys.executable,
        "-m",
        "bench.micro",
        "--authority",
        emulator.authority,
        "--tokens-file",
        str(tokens_file),
        "--users",
        plan.cache_sizes,
        "--tracemalloc-users",
        str(plan.tracemalloc_users),
        "--rounds",
        str(plan.micro_rounds),
    ]
    env = {**os.environ, **api_environment(emulator), "LOG_LEVEL": "WARNING"}
    if redis is not None:
        argv += ["--redis-url", redis.url]
        if redis_cache_supported():  # the micro-benchmark measures the API's own Redis level
            env.update(shared_cache_environment(redis))
    completed = subprocess.run(  # noqa: S603 - a fixed argv, no shell
        argv,
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        timeout=600,
        check=False,
    )
    if completed.returncode != 0:
        raise RuntimeError(f"the micro-benchmarks failed with {completed.returncode}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def write_tokens(path: Path, tokens: Sequence[str]) -> Path:
    path.write_text("\n".join(tokens) + "\n")
    return path


def git(*args: str) -> str:
    return subprocess.run(  # noqa: S603 - a fixed argv, no shell
        ["git", *args],  # noqa: S607 - git from PATH
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()


def machine() -> dict[str, Any]:
    commit = git("rev-parse", "--short", "HEAD")
    if commit and git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "commit": commit,
        "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def benchmark(plan: Plan, work: Path, skip_profile: bool) -> dict[str, Any]:
    results: dict[str, Any] = {"plan": asdict(plan), "machine_before": machine()}
    with ExitStack() as stack:
        emulator = EmulatorProcess(work / "emulator-state", work)
        stack.callback(emulator.stop)
        emulator.start()
        redis = None
        if redis_cache_supported() and ensure_debian_tool("redis-server", "redis-server"):
            redis = RedisServer(work / "redis", work)
            stack.callback(redis.stop)
            redis.start()
        tokens = {
            condition: write_tokens(
                work / f"tokens-{condition}.txt", emulator.user_tokens(plan.users)
            )
            for condition in CONDITIONS
        }
        fresh = write_tokens(
            work / "tokens-fresh.txt", emulator.user_tokens(plan.validation_tokens + 1)
        )
        graph_token = emulator.graph_token(fresh.read_text().split()[0])
        log(f"emulator at {emulator.base_url}; starting the servers")
        targets, notes = start_targets(stack, emulator, work, graph_token, redis)
        extra_pids = [redis.pid] if redis is not None else []
        for condition in CONDITIONS:
            log(f"{condition}: {plan.rounds} rounds of {plan.seconds}s per configuration")
            with injected_latency(emulator, condition):
                run_condition(condition, emulator, targets, tokens[condition], plan, extra_pids)
            if condition == "loopback" and plan.profile_seconds and not skip_profile:
                log(f"profiling the API and the bare proxy, {plan.profile_seconds}s each")
                results["profile"] = {
                    t.key: profile_target(t, tokens[condition], plan, work)
                    for t in targets
                    if t.key in ("api", "bare")
                }
        for target in targets:
            for server in (target.server, target.twin):
                if server is not None:
                    server.stop()
        log("micro-benchmarks: validation cost and token cache scaling")
        results["micro"] = run_micro(emulator, fresh, plan, _micro_redis(redis, work, stack))
    results["targets"] = {
        t.key: {
            "label": t.label,
            "rounds": t.rounds,
            "warmups": t.warmups,
            "workers": t.server.workers,
            "threads": t.server.threads,
        }
        for t in targets
    }
    results["notes"] = notes
    results["redis_cache"] = "api_redis" in results["targets"]
    results["machine_after"] = machine()
    return results


def _micro_redis(redis: RedisServer | None, work: Path, stack: ExitStack) -> RedisServer | None:
    """The Redis model needs only redis-server, whether or not the API supports Redis."""
    if redis is not None:
        return redis
    if not ensure_debian_tool("redis-server", "redis-server"):
        return None
    server = RedisServer(work / "redis-micro", work)
    stack.callback(server.stop)
    return server.start()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="about one minute, less precise")
    parser.add_argument("--rounds", type=int, help="rounds per configuration and condition")
    parser.add_argument("--seconds", type=int, help="seconds per round")
    parser.add_argument("--no-profile", action="store_true", help="skip the py-spy profile")
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=OUTPUT_DIR,
        help="where results.json and chart.png go (default bench/)",
    )
    parser.add_argument(
        "--keep-work",
        action="store_true",
        help="keep the servers' logs, tokens and profiles (the path is printed)",
    )
    args = parser.parse_args(argv)
    plan = QUICK if args.quick else Plan()
    plan = replace(plan, rounds=args.rounds or plan.rounds, seconds=args.seconds or plan.seconds)
    if not ensure_debian_tool("wrk", "wrk"):
        print("wrk is required and could not be installed", file=sys.stderr)
        return 1
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="bench-"))
    log(f"working directory {work}")
    try:
        results = benchmark(plan, work, args.no_profile)
    finally:
        if not args.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    results["elapsed_seconds"] = round(time.monotonic() - started, 1)
    figures = report.figures(results)
    results["figures"] = figures
    args.output_dir.mkdir(parents=True, exist_ok=True)
    (args.output_dir / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    report.chart(results, args.output_dir / "chart.png")
    print(report.markdown(results))
    return 0
