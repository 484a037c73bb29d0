"""Where a server's CPU goes: py-spy samples its workers during a load run; the collapsed
stacks are summed by part of the request (validation, token lookup, Graph call, ...), by
function and by package."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")

# A sample belongs to the first part whose marker is in its stack (markers are frame text);
# the order puts the specific parts before the frameworks every request runs through.
PARTS: Sequence[tuple[str, Sequence[str]]] = (
    ("token validation (app/auth/tokens.py)", ("(app/auth/tokens.py:",)),
    ("downstream token: cache lookup or OBO (app/auth/obo.py, msal)", ("(app/auth/obo.py:",)),
    (
        "Graph call: HTTPS request and response (requests, urllib3, ssl)",
        ("(app/downstream.py:", "(requests/", "(urllib3/", "(ssl.py:"),
    ),
    ("hash of the incoming token for logs (token_id)", ("token_id (app/auth/decorators.py",)),
    ("Authorization header parsing", ("(app/auth/bearer.py:",)),
    ("logging (access log, app logs)", ("(logging/", "(gunicorn/glogging.py:")),
    ("Flask, Werkzeug and the view's JSON", ("(flask/", "(werkzeug/")),
    ("gunicorn: accept, parse, write", ("(gunicorn/",)),
)
OTHER = "other"
# Leaf frames of threads that wait (py-spy's idle detection lets some through).
IDLE_LEAVES = (
    "Selector.select (selectors.py",
    "_worker (concurrent/futures/thread.py",
    "Condition.wait (threading.py",
    "Event.wait (threading.py",
    "(gunicorn/arbiter.py",
)


def pyspy() -> str | None:
    """The py-spy next to this interpreter, or on PATH."""
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def record_while(pid: int, seconds: int, output: Path, load: Callable[[], T]) -> tuple[T, str]:
    """Sample ``pid`` and its children with py-spy while ``load()`` runs; returns what load
    returned and py-spy's own output (its errors, if it could not attach)."""
    executable = pyspy()
    if executable is None:
        return load(), "py-spy is not installed"
    argv = [
        executable,
        "record",
        "--pid",
        str(pid),
        "--subprocesses",
        "--rate",
        "100",
        "--duration",
        str(seconds),
        "--format",
        "raw",
        "--output",
        str(output),
        "--nonblocking",
    ]
    process = subprocess.Popen(  # noqa: S603 - a fixed argv, no shell
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        result = load()
        messages, _ = process.communicate(timeout=seconds + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=5)
    return result, messages


def summarise(collapsed: str, workers: Sequence[int], top: int = 12) -> dict[str, Any]:
    """Shares of the workers' busy samples by part, own time by function and by package."""
    parts: Counter[str] = Counter()
    functions: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    markers = tuple(f"process {pid}:" for pid in workers)
    total = 0
    for line in collapsed.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        all_frames = stack.split(";")
        if not any(frame.startswith(markers) for frame in all_frames):
            continue  # the master process
        frames = [f for f in all_frames if not f.startswith("process ")]
        if not frames or any(idle in frames[-1] for idle in IDLE_LEAVES):
            continue
        total += count
        parts[_part(stack)] += count
        leaf = frames[-1]
        functions[_without_line(leaf)] += count
        packages[_package(leaf)] += count

    def shares(counter: Counter[str], limit: int) -> list[dict[str, Any]]:
        return [
            {"name": name, "share": round(n / total, 3)} for name, n in counter.most_common(limit)
        ]

    if total == 0:
        return {"samples": 0}
    return {
        "samples": total,
        "parts": shares(parts, len(PARTS) + 1),
        "functions": shares(functions, top),
        "packages": shares(packages, top),
    }


def _part(stack: str) -> str:
    for name, markers in PARTS:
        if any(marker in stack for marker in markers):
            return name
    return OTHER


def _without_line(frame: str) -> str:
    """``name (path/file.py:123)`` -> ``name (path/file.py)``."""
    head, _, location = frame.rpartition(" (")
    return f"{head} ({location.rsplit(':', 1)[0]})" if head else frame


def _package(frame: str) -> str:
    location = frame.rpartition(" (")[2].rsplit(":", 1)[0]
    first = location.split("/", 1)[0]
    return first.removesuffix(".py") or "?"
