"""Events for requests reaching the emulator, so a test waits for the API's call instead of
polling counters.

The emulator serves from the test process as a Flask app, so Flask's ``request_started``
signal fires when a request arrives (before an injected delay) and ``request_finished`` when
its answer is ready (after it).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import Any

import flask

from emulator import Emulator


@dataclass
class RequestWatch:
    arrived: threading.Event = field(default_factory=threading.Event)
    answered: threading.Event = field(default_factory=threading.Event)


@contextmanager
def watch_requests(emulator: Emulator, path_suffix: str) -> Iterator[RequestWatch]:
    """Events set when a request for a path ending in ``path_suffix`` reaches ``emulator``,
    and when the emulator has its answer."""
    watch = RequestWatch()

    def matches() -> bool:
        request = flask.request
        return request.host.endswith(f":{emulator.port}") and request.path.endswith(path_suffix)

    def on_started(sender: flask.Flask, **extra: Any) -> None:
        if matches():
            watch.arrived.set()

    def on_finished(sender: flask.Flask, **extra: Any) -> None:
        if matches():
            watch.answered.set()

    with ExitStack() as connected:
        connected.enter_context(flask.request_started.connected_to(on_started))
        connected.enter_context(flask.request_finished.connected_to(on_finished))
        yield watch
