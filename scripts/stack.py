"""Start the local stack: the emulator (HTTPS) and the API under gunicorn, both on loopback.

Used by `make demo`, `make dev`, the end-to-end tests and the benchmark. Every process it
starts is stopped when the stack is closed, and start-up waits are bounded.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import requests

from emulator import Emulator
from emulator.directory import API_CLIENT_ID, API_CLIENT_SECRET, TENANT_ID

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def api_environment(emulator_url: str, ca_bundle: Path) -> dict[str, str]:
    """The API's settings for a tenant hosted by the emulator at ``emulator_url``."""
    return {
        "AZURE_TENANT_ID": TENANT_ID,
        "AZURE_CLIENT_ID": API_CLIENT_ID,
        "AZURE_CLIENT_SECRET": API_CLIENT_SECRET,
        "AZURE_AUTHORITY_HOST": emulator_url,
        "GRAPH_URL": f"{emulator_url}/v1.0",
        "ARM_URL": emulator_url,
        # Machines may point this at the system bundle already; this one holds both.
        "REQUESTS_CA_BUNDLE": str(ca_bundle),
    }


class ApiServer:
    """The API under gunicorn, as production runs it."""

    def __init__(self, env: Mapping[str, str], *, workers: int = 1, threads: int = 4,
                 port: int | None = None, log: IO[str] | None = None,
                 keep_alive: bool = True) -> None:
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._env = {**os.environ, **env, "BIND": f"127.0.0.1:{self.port}",
                     "WEB_CONCURRENCY": str(workers), "THREADS": str(threads)}
        self._log = log
        # On stop, gthread workers linger up to 2 s on kept-alive connections; tests that start
        # many short-lived stacks turn keep-alive off so that each stops at once.
        self._options = [] if keep_alive else ["--keep-alive", "0"]
        self._process: subprocess.Popen[str] | None = None

    def start(self, wait_ready: bool = True) -> ApiServer:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        self._process = subprocess.Popen(
            [str(gunicorn), "--config", "gunicorn.conf.py", *self._options, "wsgi:app"],
            cwd=ROOT, env=self._env, text=True,
            stdout=self._log or subprocess.DEVNULL, stderr=subprocess.STDOUT,
        )
        self._wait("/readyz" if wait_ready else "/healthz")
        return self

    def _wait(self, path: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self._process.returncode}")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"the API did not answer {path} within {START_TIMEOUT:.0f}s")

    def stop(self) -> None:
        if self._process is None or self._process.poll() is not None:
            return
        self._process.terminate()
        try:
            self._process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=5)


class Stack:
    """Emulator + API; a context manager that always cleans up.

    ``faults`` (each the keyword arguments of ``Emulator.add_fault``) are active before the API
    starts, for outages at start-up; pair them with ``wait_ready=False``. Tokens passed to
    ``get`` are appended to ``sent_tokens`` when it is given, so tests can look for them later.
    """

    def __init__(self, state_dir: Path, *, workers: int = 1, api_port: int | None = None,
                 emulator_port: int = 0, extra_env: Mapping[str, str] | None = None,
                 log: IO[str] | None = None, wait_ready: bool = True,
                 faults: Sequence[Mapping[str, Any]] = (),
                 sent_tokens: list[str] | None = None, keep_alive: bool = True) -> None:
        self.emulator = Emulator(state_dir=state_dir, port=emulator_port)
        self._workers = workers
        self._api_port = api_port
        self._extra_env = dict(extra_env or {})
        self._log = log
        self._wait_ready = wait_ready
        self._faults = list(faults)
        self._sent_tokens = sent_tokens
        self._keep_alive = keep_alive
        self.api: ApiServer | None = None

    @property
    def api_url(self) -> str:
        if self.api is None:
            raise RuntimeError("the stack is not started")
        return self.api.url

    def __enter__(self) -> Stack:
        self.emulator.start()
        try:
            for fault in self._faults:
                self.emulator.add_fault(**fault)
            env = {**api_environment(self.emulator.base_url, self.emulator.ca_bundle),
                   **self._extra_env}
            self.api = ApiServer(env, workers=self._workers, port=self._api_port,
                                 log=self._log, keep_alive=self._keep_alive
                                 ).start(self._wait_ready)
        except BaseException:
            self.emulator.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.api is not None:
            self.api.stop()
        self.emulator.stop()

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
            if self._sent_tokens is not None:
                self._sent_tokens.append(token)
        return requests.get(self.api_url + path, headers=headers, timeout=30, **kwargs)
