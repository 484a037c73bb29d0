"""`python -m emulator`: serve in a subprocess, fetch tokens from it, list users."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import certifi
import pytest
import requests

from emulator import (
    API_CLIENT_ID,
    DAEMON_CLIENT_ID,
    DEFAULT_SPA_REDIRECT_URIS,
    MANAGED_IDENTITY_CLIENT_ID,
    SPA_CLIENT_ID,
    USERS,
)
from tests.emulator.support import REPO_ROOT, claims_of, obo_form

LISTENING = re.compile(r"^emulator listening on (https://127\.0\.0\.1:\d+)$")
EXTRA_REDIRECT_URIS = ("http://localhost:5173/", "https://localhost:8080/app")


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    # A machine-wide bundle must not stop the CLI from trusting the emulator via --ca.
    env["REQUESTS_CA_BUNDLE"] = certifi.where()
    return env


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emulator", *args],
        cwd=REPO_ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


@dataclass(frozen=True)
class Served:
    url: str
    ca: Path


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    state = tmp_path_factory.mktemp("cli-state")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(state),
            "--quiet",
            "--spa-redirect-uri",
            EXTRA_REDIRECT_URIS[0],
            "--spa-redirect-uri",
            EXTRA_REDIRECT_URIS[1],
        ],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        first = process.stdout.readline().strip()
        match = LISTENING.match(first)
        assert match, f"unexpected first line {first!r}"
        assert f"REQUESTS_CA_BUNDLE={state.resolve()}/ca-bundle.pem" in (process.stdout.readline())
        yield Served(match.group(1), state / "ca-bundle.pem")
    finally:
        process.terminate()
        process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def test_token_prints_only_a_user_token(served: Served) -> None:
    result = _cli("token", "--user", "alice", "--url", served.url, "--ca", str(served.ca))

    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    token = result.stdout.strip()
    assert result.stdout == token + "\n"
    claims = claims_of(token)
    assert claims["aud"] == API_CLIENT_ID
    assert claims["azp"] == SPA_CLIENT_ID
    assert claims["scp"] == "access_as_user"
    assert claims["preferred_username"] == "alice@contoso.test"
    assert claims["iss"] == f"{served.url}/{claims['tid']}/v2.0"


def test_serve_registers_the_spa_redirect_uris(served: Served) -> None:
    with requests.Session() as http:
        http.trust_env = False
        http.verify = str(served.ca)
        response = http.get(f"{served.url}/_emulator/spa/redirect-uris")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.json()["redirect_uris"] == [*DEFAULT_SPA_REDIRECT_URIS, *EXTRA_REDIRECT_URIS]


@pytest.mark.parametrize(
    ("flags", "status"), [((), 400), (("--mfa",), 200)], ids=["password-sign-in", "mfa"]
)
def test_token_for_a_user_under_an_mfa_policy(
    served: Served, flags: tuple[str, ...], status: int
) -> None:
    result = _cli("token", "--user", "dave", *flags, "--url", served.url, "--ca", str(served.ca))
    token = result.stdout.strip()
    with requests.Session() as http:
        http.trust_env = False
        http.verify = str(served.ca)
        exchanged = http.post(
            f"{served.url}/{claims_of(token)['tid']}/oauth2/v2.0/token", data=obo_form(token)
        )

    assert result.returncode == 0, result.stderr
    assert claims_of(token)["preferred_username"] == "dave@contoso.test"
    assert "amr" not in claims_of(token)
    assert exchanged.status_code == status
    assert exchanged.headers["Cache-Control"] == "no-store, no-cache"


def test_mfa_is_for_user_tokens_only(served: Served) -> None:
    result = _cli("token", "--app", "--mfa", "--url", served.url, "--ca", str(served.ca))

    assert result.returncode == 2
    assert result.stdout == ""
    assert "--mfa applies to --user tokens only" in result.stderr


def test_token_for_the_app(served: Served) -> None:
    result = _cli("token", "--app", "--url", served.url, "--ca", str(served.ca))

    assert result.returncode == 0, result.stderr
    claims = claims_of(result.stdout.strip())
    assert claims["azp"] == DAEMON_CLIENT_ID
    assert claims["roles"] == ["Reports.Read.All"]
    assert "scp" not in claims and "idtyp" not in claims


def test_token_for_an_unknown_user_fails_in_one_line(served: Served) -> None:
    result = _cli("token", "--user", "mallory", "--url", served.url, "--ca", str(served.ca))

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: invalid_grant: AADSTS50034:")
    assert result.stderr.count("\n") == 1


def test_token_without_a_running_emulator_fails_in_one_line(served: Served) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens there once the probe closes

    result = _cli(
        "token", "--user", "alice", "--url", f"https://127.0.0.1:{port}", "--ca", str(served.ca)
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr == (
        f"error: cannot reach the emulator at https://127.0.0.1:{port}; "
        "is `python -m emulator serve` running?\n"
    )


def test_users_lists_the_directory_and_behaviours() -> None:
    result = _cli("users")

    assert result.returncode == 0
    lines = result.stdout.splitlines()
    assert lines[0].split()[:2] == ["USERNAME", "UPN"]
    rows = {line.split()[0]: line for line in lines[1:]}
    assert rows.keys() == USERS.keys()
    for user, text in [
        ("dave", "AADSTS50076, basic_action, MFA claims"),
        ("judy", "interaction_required (AADSTS50076"),
        ("kevin", "no claims"),
        ("laura", "AADSTS53003, message_only"),
        ("mike", "AADSTS50055, user_password_expired"),
        ("erin", "AADSTS65001"),
        ("frank", "429"),
        ("alice", "OBO succeeds"),
    ]:
        assert text in rows[user]
    assert result.stderr == ""


def test_help_documents_the_commands() -> None:
    result = _cli("--help")

    assert result.returncode == 0
    for command in (
        "serve",
        "token",
        "users",
        "client-certificate",
        "workload-identity-token",
        "managed-identity",
    ):
        assert command in result.stdout


def test_serve_refuses_non_loopback_hosts(tmp_path: Path) -> None:
    result = _cli("serve", "--host", "0.0.0.0", "--state-dir", str(tmp_path))  # noqa: S104

    assert result.returncode == 1
    assert "loopback" in result.stderr


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_serve_exits_cleanly_on_signals(tmp_path: Path, signum: signal.Signals) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "emulator",
            "serve",
            "--port",
            "0",
            "--state-dir",
            str(tmp_path),
            "--quiet",
        ],
        cwd=REPO_ROOT,
        env=_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        assert LISTENING.match(process.stdout.readline().strip())
        process.send_signal(signum)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


# -- the API's other credentials ---------------------------------------------------------------


def _settings(stdout: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in stdout.splitlines())


@pytest.mark.parametrize(
    ("trust", "extra"),
    [
        ("thumbprint", {}),
        ("subject-issuer", {"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "true"}),
        ("none", {}),
    ],
)
def test_client_certificate_writes_the_file_and_prints_the_settings(
    served: Served, tmp_path: Path, trust: str, extra: dict[str, str]
) -> None:
    out = tmp_path / "api.pem"
    result = _cli(
        "client-certificate",
        "--out",
        str(out),
        "--trust",
        trust,
        "--url",
        served.url,
        "--ca",
        str(served.ca),
    )

    assert result.returncode == 0, result.stderr
    assert _settings(result.stdout) == {
        "AZURE_CLIENT_CERTIFICATE_PATH": str(out.resolve()),
        **extra,
    }
    assert "SHA-256 thumbprint" in result.stderr
    text = out.read_text()
    assert text.startswith("-----BEGIN PRIVATE KEY-----")
    assert text.count("BEGIN CERTIFICATE") == (2 if trust == "subject-issuer" else 1)
    assert oct(out.stat().st_mode & 0o777) == "0o600"


def test_client_certificate_with_a_password(served: Served, tmp_path: Path) -> None:
    out = tmp_path / "api.pem"
    result = _cli(
        "client-certificate",
        "--out",
        str(out),
        "--password",
        "pw-for-tests",
        "--url",
        served.url,
        "--ca",
        str(served.ca),
    )

    assert result.returncode == 0, result.stderr
    assert _settings(result.stdout)["AZURE_CLIENT_CERTIFICATE_PASSWORD"] == "pw-for-tests"
    assert out.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")


@pytest.mark.parametrize(("lifetime", "expired"), [("3600", False), ("-60", True)])
def test_workload_identity_token_writes_a_token_file(
    served: Served, tmp_path: Path, lifetime: str, expired: bool
) -> None:
    out = tmp_path / "azure-identity-token"
    result = _cli(
        "workload-identity-token",
        "--out",
        str(out),
        "--lifetime",
        lifetime,
        "--url",
        served.url,
        "--ca",
        str(served.ca),
    )

    assert result.returncode == 0, result.stderr
    assert _settings(result.stdout) == {"AZURE_FEDERATED_TOKEN_FILE": str(out.resolve())}
    claims = claims_of(out.read_text())
    assert (claims["exp"] < time.time()) is expired
    assert claims["sub"] == "system:serviceaccount:obo:obo-api"


def test_managed_identity_prints_app_services_settings(served: Served) -> None:
    result = _cli("managed-identity", "--url", served.url, "--ca", str(served.ca))

    assert result.returncode == 0, result.stderr
    settings = _settings(result.stdout)
    assert settings["IDENTITY_ENDPOINT"] == f"{served.url}/msi/token"
    assert len(settings["IDENTITY_HEADER"]) >= 32
    assert settings["AZURE_MANAGED_IDENTITY_CLIENT_ID"] == MANAGED_IDENTITY_CLIENT_ID


def test_credential_commands_fail_in_one_line_without_an_emulator(
    served: Served, tmp_path: Path
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]

    result = _cli(
        "client-certificate",
        "--out",
        str(tmp_path / "api.pem"),
        "--url",
        f"https://127.0.0.1:{port}",
        "--ca",
        str(served.ca),
    )

    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: cannot reach the emulator at ")
    assert not (tmp_path / "api.pem").exists()
