"""The processes a benchmark runs: the emulator, gunicorn servers and Redis, each on loopback.

Every server is a child process with its output in a log file of the run's temporary
directory, so the benchmark's own process stays a client only. Start-up waits are bounded and
a failed start raises with the tail of that log.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import msal
import requests

from emulator import (
    API_APP_ID_URI,
    API_CLIENT_ID,
    API_CLIENT_SECRET,
    SPA_CLIENT_ID,
    TENANT_ID,
    USERS,
)

ROOT = Path(__file__).resolve().parent.parent
START_TIMEOUT = 45.0
GRAPH_SCOPES = ["https://graph.microsoft.com/.default"]
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def ensure_debian_tool(command: str, package: str) -> bool:
    """True once ``command`` is on PATH, installing Debian's ``package`` if it is missing."""
    if shutil.which(command):
        return True
    print(f"{command} not found; installing the Debian package {package}", flush=True)
    for step in (["apt-get", "update"], ["apt-get", "install", "-y", package]):
        result = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            step,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=600,
        )
        if result.returncode != 0:
            return False
    return shutil.which(command) is not None


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process so far (0 once it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    # After the command name: state is field 3, utime 14 and stime 15 (1-based, man 5 proc).
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def children(pid: int) -> list[int]:
    """The direct child processes of ``pid``."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(stat[1]) == pid:
            found.append(int(entry.name))
    return sorted(found)


class ChildProcess:
    """A server process whose output goes to a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, name: str, log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self, argv: Sequence[str], env: Mapping[str, str] | None = None) -> None:
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                list(argv),
                cwd=ROOT,
                env=dict(env) if env is not None else None,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    @property
    def pid(self) -> int:
        if self.process is None:
            raise RuntimeError(f"{self.name} is not started")
        return self.process.pid

    def check_alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise RuntimeError(
                f"{self.name} exited with {self.process.returncode}:\n{self.log_tail()}"
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


class EmulatorProcess(ChildProcess):
    """``python -m emulator serve`` in a process of its own, driven over its HTTPS surface:
    the password grant for user tokens and ``/_emulator/`` for counters and faults."""

    def __init__(self, state_dir: Path, log_dir: Path) -> None:
        super().__init__("emulator", log_dir)
        self.state_dir = state_dir
        self.base_url = ""
        self.session = requests.Session()
        self.session.trust_env = False  # REQUESTS_CA_BUNDLE or a proxy must not interfere

    def start(self) -> EmulatorProcess:
        self.spawn(
            [
                sys.executable,
                "-m",
                "emulator",
                "serve",
                "--port",
                "0",
                "--quiet",
                "--state-dir",
                str(self.state_dir),
            ]
        )
        deadline = time.monotonic() + START_TIMEOUT
        while not self.base_url:
            self.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"the emulator did not start:\n{self.log_tail()}")
            for line in self.log_path.read_text(errors="replace").splitlines():
                if line.startswith("emulator listening on "):
                    self.base_url = line.split()[-1]
            time.sleep(0.05)
        self.session.verify = str(self.ca_bundle)
        return self

    @property
    def ca_bundle(self) -> Path:
        return self.state_dir / "ca-bundle.pem"

    @property
    def authority(self) -> str:
        return f"{self.base_url}/{TENANT_ID}"

    def counters(self) -> dict[str, int]:
        return dict(self._control("GET", "counters").json())

    def reset_counters(self) -> None:
        self._control("POST", "counters/reset")

    def add_fault(self, target: str, mode: str, count: int | None = None, **params: Any) -> None:
        self._control(
            "POST", "faults", json={"target": target, "mode": mode, "count": count, **params}
        )

    def clear_faults(self) -> None:
        self._control("DELETE", "faults")

    def _control(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        response = self.session.request(
            method, f"{self.base_url}/_emulator/{path}", timeout=10, **kwargs
        )
        response.raise_for_status()
        return response

    def user_tokens(self, count: int) -> list[str]:
        """``count`` distinct v2 access tokens for the API, spread over the directory's users
        whose OBO exchange succeeds; each is a token cache partition of its own in the API."""
        users = sorted(
            u.username
            for u in USERS.values()
            if u.behaviour == "normal" and u.tenant_id == TENANT_ID
        )
        with ThreadPoolExecutor(max_workers=4) as pool:
            return list(
                pool.map(lambda i: self._password_grant(users[i % len(users)]), range(count))
            )

    def _password_grant(self, username: str) -> str:
        form = {
            "grant_type": "password",
            "client_id": SPA_CLIENT_ID,
            "username": username,
            "password": "bench",
            "client_info": "1",
            "scope": f"{API_APP_ID_URI}/access_as_user openid profile offline_access",
        }
        response = self.session.post(f"{self.authority}/oauth2/v2.0/token", data=form, timeout=30)
        body = response.json()
        if "access_token" not in body:
            raise RuntimeError(f"the emulator refused a token for {username}: {body.get('error')}")
        return str(body["access_token"])

    def confidential_client(self, cache: msal.TokenCache | None = None) -> Any:
        """The API's MSAL client, as the API builds it, for exchanges made by the benchmark."""
        return msal.ConfidentialClientApplication(
            API_CLIENT_ID,
            client_credential=API_CLIENT_SECRET,
            authority=self.authority,
            instance_discovery=False,
            http_client=self.session,
            token_cache=cache,
        )

    def graph_token(self, user_token: str) -> str:
        """One Graph token obtained on behalf of ``user_token``."""
        result = self.confidential_client().acquire_token_on_behalf_of(user_token, GRAPH_SCOPES)
        if "access_token" not in result:
            raise RuntimeError(f"OBO failed: {result.get('error')}")
        return str(result["access_token"])

    def stop(self) -> None:
        self.session.close()
        super().stop()


def api_environment(emulator: EmulatorProcess) -> dict[str, str]:
    """The API's settings for the emulator's tenant (the same variables production uses)."""
    return {
        "AZURE_TENANT_ID": TENANT_ID,
        "AZURE_CLIENT_ID": API_CLIENT_ID,
        "AZURE_CLIENT_SECRET": API_CLIENT_SECRET,
        "AZURE_AUTHORITY_HOST": emulator.base_url,
        "GRAPH_URL": f"{emulator.base_url}/v1.0",
        "ARM_URL": emulator.base_url,
        "REQUESTS_CA_BUNDLE": str(emulator.ca_bundle),
    }


class Gunicorn(ChildProcess):
    """A WSGI app under gunicorn with the production ``gunicorn.conf.py``."""

    def __init__(
        self,
        name: str,
        app_spec: str,
        env: Mapping[str, str],
        log_dir: Path,
        *,
        workers: int = 2,
        threads: int = 4,
        options: Sequence[str] = (),
    ) -> None:
        super().__init__(name, log_dir)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.workers = workers
        self.threads = threads
        self.options = tuple(options)
        self._app_spec = app_spec
        self._env = {
            **os.environ,
            **env,
            "BIND": f"127.0.0.1:{self.port}",
            "WEB_CONCURRENCY": str(workers),
            "THREADS": str(threads),
        }

    def start(self) -> Gunicorn:
        gunicorn = Path(sys.executable).with_name("gunicorn")
        # Every gunicorn on the machine defaults to the same control socket path; the
        # benchmark's servers keep off it, so they disturb no other gunicorn running here.
        self.spawn(
            [
                str(gunicorn),
                "--config",
                "gunicorn.conf.py",
                "--no-control-socket",
                *self.options,
                self._app_spec,
            ],
            self._env,
        )
        return self

    def wait_ready(self, path: str) -> Gunicorn:
        """Wait until ``path`` answers 200 and every worker has booted."""
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                ready = requests.get(self.url + path, timeout=2).status_code == 200
            except requests.RequestException:
                ready = False
            if ready and len(self.worker_pids()) >= self.workers:
                return self
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name} did not answer {path} in {START_TIMEOUT:.0f}s:\n{self.log_tail()}"
        )

    def worker_pids(self) -> list[int]:
        return children(self.pid) if self.process is not None else []


class RedisServer(ChildProcess):
    """A throwaway redis-server on a free loopback port, without persistence."""

    def __init__(self, data_dir: Path, log_dir: Path) -> None:
        super().__init__("redis", log_dir)
        self.port = free_port()
        self.data_dir = data_dir
        self.url = f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> RedisServer:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.spawn(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.data_dir),
                "--protected-mode",
                "yes",
            ]
        )
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            self.check_alive()
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"redis-server did not start:\n{self.log_tail()}")
