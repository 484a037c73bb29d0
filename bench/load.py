"""HTTP load with wrk: each run bounded in time and in count, users' tokens rotated by Lua."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

SCRIPT = Path(__file__).resolve().parent / "wrk" / "rotate_tokens.lua"
MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class LoadResult:
    """What one wrk run measured; latencies in milliseconds."""

    requests: int
    seconds: float
    statuses: dict[str, int]
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def failed(self) -> int:
        """Responses other than 200, plus connections that failed or timed out."""
        return self.socket_errors + sum(n for s, n in self.statuses.items() if s != "200")

    def to_dict(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "seconds": round(self.seconds, 3),
            "rps": round(self.rps, 1),
            "statuses": self.statuses,
            "socket_errors": self.socket_errors,
            "p50_ms": self.p50_ms,
            "p90_ms": self.p90_ms,
            "p99_ms": self.p99_ms,
            "max_ms": self.max_ms,
        }


@dataclass(frozen=True)
class Load:
    """How to load one URL: connections, the tokens to rotate, and the bounds of a run."""

    url: str
    tokens_file: Path
    connections: int = 8
    path: str = "/api/me"
    env: dict[str, str] = field(default_factory=dict)

    def run(self, seconds: int, max_requests: int, close: bool = False) -> LoadResult:
        """One wrk run of at most ``seconds`` and about ``max_requests`` responses."""
        wrk = shutil.which("wrk")
        if wrk is None:
            raise RuntimeError("wrk is not installed")
        env = {
            **os.environ,
            **self.env,
            "BENCH_TOKENS_FILE": str(self.tokens_file),
            "BENCH_PATH": self.path,
            "BENCH_CLOSE": "1" if close else "0",
            "BENCH_MAX_REQUESTS": str(max_requests),
        }
        argv = [
            wrk,
            "--threads",
            "1",
            "--connections",
            str(self.connections),
            "--duration",
            f"{seconds}s",
            "--timeout",
            "10s",
            "--script",
            str(SCRIPT),
            self.url + self.path,
        ]
        completed = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            argv,
            env=env,
            capture_output=True,
            text=True,
            timeout=seconds + 30,
            check=False,
        )
        return parse(completed.stdout, completed.stderr)


def parse(stdout: str, stderr: str = "") -> LoadResult:
    """The result line printed by the Lua ``done`` function."""
    for line in stdout.splitlines():
        if line.startswith(MARKER):
            data = json.loads(line[len(MARKER) :])
            break
    else:
        raise RuntimeError(f"wrk printed no result:\n{stdout}\n{stderr}")
    errors = data["errors"]
    latency = data["latency_us"]
    return LoadResult(
        requests=data["requests"],
        seconds=data["duration_us"] / 1e6,
        statuses={str(k): int(v) for k, v in data["statuses"].items()},
        socket_errors=errors["connect"] + errors["read"] + errors["write"] + errors["timeout"],
        p50_ms=latency["p50"] / 1000,
        p90_ms=latency["p90"] / 1000,
        p99_ms=latency["p99"] / 1000,
        max_ms=latency["max"] / 1000,
    )
