"""The API's client credential in the form MSAL takes it, built from the settings.

A secret goes to MSAL as it is. A certificate goes as its key and certificate, and MSAL signs
each client assertion with them. A federated token file (AKS workload identity) and a managed
identity (a federated identity credential of the app registration) each become a
``client_assertion`` callable: MSAL calls it whenever it sends a token request, so a token the
platform has renewed is used without a restart.

When an assertion cannot be had, the callable raises ``CredentialUnavailable``: a
``requests.RequestException``, so MSAL treats it as an outage (a cached token is still served
if MSAL has one) and the API answers 503 ``temporarily_unavailable`` (app.auth.obo).
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, assert_never

import jwt
import msal
import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization

from app.config import (
    ClientCertificate,
    ClientSecret,
    FederatedManagedIdentity,
    FederatedTokenFile,
    Settings,
)
from app.http import TimeoutSession
from app.logs import describe_exception

log = logging.getLogger(__name__)

# The audience a managed identity's token must have to be a client assertion, by Entra host.
PUBLIC_FEDERATION_AUDIENCE = "api://AzureADTokenExchange"
FEDERATION_AUDIENCES = {
    "login.microsoftonline.us": "api://AzureADTokenExchangeUSGov",
    "login.chinacloudapi.cn": "api://AzureADTokenExchangeChina",
    "login.partner.microsoftonline.cn": "api://AzureADTokenExchangeChina",
}
# A service account token is about 1 KiB; anything near this is not one.
MAX_TOKEN_FILE_BYTES = 64 * 1024
MAX_MANAGED_IDENTITY_BODY_BYTES = 64 * 1024

ClientCredentialForMsal = str | dict[str, Any]


class CredentialUnavailable(requests.RequestException):
    """The client assertion cannot be had now: the token file is unreadable or expired, or the
    managed identity endpoint failed."""


def client_credential(settings: Settings) -> ClientCredentialForMsal:
    """MSAL's ``client_credential`` for the API's configured credential."""
    credential = settings.credential
    if isinstance(credential, ClientSecret):
        return credential.value
    if isinstance(credential, ClientCertificate):
        return certificate_credential(credential)
    if isinstance(credential, FederatedTokenFile):
        return {"client_assertion": TokenFileAssertion(Path(credential.path))}
    if isinstance(credential, FederatedManagedIdentity):
        session = TimeoutSession(
            settings.http_timeout,
            total=settings.http_total_timeout,
            max_body=MAX_MANAGED_IDENTITY_BODY_BYTES,
            pool_size=2,
        )
        return {
            "client_assertion": ManagedIdentityAssertion(
                credential.client_id, federation_audience(settings.authority_host), session
            )
        }
    assert_never(credential)


def certificate_credential(certificate: ClientCertificate) -> dict[str, str]:
    """The key and certificate in MSAL's form; MSAL signs each assertion (aud: the token
    endpoint it uses, iss = sub = the client id, a new jti, 10 minutes).

    MSAL (1.35 and later) takes the SHA-256 thumbprint from the certificate: PS256 with
    ``x5t#S256``, and the certificate alone in ``x5c``. It sends a whole chain only with a
    SHA-1 thumbprint (RS256, ``x5t``), as azure-identity's ``send_certificate_chain`` does;
    Entra needs the chain for subject name + issuer authentication when an intermediate CA
    issued the certificate."""
    key = certificate.private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode("ascii")
    leaf = _pem(certificate.chain[0])
    if not certificate.send_chain:
        return {"private_key": key, "public_certificate": leaf}
    sha1 = certificate.chain[0].fingerprint(hashes.SHA1())  # noqa: S303 - an identifier
    return {
        "private_key": key,
        "thumbprint": sha1.hex(),
        "public_certificate": "".join(_pem(c) for c in certificate.chain),
    }


def federation_audience(authority_host: str) -> str:
    """api://AzureADTokenExchange, or its US Government or China counterpart."""
    host = authority_host.removeprefix("https://").split("/")[0].split(":")[0].lower()
    return FEDERATION_AUDIENCES.get(host, PUBLIC_FEDERATION_AUDIENCE)


class TokenFileAssertion:
    """The token in AZURE_FEDERATED_TOKEN_FILE, read at each call: the kubelet writes a new
    one when 80% of the old one's life has passed, and MSAL calls this only when it sends a
    token request."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self._path = path
        self._clock = clock

    def __call__(self) -> str:
        token = self._read()
        expires = _expiry(token)
        if expires is None:
            raise _unavailable(
                f"AZURE_FEDERATED_TOKEN_FILE {self._path} does not hold a JWT with an expiry"
            )
        if expires <= self._clock():
            raise _unavailable(
                f"the token in AZURE_FEDERATED_TOKEN_FILE {self._path} expired at "
                f"{_iso(expires)} and has not been renewed (file written at "
                f"{_iso(self._modified())})"
            )
        return token

    def _read(self) -> str:
        try:
            with self._path.open("rb") as handle:
                data = handle.read(MAX_TOKEN_FILE_BYTES + 1)
        except OSError as exc:
            raise _unavailable(
                f"cannot read AZURE_FEDERATED_TOKEN_FILE {self._path}: "
                f"{exc.strerror or type(exc).__name__}"
            ) from exc
        if len(data) > MAX_TOKEN_FILE_BYTES:
            raise _unavailable(
                f"AZURE_FEDERATED_TOKEN_FILE {self._path} is over "
                f"{MAX_TOKEN_FILE_BYTES // 1024} KiB; it does not hold a token"
            )
        try:
            return data.decode("ascii").strip()
        except UnicodeDecodeError as exc:
            raise _unavailable(
                f"AZURE_FEDERATED_TOKEN_FILE {self._path} does not hold a JWT"
            ) from exc

    def _modified(self) -> float | None:
        try:
            return self._path.stat().st_mtime
        except OSError:
            return None


class ManagedIdentityAssertion:
    """A token of the managed identity for the token exchange audience, from the platform's
    endpoint (App Service and Container Apps: IDENTITY_ENDPOINT with IDENTITY_HEADER; a VM:
    IMDS). MSAL's managed identity client keeps it until 5 minutes before it expires, or
    renews it after half its life when it lives 2 hours or more."""

    def __init__(self, client_id: str, audience: str, http_client: requests.Session) -> None:
        self._audience = audience
        self._client = msal.ManagedIdentityClient(
            msal.UserAssignedManagedIdentity(client_id=client_id), http_client=http_client
        )

    def __call__(self) -> str:
        try:
            result = self._client.acquire_token_for_client(resource=self._audience)
        except (requests.RequestException, ValueError) as exc:  # ValueError: not JSON
            raise _unavailable(
                f"the managed identity endpoint failed: {describe_exception(exc)}"
            ) from exc
        if "access_token" not in result:
            description = str(result.get("error_description") or "").splitlines()
            raise _unavailable(
                f"the managed identity endpoint gave no token for {self._audience}: "
                f"{result.get('error', 'no error code')}: "
                f"{description[0] if description else 'no description'}"
            )
        return str(result["access_token"])


def _unavailable(reason: str) -> CredentialUnavailable:
    log.warning("no client assertion for Entra ID: %s", reason)
    return CredentialUnavailable(reason)


def _expiry(token: str) -> float | None:
    """The exp claim, read without verifying the token: only Entra can judge it."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, int | float) and not isinstance(exp, bool) else None


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "an unknown time"
    return dt.datetime.fromtimestamp(epoch, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
