"""The OBO flow end to end: emulator -> API (gunicorn) -> MSAL OBO -> emulator Graph/ARM."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import jwt
import pytest
import requests

from emulator import API_CLIENT_ID, TENANT_ID
from scripts.stack import ROOT, Stack
from tests.e2e.server_output import ServerOutput
from tests.support.contract import assert_refusal
from tests.support.tokens import with_kid

pytestmark = pytest.mark.e2e

DEMO = [sys.executable, "-m", "scripts.demo"]
DEMO_TIMEOUT = 90
RUNNING = "Running; Ctrl-C"


def test_me_returns_the_users_graph_profile(stack: Stack) -> None:
    response = stack.get("/api/me", stack.emulator.issue_user_token("alice"))
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    body = response.json()
    assert body["displayName"] == "Alice Anders"
    assert body["userPrincipalName"] == "alice@contoso.test"
    assert stack.emulator.counters()["token.on_behalf_of"] == 1


def test_users_passes_odata_query_to_graph(stack: Stack) -> None:
    token = stack.emulator.issue_user_token("bob")
    response = stack.get("/api/users?$top=2&$select=displayName,mail", token)
    assert response.status_code == 200
    body = response.json()
    assert [set(user) - {"@odata.type"} for user in body["value"]] == [
        {"displayName", "mail"},
        {"displayName", "mail"},
    ]
    assert "@odata.nextLink" in body
    filtered = stack.get("/api/users?$filter=startswith(displayName,'Car')", token)
    assert filtered.status_code == 200
    assert [user["displayName"] for user in filtered.json()["value"]] == ["Carol Chen"]


def test_users_graph_error_is_passed_on(stack: Stack) -> None:
    response = stack.get("/api/users?$filter=nonsense(", stack.emulator.issue_user_token("bob"))
    body = assert_refusal(response, 400, "downstream_error")
    assert body["downstream"]["status"] == 400
    assert body["downstream"]["error"]["code"]


def test_subscriptions_joins_every_arm_page(stack: Stack) -> None:
    response = stack.get("/api/subscriptions", stack.emulator.issue_user_token("carol"))
    assert response.status_code == 200
    names = [sub["displayName"] for sub in response.json()["value"]]
    assert len(names) == 5 and "Contoso Production" in names
    assert stack.emulator.counters()["arm"] == 3  # pages of two


def test_repeated_calls_make_one_token_call_per_resource(stack: Stack) -> None:
    token = stack.emulator.issue_user_token("grace")
    for _ in range(5):
        for path in ("/api/me", "/api/users?$top=3", "/api/subscriptions"):
            assert stack.get(path, token).status_code == 200
    counters = stack.emulator.counters()
    # Graph by OBO; ARM from the same user's cache partition by its refresh token.
    assert counters["token.on_behalf_of"] == 1
    assert counters["token.refresh_token"] == 1
    assert counters["token"] == 2
    assert counters["keys"] == 0 and counters["openid-configuration"] == 0
    assert counters["graph"] == 10


def test_consent_missing_is_403(stack: Stack) -> None:
    response = stack.get("/api/me", stack.emulator.issue_user_token("erin"))
    body = assert_refusal(response, 403, "consent_required", description="AADSTS65001")
    assert "admin consent" in body["error_description"]


def test_expired_assertion_at_exchange_is_401(stack: Stack) -> None:
    # Within the API's 60 s leeway, but Entra allows no skew on OBO assertions.
    response = stack.get("/api/me", stack.emulator.issue_user_token("heidi", lifetime=-30))
    assert_refusal(
        response, 401, "invalid_token", description="AADSTS500133", challenge="invalid_token"
    )


def test_throttled_user_is_503_with_retry_after(fresh_stack: Stack) -> None:
    response = fresh_stack.get("/api/me", fresh_stack.emulator.issue_user_token("frank"))
    assert_refusal(response, 503, "temporarily_unavailable", retry_after=range(1, 8))


def test_app_only_token_is_refused_before_any_obo_call(stack: Stack) -> None:
    response = stack.get("/api/me", stack.emulator.issue_app_token())
    assert_refusal(
        response, 403, "insufficient_scope", description="app-only", challenge="insufficient_scope"
    )
    assert stack.emulator.counters()["token"] == 0


def test_token_signed_by_an_unpublished_key_is_refused(stack: Stack) -> None:
    genuine = stack.emulator.issue_user_token("alice")
    for kid in (stack.emulator.signing_kids()[0], None):  # the tenant's kid, a random one
        response = stack.get("/api/me", with_kid(genuine, kid))
        assert_refusal(response, 401, "invalid_token", challenge="invalid_token")
    assert stack.emulator.counters()["token"] == 0


def test_emulator_registry_matches_the_api(stack: Stack) -> None:
    claims = jwt.decode(
        stack.emulator.issue_user_token("alice"), options={"verify_signature": False}
    )
    assert claims["aud"] == API_CLIENT_ID and claims["tid"] == TENANT_ID
    assert claims["scp"] == "access_as_user" and claims["ver"] == "2.0"


def test_readiness_and_liveness(stack: Stack) -> None:
    assert stack.get("/healthz").json() == {"status": "ok"}
    ready = stack.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_make_demo_runs_the_whole_flow(tmp_path: Path) -> None:
    result = subprocess.run(
        [*DEMO, "--state-dir", str(tmp_path)],
        cwd=ROOT,
        timeout=DEMO_TIMEOUT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Alice Anders" in result.stdout
    assert "Contoso Production" in result.stdout
    assert 'error="insufficient_claims"' in result.stdout
    assert "demo complete" in result.stdout


@dataclass
class DevStack:
    process: subprocess.Popen[str]
    emulator_url: str
    api_url: str


@pytest.fixture()
def dev_stack(tmp_path: Path) -> Iterator[DevStack]:
    """`make dev`, on ports the OS picks and with a state directory of the test's own."""
    command = [
        *DEMO,
        "--keep-running",
        "--api-port",
        "0",
        "--emulator-port",
        "0",
        "--state-dir",
        str(tmp_path),
    ]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    assert process.stdout is not None
    output = ServerOutput()
    reader = output.follow(process.stdout)
    try:
        text = "".join(
            output.wait_for(
                lambda lines: any(RUNNING in line for line in lines), timeout=DEMO_TIMEOUT
            )
        )
        urls = re.search(r"^emulator: (\S+)\s+API: (\S+)$", text, re.MULTILINE)
        assert urls is not None and RUNNING in text, text[-2000:]
        yield DevStack(process, *urls.groups())
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)  # the demo and the API it started
            process.wait(timeout=10)
        reader.join(timeout=5)
        process.stdout.close()


def test_dev_stack_serves_curl_with_a_cli_token(dev_stack: DevStack, tmp_path: Path) -> None:
    token = subprocess.run(
        [
            sys.executable,
            "-m",
            "emulator",
            "token",
            "--user",
            "alice",
            "--url",
            dev_stack.emulator_url,
            "--ca",
            str(tmp_path / "ca-bundle.pem"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.strip()
    response = requests.get(
        f"{dev_stack.api_url}/api/me", timeout=30, headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200
    assert response.json()["mail"] == "alice@contoso.test"

    dev_stack.process.send_signal(signal.SIGINT)  # Ctrl-C
    assert dev_stack.process.wait(timeout=DEMO_TIMEOUT) == 0
    with pytest.raises(requests.ConnectionError):  # the API stopped with it
        requests.get(f"{dev_stack.api_url}/healthz", timeout=5)
