"""Client assertions at the token endpoint: certificates (thumbprint, subject name + issuer)
and federated identity credentials (workload identity, managed identity), with real MSAL
where MSAL builds the assertion, by hand where a test needs a particular mistake."""

from __future__ import annotations

import base64
import time
import uuid
from pathlib import Path
from typing import Any

import jwt
import msal
import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator import (
    API_CLIENT_ID,
    MANAGED_IDENTITY_CLIENT_ID,
    SPA_CLIENT_ID,
    TENANT_ID,
    WORKLOAD_IDENTITY_ISSUER,
    WORKLOAD_IDENTITY_SUBJECT,
    Emulator,
)
from tests.emulator.support import (
    GRAPH_USER_READ,
    AppFactory,
    assert_entra_error,
    obo_form,
    token_url,
    trusting_session,
)

JWT_BEARER = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def pem_parts(path: Path) -> tuple[str, list[x509.Certificate]]:
    """A made certificate file's private key (PEM) and certificates."""
    text = path.read_text()
    end = "-----END PRIVATE KEY-----\n"
    return text[: text.index(end) + len(end)], x509.load_pem_x509_certificates(text.encode())


def pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def sha256_form(path: Path) -> dict[str, str]:
    """What the API gives MSAL by default: PS256, x5t#S256, x5c with the certificate alone."""
    key, certificates = pem_parts(path)
    return {"private_key": key, "public_certificate": pem(certificates[0])}


def chain_form(path: Path) -> dict[str, str]:
    """What the API gives MSAL with AZURE_CLIENT_SEND_CERTIFICATE_CHAIN: RS256, x5t, x5c
    with the whole chain."""
    key, certificates = pem_parts(path)
    sha1 = certificates[0].fingerprint(hashes.SHA1()).hex()  # noqa: S303 - an identifier
    return {
        "private_key": key,
        "thumbprint": sha1,
        "public_certificate": "".join(pem(c) for c in certificates),
    }


def exchange(make_api_app: AppFactory, emulator: Emulator, credential: Any) -> dict[str, Any]:
    app = make_api_app(credential)
    return dict(
        app.acquire_token_on_behalf_of(emulator.issue_user_token("alice"), [GRAPH_USER_READ])
    )


def refused(result: dict[str, Any], code: int, error: str = "invalid_client") -> str:
    assert result.get("error") == error, result
    assert result["error_codes"] == [code], result
    return str(result["error_description"])


# -- certificates, signed by MSAL ------------------------------------------------------------


@pytest.mark.parametrize("form", [sha256_form, chain_form], ids=["x5t#S256", "x5t+x5c"])
def test_a_registered_certificate_authenticates_the_api(
    emulator: Emulator, make_api_app: AppFactory, tmp_path: Path, form: Any
) -> None:
    path = tmp_path / "api.pem"
    emulator.make_client_certificate(path)
    result = exchange(make_api_app, emulator, form(path))
    assert "access_token" in result, result
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def test_subject_name_and_issuer_needs_the_chain(
    emulator: Emulator, make_api_app: AppFactory, tmp_path: Path
) -> None:
    path = tmp_path / "api.pem"
    made = emulator.make_client_certificate(path, "subject_issuer")
    assert made.subject == "CN=obo-api.contoso.test"
    assert made.environment(path)["AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"] == "true"

    assert "access_token" in exchange(make_api_app, emulator, chain_form(path))
    # Without the issuing CA in x5c, the certificate does not chain to the trusted root.
    description = refused(exchange(make_api_app, emulator, sha256_form(path)), 700027)
    assert made.thumbprint_sha256 in description
    assert "The key was not found." in description


@pytest.mark.parametrize("form", [sha256_form, chain_form], ids=["x5t#S256", "x5t+x5c"])
def test_an_unregistered_certificate_is_refused(
    emulator: Emulator, make_api_app: AppFactory, tmp_path: Path, form: Any
) -> None:
    path = tmp_path / "api.pem"
    made = emulator.make_client_certificate(path, "none")
    description = refused(exchange(make_api_app, emulator, form(path)), 700027)
    thumbprint = made.thumbprint_sha256 if form is sha256_form else made.thumbprint_sha1
    assert f"Thumbprint of key used by client: '{thumbprint}'" in description
    assert f"configured keys for app Id '{API_CLIENT_ID}'" in description


def test_an_expired_registered_certificate_is_refused(
    emulator: Emulator, make_api_app: AppFactory, tmp_path: Path
) -> None:
    path = tmp_path / "api.pem"
    emulator.make_client_certificate(path, expired=True)
    description = refused(exchange(make_api_app, emulator, sha256_form(path)), 700027)
    assert "The key used is expired." in description


def test_registrations_survive_a_restart(fresh_emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "api.pem"
    fresh_emulator.make_client_certificate(path)
    fresh_emulator.stop()
    with Emulator(state_dir=fresh_emulator.state_dir) as again:
        with trusting_session(again) as session:
            app = msal.ConfidentialClientApplication(
                API_CLIENT_ID,
                client_credential=sha256_form(path),
                authority=again.authority,
                instance_discovery=False,
                http_client=session,
            )
            result = app.acquire_token_on_behalf_of(
                again.issue_user_token("alice"), [GRAPH_USER_READ]
            )
    assert "access_token" in result, result


# -- certificate assertions built by hand ----------------------------------------------------


@pytest.fixture()
def registered(emulator: Emulator, tmp_path: Path) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    path = tmp_path / "api.pem"
    emulator.make_client_certificate(path)
    key_pem, certificates = pem_parts(path)
    key = serialization.load_pem_private_key(key_pem.encode(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key, certificates[0]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def signed_assertion(
    emulator: Emulator, key: rsa.RSAPrivateKey, cert: x509.Certificate, **overrides: Any
) -> str:
    now = int(time.time())
    claims = {
        "aud": token_url(emulator),
        "iss": API_CLIENT_ID,
        "sub": API_CLIENT_ID,
        "jti": str(uuid.uuid4()),
        "nbf": now,
        "iat": now,
        "exp": now + 600,
        **overrides,
    }
    claims = {k: v for k, v in claims.items() if v is not None}
    return jwt.encode(
        claims,
        key,
        algorithm="PS256",
        headers={"x5t#S256": b64url(cert.fingerprint(hashes.SHA256()))},
    )


def post_assertion(
    http: requests.Session,
    emulator: Emulator,
    assertion: str,
    client_id: str = API_CLIENT_ID,
    **form: str,
) -> requests.Response:
    data = obo_form(
        emulator.issue_user_token("alice"),
        client_id=client_id,
        **{"client_assertion_type": JWT_BEARER, "client_assertion": assertion, **form},
    )
    del data["client_secret"]
    return http.post(token_url(emulator), data=data)


def test_a_hand_signed_assertion_is_accepted_again_and_again(
    emulator: Emulator, http: requests.Session, registered: Any
) -> None:
    assertion = signed_assertion(emulator, *registered)
    # Entra does not refuse a jti it has seen: MSAL itself reuses an assertion for minutes.
    for _ in range(2):
        assert post_assertion(http, emulator, assertion).status_code == 200


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"aud": "https://login.microsoftonline.com/common/oauth2/v2.0/token"}, 700023),
        ({"aud": None}, 700023),
        ({"iss": SPA_CLIENT_ID}, 700021),
        ({"sub": "someone-else"}, 700021),
        ({"exp": int(time.time()) - 3600}, 700024),
        ({"exp": None}, 700024),
        ({"nbf": int(time.time()) + 3600}, 700024),
    ],
)
def test_assertion_claims_are_checked(
    emulator: Emulator,
    http: requests.Session,
    registered: Any,
    overrides: dict[str, Any],
    code: int,
) -> None:
    response = post_assertion(http, emulator, signed_assertion(emulator, *registered, **overrides))
    assert response.status_code == 401
    assert_entra_error(response.json(), "invalid_client", code)


def test_the_token_endpoint_may_be_named_by_tenant_domain(
    emulator: Emulator, http: requests.Session, registered: Any
) -> None:
    aud = f"{emulator.base_url}/contoso.test/oauth2/v2.0/token"
    assert (
        post_assertion(http, emulator, signed_assertion(emulator, *registered, aud=aud)).status_code
        == 200
    )


def test_a_signature_by_another_key_is_refused(
    emulator: Emulator, http: requests.Session, registered: Any
) -> None:
    _, cert = registered
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    response = post_assertion(http, emulator, signed_assertion(emulator, other, cert))
    assert response.status_code == 401
    assert_entra_error(response.json(), "invalid_client", 700027)
    assert "did not match the expected signature value" in response.json()["error_description"]


@pytest.mark.parametrize(
    ("form", "status", "error", "code"),
    [
        ({"client_assertion_type": "urn:example:other"}, 400, "invalid_request", 90100),
        ({"client_assertion_type": ""}, 400, "invalid_request", 900144),
        ({"client_id": SPA_CLIENT_ID}, 401, "invalid_client", 700025),
    ],
)
def test_the_assertion_request_is_checked(
    emulator: Emulator,
    http: requests.Session,
    registered: Any,
    form: dict[str, str],
    status: int,
    error: str,
    code: int,
) -> None:
    response = post_assertion(http, emulator, signed_assertion(emulator, *registered), **form)
    assert response.status_code == status
    assert_entra_error(response.json(), error, code)


def test_a_malformed_assertion_is_refused(emulator: Emulator, http: requests.Session) -> None:
    response = post_assertion(http, emulator, "not.a.jwt")
    assert response.status_code == 400
    assert_entra_error(response.json(), "invalid_request", 50027)


# -- federated identity credentials ----------------------------------------------------------


def test_a_workload_identity_token_authenticates_the_api(
    emulator: Emulator, make_api_app: AppFactory, tmp_path: Path
) -> None:
    path = tmp_path / "azure-identity-token"
    token = emulator.write_workload_identity_token(path)
    assert path.read_text() == token
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == WORKLOAD_IDENTITY_ISSUER
    assert claims["sub"] == WORKLOAD_IDENTITY_SUBJECT
    assert claims["aud"] == ["api://AzureADTokenExchange"]
    assert claims["exp"] - claims["iat"] == 3600
    result = exchange(make_api_app, emulator, {"client_assertion": path.read_text})
    assert "access_token" in result, result


@pytest.mark.parametrize(
    ("claims", "code", "named"),
    [
        ({"issuer": "https://oidc.example/other/"}, 700211, "issuer 'https://oidc.example/other/'"),
        (
            {"subject": "system:serviceaccount:obo:other"},
            700213,
            "subject 'system:serviceaccount:obo:other'",
        ),
        ({"subject": WORKLOAD_IDENTITY_SUBJECT.upper()}, 700213, "subject"),  # case-sensitive
        ({"audience": "api://AzureADTokenExchangeUSGov"}, 700212, "audience"),
        ({"lifetime": -600}, 700024, "not within its valid time range"),
    ],
)
def test_federated_tokens_are_matched_to_a_credential(
    emulator: Emulator, make_api_app: AppFactory, claims: dict[str, Any], code: int, named: str
) -> None:
    token = emulator.issue_workload_identity_token(**claims)
    description = refused(
        exchange(make_api_app, emulator, {"client_assertion": lambda: token}), code
    )
    assert named in description


def test_a_federated_token_not_signed_by_the_cluster_is_refused(
    emulator: Emulator, make_api_app: AppFactory
) -> None:
    genuine = jwt.decode(
        emulator.issue_workload_identity_token(), options={"verify_signature": False}
    )
    forger = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    forged = jwt.encode(genuine, forger, algorithm="RS256", headers={"kid": "forged"})
    description = refused(
        exchange(make_api_app, emulator, {"client_assertion": lambda: forged}), 700027
    )
    assert "Client assertion failed signature validation" in description


@pytest.fixture()
def managed_identity(
    emulator: Emulator, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> Any:
    """MSAL's managed identity client, talking to the emulator's App Service endpoint (MSAL
    reads IDENTITY_ENDPOINT and IDENTITY_HEADER from the environment)."""
    monkeypatch.setenv("IDENTITY_ENDPOINT", emulator.managed_identity_endpoint)
    monkeypatch.setenv("IDENTITY_HEADER", emulator.managed_identity_header)
    return msal.ManagedIdentityClient(
        msal.UserAssignedManagedIdentity(client_id=MANAGED_IDENTITY_CLIENT_ID), http_client=http
    )


def test_a_managed_identity_token_authenticates_the_api(
    emulator: Emulator, make_api_app: AppFactory, managed_identity: Any
) -> None:
    def assertion() -> str:
        result = managed_identity.acquire_token_for_client(resource="api://AzureADTokenExchange")
        return str(result["access_token"])

    result = exchange(make_api_app, emulator, {"client_assertion": assertion})
    assert "access_token" in result, result


def test_a_managed_identity_token_for_another_resource_is_refused(
    emulator: Emulator, make_api_app: AppFactory, managed_identity: Any
) -> None:
    graph = managed_identity.acquire_token_for_client(resource="https://graph.microsoft.com")
    description = refused(
        exchange(make_api_app, emulator, {"client_assertion": lambda: graph["access_token"]}),
        700212,
    )
    assert "00000003-0000-0000-c000-000000000000" in description


def test_an_assertion_for_another_tenant_issuer_is_refused(
    emulator: Emulator, make_api_app: AppFactory, managed_identity: Any
) -> None:
    token = managed_identity.acquire_token_for_client(resource="api://AzureADTokenExchange")[
        "access_token"
    ]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == f"{emulator.base_url}/{TENANT_ID}/v2.0"
    other = jwt.encode(
        {**claims, "iss": "https://login.microsoftonline.com/other/v2.0"},
        rsa.generate_private_key(public_exponent=65537, key_size=2048),
        algorithm="RS256",
    )
    refused(exchange(make_api_app, emulator, {"client_assertion": lambda: other}), 700211)
