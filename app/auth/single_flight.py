"""Single-flight: concurrent calls for one key share one execution.

The first caller for a key runs the work; callers that arrive while it runs wait for it and
get its result, or its exception. A caller that arrives after it ended starts a new flight,
so nothing is cached here: the work itself reads whatever cache it has.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar, cast

T = TypeVar("T")


class _Flight(Generic[T]):
    def __init__(self) -> None:
        self.done = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """One execution at a time per key, shared by the callers that overlap it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight[T]] = {}

    def run(self, key: Hashable, work: Callable[[], T]) -> T:
        """``work()``'s result, or that of the same key's call already in progress.

        Waiting is not bounded here: ``work`` must end by itself (every outbound call it
        makes has a timeout)."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if leader:
            return self._lead(key, flight, work)
        flight.done.wait()
        if flight.error is not None:
            raise flight.error
        return cast(T, flight.result)  # set: the work returned

    def _lead(self, key: Hashable, flight: _Flight[T], work: Callable[[], T]) -> T:
        try:
            flight.result = work()
            return flight.result
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
