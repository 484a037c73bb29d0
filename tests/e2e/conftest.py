"""End-to-end fixtures: the emulator over HTTPS and the API under gunicorn, on loopback.

Real sockets, real TLS, the real MSAL library. Every stack gets a port the OS picks, a state
directory of its own and an output recorder; it records the tokens sent to it in ``traffic``,
and is stopped by the fixture that started it. When the session ends, after every stack has
stopped, ``traffic`` checks that no API wrote a secret to its log.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from scripts.stack import Stack
from tests.e2e.leaks import Traffic, assert_no_secrets
from tests.e2e.server_output import ServerOutput

# Outbound timeouts short enough for tests of slow or silent services to end quickly.
SHORT_TIMEOUTS = {"HTTP_CONNECT_TIMEOUT": "1", "HTTP_READ_TIMEOUT": "1"}
SHARED_STACKS = ("stack", "timeout_stack")

StartStack = Callable[..., Stack]


@contextmanager
def running_stack(
    state_dir: Path, traffic: Traffic, output: ServerOutput | None = None, **options: Any
) -> Iterator[Stack]:
    """A one-worker stack (one worker: exact counts) whose output and tokens ``traffic``
    records; ``options`` as for ``Stack``."""
    output = output or ServerOutput()
    with Stack(state_dir, workers=1, log=output, sent_tokens=traffic.tokens, **options) as stack:
        traffic.apis.append((stack.api_url, output))
        yield stack


@pytest.fixture(scope="session")
def traffic() -> Iterator[Traffic]:
    """Every token the session sent and every API's output, checked for secrets at the end."""
    record = Traffic()
    yield record
    assert_no_secrets(record)  # every stack fixture depends on this one: all have stopped


@pytest.fixture(scope="session")
def stack_output() -> ServerOutput:
    """What the session's shared API writes: gunicorn's and the app's log, the access log."""
    return ServerOutput()


@pytest.fixture(scope="session")
def stack(
    tmp_path_factory: pytest.TempPathFactory, traffic: Traffic, stack_output: ServerOutput
) -> Iterator[Stack]:
    """One emulator and one single-worker API for the session."""
    with running_stack(tmp_path_factory.mktemp("stack"), traffic, stack_output) as running:
        yield running


@pytest.fixture(scope="module")
def timeout_stack(tmp_path_factory: pytest.TempPathFactory, traffic: Traffic) -> Iterator[Stack]:
    """A stack whose API gives up on Entra, Graph and ARM after 1 s, shared by a module."""
    with running_stack(
        tmp_path_factory.mktemp("timeout-stack"),
        traffic,
        extra_env=SHORT_TIMEOUTS,
        keep_alive=False,
    ) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with no faults and zeroed counters on the shared emulators."""
    shared: list[Stack] = [
        request.getfixturevalue(name) for name in SHARED_STACKS if name in request.fixturenames
    ]
    for running in shared:
        running.emulator.clear_faults()
        running.emulator.reset_counters()
    yield
    for running in shared:
        running.emulator.clear_faults()


@pytest.fixture()
def fresh_stack(tmp_path: Path, traffic: Traffic) -> Iterator[Stack]:
    """A stack of its own, for tests that leave process-wide state behind (throttling)."""
    with running_stack(tmp_path / "stack", traffic) as running:
        yield running


@pytest.fixture()
def start_stack(tmp_path: Path, traffic: Traffic) -> Iterator[StartStack]:
    """Start stacks of the test's own, with ``Stack``'s options (settings, faults active
    before the API starts, ``wait_ready``); all of them stop when the test ends."""
    numbers = itertools.count()
    with ExitStack() as started:

        def start(**options: Any) -> Stack:
            state = tmp_path / f"stack-{next(numbers)}"
            return started.enter_context(running_stack(state, traffic, keep_alive=False, **options))

        yield start
