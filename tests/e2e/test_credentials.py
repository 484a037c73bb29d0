"""Every kind of client credential, end to end: the API under gunicorn with real MSAL, and the
emulator checking the credential as Entra does.

Each test starts an API of its own (its credential is read at start-up) against one emulator
for the module; its output joins the session's leak check (no token, secret or key in a log).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from app.config import CERTIFICATE_OPTIONS, CREDENTIAL_VARIABLES
from emulator import Emulator
from emulator.entra.key_credentials import Trust
from scripts.stack import ApiServer, api_environment
from tests.e2e.leaks import Traffic
from tests.e2e.server_output import ServerOutput
from tests.support.contract import assert_refusal

pytestmark = pytest.mark.e2e

LOG_WAIT = 30.0  # seconds a test waits for a log line it expects (the machine may be busy)


@dataclass
class CredentialApi:
    """An API started with one credential, and what it wrote."""

    emulator: Emulator
    server: ApiServer
    output: ServerOutput
    traffic: Traffic

    def get(self, path: str, user: str = "alice", token: str | None = None) -> requests.Response:
        """GET ``path`` with ``token``, or a new token of ``user`` (a new cache partition)."""
        token = token or self.emulator.issue_user_token(user)
        self.traffic.tokens.append(token)
        return requests.get(
            self.server.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=30
        )

    def logged(self, *parts: str) -> list[str]:
        """The lines holding every part, once one does (or after LOG_WAIT seconds)."""

        def matching(lines: list[str]) -> list[str]:
            return [line for line in lines if all(part in line for part in parts)]

        return matching(self.output.wait_for(lambda lines: bool(matching(lines)), LOG_WAIT))


StartApi = Callable[[Mapping[str, str]], CredentialApi]


@pytest.fixture(scope="module")
def emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    with Emulator(state_dir=tmp_path_factory.mktemp("credentials-emulator")) as emu:
        yield emu


def api_env(emulator: Emulator, credential: Mapping[str, str]) -> dict[str, str]:
    """The API's settings for the emulator's tenant with ``credential`` as its only one."""
    unset = {name: "" for name in (*CREDENTIAL_VARIABLES, *CERTIFICATE_OPTIONS)}
    return {**api_environment(emulator.base_url, emulator.ca_bundle), **unset, **credential}


@pytest.fixture()
def start_api(emulator: Emulator, traffic: Traffic) -> Iterator[StartApi]:
    """Start an API whose only credential is ``credential`` (its variables); every API started
    stops when the test ends."""
    emulator.clear_faults()
    emulator.reset_counters()
    with ExitStack() as running:

        def start(credential: Mapping[str, str]) -> CredentialApi:
            output = ServerOutput()
            server = ApiServer(api_env(emulator, credential), log=output, keep_alive=False)
            running.callback(server.stop)
            server.start()
            traffic.apis.append((server.url, output))
            return CredentialApi(emulator, server, output, traffic)

        yield start
        emulator.clear_faults()


def secret(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    name = "AZURE_CLIENT_SECRET"
    return {name: api_environment(emulator.base_url, emulator.ca_bundle)[name]}


def certificate(emulator: Emulator, tmp_path: Path, trust: Trust = "thumbprint") -> dict[str, str]:
    path = tmp_path / f"api-{trust}.pem"
    return emulator.make_client_certificate(path, trust).environment(path)


def certificate_chain(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    return certificate(emulator, tmp_path, "subject_issuer")


def token_file(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    path = tmp_path / "azure-identity-token"
    emulator.write_workload_identity_token(path)
    return {"AZURE_FEDERATED_TOKEN_FILE": str(path)}


def managed_identity(emulator: Emulator, tmp_path: Path) -> dict[str, str]:
    return emulator.managed_identity_environment()


CREDENTIALS: dict[str, Callable[[Emulator, Path], dict[str, str]]] = {
    "secret": secret,
    "certificate (thumbprint)": certificate,
    "certificate with chain (subject name + issuer)": certificate_chain,
    "federated token file": token_file,
    "managed identity": managed_identity,
}


@pytest.mark.parametrize("kind", CREDENTIALS)
def test_each_credential_reaches_graph_and_arm(
    start_api: StartApi, emulator: Emulator, tmp_path: Path, kind: str
) -> None:
    api = start_api(CREDENTIALS[kind](emulator, tmp_path))

    me = api.get("/api/me")
    subscriptions = api.get("/api/subscriptions", user="bob")

    assert me.status_code == 200, me.text
    assert me.json()["userPrincipalName"] == "alice@contoso.test"
    assert me.headers["Cache-Control"] == "no-store"
    assert subscriptions.status_code == 200, subscriptions.text
    assert len(subscriptions.json()["value"]) == 5
    assert emulator.counters()["token.on_behalf_of"] == 2


def test_the_managed_identity_token_is_kept_across_exchanges(
    start_api: StartApi, emulator: Emulator
) -> None:
    api = start_api(emulator.managed_identity_environment())
    for user in ("alice", "bob", "carol"):
        assert api.get("/api/me", user=user).status_code == 200
    assert emulator.counters()["token.on_behalf_of"] == 3
    assert emulator.counters()["managed-identity"] == 1  # one token, three assertions


def test_a_renewed_token_file_is_read_without_a_restart(
    start_api: StartApi, emulator: Emulator, tmp_path: Path
) -> None:
    token_file = tmp_path / "azure-identity-token"
    emulator.write_workload_identity_token(token_file)
    api = start_api({"AZURE_FEDERATED_TOKEN_FILE": str(token_file)})
    alice = emulator.issue_user_token("alice")
    assert api.get("/api/me", token=alice).status_code == 200

    emulator.write_workload_identity_token(token_file, lifetime=-60)  # the kubelet fell behind
    refused = api.get("/api/me", user="bob")
    cached = api.get("/api/me", token=alice)  # a cached token needs no assertion

    assert_refusal(refused, 503, "temporarily_unavailable", retry_after=5)
    assert cached.status_code == 200
    assert api.logged("AZURE_FEDERATED_TOKEN_FILE", str(token_file), "expired at")
    assert emulator.counters()["token.on_behalf_of"] == 1  # nothing useless was sent

    emulator.write_workload_identity_token(token_file)  # renewed
    assert api.get("/api/me", user="bob").status_code == 200
    assert emulator.counters()["token.on_behalf_of"] == 2


def test_a_missing_token_file_is_a_503(start_api: StartApi, tmp_path: Path) -> None:
    missing = tmp_path / "not-projected-yet"
    api = start_api({"AZURE_FEDERATED_TOKEN_FILE": str(missing)})

    assert_refusal(api.get("/api/me"), 503, "temporarily_unavailable", retry_after=5)
    assert api.logged("cannot read AZURE_FEDERATED_TOKEN_FILE", str(missing))


def test_a_failing_managed_identity_endpoint_is_a_503(
    start_api: StartApi, emulator: Emulator
) -> None:
    api = start_api(emulator.managed_identity_environment())
    emulator.add_fault("managed-identity", "status", status=500)

    assert_refusal(api.get("/api/me"), 503, "temporarily_unavailable", retry_after=5)
    assert api.logged("the managed identity endpoint gave no token for api://AzureADTokenExchange")
    assert emulator.counters()["token.on_behalf_of"] == 0


@pytest.mark.parametrize(
    "trust", ["none", "subject_issuer"], ids=["unregistered", "chain not sent"]
)
def test_a_certificate_entra_refuses_is_a_server_error(
    start_api: StartApi, emulator: Emulator, tmp_path: Path, trust: Trust
) -> None:
    """The API's own credential refused is the operator's problem, not the caller's: 500
    server_error, and an error line with Entra's code (AADSTS700027)."""
    credential = certificate(emulator, tmp_path, trust)
    credential.pop("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN", None)
    api = start_api(credential)

    assert_refusal(
        api.get("/api/me"),
        500,
        "server_error",
        description="the API could not authenticate to Entra ID",
    )
    assert api.logged("Entra ID refused this API's client credential (AADSTS700027)")


@pytest.mark.parametrize(
    ("credential", "message"),
    [
        ({}, "AZURE_CLIENT_SECRET is required when no other client credential is set"),
        (
            {"AZURE_CLIENT_SECRET": "s", "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"},
            "AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE are set",
        ),
        (
            {"AZURE_CLIENT_CERTIFICATE_PATH": "/nowhere/api.pem"},
            "AZURE_CLIENT_CERTIFICATE_PATH: cannot read /nowhere/api.pem"
            " (No such file or directory)",
        ),
    ],
)
def test_start_up_refuses_a_bad_credential(
    emulator: Emulator, credential: dict[str, str], message: str
) -> None:
    output = ServerOutput()  # not in the leak check: it never listens, it only says why
    server = ApiServer(api_env(emulator, credential), log=output, keep_alive=False)
    with pytest.raises(RuntimeError, match="gunicorn did not say where it listens"):
        server.start(wait_ready=False)  # it stops by itself; start() reaps it
    assert f"configuration error: {message}" in output.text()
