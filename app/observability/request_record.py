"""What one request did, noted as it happens, for its access line.

The record lives in a context variable for the duration of a request (the app sets it in
``before_request``); the metric events of ``app.observability.metrics`` add to it, so the
modules that do the work (obo, downstream) note what they did with one line each and never
pass a record around. Outside a request (a background key refresh) there is no record.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from dataclasses import dataclass, field


@dataclass
class RequestRecord:
    """The request id and what the request did so far."""

    request_id: str
    started: float = field(default_factory=time.perf_counter)
    error: str | None = None  # the error code of the refusal, if the request was refused
    entra_calls: int = 0  # HTTP calls to Entra ID (token endpoint, metadata)
    token_cache: list[str] = field(default_factory=list)  # "level:hit" / "level:miss"
    downstream_status: int | None = None  # the last Graph/ARM answer's status

    def milliseconds(self) -> float:
        """Time since the request started, in milliseconds (0.1 ms steps)."""
        return round((time.perf_counter() - self.started) * 1000, 1)


_current: ContextVar[RequestRecord | None] = ContextVar("request_record", default=None)


def begin_request(request_id: str) -> RequestRecord:
    """Start the record of the request being handled."""
    record = RequestRecord(request_id)
    _current.set(record)
    return record


def end_request() -> None:
    """The request is over (its thread may serve another one next)."""
    _current.set(None)


def current_record() -> RequestRecord | None:
    """The record of the request being handled, or None outside a request."""
    return _current.get()


def current_request_id() -> str | None:
    """The id of the request being handled, or None outside a request."""
    record = _current.get()
    return record.request_id if record is not None else None
