"""Prometheus metrics, and the events that move them.

Each event is one line where it happens (``metrics.cache_lookup("process", hit=True)``). It
counts for Prometheus and notes what happened on the current request's record, for the
request's access line. Label values come from this code, never from a client, so each metric
has a bounded number of series.

prometheus_client chooses its storage when it is first imported: files in
PROMETHEUS_MULTIPROC_DIR when that is set (gunicorn's workers; see ``metrics_server``), else
memory. gunicorn's master imports the app's modules while it reads gunicorn.conf.py, before its
``on_starting`` hook sets that directory, so the library is imported, and the metrics created,
on first use: in a worker, after the fork.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, TypeVar

from app.observability.request_record import current_record

if TYPE_CHECKING:
    from prometheus_client import Counter, Gauge, Histogram

PREFIX = "obo_api"
# Where a request has no URL rule (404, or a 405 before routing): never the raw path.
UNMATCHED_ROUTE = "unmatched"


class _Answer(Protocol):
    status_code: int


Answer = TypeVar("Answer", bound=_Answer)


@dataclass(frozen=True)
class _Instruments:
    requests: Counter
    request_seconds: Histogram
    token_refusals: Counter
    token_cache: Counter
    entra_calls: Counter
    entra_throttle_windows: Counter
    downstream_seconds: Histogram
    downstream_responses: Counter
    signing_key_refreshes: Counter
    worker_started: Gauge


def _create() -> _Instruments:
    # Imported on first use, not with this module: see the module's docstring.
    from prometheus_client import Counter, Gauge, Histogram

    return _Instruments(
        requests=Counter(
            f"{PREFIX}_requests", "Requests answered, by route and status", ["route", "status"]
        ),
        request_seconds=Histogram(
            f"{PREFIX}_request_duration_seconds", "Time to answer a request, by route", ["route"]
        ),
        token_refusals=Counter(
            f"{PREFIX}_token_refusals",
            "Requests refused with a Bearer challenge, by reason",
            ["reason"],
        ),
        token_cache=Counter(
            f"{PREFIX}_token_cache_lookups",
            "Downstream token cache lookups, by cache level and result",
            ["level", "result"],
        ),
        entra_calls=Counter(
            f"{PREFIX}_entra_requests",
            "HTTP calls to Entra ID, by endpoint and outcome",
            ["endpoint", "outcome"],
        ),
        entra_throttle_windows=Counter(
            f"{PREFIX}_entra_throttle_windows",
            "Windows opened in which token exchanges for a downstream API wait for Entra ID",
            ["api"],
        ),
        downstream_seconds=Histogram(
            f"{PREFIX}_downstream_duration_seconds",
            "Time of a call to a downstream API, body included",
            ["api"],
        ),
        downstream_responses=Counter(
            f"{PREFIX}_downstream_responses",
            "Downstream API answers, by API and HTTP status (error: no answer)",
            ["api", "status"],
        ),
        signing_key_refreshes=Counter(
            f"{PREFIX}_signing_key_refreshes",
            "Loads of the tenant's signing keys, by outcome",
            ["outcome"],
        ),
        # One series per live worker (multiprocess mode adds the pid label; a worker's series
        # goes when it exits), so a scrape shows which processes report.
        worker_started=Gauge(
            f"{PREFIX}_worker_start_time_seconds",
            "When this worker process started, in Unix time",
            multiprocess_mode="liveall",
        ),
    )


_lock = threading.Lock()
_instruments: _Instruments | None = None


def _metrics() -> _Instruments:
    global _instruments
    if _instruments is None:
        with _lock:
            if _instruments is None:
                _instruments = _create()
    return _instruments


def worker_started() -> None:
    """This process serves requests from now on (called when the app is created)."""
    _metrics().worker_started.set(time.time())


def request_done(route: str | None, status: int, seconds: float) -> None:
    """A request was answered; ``route`` is its URL rule, None when nothing matched."""
    route = route or UNMATCHED_ROUTE
    metrics = _metrics()
    metrics.requests.labels(route=route, status=str(status)).inc()
    metrics.request_seconds.labels(route=route).observe(seconds)


def request_refused(error: str, challenge: str | None) -> None:
    """The request is answered with ``error``; a ``challenge`` (the WWW-Authenticate error,
    "" for a bare one) makes it a token refusal."""
    record = current_record()
    if record is not None:
        record.error = error
    if challenge is not None:
        _metrics().token_refusals.labels(reason=challenge or error).inc()


def cache_lookup(level: str, *, hit: bool) -> None:
    """A downstream token was looked up in a cache ``level`` ("process", "redis")."""
    result = "hit" if hit else "miss"
    _metrics().token_cache.labels(level=level, result=result).inc()
    record = current_record()
    if record is not None:
        record.token_cache.append(f"{level}:{result}")


def entra_call(endpoint: str, outcome: str) -> None:
    """An HTTP call to Entra ID's ``endpoint`` ended with ``outcome``."""
    _metrics().entra_calls.labels(endpoint=endpoint, outcome=outcome).inc()
    record = current_record()
    if record is not None:
        record.entra_calls += 1


def entra_throttled(api: str) -> None:
    """Exchanges for ``api`` wait from now on: Entra ID answered 429 or 5xx."""
    _metrics().entra_throttle_windows.labels(api=api).inc()


def signing_key_refresh(outcome: str) -> None:
    """The tenant's signing keys were loaded (``ok``) or could not be (``failed``)."""
    _metrics().signing_key_refreshes.labels(outcome=outcome).inc()


def downstream_call(api: str, send: Callable[[], Answer]) -> Answer:
    """``send()`` a call to a downstream API, timed and counted by its status."""
    started = time.perf_counter()
    status = "error"
    try:
        answer = send()
        status = str(answer.status_code)
        record = current_record()
        if record is not None:
            record.downstream_status = answer.status_code
        return answer
    finally:
        metrics = _metrics()
        metrics.downstream_seconds.labels(api=api).observe(time.perf_counter() - started)
        metrics.downstream_responses.labels(api=api, status=status).inc()
