"""End-to-end fixtures: the emulator over HTTPS and the API under gunicorn, on loopback.

Real sockets, real TLS, the real MSAL library. Every server started here is stopped by the
fixture that started it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from scripts.stack import Stack


@pytest.fixture(scope="session")
def e2e_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def api_log(e2e_dir: Path) -> Path:
    """Everything gunicorn and the API wrote during the session (app log and access log)."""
    return e2e_dir / "api.log"


@pytest.fixture(scope="session")
def stack(e2e_dir: Path, api_log: Path) -> Iterator[Stack]:
    """One emulator and one single-worker API for the session (one worker: exact counts)."""
    with api_log.open("a", encoding="utf-8") as log, \
            Stack(e2e_dir / "state", log=log, workers=1) as running:
        yield running


@pytest.fixture(autouse=True)
def clean_emulator(request: pytest.FixtureRequest) -> Iterator[None]:
    """Each test starts with no faults and zeroed counters on the shared emulator."""
    if "stack" not in request.fixturenames:
        yield
        return
    stack: Stack = request.getfixturevalue("stack")
    stack.emulator.clear_faults()
    stack.emulator.reset_counters()
    yield
    stack.emulator.clear_faults()


@pytest.fixture()
def fresh_stack(e2e_dir: Path, api_log: Path, request: pytest.FixtureRequest) -> Iterator[Stack]:
    """A stack of its own, for tests that leave process-wide state behind (throttling)."""
    state = e2e_dir / f"state-{request.node.name}"
    with api_log.open("a", encoding="utf-8") as log, Stack(state, log=log, workers=1) as running:
        yield running
