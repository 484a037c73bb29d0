"""Single-flight: overlapping calls for one key share one execution, its result or its error.

The tests know when the other callers have joined a flight without timing anything: their
key is equal to the leader's but not the same object, so looking the flight up compares them,
and the comparison is counted.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from app.auth.single_flight import SingleFlight

CALLERS = 8
WAIT = 30.0  # a bound for the test to fail instead of hanging; never reached when it passes


class ObservedKey:
    """A key that counts how often a caller compared it with an equal key: once per caller
    that found the flight already in progress."""

    def __init__(self, name: str, comparisons: threading.Condition, counts: list[int]) -> None:
        self.name = name
        self._comparisons = comparisons
        self._counts = counts

    def __hash__(self) -> int:
        return hash(self.name)

    def __eq__(self, other: object) -> bool:
        with self._comparisons:
            self._counts[0] += 1
            self._comparisons.notify_all()
        return isinstance(other, ObservedKey) and other.name == self.name


class Followers:
    """Keys for one flight, and a wait until ``n`` callers have joined it."""

    def __init__(self) -> None:
        self._joined = threading.Condition()
        self._counts = [0]

    def key(self) -> ObservedKey:
        return ObservedKey("alice:graph", self._joined, self._counts)

    def wait_for(self, n: int) -> None:
        with self._joined:
            assert self._joined.wait_for(lambda: self._counts[0] >= n, WAIT)


def run_overlapping(flights: SingleFlight[str], leader_work: Any) -> list[Any]:
    """One leader running ``leader_work`` and CALLERS - 1 callers that join its flight;
    what each got (a result or an exception)."""
    followers = Followers()
    calls: list[str] = []

    def work() -> str:
        calls.append("work")
        followers.wait_for(CALLERS - 1)  # everyone else is in the flight
        return str(leader_work())

    def call(_: int) -> Any:
        try:
            return flights.run(followers.key(), work)
        except RuntimeError as exc:
            return exc

    with ThreadPoolExecutor(CALLERS) as pool:
        outcomes = list(pool.map(call, range(CALLERS)))
    assert calls == ["work"]
    return outcomes


def test_overlapping_calls_share_one_execution() -> None:
    assert run_overlapping(SingleFlight(), lambda: "token") == ["token"] * CALLERS


def test_overlapping_calls_share_the_error() -> None:
    error = RuntimeError("refused")

    def refuse() -> str:
        raise error

    assert run_overlapping(SingleFlight(), refuse) == [error] * CALLERS


def test_a_call_after_a_flight_ended_runs_again() -> None:
    flights: SingleFlight[int] = SingleFlight()
    runs = iter(range(1, 10))
    assert flights.run("alice", lambda: next(runs)) == 1
    assert flights.run("alice", lambda: next(runs)) == 2
    with pytest.raises(ZeroDivisionError):
        flights.run("alice", lambda: 1 // 0)
    assert flights.run("alice", lambda: next(runs)) == 3  # an error does not stick


def test_other_keys_do_not_wait_for_a_flight() -> None:
    flights: SingleFlight[str] = SingleFlight()
    started, release = threading.Event(), threading.Event()

    def slow() -> str:
        started.set()
        assert release.wait(WAIT)
        return "alice's"

    with ThreadPoolExecutor(1) as pool:
        alice = pool.submit(flights.run, "alice", slow)
        assert started.wait(WAIT)
        assert flights.run("bob", lambda: "bob's") == "bob's"  # while alice's still runs
        assert not alice.done()
        release.set()
        assert alice.result(WAIT) == "alice's"
