"""The API's client credential: exactly one kind in the settings, a certificate checked at
start-up, and what MSAL sends to Entra for each kind (through the app, Entra stubbed)."""

from __future__ import annotations

import base64
import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests
import responses
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from flask.testing import FlaskClient

from app import create_app
from app.auth.credentials import (
    CredentialUnavailable,
    TokenFileAssertion,
    client_credential,
    federation_audience,
)
from app.config import (
    ClientCertificate,
    ClientSecret,
    ConfigError,
    FederatedManagedIdentity,
    FederatedTokenFile,
    load_settings,
)
from tests.support.certificates import (
    DAY,
    certificate,
    ec_key,
    pem_file,
    pkcs12_file,
    rsa_key,
)
from tests.support.contract import assert_refusal
from tests.support.stubs import BASE_ENV, TOKEN_URL, StubServices
from tests.support.tokens import CLIENT_ID, CLIENT_SECRET, TokenFactory, bearer

NO_SECRET = {key: value for key, value in BASE_ENV.items() if key != "AZURE_CLIENT_SECRET"}
PASSWORD = "correct horse battery staple"  # noqa: S105 - the tests' own certificate password
MI_CLIENT_ID = "e3a1c0de-0000-4000-8000-00000000a004"
IDENTITY_ENDPOINT = "http://127.0.0.1:41741/msi/token"  # App Service's shape
FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
JWT_BEARER_ASSERTION = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


@pytest.fixture(scope="module")
def key() -> Any:
    return rsa_key()


@pytest.fixture(scope="module")
def cert(key: Any) -> x509.Certificate:
    return certificate(key)


@pytest.fixture()
def cert_file(tmp_path: Path, key: Any, cert: x509.Certificate) -> Path:
    return pem_file(tmp_path / "api.pem", key, [cert])


def settings_with(**variables: str) -> Any:
    return load_settings({**NO_SECRET, **variables})


def config_error(**variables: str) -> str:
    with pytest.raises(ConfigError) as caught:
        settings_with(**variables)
    return str(caught.value)


# -- exactly one kind ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        (
            {},
            "AZURE_CLIENT_SECRET is required when no other client credential is set "
            "(AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE or "
            "AZURE_MANAGED_IDENTITY_CLIENT_ID); set exactly one",
        ),
        ({"AZURE_CLIENT_SECRET": " "}, "AZURE_CLIENT_SECRET is required"),
        (
            {"AZURE_CLIENT_SECRET": "s", "AZURE_FEDERATED_TOKEN_FILE": "/t"},
            "AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE are set; the API uses exactly one "
            "client credential, so keep one of them",
        ),
        (
            {
                "AZURE_CLIENT_CERTIFICATE_PATH": "/c.pem",
                "AZURE_FEDERATED_TOKEN_FILE": "/t",
                "AZURE_MANAGED_IDENTITY_CLIENT_ID": MI_CLIENT_ID,
            },
            "AZURE_CLIENT_CERTIFICATE_PATH, AZURE_FEDERATED_TOKEN_FILE and "
            "AZURE_MANAGED_IDENTITY_CLIENT_ID are set",
        ),
        (
            {"AZURE_CLIENT_SECRET": "s", "AZURE_CLIENT_CERTIFICATE_PASSWORD": "p"},
            "AZURE_CLIENT_CERTIFICATE_PASSWORD is set but AZURE_CLIENT_CERTIFICATE_PATH is not",
        ),
        (
            {"AZURE_FEDERATED_TOKEN_FILE": "/t", "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "true"},
            "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN is set but AZURE_CLIENT_CERTIFICATE_PATH is not",
        ),
        (
            {"AZURE_MANAGED_IDENTITY_CLIENT_ID": "obo-api-identity"},
            "AZURE_MANAGED_IDENTITY_CLIENT_ID must be a GUID (the managed identity's client ID)",
        ),
    ],
)
def test_the_api_takes_exactly_one_credential(variables: dict[str, str], message: str) -> None:
    assert config_error(**variables).startswith(message)


def test_start_up_refuses_several_credentials() -> None:
    with pytest.raises(ConfigError, match="AZURE_CLIENT_SECRET and AZURE_FEDERATED_TOKEN_FILE"):
        create_app({**BASE_ENV, "AZURE_FEDERATED_TOKEN_FILE": "/var/run/token"})


def test_each_kind_is_read() -> None:
    secret = settings_with(AZURE_CLIENT_SECRET=CLIENT_SECRET).credential
    assert secret == ClientSecret(CLIENT_SECRET)
    assert CLIENT_SECRET not in repr(secret)
    # The token file is read at each token request, not at start-up: it may not exist yet.
    assert settings_with(
        AZURE_FEDERATED_TOKEN_FILE=" /var/run/azure-identity-token "
    ).credential == FederatedTokenFile("/var/run/azure-identity-token")
    assert settings_with(
        AZURE_MANAGED_IDENTITY_CLIENT_ID=MI_CLIENT_ID.upper()
    ).credential == FederatedManagedIdentity(MI_CLIENT_ID)


# -- a certificate, checked at start-up ------------------------------------------------------


def test_certificate_file_is_loaded(cert_file: Path, key: Any, cert: x509.Certificate) -> None:
    credential = settings_with(AZURE_CLIENT_CERTIFICATE_PATH=str(cert_file)).credential
    assert isinstance(credential, ClientCertificate)
    assert credential.chain == (cert,)
    assert credential.private_key.private_numbers() == key.private_numbers()
    assert credential.send_chain is False
    assert "PRIVATE" not in repr(credential)


def test_encrypted_key_opens_with_its_password(
    tmp_path: Path, key: Any, cert: x509.Certificate
) -> None:
    path = pem_file(tmp_path / "api.pem", key, [cert], password=PASSWORD)
    credential = settings_with(
        AZURE_CLIENT_CERTIFICATE_PATH=str(path), AZURE_CLIENT_CERTIFICATE_PASSWORD=PASSWORD
    ).credential
    assert isinstance(credential, ClientCertificate)
    assert credential.chain == (cert,)


@pytest.mark.parametrize("password", [None, PASSWORD])
def test_pkcs12_file_is_loaded(
    tmp_path: Path, key: Any, cert: x509.Certificate, password: str | None
) -> None:
    ca_key = rsa_key()
    ca = certificate(ca_key, "issuing CA", ca=True)
    path = pkcs12_file(tmp_path / "api.pfx", key, cert, [ca], password=password)
    variables = {"AZURE_CLIENT_CERTIFICATE_PATH": str(path)}
    if password:
        variables["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = password
    credential = settings_with(**variables).credential
    assert isinstance(credential, ClientCertificate)
    assert credential.chain == (cert, ca)


def test_the_keys_certificate_leads_the_chain(tmp_path: Path, key: Any) -> None:
    ca_key = rsa_key()
    ca = certificate(ca_key, "issuing CA", ca=True)
    leaf = certificate(key, issuer=(ca, ca_key))
    path = pem_file(tmp_path / "api.pem", key, [ca, leaf])  # the CA first in the file
    credential = settings_with(
        AZURE_CLIENT_CERTIFICATE_PATH=str(path), AZURE_CLIENT_SEND_CERTIFICATE_CHAIN="TRUE"
    ).credential
    assert isinstance(credential, ClientCertificate)
    assert credential.chain == (leaf, ca)
    assert credential.send_chain is True


@pytest.mark.parametrize(
    ("value", "send"), [("true", True), ("1", True), ("False", False), ("0", False), ("", False)]
)
def test_send_chain_is_true_or_false(cert_file: Path, value: str, send: bool) -> None:
    credential = settings_with(
        AZURE_CLIENT_CERTIFICATE_PATH=str(cert_file), AZURE_CLIENT_SEND_CERTIFICATE_CHAIN=value
    ).credential
    assert isinstance(credential, ClientCertificate)
    assert credential.send_chain is send


def test_send_chain_must_be_a_boolean(cert_file: Path) -> None:
    assert config_error(
        AZURE_CLIENT_CERTIFICATE_PATH=str(cert_file), AZURE_CLIENT_SEND_CERTIFICATE_CHAIN="yes"
    ) == ("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN must be true or false")


Writer = Callable[[Path, Any, x509.Certificate], Path]
BAD_CERTIFICATE_FILES: dict[str, tuple[Writer, dict[str, str], str]] = {
    "missing": (
        lambda d, k, c: d / "nowhere.pem",
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH: cannot read {path} (No such file or directory)",
    ),
    "a directory": (
        lambda d, k, c: d,
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH: cannot read {path} (Is a directory)",
    ),
    "not a certificate": (
        lambda d, k, c: _write(d / "x.pem", b"hello"),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH is neither PEM nor a PKCS#12 file",
    ),
    "no key": (
        lambda d, k, c: pem_file(d / "x.pem", None, [c]),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH holds no private key (the PEM file needs the "
        "private key and its certificate)",
    ),
    "no certificate": (
        lambda d, k, c: pem_file(d / "x.pem", k, []),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH holds no certificate",
    ),
    "another key's certificate": (
        lambda d, k, c: pem_file(d / "x.pem", rsa_key(), [c]),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH: no certificate in the file matches its private key",
    ),
    "encrypted, no password": (
        lambda d, k, c: pem_file(d / "x.pem", k, [c], password=PASSWORD),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH holds an encrypted private key; set "
        "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    ),
    "wrong password": (
        lambda d, k, c: pem_file(d / "x.pem", k, [c], password=PASSWORD),
        {"AZURE_CLIENT_CERTIFICATE_PASSWORD": "not the password"},
        "AZURE_CLIENT_CERTIFICATE_PASSWORD does not decrypt the private key in "
        "AZURE_CLIENT_CERTIFICATE_PATH",
    ),
    "password for a plain key": (
        lambda d, k, c: pem_file(d / "x.pem", k, [c]),
        {"AZURE_CLIENT_CERTIFICATE_PASSWORD": PASSWORD},
        "AZURE_CLIENT_CERTIFICATE_PASSWORD is set but the private key in "
        "AZURE_CLIENT_CERTIFICATE_PATH is not encrypted",
    ),
    "wrong PKCS#12 password": (
        lambda d, k, c: pkcs12_file(d / "x.pfx", k, c, password=PASSWORD),
        {"AZURE_CLIENT_CERTIFICATE_PASSWORD": "not the password"},
        "AZURE_CLIENT_CERTIFICATE_PASSWORD does not open the PKCS#12 file",
    ),
    "expired": (
        lambda d, k, c: pem_file(
            d / "x.pem", k, [certificate(k, valid_from=-30 * DAY, valid_until=-DAY)]
        ),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH: the certificate CN=obo-api (SHA-256 thumbprint",
    ),
    "not yet valid": (
        lambda d, k, c: pem_file(d / "x.pem", k, [certificate(k, valid_from=DAY)]),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH: the certificate CN=obo-api (SHA-256 thumbprint",
    ),
    "an EC key": (
        lambda d, k, c: pem_file(d / "x.pem", (e := ec_key()), [certificate(e)]),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH must hold an RSA private key of 2048 bits or more",
    ),
    "a 1024-bit key": (
        lambda d, k, c: pem_file(d / "x.pem", (w := rsa_key(1024)), [certificate(w)]),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH must hold an RSA private key of 2048 bits or more",
    ),
    "over 1 MiB": (
        lambda d, k, c: _write(d / "x.pem", b"-----BEGIN" + b"x" * 1024 * 1024),
        {},
        "AZURE_CLIENT_CERTIFICATE_PATH: {path} is over 1024 KiB",
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", BAD_CERTIFICATE_FILES)
def test_a_bad_certificate_file_stops_start_up(
    tmp_path: Path, key: Any, cert: x509.Certificate, case: str
) -> None:
    write, variables, message = BAD_CERTIFICATE_FILES[case]
    path = write(tmp_path, key, cert)
    error = config_error(AZURE_CLIENT_CERTIFICATE_PATH=str(path), **variables)
    assert error.startswith(message.format(path=path))
    assert PASSWORD not in error


def test_an_expired_certificate_is_named_with_its_date(tmp_path: Path, key: Any) -> None:
    expired = certificate(key, valid_from=-30 * DAY, valid_until=-DAY)
    path = pem_file(tmp_path / "api.pem", key, [expired])
    thumbprint = expired.fingerprint(hashes.SHA256()).hex().upper()
    assert config_error(AZURE_CLIENT_CERTIFICATE_PATH=str(path)) == (
        f"AZURE_CLIENT_CERTIFICATE_PATH: the certificate CN=obo-api (SHA-256 thumbprint "
        f"{thumbprint}) expired on {expired.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
    )


# -- what MSAL is given, and what it sends -----------------------------------------------------


def test_a_secret_is_given_as_it_is() -> None:
    assert client_credential(settings_with(AZURE_CLIENT_SECRET=CLIENT_SECRET)) == CLIENT_SECRET


def test_a_certificate_is_given_with_its_sha256_thumbprint_form(cert_file: Path) -> None:
    given = client_credential(settings_with(AZURE_CLIENT_CERTIFICATE_PATH=str(cert_file)))
    assert isinstance(given, dict)
    assert set(given) == {"private_key", "public_certificate"}  # MSAL derives x5t#S256
    assert given["public_certificate"].count("BEGIN CERTIFICATE") == 1
    assert "ENCRYPTED" not in given["private_key"]


@pytest.mark.parametrize(
    ("authority_host", "audience"),
    [
        ("https://login.microsoftonline.com", "api://AzureADTokenExchange"),
        ("https://login.microsoftonline.us", "api://AzureADTokenExchangeUSGov"),
        ("https://login.chinacloudapi.cn", "api://AzureADTokenExchangeChina"),
        ("https://login.partner.microsoftonline.cn", "api://AzureADTokenExchangeChina"),
        ("https://127.0.0.1:8443", "api://AzureADTokenExchange"),
    ],
)
def test_managed_identity_token_audience_follows_the_cloud(
    authority_host: str, audience: str
) -> None:
    assert federation_audience(authority_host) == audience


def exchange_form(stubs: StubServices, number: int = 0) -> dict[str, str]:
    return dict(stubs.issued[number]["form"])


def app_client(**variables: str) -> FlaskClient:
    return create_app({**NO_SECRET, **variables}).test_client()


def test_msal_signs_the_assertion_with_the_certificate(
    stubs: StubServices, tokens: TokenFactory, cert_file: Path, cert: x509.Certificate
) -> None:
    client = app_client(AZURE_CLIENT_CERTIFICATE_PATH=str(cert_file))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == 200, response.json
    form = exchange_form(stubs)
    assert "client_secret" not in form
    assert form["client_assertion_type"] == JWT_BEARER_ASSERTION
    header = jwt.get_unverified_header(form["client_assertion"])
    assert header["alg"] == "PS256"
    assert header["x5t#S256"].rstrip("=") == _b64url(cert.fingerprint(hashes.SHA256()))
    claims = jwt.decode(
        form["client_assertion"],
        cert.public_key(),
        algorithms=["PS256"],
        audience=TOKEN_URL,
        issuer=CLIENT_ID,
    )
    assert claims["sub"] == CLIENT_ID
    assert claims["exp"] - claims["iat"] <= 600
    assert claims["jti"]


def test_the_chain_goes_in_x5c_when_asked(
    stubs: StubServices, tokens: TokenFactory, tmp_path: Path, key: Any
) -> None:
    ca_key = rsa_key()
    ca = certificate(ca_key, "issuing CA", ca=True)
    leaf = certificate(key, issuer=(ca, ca_key))
    path = pem_file(tmp_path / "api.pem", key, [leaf, ca])
    client = app_client(
        AZURE_CLIENT_CERTIFICATE_PATH=str(path), AZURE_CLIENT_SEND_CERTIFICATE_CHAIN="true"
    )
    assert client.get("/api/me", headers=bearer(tokens.valid())).status_code == 200
    assertion = exchange_form(stubs)["client_assertion"]
    header = jwt.get_unverified_header(assertion)
    sent = [
        x509.load_der_x509_certificate(base64.b64decode("".join(e.split()))) for e in header["x5c"]
    ]
    assert sent == [leaf, ca]
    # MSAL sends a whole chain only with the SHA-1 thumbprint (RS256, x5t).
    assert header["alg"] == "RS256"
    assert header["x5t"].rstrip("=") == _b64url(leaf.fingerprint(hashes.SHA1()))  # noqa: S303
    jwt.decode(assertion, leaf.public_key(), algorithms=["RS256"], audience=TOKEN_URL)


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# -- a federated token file (AKS workload identity) ------------------------------------------


def service_account_token(
    lifetime: int = 3600, subject: str = "system:serviceaccount:obo:api"
) -> str:
    """A token as the kubelet projects it (unsigned here: only Entra judges it)."""
    now = int(time.time())
    claims = {
        "aud": [FEDERATION_AUDIENCE],
        "iss": "https://oidc.example/",
        "sub": subject,
        "iat": now - 60,
        "nbf": now - 60,
        "exp": now + lifetime,
    }
    return (
        ".".join(
            _b64url(json.dumps(part).encode()) for part in ({"alg": "RS256", "kid": "k"}, claims)
        )
        + "."
        + _b64url(b"signature")
    )


@pytest.fixture()
def token_file(tmp_path: Path) -> Path:
    path = tmp_path / "azure-identity-token"
    path.write_text(service_account_token())
    return path


def test_the_token_file_is_the_client_assertion_and_is_read_again(
    stubs: StubServices, tokens: TokenFactory, token_file: Path
) -> None:
    client = app_client(AZURE_FEDERATED_TOKEN_FILE=str(token_file))
    first = token_file.read_text()
    assert client.get("/api/me", headers=bearer(tokens.valid())).status_code == 200
    rotated = service_account_token(subject="system:serviceaccount:obo:api-rotated")
    token_file.write_text(rotated + "\n")  # the kubelet's renewal; a newline is tolerated
    assert client.get("/api/me", headers=bearer(tokens.valid())).status_code == 200  # new user
    assert exchange_form(stubs, 0)["client_assertion"] == first
    assert exchange_form(stubs, 0)["client_assertion_type"] == JWT_BEARER_ASSERTION
    assert exchange_form(stubs, 1)["client_assertion"] == rotated


@pytest.mark.parametrize(
    ("content", "logged"),
    [
        (None, "cannot read AZURE_FEDERATED_TOKEN_FILE {path}: No such file or directory"),
        ("expired", "the token in AZURE_FEDERATED_TOKEN_FILE {path} expired at "),
        ("not a token", "AZURE_FEDERATED_TOKEN_FILE {path} does not hold a JWT"),
    ],
)
def test_no_usable_token_file_is_a_503_with_a_log_line(
    stubs: StubServices,
    tokens: TokenFactory,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    content: str | None,
    logged: str,
) -> None:
    path = tmp_path / "azure-identity-token"
    expired = service_account_token(lifetime=-60)
    if content is not None:
        path.write_text(expired if content == "expired" else content)
    client = app_client(AZURE_FEDERATED_TOKEN_FILE=str(path))
    with caplog.at_level(logging.WARNING):
        response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 503, "temporarily_unavailable", retry_after=5)
    assert stubs.token_calls == 0  # nothing worth sending to Entra
    assert any(logged.format(path=path) in message for message in caplog.messages)
    assert not any(expired.split(".")[1] in message for message in caplog.messages)


def test_an_oversized_token_file_is_not_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_bytes(b"x" * (64 * 1024 + 1))
    with pytest.raises(CredentialUnavailable, match="is over 64 KiB"):
        TokenFileAssertion(path)()


# -- a managed identity as a federated identity credential -----------------------------------


@pytest.fixture()
def identity_endpoint(stubs: StubServices, monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """App Service's managed identity endpoint, stubbed; yields its requests."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT)
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header-value")
    seen: list[Any] = []

    def answer(request: Any) -> tuple[int, dict[str, str], str]:
        seen.append(request)
        body = {
            "access_token": f"mi-token-{len(seen)}",
            "resource": FEDERATION_AUDIENCE,
            "expires_on": str(int(time.time()) + 86400),
            "token_type": "Bearer",
            "client_id": MI_CLIENT_ID,
        }
        return 200, {"Content-Type": "application/json"}, json.dumps(body)

    stubs.mock.add_callback(responses.GET, IDENTITY_ENDPOINT, callback=answer)
    yield seen


def test_the_managed_identity_token_is_the_client_assertion(
    stubs: StubServices, tokens: TokenFactory, identity_endpoint: list[Any]
) -> None:
    client = app_client(AZURE_MANAGED_IDENTITY_CLIENT_ID=MI_CLIENT_ID)
    for _ in range(2):  # two users, two exchanges
        assert client.get("/api/me", headers=bearer(tokens.valid())).status_code == 200
    assert [exchange_form(stubs, n)["client_assertion"] for n in (0, 1)] == ["mi-token-1"] * 2
    assert len(identity_endpoint) == 1  # MSAL keeps the managed identity's token
    request = identity_endpoint[0]
    assert request.headers["X-IDENTITY-HEADER"] == "identity-header-value"
    assert responses.matchers.query_param_matcher(
        {"api-version": "2019-08-01", "resource": FEDERATION_AUDIENCE, "client_id": MI_CLIENT_ID}
    )(request)[0]


@pytest.mark.parametrize(
    ("reply", "logged"),
    [
        (
            {"status": 500, "json": {"statusCode": 500, "message": "An unexpected error occurred"}},
            "the managed identity endpoint gave no token for api://AzureADTokenExchange: "
            "invalid_scope: 500, An unexpected error occurred",
        ),
        (
            {"body": requests.ConnectionError("connection refused")},
            "the managed identity endpoint failed: ConnectionError: connection refused",
        ),
    ],
)
def test_a_failing_managed_identity_endpoint_is_a_503_with_a_log_line(
    stubs: StubServices,
    tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    reply: dict[str, Any],
    logged: str,
) -> None:
    monkeypatch.setenv("IDENTITY_ENDPOINT", IDENTITY_ENDPOINT)
    monkeypatch.setenv("IDENTITY_HEADER", "identity-header-value")
    stubs.mock.add(responses.GET, IDENTITY_ENDPOINT, **reply)
    client = app_client(AZURE_MANAGED_IDENTITY_CLIENT_ID=MI_CLIENT_ID)
    with caplog.at_level(logging.WARNING):
        response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 503, "temporarily_unavailable", retry_after=5)
    assert stubs.token_calls == 0
    assert any(logged in message for message in caplog.messages), caplog.messages
