"""Start the local stack: the emulator (HTTPS) and the API under gunicorn, both on loopback.

Used by `make demo`, `make dev`, the end-to-end tests and the benchmark. Every process it
starts is stopped when the stack is closed, and every wait is bounded.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Protocol

import requests

from emulator import API_CLIENT_ID, API_CLIENT_SECRET, TENANT_ID, Emulator

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 30.0
# Longer than gunicorn's graceful_timeout (10 s), after which it kills its own workers.
STOP_TIMEOUT = 15.0
KILL_TIMEOUT = 5.0
POLL_INTERVAL = 0.1
# gunicorn's line when it has bound its socket (with a port of its choosing, when given 0).
LISTENING = re.compile(r"Listening at: http://127\.0\.0\.1:(\d+)")


class TextSink(Protocol):
    """Where a server's output goes, line by line: a file, io.StringIO, a test's recorder."""

    def write(self, text: str, /) -> object: ...


def free_port() -> int:
    """A port nobody listens on right now (the OS picks it)."""
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


def stop_process(process: subprocess.Popen[str]) -> None:
    """SIGTERM, then SIGKILL if it has not exited in time (gunicorn's workers follow their
    master out)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=STOP_TIMEOUT)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=KILL_TIMEOUT)


class _GunicornOutput:
    """gunicorn's output, read line by line from a thread until it ends: each line goes to
    ``sink`` (if any), and the port gunicorn bound is taken from its "Listening at" line."""

    def __init__(self, pipe: IO[str], sink: TextSink | None) -> None:
        self.port: int | None = None
        self._pipe = pipe
        self._sink = sink
        self._port_known = threading.Event()
        self._thread = threading.Thread(target=self._read, name="gunicorn-output", daemon=True)
        self._thread.start()

    def _read(self) -> None:
        for line in self._pipe:
            if self.port is None and (listening := LISTENING.search(line)):
                self.port = int(listening[1])
                self._port_known.set()
            if self._sink is not None:
                self._sink.write(line)
        self._port_known.set()  # the output ended without one: nobody waits in vain

    def wait_for_port(self, timeout: float) -> int | None:
        self._port_known.wait(timeout)
        return self.port

    def close(self) -> None:
        """Once gunicorn has exited: the last lines are in the sink when this returns."""
        self._thread.join(timeout=KILL_TIMEOUT)
        self._pipe.close()


class ApiServer:
    """The API under gunicorn, as production runs it, on ``port`` or one the OS picks.

    Its output (gunicorn's log, the app's log and the access log) goes to ``log`` line by line
    as it is written, or nowhere.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        *,
        workers: int = 1,
        threads: int = 4,
        port: int | None = None,
        log: TextSink | None = None,
        keep_alive: bool = True,
    ) -> None:
        # Port 0: gunicorn binds the port itself and says which; a port picked here and bound
        # later could be taken in between.
        self._requested_port = port or 0
        self.port: int | None = None
        self._env = {
            **os.environ,
            **env,
            "BIND": f"127.0.0.1:{self._requested_port}",
            "WEB_CONCURRENCY": str(workers),
            "THREADS": str(threads),
        }
        self._log = log
        # On stop, gthread workers linger up to 2 s on kept-alive connections; tests that start
        # many short-lived stacks turn keep-alive off so that each stops at once.
        self._options = [] if keep_alive else ["--keep-alive", "0"]
        self._process: subprocess.Popen[str] | None = None
        self._output: _GunicornOutput | None = None

    @property
    def url(self) -> str:
        if self.port is None:
            raise RuntimeError("the API is not started")
        return f"http://127.0.0.1:{self.port}"

    def start(self, wait_ready: bool = True) -> ApiServer:
        """Start gunicorn and wait (bounded) until /readyz, or only /healthz, answers 200."""
        deadline = time.monotonic() + START_TIMEOUT
        gunicorn = Path(sys.executable).with_name("gunicorn")
        process = self._process = subprocess.Popen(
            [str(gunicorn), "--config", "gunicorn.conf.py", *self._options, "wsgi:app"],
            cwd=ROOT,
            env=self._env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            if process.stdout is None:
                raise RuntimeError("gunicorn's output is not a pipe")
            self._output = _GunicornOutput(process.stdout, self._log)
            self.port = self._requested_port or self._bound_port(self._output, deadline)
            self._wait_until_answering("/readyz" if wait_ready else "/healthz", deadline)
        except BaseException:
            self.stop()
            raise
        return self

    def _bound_port(self, output: _GunicornOutput, deadline: float) -> int:
        port = output.wait_for_port(max(0.0, deadline - time.monotonic()))
        if port is None:
            raise RuntimeError(f"gunicorn did not say where it listens ({self._exit_status()})")
        return port

    def _wait_until_answering(self, path: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise RuntimeError(f"gunicorn stopped ({self._exit_status()})")
            try:
                if requests.get(self.url + path, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass  # not listening yet, or too busy starting to answer in time
            time.sleep(POLL_INTERVAL)
        raise RuntimeError(f"the API did not answer {path} within {START_TIMEOUT:.0f}s")

    def _exit_status(self) -> str:
        code = None if self._process is None else self._process.poll()
        return "still running" if code is None else f"exit status {code}"

    def stop(self) -> None:
        """Stop gunicorn and its workers; by the time this returns, all output is in the log."""
        process, self._process = self._process, None
        output, self._output = self._output, None
        try:
            if process is not None:
                stop_process(process)
        finally:
            if output is not None:
                output.close()
            elif process is not None and process.stdout is not None:
                process.stdout.close()


class Stack:
    """Emulator + API; a context manager that always cleans up.

    ``faults`` (each the keyword arguments of ``Emulator.add_fault``) are active before the API
    starts, for outages at start-up; pair them with ``wait_ready=False``. Tokens passed to
    ``get`` are appended to ``sent_tokens`` when it is given, so tests can look for them later.
    """

    def __init__(
        self,
        state_dir: Path,
        *,
        workers: int = 1,
        api_port: int | None = None,
        emulator_port: int = 0,
        extra_env: Mapping[str, str] | None = None,
        log: TextSink | None = None,
        wait_ready: bool = True,
        faults: Sequence[Mapping[str, Any]] = (),
        sent_tokens: list[str] | None = None,
        keep_alive: bool = True,
        credential: Callable[[Emulator], Mapping[str, str]] | None = None,
    ) -> None:
        self.emulator = Emulator(state_dir=state_dir, port=emulator_port)
        # Called once the emulator runs (a certificate must be registered with it): the API's
        # credential settings, in place of the client secret.
        self._credential = credential
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
            env = api_environment(self.emulator.base_url, self.emulator.ca_bundle)
            if self._credential is not None:
                del env["AZURE_CLIENT_SECRET"]
                env.update(self._credential(self.emulator))
            env.update(self._extra_env)
            self.api = ApiServer(
                env,
                workers=self._workers,
                port=self._api_port,
                log=self._log,
                keep_alive=self._keep_alive,
            ).start(self._wait_ready)
        except BaseException:
            self.emulator.stop()
            raise
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if self.api is not None:
                self.api.stop()
        finally:
            self.emulator.stop()

    def get(self, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        """GET ``path`` from the API, with ``token`` as the Bearer credential if given."""
        headers = dict(kwargs.pop("headers", {}))
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
            if self._sent_tokens is not None:
                self._sent_tokens.append(token)
        return requests.get(self.api_url + path, headers=headers, timeout=30, **kwargs)
