"""The control plane: counters and injected faults on every served endpoint, and the
/_emulator/ endpoints that drive them from tests and benchmarks.

Services mark their views with `serves(target)` and register how an injected HTTP status is
rendered in their error shape (`register_status_renderer`); this package imports none of them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from flask import Flask, Response, current_app, request

from emulator.control.endpoints import bp
from emulator.control.injection import apply_request_faults, pad_response
from emulator.control.registry import (
    EXTENSION_KEY,
    ControlState,
    StatusRenderer,
    control_of,
    current_control,
)

__all__ = [
    "ControlState",
    "StatusRenderer",
    "control_of",
    "current_control",
    "declare_counters",
    "init_app",
    "register_status_renderer",
    "serves",
]

TARGET_ATTR = "emulator_target"
DETAIL_ATTR = "emulator_counter_detail"
ViewT = TypeVar("ViewT", bound=Callable[..., Any])
CounterDetail = Callable[[], str | None]


def serves(target: str, detail: CounterDetail | None = None) -> Callable[[ViewT], ViewT]:
    """Mark a view as the endpoint that counters and faults call `target`; `detail` names a
    second counter for the request at hand (e.g. the grant type), or returns None."""

    def mark(view: ViewT) -> ViewT:
        setattr(view, TARGET_ATTR, target)
        setattr(view, DETAIL_ATTR, detail)
        return view

    return mark


def init_app(app: Flask, stopping: threading.Event) -> None:
    app.extensions[EXTENSION_KEY] = ControlState(stopping)
    app.before_request(_count_and_inject)
    app.after_request(pad_response)
    app.register_blueprint(bp)


def declare_counters(app: Flask, names: Iterable[str]) -> None:
    """The counters a service keeps, listed at zero before anything is counted."""
    control_of(app).counters.declare(*names)


def register_status_renderer(app: Flask, targets: Iterable[str], renderer: StatusRenderer) -> None:
    """How a `status` fault on these targets answers, in the owning service's error shape."""
    for target in targets:
        control_of(app).renderers[target] = renderer


def _count_and_inject() -> Response | None:
    view = current_app.view_functions.get(request.endpoint or "")
    target = getattr(view, TARGET_ATTR, None)
    if target is None:
        return None
    control = current_control()
    detail: CounterDetail | None = getattr(view, DETAIL_ATTR, None)
    second = detail() if detail is not None else None
    control.counters.increment(target, *([second] if second else []))
    return apply_request_faults(control, target)
