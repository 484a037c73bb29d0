"""Per-endpoint request counters, so tests and benchmarks can see how often a client called."""

from __future__ import annotations

import threading


class Counters:
    """Named counters; the services declare theirs so that a snapshot lists every one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[str, int] = {}

    def declare(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._counts.setdefault(name, 0)

    def increment(self, *names: str) -> None:
        with self._lock:
            for name in names:
                self._counts[name] = self._counts.get(name, 0) + 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return dict(self._counts)

    def reset(self) -> None:
        with self._lock:
            self._counts = dict.fromkeys(self._counts, 0)
