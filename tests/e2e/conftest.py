"""End-to-end fixtures: the emulator over HTTPS and the API under gunicorn, on loopback.

Real sockets, real TLS, the real MSAL library. Every server started here is stopped by the
fixture that started it. Every stack writes its gunicorn output to the session's ``api_log``
and records the tokens sent to it in ``traffic``, so the leak check at the end of the session
(``test_zz_leaks.py``) sees all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import pytest

from scripts.stack import Stack

# Outbound timeouts short enough for tests of slow or silent services to end quickly.
SHORT_TIMEOUTS = {"HTTP_CONNECT_TIMEOUT": "1", "HTTP_READ_TIMEOUT": "1"}
SHARED_STACKS = ("stack", "timeout_stack")


@dataclass
class Traffic:
    """What the session sent: every token, and the URL of every API it started."""

    tokens: list[str] = field(default_factory=list)
    api_urls: list[str] = field(default_factory=list)


StartStack = Callable[..., Stack]


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def api_log(e2e_dir: Path) -> Path:
    """Everything gunicorn and the API wrote during the session (app log and access log)."""
    return e2e_dir / "api.log"


@pytest.fixture(scope="session")
def traffic() -> Traffic:
    return Traffic()


def open_stack(state_dir: Path, log: IO[str], traffic: Traffic, *,
               extra_env: Mapping[str, str] | None = None,
               faults: Sequence[Mapping[str, Any]] = (), wait_ready: bool = True,
               keep_alive: bool = True) -> Stack:
    """A one-worker stack (one worker: exact counts) that logs and records like the others."""
    return Stack(state_dir, log=log, workers=1, extra_env=extra_env, faults=faults,
                 wait_ready=wait_ready, sent_tokens=traffic.tokens, keep_alive=keep_alive)


def _record_api(running: Stack, traffic: Traffic) -> Stack:
    """Note the running API, so the leak check can find its output in the log."""
    traffic.api_urls.append(running.api_url)
    return running


@pytest.fixture(scope="session")
def stack(e2e_dir: Path, api_log: Path, traffic: Traffic) -> Iterator[Stack]:
    """One emulator and one single-worker API for the session."""
    with api_log.open("a", encoding="utf-8") as log, \
            open_stack(e2e_dir / "state", log, traffic) as running:
        yield _record_api(running, traffic)


@pytest.fixture(scope="module")
def timeout_stack(e2e_dir: Path, api_log: Path, traffic: Traffic,
                  request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack whose API gives up on Entra, Graph and ARM after 1 s, shared by a module."""
    state = e2e_dir / f"state-timeouts-{request.module.__name__}"
    with api_log.open("a", encoding="utf-8") as log, \
            open_stack(state, log, traffic, extra_env=SHORT_TIMEOUTS, keep_alive=False) as running:
        yield _record_api(running, traffic)


@pytest.fixture(autouse=True)
def clean_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with no faults and zeroed counters on the shared emulators."""
    shared: list[Stack] = [request.getfixturevalue(name) for name in SHARED_STACKS
                           if name in request.fixturenames]
    for running in shared:
        running.emulator.clear_faults()
        running.emulator.reset_counters()
    yield
    for running in shared:
        running.emulator.clear_faults()


@pytest.fixture()
def fresh_stack(e2e_dir: Path, api_log: Path, traffic: Traffic,
                request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack of its own, for tests that leave process-wide state behind (throttling)."""
    state = e2e_dir / f"state-{request.node.name}"
    with api_log.open("a", encoding="utf-8") as log, \
            open_stack(state, log, traffic) as running:
        yield _record_api(running, traffic)


@pytest.fixture()
def start_stack(e2e_dir: Path, api_log: Path, traffic: Traffic,
                request: pytest.FixtureRequest) -> Iterator[StartStack]:
    """Start stacks of the test's own, with ``open_stack``'s options (settings, faults active
    before the API starts, ``wait_ready``); all of them stop when the test ends."""
    numbers = itertools.count()
    with api_log.open("a", encoding="utf-8") as log, ExitStack() as running:

        def start(**options: Any) -> Stack:
            state = e2e_dir / f"state-{request.node.name}-{next(numbers)}"
            stack = running.enter_context(open_stack(state, log, traffic, keep_alive=False,
                                                     **options))
            return _record_api(stack, traffic)

        yield start
