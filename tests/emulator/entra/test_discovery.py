"""OpenID discovery and the JWKS, as Entra publishes them."""

from __future__ import annotations

import base64
import hashlib

import pytest
import requests
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator import OTHER_TENANT_ID, TENANT_ID, Emulator
from tests.emulator.support import assert_entra_error


def _b64url_int(value: str) -> int:
    return int.from_bytes(base64.urlsafe_b64decode(value + "=" * (-len(value) % 4)), "big")


def test_discovery_document_has_entra_shape(emulator: Emulator, http: requests.Session) -> None:
    response = http.get(f"{emulator.authority}/v2.0/.well-known/openid-configuration")

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    doc = response.json()
    root = f"{emulator.base_url}/{TENANT_ID}"
    assert doc["issuer"] == f"{root}/v2.0"
    assert doc["token_endpoint"] == f"{root}/oauth2/v2.0/token"
    assert doc["jwks_uri"] == f"{root}/discovery/v2.0/keys"
    assert doc["authorization_endpoint"] == f"{root}/oauth2/v2.0/authorize"
    assert doc["device_authorization_endpoint"] == f"{root}/oauth2/v2.0/devicecode"
    assert doc["end_session_endpoint"] == f"{root}/oauth2/v2.0/logout"
    assert doc["id_token_signing_alg_values_supported"] == ["RS256"]
    assert "code" in doc["response_types_supported"]
    assert doc["cloud_instance_name"] == "microsoftonline.com"
    assert doc["tenant_region_scope"]
    assert emulator.counters()["openid-configuration"] == 1


def test_discovery_by_domain_names_the_tenant_guid(
    emulator: Emulator, http: requests.Session
) -> None:
    doc = http.get(f"{emulator.base_url}/contoso.test/v2.0/.well-known/openid-configuration")

    assert doc.status_code == 200
    assert doc.json()["issuer"] == f"{emulator.base_url}/{TENANT_ID}/v2.0"


def test_issuer_follows_the_host_the_client_used(emulator: Emulator) -> None:
    with requests.Session() as session:
        session.trust_env = False
        session.verify = str(emulator.ca_bundle)
        url = f"https://localhost:{emulator.port}/{TENANT_ID}/v2.0/.well-known/openid-configuration"
        doc = session.get(url).json()

    assert doc["issuer"] == f"https://localhost:{emulator.port}/{TENANT_ID}/v2.0"


@pytest.mark.parametrize(
    ("tenant", "code"),
    [
        ("0f0f0f0f-0000-4000-8000-000000000000", 90002),
        ("nowhere.test", 90002),
        ("not_a_tenant", 900023),
    ],
)
def test_unknown_tenant_is_refused_like_entra(
    emulator: Emulator, http: requests.Session, tenant: str, code: int
) -> None:
    response = http.get(f"{emulator.base_url}/{tenant}/v2.0/.well-known/openid-configuration")

    assert response.status_code == 400
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    assert_entra_error(response.json(), "invalid_tenant", code)
    assert tenant in response.json()["error_description"]


@pytest.mark.parametrize("tenant", [TENANT_ID, OTHER_TENANT_ID])
def test_jwks_publishes_two_rsa_keys_with_certificates(
    emulator: Emulator, http: requests.Session, tenant: str
) -> None:
    response = http.get(f"{emulator.base_url}/{tenant}/discovery/v2.0/keys")

    assert response.status_code == 200
    keys = response.json()["keys"]
    assert len(keys) == 2
    assert keys[0]["kid"] == emulator.signing_kids()[0]
    for key in keys:
        assert key["kty"] == "RSA"
        assert key["use"] == "sig"
        assert key["issuer"] == f"{emulator.base_url}/{tenant}/v2.0"
        der = base64.b64decode(key["x5c"][0])
        sha1 = hashlib.sha1(der, usedforsecurity=False).digest()
        thumbprint = base64.urlsafe_b64encode(sha1).rstrip(b"=").decode()
        assert key["kid"] == key["x5t"] == thumbprint
        public = x509.load_der_x509_certificate(der).public_key()
        assert isinstance(public, rsa.RSAPublicKey)
        assert public.public_numbers().n == _b64url_int(key["n"])
        assert public.public_numbers().e == _b64url_int(key["e"])
    assert emulator.counters()["keys"] == 1


def test_unknown_tenant_has_no_keys(emulator: Emulator, http: requests.Session) -> None:
    response = http.get(f"{emulator.base_url}/nowhere.test/discovery/v2.0/keys")

    assert response.status_code == 400
    assert_entra_error(response.json(), "invalid_tenant", 90002)
