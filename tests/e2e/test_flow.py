"""The OBO flow end to end: emulator -> API (gunicorn) -> MSAL OBO -> emulator Graph/ARM."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from typing import Any

import jwt
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.directory import API_CLIENT_ID, TENANT_ID
from scripts.stack import ROOT, Stack

pytestmark = pytest.mark.e2e


def assert_refusal(response: requests.Response, status: int, error: str,
                   challenge: str | None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    body: dict[str, Any] = response.json()
    assert body["error"] == error
    assert body["error_description"]
    if challenge is None:
        assert "WWW-Authenticate" not in response.headers
    else:
        assert f'error="{challenge}"' in response.headers["WWW-Authenticate"]
    return body


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
        {"displayName", "mail"}, {"displayName", "mail"}]
    assert "@odata.nextLink" in body
    filtered = stack.get("/api/users?$filter=startswith(displayName,'Car')", token)
    assert filtered.status_code == 200
    assert [user["displayName"] for user in filtered.json()["value"]] == ["Carol Chen"]


def test_users_graph_error_is_passed_on(stack: Stack) -> None:
    response = stack.get("/api/users?$filter=nonsense(", stack.emulator.issue_user_token("bob"))
    body = assert_refusal(response, 400, "downstream_error", None)
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


def test_mfa_user_gets_the_claims_challenge(stack: Stack) -> None:
    response = stack.get("/api/me", stack.emulator.issue_user_token("dave"))
    body = assert_refusal(response, 401, "interaction_required", "insufficient_claims")
    header = response.headers["WWW-Authenticate"]
    encoded = header.split('claims="')[1].split('"')[0]
    claims = json.loads(base64.b64decode(encoded))
    assert claims["access_token"]["capolids"]["essential"] is True
    assert json.loads(body["claims"]) == claims
    assert "AADSTS50076" in body["error_description"]


def test_mfa_user_who_did_mfa_gets_through(stack: Stack) -> None:
    token = stack.emulator.issue_user_token("dave", amr=["pwd", "mfa"])
    response = stack.get("/api/me", token)
    assert response.status_code == 200
    assert response.json()["displayName"] == "Dave Diaz"


def test_consent_missing_is_403(stack: Stack) -> None:
    response = stack.get("/api/me", stack.emulator.issue_user_token("erin"))
    body = assert_refusal(response, 403, "consent_required", None)
    assert "AADSTS65001" in body["error_description"]
    assert "admin consent" in body["error_description"]


def test_expired_assertion_at_exchange_is_401(stack: Stack) -> None:
    # Within the API's 60 s leeway, but Entra allows no skew on OBO assertions.
    response = stack.get("/api/me", stack.emulator.issue_user_token("heidi", lifetime=-30))
    body = assert_refusal(response, 401, "invalid_token", "invalid_token")
    assert "AADSTS500133" in body["error_description"]


def test_throttled_user_is_503_with_retry_after(fresh_stack: Stack) -> None:
    response = fresh_stack.get("/api/me", fresh_stack.emulator.issue_user_token("frank"))
    assert_refusal(response, 503, "temporarily_unavailable", None)
    assert 1 <= int(response.headers["Retry-After"]) <= 7


def test_app_only_token_is_refused_before_any_obo_call(stack: Stack) -> None:
    response = stack.get("/api/me", stack.emulator.issue_app_token())
    body = assert_refusal(response, 403, "insufficient_scope", "insufficient_scope")
    assert "app-only" in body["error_description"]
    assert stack.emulator.counters()["token"] == 0


def test_token_signed_by_an_unpublished_key_is_refused(stack: Stack) -> None:
    claims = jwt.decode(stack.emulator.issue_user_token("alice"),
                        options={"verify_signature": False})
    forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    for kid in (stack.emulator.signing_kids()[0], uuid.uuid4().hex):
        forged = jwt.encode(claims, forged_key, algorithm="RS256", headers={"kid": kid})
        response = stack.get("/api/me", forged)
        assert_refusal(response, 401, "invalid_token", "invalid_token")
    assert stack.emulator.counters()["token"] == 0


def test_emulator_registry_matches_the_api(stack: Stack) -> None:
    claims = jwt.decode(stack.emulator.issue_user_token("alice"),
                        options={"verify_signature": False})
    assert claims["aud"] == API_CLIENT_ID and claims["tid"] == TENANT_ID
    assert claims["scp"] == "access_as_user" and claims["ver"] == "2.0"


def test_readiness_and_liveness(stack: Stack) -> None:
    assert stack.get("/healthz").json() == {"status": "ok"}
    ready = stack.get("/readyz")
    assert ready.status_code == 200 and ready.json()["status"] == "ready"


def test_make_demo_runs_the_whole_flow() -> None:
    result = subprocess.run([sys.executable, "-m", "scripts.demo"], cwd=ROOT, timeout=120,
                            capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "Alice Anders" in result.stdout
    assert "Contoso Production" in result.stdout
    assert 'error="insufficient_claims"' in result.stdout
    assert "demo complete" in result.stdout


def test_dev_stack_serves_curl_with_a_cli_token() -> None:
    dev = subprocess.Popen([sys.executable, "-m", "scripts.demo", "--keep-running"], cwd=ROOT,
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        lines = []
        deadline = time.monotonic() + 60
        assert dev.stdout is not None
        while time.monotonic() < deadline:
            line = dev.stdout.readline()
            lines.append(line)
            if "Running; Ctrl-C" in line or not line:
                break
        assert any("Running; Ctrl-C" in line for line in lines), "".join(lines)
        env = {**os.environ, "REQUESTS_CA_BUNDLE": str(ROOT / ".emulator" / "ca-bundle.pem")}
        token = subprocess.run(
            [sys.executable, "-m", "emulator", "token", "--user", "alice"], cwd=ROOT, env=env,
            capture_output=True, text=True, timeout=30, check=True).stdout.strip()
        response = requests.get("http://127.0.0.1:8000/api/me", timeout=30,
                                headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 200
        assert response.json()["mail"] == "alice@contoso.test"
    finally:
        dev.send_signal(signal.SIGINT)
        try:
            dev.wait(timeout=30)
        except subprocess.TimeoutExpired:
            dev.kill()
            dev.wait(timeout=10)
        if dev.stdout is not None:
            dev.stdout.close()
