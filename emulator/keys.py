"""Token signing keys: generation, persistence, rotation and the published JWKS.

Like Entra, every key comes with a self-signed certificate, and its `kid` (= `x5t`) is the
base64url SHA-1 thumbprint of that certificate. Two keys are always published: the signer and
either the key it replaced or a spare, so clients that cache the JWKS are exercised.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.certs import self_signed_builder
from emulator.encoding import b64url
from emulator.files import write_atomically

KEYS_FILE = "signing-keys.json"
KEY_CERT_SUBJECT = "accounts.accesscontrol.windows.net"
KEY_CERT_VALIDITY = dt.timedelta(days=5 * 365)


def _int_b64url(value: int) -> str:
    return b64url(value.to_bytes((value.bit_length() + 7) // 8, "big"))


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private_key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @classmethod
    def generate(cls) -> SigningKey:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = self_signed_builder(key, KEY_CERT_SUBJECT, dt.timedelta(days=1),
                                   KEY_CERT_VALIDITY).sign(key, hashes.SHA256())
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

    def to_record(self) -> dict[str, str]:
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        cert = self.certificate.public_bytes(serialization.Encoding.PEM)
        return {"kid": self.kid, "private_key": pem.decode(), "certificate": cert.decode()}

    @classmethod
    def from_record(cls, record: dict[str, str]) -> SigningKey:
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
        self._keys = self._load() or [SigningKey.generate(), SigningKey.generate()]
        self._save()

    @property
    def signer(self) -> SigningKey:
        with self._lock:
            return self._keys[0]

    def published(self) -> list[SigningKey]:
        with self._lock:
            return list(self._keys)

    def find(self, kid: str) -> SigningKey | None:
        with self._lock:
            return next((k for k in self._keys if k.kid == kid), None)

    def rotate(self, *, drop_old: bool = False) -> SigningKey:
        """Make a brand-new key the signer; keep the previous signer published unless
        `drop_old`, in which case a fresh spare is published beside the new signer."""
        new_signer = SigningKey.generate()
        with self._lock:
            second = SigningKey.generate() if drop_old else self._keys[0]
            self._keys = [new_signer, second]
            self._save_locked()
        return new_signer

    def _load(self) -> list[SigningKey] | None:
        if not self._path.is_file():
            return None
        records = json.loads(self._path.read_text(encoding="utf-8"))["keys"]
        keys = [SigningKey.from_record(r) for r in records]
        return keys or None

    def _save(self) -> None:
        with self._lock:
            self._save_locked()

    def _save_locked(self) -> None:
        data = json.dumps({"keys": [k.to_record() for k in self._keys]}, indent=2)
        write_atomically(self._path, data.encode(), mode=0o600)
