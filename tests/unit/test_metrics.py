"""Prometheus metrics: what each event counts, and the multiprocess set-up of gunicorn's master.

In this process prometheus_client keeps samples in memory (no PROMETHEUS_MULTIPROC_DIR), in
its default registry; each test reads how much a sample moved.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import requests
from flask.testing import FlaskClient
from prometheus_client import REGISTRY

from app.config import ConfigError, load_server_settings
from app.observability import metrics
from app.observability.entra_http import entra_endpoint, entra_outcome
from app.observability.metrics_server import MULTIPROC_DIR_VARIABLE, MultiprocessMetrics
from tests.support.stubs import StubServices
from tests.support.tokens import TokenFactory, bearer

ROOT = Path(__file__).resolve().parents[2]

Sample = Callable[[str, dict[str, str]], float]


@pytest.fixture()
def moved() -> Sample:
    """How much a sample moved since the test started (read it after the requests)."""
    metrics.worker_started()  # the metrics exist before the first reading
    before = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in REGISTRY.collect()
        for sample in family.samples
    }

    def delta(name: str, labels: dict[str, str]) -> float:
        now = REGISTRY.get_sample_value(name, labels) or 0.0
        return now - before.get((name, tuple(sorted(labels.items()))), 0.0)

    return delta


def test_requests_are_counted_by_route_and_status(client: FlaskClient, moved: Sample) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/nothing-here").status_code == 404
    assert moved("obo_api_requests_total", {"route": "/healthz", "status": "200"}) == 2
    assert moved("obo_api_request_duration_seconds_count", {"route": "/healthz"}) == 2
    # Never the raw path: a client cannot make a series per URL.
    assert moved("obo_api_requests_total", {"route": "unmatched", "status": "404"}) == 1


def test_an_exchange_then_a_reuse(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, moved: Sample
) -> None:
    token = tokens.valid()
    for _ in range(2):
        response = client.get("/api/me", headers=bearer(token))
        assert response.status_code == 200
        assert response.json["displayName"] == "Alice Example"
    assert moved("obo_api_token_cache_lookups_total", {"level": "process", "result": "miss"}) == 1
    assert moved("obo_api_token_cache_lookups_total", {"level": "process", "result": "hit"}) == 1
    assert moved("obo_api_entra_requests_total", {"endpoint": "token", "outcome": "ok"}) == 1
    assert moved("obo_api_entra_requests_total", {"endpoint": "metadata", "outcome": "ok"}) == 1
    assert moved("obo_api_downstream_responses_total", {"api": "graph", "status": "200"}) == 2
    assert moved("obo_api_downstream_duration_seconds_count", {"api": "graph"}) == 2
    assert moved("obo_api_requests_total", {"route": "/api/me", "status": "200"}) == 2


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({}, "unauthorized"),
        ({"Authorization": "Bearer not-a-jwt"}, "invalid_token"),
        ({"Authorization": "Basic abc"}, "unauthorized"),
        ({"Authorization": "Bearer a b"}, "invalid_request"),
    ],
)
def test_token_refusals_are_counted_by_reason(
    client: FlaskClient, stubs: StubServices, moved: Sample, headers: dict[str, str], reason: str
) -> None:
    assert client.get("/api/me", headers=headers).status_code in (400, 401)
    assert moved("obo_api_token_refusals_total", {"reason": reason}) == 1


def test_a_scope_refusal_is_a_token_refusal_and_a_404_is_not(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, moved: Sample
) -> None:
    assert client.get("/api/me", headers=bearer(tokens.app_only())).status_code == 403
    assert client.get("/api/nothing-here").status_code == 404
    assert moved("obo_api_token_refusals_total", {"reason": "insufficient_scope"}) == 1
    assert moved("obo_api_token_refusals_total", {"reason": "not_found"}) == 0


def test_entra_throttling_opens_a_window(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, moved: Sample
) -> None:
    stubs.obo_errors.append((429, {"error": "temporarily_unavailable"}, {"Retry-After": "7"}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert (response.status_code, response.headers["Retry-After"]) == (503, "7")
    # The next exchange waits without calling Entra ID.
    assert client.get("/api/me", headers=bearer(tokens.valid())).status_code == 503
    assert moved("obo_api_entra_throttle_windows_total", {"api": "graph"}) == 1
    assert moved("obo_api_entra_requests_total", {"endpoint": "token", "outcome": "throttled"}) == 1


def test_a_downstream_call_without_an_answer_counts_as_error(moved: Sample) -> None:
    def unreachable() -> requests.Response:
        raise requests.ConnectionError("refused")

    with pytest.raises(requests.ConnectionError):
        metrics.downstream_call("arm", unreachable)
    assert moved("obo_api_downstream_responses_total", {"api": "arm", "status": "error"}) == 1
    assert moved("obo_api_downstream_duration_seconds_count", {"api": "arm"}) == 1


def test_signing_key_refreshes_by_outcome(moved: Sample) -> None:
    metrics.signing_key_refresh("ok")
    metrics.signing_key_refresh("failed")
    metrics.signing_key_refresh("failed")
    assert moved("obo_api_signing_key_refreshes_total", {"outcome": "ok"}) == 1
    assert moved("obo_api_signing_key_refreshes_total", {"outcome": "failed"}) == 2


def test_a_cache_level_of_its_own(moved: Sample) -> None:
    metrics.cache_lookup("redis", hit=True)
    assert moved("obo_api_token_cache_lookups_total", {"level": "redis", "result": "hit"}) == 1


@pytest.mark.parametrize(
    ("url", "endpoint"),
    [
        ("https://login.example/tenant/oauth2/v2.0/token", "token"),
        ("https://login.example/tenant/v2.0/.well-known/openid-configuration", "metadata"),
        ("https://login.example/common/discovery/instance", "other"),
    ],
)
def test_entra_endpoints(url: str, endpoint: str) -> None:
    assert entra_endpoint(url) == endpoint


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "ok"),
        (400, "refused"),
        (401, "refused"),
        (429, "throttled"),
        (500, "failed"),
        (503, "failed"),
    ],
)
def test_entra_outcomes(status: int, outcome: str) -> None:
    assert entra_outcome(status) == outcome


# --- METRICS_BIND and the master's multiprocess set-up ---------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("127.0.0.1:9100", ("127.0.0.1", 9100)),
        ("[::1]:9100", ("::1", 9100)),
        ("localhost:1", ("localhost", 1)),
    ],
)
def test_metrics_bind(value: str | None, expected: tuple[str, int] | None) -> None:
    env = {"METRICS_BIND": value} if value else {}
    assert load_server_settings(env).metrics_bind == expected


@pytest.mark.parametrize(
    "value",
    [
        "9100",
        "unix:/run/m.sock",
        "127.0.0.1:0",
        "host:http",
        "127.0.0.1:70000",
        "a b:9100",
        "127.0.0.1:٩١٠٠",
    ],
)
def test_a_bad_metrics_bind_names_the_variable(value: str) -> None:
    with pytest.raises(ConfigError, match="METRICS_BIND must be HOST:PORT"):
        load_server_settings({"METRICS_BIND": value})


def test_the_master_makes_a_directory_when_none_is_set() -> None:
    environ: dict[str, str] = {}
    multiprocess = MultiprocessMetrics(environ)
    directory = multiprocess.prepare()
    assert environ[MULTIPROC_DIR_VARIABLE] == str(directory) and directory.is_dir()
    assert (directory.stat().st_mode & 0o777) == 0o700
    multiprocess.cleanup()
    assert not directory.exists()


def test_the_master_empties_a_configured_directory_and_keeps_it(tmp_path: Path) -> None:
    directory = tmp_path / "metrics"
    directory.mkdir()
    (directory / "counter_12345.db").write_bytes(b"a previous run")
    (directory / "README").write_text("not ours")
    multiprocess = MultiprocessMetrics({MULTIPROC_DIR_VARIABLE: str(directory)})
    assert multiprocess.prepare() == directory
    assert sorted(path.name for path in directory.iterdir()) == ["README"]
    multiprocess.cleanup()
    assert directory.is_dir()


def test_an_exited_worker_loses_its_live_gauges(tmp_path: Path) -> None:
    for name in ("gauge_liveall_41.db", "gauge_liveall_42.db", "counter_41.db"):
        (tmp_path / name).write_bytes(b"")
    MultiprocessMetrics({MULTIPROC_DIR_VARIABLE: str(tmp_path)}).worker_exited(41)
    assert sorted(path.name for path in tmp_path.iterdir()) == [
        "counter_41.db",
        "gauge_liveall_42.db",
    ]


def test_gunicorns_master_does_not_import_prometheus_client_before_on_starting(
    tmp_path: Path,
) -> None:
    """prometheus_client picks files or memory when first imported; the master reads its
    configuration (which imports the app's modules and the log filters) before on_starting
    sets the directory up, so the library must not be imported by then."""
    script = (
        "import logging.config, runpy, sys\n"
        f"config = runpy.run_path({str(ROOT / 'gunicorn.conf.py')!r})\n"
        "logging.config.dictConfig(config['logconfig_dict'])\n"
        "print('prometheus_client' in sys.modules)\n"
    )
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in (MULTIPROC_DIR_VARIABLE, "LOG_FORMAT")
    }
    env.update(
        {
            "AZURE_TENANT_ID": "contoso.onmicrosoft.com",
            "AZURE_CLIENT_ID": "00000000-0000-0000-0000-000000000001",
            "AZURE_CLIENT_SECRET": "not-used",
            "PYTHONPATH": str(ROOT),
        }
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, "False\n"), result.stderr
