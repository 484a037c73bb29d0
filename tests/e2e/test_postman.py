"""The Postman collection in postman/, run by newman against the local stack.

newman trusts the emulator's CA (``--ssl-extra-ca-certs``), never ``--insecure``; the API is
plain HTTP on loopback. The collection's own script gets each user's token from the emulator.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from scripts.stack import ROOT, Stack
from tests.e2e.leaks import Traffic
from tests.support.contract import JWT_SHAPE

NEWMAN = ROOT / "node_modules" / ".bin" / "newman"
COLLECTION = ROOT / "postman" / "entra-obo-api.postman_collection.json"
ENVIRONMENT = ROOT / "postman" / "local.postman_environment.json"
NEWMAN_TIMEOUT_SECONDS = 120

COLLECTION_REQUESTS = 9
# alice, dave and erin: one token request each, the collection reuses a token until it expires.
TOKEN_REQUESTS = 3
# Every answer: 1 (collection-level test); the requests' own tests: 1+1+3+3+2+3+2+3+2;
# every token request: 1.
ASSERTIONS = COLLECTION_REQUESTS + 20 + TOKEN_REQUESTS
# OpenSSL's codes for a certificate whose issuer is not trusted.
UNTRUSTED_ISSUER = (
    "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
    "SELF_SIGNED_CERT_IN_CHAIN",
)

pytestmark = pytest.mark.e2e


def run_newman(stack: Stack, report: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """Run the collection against ``stack``; the JSON report is written to ``report``."""
    if not NEWMAN.is_file():
        pytest.fail(f"{NEWMAN.relative_to(ROOT)} is missing: run `npm ci` in {ROOT}")
    command = [
        str(NEWMAN),
        "run",
        str(COLLECTION),
        "--environment",
        str(ENVIRONMENT),
        "--env-var",
        f"api_url={stack.api_url}",
        "--env-var",
        f"authority={stack.emulator.authority}",
        "--reporters",
        "cli,json",
        "--reporter-json-export",
        str(report),
        "--color",
        "off",
        *options,
    ]
    return subprocess.run(
        command,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=NEWMAN_TIMEOUT_SECONDS,
        check=False,
    )


def read_report(
    report: Path, result: subprocess.CompletedProcess[str], traffic: Traffic
) -> dict[str, Any]:
    """newman's JSON report; the tokens it sent go to ``traffic`` for the session's leak check."""
    assert report.is_file(), f"newman wrote no report:\n{result.stdout}\n{result.stderr}"
    data: dict[str, Any] = json.loads(report.read_text(encoding="utf-8"))
    for execution in data["run"]["executions"]:
        for header in execution["request"].get("header", []):
            token = header["value"].removeprefix("Bearer ")
            if header["key"].lower() == "authorization" and JWT_SHAPE.match(token):
                traffic.tokens.append(token)
    return data


def test_the_collection_passes_against_the_local_stack(
    stack: Stack, tmp_path: Path, traffic: Traffic
) -> None:
    ca = stack.emulator.state_dir / "ca.pem"
    result = run_newman(stack, tmp_path / "newman.json", "--ssl-extra-ca-certs", str(ca))
    run = read_report(tmp_path / "newman.json", result, traffic)["run"]

    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert run["failures"] == []
    assert run["stats"]["requests"] == {
        "total": COLLECTION_REQUESTS + TOKEN_REQUESTS,
        "pending": 0,
        "failed": 0,
    }
    assert run["stats"]["assertions"] == {"total": ASSERTIONS, "pending": 0, "failed": 0}
    assert stack.emulator.counters().get("token.password") == TOKEN_REQUESTS


def test_the_collection_does_not_trust_the_emulator_without_its_ca(
    stack: Stack, tmp_path: Path, traffic: Traffic
) -> None:
    result = run_newman(stack, tmp_path / "newman.json")
    run = read_report(tmp_path / "newman.json", result, traffic)["run"]

    assert result.returncode == 1, result.stdout[-6000:] + result.stderr[-2000:]
    errors = [failure["error"] for failure in run["failures"]]
    refused = {
        error["test"]: error["message"]
        for error in errors
        if (error.get("test") or "").startswith("a token for ")
    }
    assert set(refused) == {
        f"a token for {user} from the token endpoint" for user in ("alice", "dave", "erin")
    }
    for message in refused.values():
        assert message.removeprefix("the token request failed: ") in UNTRUSTED_ISSUER, message
    assert stack.emulator.counters().get("token.password", 0) == 0
