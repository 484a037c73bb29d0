"""The circuit breaker: closed, open after consecutive failures, one trial when half-open."""

from __future__ import annotations

from app.auth.circuit_breaker import CircuitBreaker, CircuitState

COOLDOWN = 5.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def opened(failures: int = 3) -> tuple[CircuitBreaker, Clock]:
    clock = Clock()
    breaker = CircuitBreaker(failures, COOLDOWN, clock)
    for _ in range(failures):
        assert breaker.allow()
        breaker.failed()
    return breaker, clock


def test_failures_in_a_row_open_it() -> None:
    breaker = CircuitBreaker(3, COOLDOWN, Clock())
    assert [breaker.failed() for _ in range(2)] == [False, False]
    assert breaker.state is CircuitState.CLOSED
    assert breaker.failed() is True
    assert breaker.state is CircuitState.OPEN
    assert not breaker.allow()


def test_a_success_resets_the_count() -> None:
    breaker = CircuitBreaker(3, COOLDOWN, Clock())
    breaker.failed()
    breaker.failed()
    assert breaker.succeeded() is False  # it was not open
    breaker.failed()
    breaker.failed()
    assert breaker.state is CircuitState.CLOSED


def test_after_the_cooldown_one_trial_goes_through() -> None:
    breaker, clock = opened()
    clock.now += COOLDOWN - 0.001
    assert not breaker.allow()
    clock.now += 0.001
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # others wait for its outcome


def test_a_successful_trial_closes_it() -> None:
    breaker, clock = opened()
    clock.now += COOLDOWN
    assert breaker.allow()
    assert breaker.succeeded() is True
    assert breaker.state is CircuitState.CLOSED
    assert breaker.allow()


def test_a_failed_trial_opens_it_for_another_cooldown() -> None:
    breaker, clock = opened()
    clock.now += COOLDOWN
    assert breaker.allow()
    assert breaker.failed() is True
    assert breaker.state is CircuitState.OPEN
    clock.now += COOLDOWN
    assert breaker.allow()


def test_a_trial_that_never_reports_is_given_up_after_a_cooldown() -> None:
    breaker, clock = opened()
    clock.now += COOLDOWN
    assert breaker.allow()
    clock.now += COOLDOWN
    assert breaker.allow()  # a new trial
