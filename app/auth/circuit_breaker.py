"""A circuit breaker, so that a dependency that is down costs no time per request.

Closed: calls go through. After ``failures`` failures in a row it opens: calls are refused
without being tried for ``cooldown`` seconds. Then it is half-open: one trial call goes through
(the others are still refused); its success closes the circuit, its failure opens it again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import Enum


class CircuitState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class CircuitBreaker:
    """Counts consecutive failures of one dependency and decides whether to try it."""

    def __init__(
        self, failures: int, cooldown: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self._threshold = failures
        self._cooldown = cooldown
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_started: float | None = None

    @property
    def cooldown(self) -> float:
        return self._cooldown

    @property
    def state(self) -> CircuitState:
        with self._lock:
            return self._state(self._clock())

    def allow(self) -> bool:
        """Whether to make a call now; a True in the half-open state starts the trial."""
        with self._lock:
            now = self._clock()
            state = self._state(now)
            if state is CircuitState.CLOSED:
                return True
            if state is CircuitState.OPEN:
                return False
            # A trial whose caller never reported (it cannot happen with ``succeeded`` and
            # ``failed`` in a finally) is given up after a cool-down, so the breaker never sticks.
            if self._trial_started is not None and now - self._trial_started < self._cooldown:
                return False
            self._trial_started = now
            return True

    def succeeded(self) -> bool:
        """Record a success; True if it closed an open circuit."""
        with self._lock:
            recovered = self._opened_at is not None
            self._failures = 0
            self._opened_at = self._trial_started = None
            return recovered

    def failed(self) -> bool:
        """Record a failure; True if it opened the circuit (or kept it open after a trial)."""
        with self._lock:
            self._failures += 1
            if self._opened_at is None and self._failures < self._threshold:
                return False
            self._opened_at = self._clock()
            self._trial_started = None
            return True

    def _state(self, now: float) -> CircuitState:
        if self._opened_at is None:
            return CircuitState.CLOSED
        if now - self._opened_at < self._cooldown:
            return CircuitState.OPEN
        return CircuitState.HALF_OPEN
