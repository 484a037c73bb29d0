"""The tenant's token signing keys, and signing and verifying JWTs with them.

Like Entra, every key comes with a self-signed certificate, and its `kid` (= `x5t`) is the
base64url SHA-1 thumbprint of that certificate. Two keys are always published: the signer and
either the key it replaced or a spare, so clients that cache the JWKS are exercised.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.certificates import self_signed_builder
from emulator.state_dir import write_atomically

KEYS_FILE = "signing-keys.json"
KEY_CERT_SUBJECT = "accounts.accesscontrol.windows.net"
KEY_CERT_VALIDITY = dt.timedelta(days=5 * 365)


def b64url(data: bytes) -> str:
    """base64url without padding, as JOSE and Entra's opaque values use it."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64url_decode(text: str) -> bytes:
    """Decode unpadded base64url; raise ValueError for anything else."""
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("not base64url") from exc


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class TenantSigner:
    """One RSA key of the tenant, with the certificate Entra publishes beside it."""

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls) -> TenantSigner:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = self_signed_builder(
            key, KEY_CERT_SUBJECT, dt.timedelta(days=1), KEY_CERT_VALIDITY
        ).sign(key, hashes.SHA256())
        return cls(kid=_thumbprint(cert), private_key=key, certificate=cert)

    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def jwk(self, issuer: str) -> dict[str, Any]:
        """The key as Entra's /discovery/v2.0/keys lists it."""
        numbers = self.public_key().public_numbers()
        der = self.certificate.public_bytes(serialization.Encoding.DER)
        return {
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": _int_b64url(numbers.n),
            "e": _int_b64url(numbers.e),
            "x5c": [base64.b64encode(der).decode("ascii")],
            "cloud_instance_name": "microsoftonline.com",
            "issuer": issuer,
        }

    def sign(self, claims: Mapping[str, Any]) -> str:
        """Sign like Entra: RS256 with `kid` and `x5t` (both the thumbprint) in the header."""
        headers = {"typ": "JWT", "kid": self.kid, "x5t": self.kid}
        return jwt.encode(dict(claims), self.private_key, algorithm="RS256", headers=headers)

    def to_record(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert = self.certificate.public_bytes(serialization.Encoding.PEM)
        return {"kid": self.kid, "private_key": pem.decode(), "certificate": cert.decode()}

    @classmethod
    def from_record(cls, record: dict[str, str]) -> TenantSigner:
        key = serialization.load_pem_private_key(record["private_key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"signing key {record['kid']} is not an RSA key")
        cert = x509.load_pem_x509_certificate(record["certificate"].encode())
        return cls(kid=record["kid"], private_key=key, certificate=cert)


def _thumbprint(cert: x509.Certificate) -> str:
    # Entra's x5t is a SHA-1 certificate thumbprint; it identifies a key, it protects nothing.
    return b64url(cert.fingerprint(hashes.SHA1()))  # noqa: S303


class KeyRing:
    """The published signing keys, the first of which signs; persisted in the state dir."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._keys = self._load() or [TenantSigner.generate(), TenantSigner.generate()]
        with self._lock:
            self._save_locked()

    @property
    def signer(self) -> TenantSigner:
        with self._lock:
            return self._keys[0]

    def published(self) -> list[TenantSigner]:
        with self._lock:
            return list(self._keys)

    def find(self, kid: str) -> TenantSigner | None:
        with self._lock:
            return next((k for k in self._keys if k.kid == kid), None)

    def rotate(self, *, drop_old: bool = False) -> TenantSigner:
        """Make a brand-new key the signer; keep the previous signer published unless
        `drop_old`, in which case a fresh spare is published beside the new signer."""
        new_signer = TenantSigner.generate()
        with self._lock:
            second = TenantSigner.generate() if drop_old else self._keys[0]
            self._keys = [new_signer, second]
            self._save_locked()
        return new_signer

    def _load(self) -> list[TenantSigner] | None:
        if not self._path.is_file():
            return None
        records = json.loads(self._path.read_text(encoding="utf-8"))["keys"]
        return [TenantSigner.from_record(r) for r in records] or None

    def _save_locked(self) -> None:
        data = json.dumps({"keys": [k.to_record() for k in self._keys]}, indent=2)
        write_atomically(self._path, data.encode(), mode=0o600)


# -- verifying -------------------------------------------------------------------------------
# The token endpoint (OBO assertions) and the fake Graph and ARM each word their refusals the
# way the real service does, so verification only classifies what is wrong.


class TokenRejected(Exception):
    """Base class: the token cannot be trusted at all."""


class MalformedToken(TokenRejected):
    pass


class UnknownSigningKey(TokenRejected):
    def __init__(self, kid: str) -> None:
        super().__init__(f"signing key {kid!r} is not published")
        self.kid = kid


class BadSignature(TokenRejected):
    def __init__(self, kid: str) -> None:
        super().__init__("signature does not match the signing key")
        self.kid = kid


@dataclass(frozen=True)
class VerifiedToken:
    """A JWT whose signature checked out; its claims are not judged yet."""

    header: dict[str, Any]
    claims: dict[str, Any]

    @property
    def is_app_only(self) -> bool:
        return self.claims.get("idtyp") == "app" or "scp" not in self.claims

    def expired(self, now: float, skew: float = 0) -> bool:
        exp = self.claims.get("exp")
        return not isinstance(exp, int | float) or exp + skew <= now

    def not_yet_valid(self, now: float, skew: float = 0) -> bool:
        nbf = self.claims.get("nbf")
        return isinstance(nbf, int | float) and nbf - skew > now


def verify_signature(token: str, keyring: KeyRing) -> VerifiedToken:
    """Check the RS256 signature against a published key; claims are not checked here."""
    try:
        header = jwt.get_unverified_header(token)
    except jwt.DecodeError as exc:
        raise MalformedToken(str(exc)) from exc
    kid = str(header.get("kid", ""))
    key = keyring.find(kid)
    if key is None:
        raise UnknownSigningKey(kid)
    try:
        claims = jwt.decode(
            token,
            key.public_key(),
            algorithms=["RS256"],
            options={
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidSignatureError as exc:
        raise BadSignature(kid) from exc
    except (jwt.DecodeError, jwt.InvalidAlgorithmError) as exc:
        raise MalformedToken(str(exc)) from exc
    return VerifiedToken(header=header, claims=claims)
