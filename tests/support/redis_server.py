"""A real redis-server on a free loopback port, for the tests of the shared token cache.

Each server gets a directory of its own and keeps nothing on disk (``--save ''``,
``--appendonly no``). It is ready when it says so on its output, which is read as it comes,
never polled. ``stop`` and ``start`` again keep the port, so a client sees the same Redis
go away and come back.
"""

from __future__ import annotations

import hashlib
import shutil
import socket
import subprocess
import threading
from pathlib import Path
from types import TracebackType

import redis

from tests.support.stubs import LoopbackTls

START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
READY = "Ready to accept connections"
PORT_TAKEN = "Address already in use"
START_ATTEMPTS = 5


class RedisServerMissing(RuntimeError):
    """redis-server is not installed; the tests of the shared cache need the real one."""


def redis_server_binary() -> str:
    """The redis-server on PATH, or an error that says how to get it."""
    found = shutil.which("redis-server") or shutil.which("redis-server", path="/usr/bin")
    if found is None:
        raise RedisServerMissing(
            "redis-server is not installed; the shared token cache tests need it: "
            "apt-get install -y redis-server (make test installs it with scripts/setup_system.sh)"
        )
    return found


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """``with RedisServer(tmp_path) as server: server.url ...``; optionally with a password
    (``--requirepass``) or TLS only (``tls``: a certificate for 127.0.0.1)."""

    def __init__(
        self, directory: Path, *, password: str | None = None, tls: LoopbackTls | None = None
    ) -> None:
        self.directory = directory
        self.password = password
        self.tls = tls
        self.port = 0
        self.output: list[str] = []
        self._process: subprocess.Popen[str] | None = None
        self._reader: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The URL the API is given (without the password)."""
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def client(self) -> redis.Redis:
        """A plain client for the test's own look at what is stored."""
        return redis.Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            ssl=self.tls is not None,
            ssl_ca_certs=str(self.tls.ca_file) if self.tls else None,
            socket_timeout=10,
        )

    def start(self) -> RedisServer:
        """Start on a free port (the same one as before after a ``stop``); wait until ready."""
        self.directory.mkdir(parents=True, exist_ok=True)
        for _ in range(START_ATTEMPTS):
            port = self.port or free_port()
            if self._start_on(port):
                self.port = port
                return self
            if self.port:
                break  # our own port was taken meanwhile: nothing better to try
        raise RuntimeError("redis-server did not start:\n" + "".join(self.output[-20:]))

    def stop(self) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        process.terminate()
        try:
            process.wait(timeout=STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=STOP_TIMEOUT)
        if self._reader is not None:
            self._reader.join(timeout=STOP_TIMEOUT)  # the output ends with the process
        if process.stdout is not None:
            process.stdout.close()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _arguments(self, port: int) -> list[str]:
        arguments = [
            redis_server_binary(),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(self.directory),
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
            "--logfile",
            "",
            "--loglevel",
            "notice",
        ]
        if self.password is not None:
            arguments += ["--requirepass", self.password]
        if self.tls is None:
            return [*arguments, "--port", str(port)]
        return [
            *arguments,
            "--port",
            "0",
            "--tls-port",
            str(port),
            "--tls-cert-file",
            str(self.tls.cert_file),
            "--tls-key-file",
            str(self.tls.key_file),
            "--tls-ca-cert-file",
            str(self.tls.ca_file),
            "--tls-auth-clients",
            "no",
        ]

    def _start_on(self, port: int) -> bool:
        """True once the server says it is ready; False if it exited because the port was
        taken meanwhile."""
        process = subprocess.Popen(
            self._arguments(port), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        self._process = process
        said_ready = threading.Event()
        outcome = threading.Event()  # ready, or the output ended (the process exited)

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:  # to the end: a full pipe would stall the server
                self.output.append(line)
                if READY in line:
                    said_ready.set()
                    outcome.set()
            outcome.set()

        self._reader = threading.Thread(target=read, name="redis-server-output", daemon=True)
        self._reader.start()
        outcome.wait(START_TIMEOUT)
        if said_ready.is_set():
            return True
        self.stop()
        if not any(PORT_TAKEN in line for line in self.output[-5:]):
            raise RuntimeError("redis-server did not start:\n" + "".join(self.output[-20:]))
        return False


def cache_entry_key(token: str) -> str:
    """Where the shared token cache keeps the partition of the caller of ``token``."""
    return "obo:v1:" + hashlib.sha256(token.encode("ascii")).hexdigest()


def stored_bytes(client: redis.Redis) -> bytes:
    """Every key name and value in ``client``'s database, for scanning what is at rest."""
    parts: list[bytes] = []
    for name in client.scan_iter():
        parts.append(name)
        if client.type(name) == b"string":
            parts.append(client.get(name) or b"")
    return b"\n".join(parts)
