"""gunicorn.conf.py: settings from the environment after .env, checked, one line on error."""

from __future__ import annotations

import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest

CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
SERVER_VARIABLES = ("BIND", "WEB_CONCURRENCY", "THREADS", "LOG_LEVEL")


@pytest.fixture()
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No server variable set, and none left behind by the .env file a test loads."""
    for name in SERVER_VARIABLES:
        monkeypatch.setenv(name, "placeholder")  # records what to restore afterwards
        monkeypatch.delenv(name)


def test_settings_come_from_the_dotenv_file_of_the_working_directory(
    tmp_cwd: Path, clean_env: None
) -> None:
    (tmp_cwd / ".env").write_text(
        "BIND=127.0.0.1:8765\nWEB_CONCURRENCY=3\nTHREADS=2\nLOG_LEVEL=warning\n"
    )
    config = runpy.run_path(str(CONFIG))
    assert (config["bind"], config["workers"], config["threads"]) == ("127.0.0.1:8765", 3, 2)
    assert config["loglevel"] == "warning"
    assert config["logconfig_dict"]["root"]["level"] == "WARNING"


def test_defaults_without_any_setting(tmp_cwd: Path, clean_env: None) -> None:
    config = runpy.run_path(str(CONFIG))
    assert (config["bind"], config["workers"], config["threads"]) == ("127.0.0.1:8000", 2, 4)
    assert config["loglevel"] == "info"


@pytest.mark.parametrize(
    ("bind", "reuse_port"),
    [
        ("127.0.0.1:8000", True),
        ("[::1]:8000", True),
        # Port 0 would give each worker another port; unix:PATH, a file each worker replaces.
        ("127.0.0.1:0", False),
        ("unix:/tmp/api.sock", False),
    ],
)
def test_each_worker_listens_on_a_socket_of_its_own_for_a_tcp_port(
    tmp_cwd: Path, clean_env: None, bind: str, reuse_port: bool
) -> None:
    (tmp_cwd / ".env").write_text(f"BIND={bind}\n")
    config = runpy.run_path(str(CONFIG))
    assert config["bind"] == bind
    assert config["reuse_port"] is reuse_port


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("WEB_CONCURRENCY=two", "WEB_CONCURRENCY must be a whole number from 1 to 256"),
        ("LOG_LEVEL=verbose", "LOG_LEVEL must be one of DEBUG, INFO, WARNING, ERROR, CRITICAL"),
        ("THREADS=٤", "THREADS must be a whole number from 1 to 1024"),
        (
            "BIND=localhost:http",
            "BIND must be HOST:PORT (such as 127.0.0.1:8000 or [::1]:8000) or unix:PATH",
        ),
    ],
)
def test_a_bad_server_setting_stops_gunicorn_with_one_line(
    tmp_path: Path, line: str, message: str
) -> None:
    # In .env: gunicorn itself int()s WEB_CONCURRENCY from the process environment when it is
    # imported, before any configuration file runs.
    (tmp_path / ".env").write_text(line + "\n", encoding="utf-8")
    env = {key: item for key, item in os.environ.items() if key not in SERVER_VARIABLES}
    gunicorn = Path(sys.executable).with_name("gunicorn")
    result = subprocess.run(
        [str(gunicorn), "--check-config", "--config", str(CONFIG), "wsgi:app"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1
    output = (result.stdout + result.stderr).strip()
    assert output == f"configuration error: {message}"
    assert "Traceback" not in output
