"""A process's output as it arrives, line by line, for tests to wait on with a deadline.

Tests never poll a log file: the lines come through a pipe (``scripts.stack`` forwards
gunicorn's, ``follow`` reads any other process's) and a waiting test wakes when one arrives.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import IO


class ServerOutput:
    """The lines a process wrote, in the order they arrived."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._ended = False
        self._changed = threading.Condition()

    def write(self, line: str) -> int:
        with self._changed:
            self._lines.append(line)
            self._changed.notify_all()
        return len(line)

    def follow(self, pipe: IO[str]) -> threading.Thread:
        """Read ``pipe`` line by line from a thread until it ends."""

        def read() -> None:
            for line in pipe:
                self.write(line)
            with self._changed:
                self._ended = True
                self._changed.notify_all()

        thread = threading.Thread(target=read, name="process-output", daemon=True)
        thread.start()
        return thread

    def mark(self) -> int:
        """Where the output is now, for ``wait_for(..., start=)``."""
        with self._changed:
            return len(self._lines)

    def text(self) -> str:
        with self._changed:
            return "".join(self._lines)

    def wait_for(
        self, done: Callable[[list[str]], bool], timeout: float, start: int = 0
    ) -> list[str]:
        """The lines from ``start`` on, as soon as ``done`` holds for them, the output ends
        or ``timeout`` seconds pass; the caller asserts on what it got."""
        with self._changed:
            self._changed.wait_for(lambda: self._ended or done(self._lines[start:]), timeout)
            return self._lines[start:]
