"""Injected faults: what a target endpoint should do instead of answering normally.

A fault acts on `count` requests (None: until cleared) and then disappears. Faults on one
target are consulted in the order they were added.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass
from typing import Any

TARGETS = ("openid-configuration", "keys", "token", "graph", "arm", "managed-identity")
MODE_TARGETS: Mapping[str, tuple[str, ...]] = {
    "status": TARGETS,
    "delay": TARGETS,
    "reset": TARGETS,
    "html": TARGETS,
    "huge": TARGETS,
    "empty_keys": ("keys",),
    "cae": ("graph", "arm"),
    "interaction": ("token",),
}
MAX_DELAY_SECONDS = 600.0
MAX_HUGE_SIZE = 256 * 1024 * 1024
DEFAULT_HUGE_SIZE = 2 * 1024 * 1024


class InvalidFault(ValueError):
    """The fault specification is not one the emulator understands."""


@dataclass
class Fault:
    id: str
    target: str
    mode: str
    count: int | None
    created_at: float
    status: int | None = None
    retry_after: int | None = None
    seconds: float | None = None  # mode delay
    size: int | None = None  # mode huge

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


def parse_fault(spec: Mapping[str, Any], now: float | None = None) -> Fault:
    """Validate a fault specification (the JSON body of POST /_emulator/faults)."""
    target, mode = spec.get("target"), spec.get("mode")
    if target not in TARGETS:
        raise InvalidFault(f"target must be one of {', '.join(TARGETS)}")
    if not isinstance(mode, str) or mode not in MODE_TARGETS:
        raise InvalidFault(f"mode must be one of {', '.join(MODE_TARGETS)}")
    if target not in MODE_TARGETS[mode]:
        raise InvalidFault(f"mode {mode!r} applies to {', '.join(MODE_TARGETS[mode])} only")
    fault = Fault(
        id=str(uuid.uuid4()),
        target=target,
        mode=mode,
        count=_optional_int(spec, "count", minimum=1),
        created_at=time.time() if now is None else now,
        retry_after=_optional_int(spec, "retry_after", minimum=0),
    )
    if mode == "status":
        fault.status = _required_status(spec)
    elif mode == "html":
        fault.status = _optional_int(spec, "status", minimum=100, maximum=599) or 200
    elif mode == "delay":
        fault.seconds = _seconds(spec)
    elif mode == "huge":
        size = _optional_int(spec, "size", minimum=1, maximum=MAX_HUGE_SIZE)
        fault.size = size or DEFAULT_HUGE_SIZE
    return fault


def _optional_int(
    spec: Mapping[str, Any], name: str, *, minimum: int, maximum: int | None = None
) -> int | None:
    value = spec.get(name)
    if value is None:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
        raise InvalidFault(f"{name} must be an integer >= {minimum}")
    if maximum is not None and value > maximum:
        raise InvalidFault(f"{name} must be <= {maximum}")
    return value


def _required_status(spec: Mapping[str, Any]) -> int:
    status = _optional_int(spec, "status", minimum=100, maximum=599)
    if status is None:
        raise InvalidFault("mode 'status' needs a 'status' (an HTTP status code)")
    return status


def _seconds(spec: Mapping[str, Any]) -> float:
    value = spec.get("seconds")
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise InvalidFault("mode 'delay' needs 'seconds' >= 0")
    if value > MAX_DELAY_SECONDS:
        raise InvalidFault(f"seconds must be <= {MAX_DELAY_SECONDS:g}")
    return float(value)


class FaultBook:
    """The active faults; safe to use from the server's request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._faults: list[Fault] = []

    def add(self, fault: Fault) -> Fault:
        with self._lock:
            self._faults.append(fault)
        return fault

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [f.to_dict() for f in self._faults]

    def take(
        self,
        target: str,
        modes: Collection[str],
        applies: Callable[[Fault], bool] = lambda fault: True,
    ) -> Fault | None:
        """Consume one use of the first fault for `target` in `modes` that `applies`."""
        with self._lock:
            for fault in self._faults:
                if fault.target == target and fault.mode in modes and applies(fault):
                    self._use(fault)
                    return fault
        return None

    def _use(self, fault: Fault) -> None:
        if fault.count is None:
            return
        fault.count -= 1
        if fault.count <= 0:
            self._faults.remove(fault)
