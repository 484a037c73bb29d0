"""Request ids, JSON access lines and /metrics under gunicorn, as production runs them.

Log lines are matched by content, as sets: gunicorn's threads write them in the order they
finish, not the order the requests were sent.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.multiprocess import MultiProcessCollector
from prometheus_client.parser import text_string_to_metric_families

from scripts.stack import Stack, free_port
from tests.e2e.conftest import StartStack
from tests.e2e.leaks import Traffic, secrets_in
from tests.e2e.server_output import ServerOutput
from tests.support.contract import assert_refusal

pytestmark = pytest.mark.e2e

LOG_WAIT_SECONDS = 30.0
# Requests sent in parallel batches until both workers have served some; a bound, not a goal.
BATCH = 8
MAX_REQUESTS = 400


def json_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    """The lines that are JSON objects (gunicorn's and the app's log with LOG_FORMAT=json)."""
    parsed = []
    for line in lines:
        if line.startswith("{"):
            try:
                parsed.append(json.loads(line))
            except ValueError:
                continue
    return parsed


def access_lines(lines: Iterable[str]) -> list[dict[str, Any]]:
    return [line for line in json_lines(lines) if line.get("logger") == "app.access"]


def test_one_json_access_line_per_request_with_its_request_id_and_no_token(
    start_stack: StartStack, traffic: Traffic
) -> None:
    output = ServerOutput()
    stack = start_stack(extra_env={"LOG_FORMAT": "json"}, output=output)
    token = stack.emulator.issue_user_token("alice")
    traffic.tokens.append(token)
    start = output.mark()
    sent = {  # request id: (path, Bearer token, status)
        "obs-me-1": ("/api/me", token, 200),
        "obs-me-2": ("/api/me", token, 200),
        "obs-users": ("/api/users?$top=2&extra=hidden-value", token, 200),
        "obs-no-token": ("/api/me", None, 401),
        "obs-bad-token": ("/api/me", token + "x", 401),
        "obs-token-in-path": (f"/api/{token}", None, 404),
        "obs-token-in-query": (f"/api/me?access_token={token}", None, 401),
    }
    for request_id, (path, bearer, status) in sent.items():
        response = stack.get(path, bearer, headers={"X-Request-ID": request_id})
        assert response.status_code == status, response.text
        assert response.headers["X-Request-ID"] == request_id

    lines = output.wait_for(
        lambda lines: set(sent) <= {line["request_id"] for line in access_lines(lines)},
        LOG_WAIT_SECONDS,
        start=start,
    )
    found = [line for line in access_lines(lines) if line["request_id"] in sent]
    assert Counter(line["request_id"] for line in found) == Counter(list(sent))  # one each
    by_id = {line["request_id"]: line for line in found}
    for request_id, (_, _, status) in sent.items():
        assert by_id[request_id]["status"] == status
    first, second = by_id["obs-me-1"], by_id["obs-me-2"]
    assert (first["route"], first["path"], first["downstream_status"]) == (
        "/api/me",
        "/api/me",
        200,
    )
    assert first["oid"] and first["tid"] and first["azp"]
    assert (first["token_cache"], first["entra_calls"]) == ("process:miss", 2)
    assert (second["token_cache"], second["entra_calls"]) == ("process:hit", 0)
    assert by_id["obs-users"]["path"] == "/api/users"
    assert by_id["obs-bad-token"]["error"] == "invalid_token"
    assert by_id["obs-token-in-path"]["path"] == "/api/[token]"
    assert by_id["obs-token-in-path"]["route"] is None
    assert by_id["obs-token-in-query"]["path"] == "/api/me"
    text = "".join(lines)
    assert "hidden-value" not in text and "access_token" not in text
    assert secrets_in(text, traffic.tokens) == []


@pytest.fixture()
def metered_stack(
    tmp_path: Path, traffic: Traffic
) -> Iterator[tuple[Stack, ServerOutput, str, Path]]:
    """Two workers, /metrics on a port of its own, the multiprocess directory in tmp_path (with
    a stale file of a previous run in it); yields the stack, its output, the metrics URL and
    the directory."""
    directory = tmp_path / "prometheus"
    directory.mkdir()
    (directory / "counter_1.db").write_bytes(b"a previous run")
    metrics_port = free_port()
    output = ServerOutput()
    env = {
        "LOG_FORMAT": "json",
        "METRICS_BIND": f"127.0.0.1:{metrics_port}",
        "PROMETHEUS_MULTIPROC_DIR": str(directory),
    }
    with Stack(
        tmp_path / "stack",
        workers=2,
        extra_env=env,
        log=output,
        sent_tokens=traffic.tokens,
        keep_alive=False,
    ) as stack:
        traffic.apis.append((stack.api_url, output))
        yield stack, output, f"http://127.0.0.1:{metrics_port}/metrics", directory


def scrape(url: str) -> dict[str, Any]:
    response = requests.get(url, timeout=30)
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def total(families: dict[str, Any], family: str, **labels: str) -> float:
    return sum(
        sample.value
        for sample in families[family].samples
        if sample.name == f"{family}_total" and labels.items() <= sample.labels.items()
    )


def live_worker_pids(families: dict[str, Any]) -> set[str]:
    return {
        sample.labels["pid"] for sample in families["obo_api_worker_start_time_seconds"].samples
    }


def requests_served_by_pid(directory: Path, route: str) -> dict[str, float]:
    """Each worker's own count of requests to ``route``, from its file."""
    served = {}
    for path in directory.glob("counter_*.db"):
        metrics = MultiProcessCollector.merge([str(path)])
        served[path.stem.rpartition("_")[2]] = sum(
            sample.value
            for metric in metrics
            for sample in metric.samples
            if sample.name == "obo_api_requests_total" and sample.labels["route"] == route
        )
    return served


def pool_map(call: Callable[[], int], count: int) -> list[int]:
    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(lambda _: call(), range(count)))


def test_metrics_merge_both_workers_apart_from_the_api_port(
    metered_stack: tuple[Stack, ServerOutput, str, Path],
) -> None:
    stack, output, metrics_url, directory = metered_stack
    assert not (directory / "counter_1.db").exists()  # wiped at start
    assert_refusal(stack.get("/metrics"), 404, "not_found")  # never on the public port
    token = stack.emulator.issue_user_token("bob")

    def me() -> int:
        return stack.get("/api/me", token).status_code

    sent, serving = 0, set[str]()
    with ThreadPoolExecutor(BATCH) as pool:
        while sent < MAX_REQUESTS:
            assert list(pool.map(lambda _: me(), range(BATCH))) == [200] * BATCH
            sent += BATCH
            serving = {
                pid for pid, count in requests_served_by_pid(directory, "/api/me").items() if count
            }
            if len(serving) > 1:
                break
    assert len(serving) == 2, f"one worker served all {sent} requests"
    # Concurrent first requests in a worker share one lookup (a miss); now both workers hold
    # bob's Graph token, so whichever serves these answers from its own cache.
    assert list(pool_map(me, BATCH)) == [200] * BATCH
    sent += BATCH

    families = scrape(metrics_url)
    assert total(families, "obo_api_requests", route="/api/me", status="200") == sent
    assert total(families, "obo_api_downstream_responses", api="graph", status="200") == sent
    assert total(families, "obo_api_token_cache_lookups", level="process", result="hit") >= 1
    assert total(families, "obo_api_entra_requests", endpoint="token", outcome="ok") >= 1
    assert live_worker_pids(families) == serving

    # A worker that exits loses its live gauge (child_exit); its counts stay in the total.
    gone = sorted(serving)[0]
    start = output.mark()
    os.kill(int(gone), signal.SIGTERM)
    booted = output.wait_for(
        lambda lines: any("Booting worker with pid" in line for line in lines),
        LOG_WAIT_SECONDS,
        start=start,
    )
    assert any("Booting worker with pid" in line for line in booted)
    families = scrape(metrics_url)
    assert gone not in live_worker_pids(families)
    assert total(families, "obo_api_requests", route="/api/me", status="200") == sent
