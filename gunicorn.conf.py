"""gunicorn settings. Any of them can be overridden on the command line.

BIND, WEB_CONCURRENCY, THREADS, LOG_LEVEL, LOG_FORMAT and METRICS_BIND come from the environment
after ``.env`` is loaded, checked like every other setting: a malformed one stops start-up with
one line.
"""

import os
import sys
from typing import Any

from app.config import ConfigError, load_server_settings, load_settings, read_environment
from app.observability.metrics_server import MultiprocessMetrics

try:
    _server = load_server_settings(read_environment())
except ConfigError as _exc:
    # SystemExit passes through gunicorn's config loader, which prints a traceback for errors.
    print(f"configuration error: {_exc}", file=sys.stderr)
    sys.exit(1)

bind = _server.bind
# Processes: each holds its own key cache, verified-token cache and level-1 token cache. One or
# two per core; the work is mostly waiting on Graph, ARM and Entra, which threads cover.
workers = _server.workers
# gthread: each worker serves THREADS requests at once. A request spends most of its time
# waiting on a downstream call, so throughput is about workers x threads / downstream latency.
worker_class = "gthread"
threads = _server.threads
# With one shared listening socket, whichever worker wakes first accepts, and keep-alive
# clients stay with it (7 of 8 connections on one worker). With SO_REUSEPORT each worker
# (gunicorn 24 and later) binds a socket of its own and Linux spreads connections across them.
# Not for port 0 (each worker would get another port) nor unix:PATH (each worker would
# replace the others' socket file).
reuse_port = not _server.bind.startswith("unix:") and int(_server.bind.rpartition(":")[2]) != 0
# A worker silent for this long is killed and replaced. The API's own outbound deadline
# (HTTP_TOTAL_TIMEOUT, 30 s by default) ends a stuck downstream call first, with a 504 or 503.
timeout = 30
# On SIGTERM (a deployment, a scale-in) workers stop accepting and get this long to finish the
# requests in flight; give the platform's own grace period a few seconds more.
graceful_timeout = 10
# Idle keep-alive connections close after this many seconds (behind a load balancer, keep it
# shorter than the balancer's idle timeout so it never reuses a connection being closed).
keepalive = 2
# gunicorn's control socket defaults to one path per user ($HOME/.gunicorn/gunicorn.ctl), so
# several instances on one host (tests, benchmarks, side-by-side deployments) would replace
# each other's; the API does not use it.
control_socket_disable = True
# Entra tokens with many claims can exceed gunicorn's 8 KiB default; the app refuses tokens
# over 16 KiB itself, with a JSON error instead of gunicorn's plain-text 400.
limit_request_field_size = 32768
limit_request_line = 8190

# The app writes one access line per request (app.observability.access_log: route, caller,
# outcome, request id; never a query string or a header value), so gunicorn's own is off.
accesslog = None
errorlog = "-"
loglevel = _server.log_level.lower()
_line_formatter = (
    {"()": "app.logs.json_formatter"}
    if _server.log_format == "json"
    else {"()": "app.logs.TextFormatter"}
)
_line_filters = ["request_id", "redact"]
logconfig_dict = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "request_id": {"()": "app.observability.request_id.RequestIdFilter"},
        "redact": {"()": "app.logs.RedactingFilter"},
    },
    "formatters": {"line": _line_formatter},
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": _line_filters,
            "stream": "ext://sys.stderr",
        },
        "access": {
            "class": "logging.StreamHandler",
            "formatter": "line",
            "filters": _line_filters,
            "stream": "ext://sys.stdout",
        },
    },
    "root": {"level": loglevel.upper(), "handlers": ["console"]},
    "loggers": {
        "gunicorn.error": {"level": loglevel.upper(), "handlers": ["console"], "propagate": False},
        # gunicorn logs access lines whenever logconfig_dict is set; none pass this level.
        "gunicorn.access": {"level": "CRITICAL", "handlers": [], "propagate": False},
        "app.access": {"level": "INFO", "handlers": ["access"], "propagate": False},
    },
}
# prometheus_client's multiprocess mode: workers write samples to files, the master serves them.
_metrics = MultiprocessMetrics(os.environ)


def on_starting(server: object) -> None:
    """Check the API's configuration once in the master, so a bad setting stops start-up with
    one line instead of workers failing to boot over and over."""
    try:
        load_settings(os.environ)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(1)
    _metrics.prepare()  # before the first worker is forked: workers inherit the directory


def when_ready(server: Any) -> None:
    """Serve /metrics from the master on METRICS_BIND (unset: no metrics server), never on the
    API's own port."""
    if _server.metrics_bind is None:
        return
    host, port = _server.metrics_bind
    try:
        _metrics.serve(host, port)
    except OSError as exc:
        print(f"configuration error: METRICS_BIND {host}:{port}: {exc.strerror}", file=sys.stderr)
        _metrics.cleanup()
        sys.exit(1)
    server.log.info("Metrics at: http://%s:%d/metrics", host, port)


def child_exit(server: Any, worker: Any) -> None:
    """A worker is gone: drop its live gauges (its counters keep counting)."""
    _metrics.worker_exited(worker.pid)


def on_exit(server: Any) -> None:
    """Remove the multiprocess directory if this master created it."""
    _metrics.cleanup()
