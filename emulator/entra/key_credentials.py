"""Certificates as app credentials: those registered for an app by thumbprint (Entra's
keyCredentials), the client CA whose certificates are trusted by subject name and issuer, and
client certificates made for tests and demos.

Both are kept in the state directory, so a certificate made for `make dev` stays registered
when the emulator restarts. The client CA is a root with an issuing CA under it, as public CAs
are: a certificate it issues chains to the root only when the client sends the issuing CA too
(x5c), which is what AZURE_CLIENT_SEND_CERTIFICATE_CHAIN is for.
"""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from emulator.certificates import self_signed_builder
from emulator.directory import API_CERTIFICATE_SUBJECT
from emulator.signing import b64url
from emulator.state_dir import write_atomically

KEY_CREDENTIALS_FILE = "key-credentials.json"
CLIENT_CA_FILE = "client-ca.json"
CLIENT_CERTIFICATE_VALIDITY = dt.timedelta(days=365)
CA_VALIDITY = dt.timedelta(days=3650)
BACKDATE = dt.timedelta(minutes=5)

# How a made certificate is trusted: registered by thumbprint; issued by the client CA with the
# subject the API's registration trusts; or not at all (a certificate Entra refuses).
Trust = Literal["thumbprint", "subject_issuer", "none"]
TRUSTS: tuple[Trust, ...] = ("thumbprint", "subject_issuer", "none")


def thumbprint(certificate: x509.Certificate, algorithm: Literal["sha1", "sha256"]) -> str:
    """The certificate's thumbprint as the x5t / x5t#S256 header carries it (base64url)."""
    digest = hashes.SHA256() if algorithm == "sha256" else hashes.SHA1()  # noqa: S303 - an id
    return b64url(certificate.fingerprint(digest))


def certificate_pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


class KeyCredentials:
    """The certificates registered for each app, found by the thumbprint an assertion names."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._lock = threading.Lock()
        self._by_app: dict[str, list[x509.Certificate]] = self._load()

    def register(self, app_id: str, certificate: x509.Certificate) -> None:
        with self._lock:
            registered = self._by_app.setdefault(app_id.lower(), [])
            if certificate not in registered:
                registered.append(certificate)
            self._save_locked()

    def find(
        self, app_id: str, sent: str, algorithm: Literal["sha1", "sha256"]
    ) -> x509.Certificate | None:
        """The app's certificate whose thumbprint is `sent` (base64url, padded or not)."""
        wanted = sent.rstrip("=")
        with self._lock:
            registered = list(self._by_app.get(app_id.lower(), ()))
        return next((c for c in registered if thumbprint(c, algorithm) == wanted), None)

    def _load(self) -> dict[str, list[x509.Certificate]]:
        if not self._path.is_file():
            return {}
        data = json.loads(self._path.read_text(encoding="utf-8"))
        return {
            app: [x509.load_pem_x509_certificate(pem.encode()) for pem in pems]
            for app, pems in data.items()
        }

    def _save_locked(self) -> None:
        data = {app: [certificate_pem(c) for c in certs] for app, certs in self._by_app.items()}
        write_atomically(self._path, json.dumps(data, indent=2).encode(), mode=0o644)


@dataclass(frozen=True)
class Issuer:
    """A CA: its certificate and key."""

    certificate: x509.Certificate
    key: rsa.RSAPrivateKey


class ClientCertificateAuthority:
    """A root CA and an issuing CA under it, whose certificates Entra trusts by subject name."""

    def __init__(self, path: Path) -> None:
        loaded = _load_cas(path)
        if loaded is None:
            loaded = _new_cas()
            write_atomically(
                path,
                json.dumps(
                    {
                        name: {
                            "certificate": certificate_pem(ca.certificate),
                            "key": _key_pem(ca.key),
                        }
                        for name, ca in zip(("root", "issuing"), loaded, strict=True)
                    },
                    indent=2,
                ).encode(),
                mode=0o600,
            )
        self.root, self.issuing = loaded

    def chains_to_root(self, chain: Sequence[x509.Certificate], now: dt.datetime) -> bool:
        """Whether `chain` (leaf first, then the certificates the client sent) leads to the
        root, each certificate issued by the next and valid now. The root need not be sent;
        an intermediate must be, as Entra fetches none."""
        current = chain[0]
        for candidate in [*chain[1:], self.root.certificate]:
            if not _valid_at(current, now) or not _issued_by(current, candidate):
                return False
            if candidate == self.root.certificate:
                return True
            current = candidate
        return False


def _issued_by(certificate: x509.Certificate, issuer: x509.Certificate) -> bool:
    try:
        constraints = issuer.extensions.get_extension_for_class(x509.BasicConstraints).value
        certificate.verify_directly_issued_by(issuer)
    except (x509.ExtensionNotFound, ValueError, TypeError, InvalidSignature):
        return False
    return constraints.ca


def _valid_at(certificate: x509.Certificate, now: dt.datetime) -> bool:
    return certificate.not_valid_before_utc <= now <= certificate.not_valid_after_utc


@dataclass(frozen=True)
class ClientCertificate:
    """A made client certificate: the PEM file's text (key, then the certificate and the CA
    that issued it, if any) and its thumbprints as Entra's portal shows them (hex)."""

    pem: str
    certificate: x509.Certificate
    trust: Trust

    @property
    def thumbprint_sha1(self) -> str:
        return self.certificate.fingerprint(hashes.SHA1()).hex().upper()  # noqa: S303 - an id

    @property
    def thumbprint_sha256(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex().upper()

    @property
    def subject(self) -> str:
        return self.certificate.subject.rfc4514_string()

    def environment(self, path: Path | str, password: str | None = None) -> dict[str, str]:
        """The API's settings to use this certificate, written to `path`."""
        env = {"AZURE_CLIENT_CERTIFICATE_PATH": str(path)}
        if password:
            env["AZURE_CLIENT_CERTIFICATE_PASSWORD"] = password
        if self.trust == "subject_issuer":
            env["AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"] = "true"
        return env


def make_client_certificate(
    trust: Trust,
    ca: ClientCertificateAuthority,
    *,
    password: str | None = None,
    expired: bool = False,
) -> ClientCertificate:
    """A new RSA key and certificate for the API, trusted as `trust` says (the caller registers
    a `thumbprint` one). `password` encrypts the key; `expired` makes a certificate whose
    validity ended yesterday."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    start, end = (
        (now - dt.timedelta(days=30), now - dt.timedelta(days=1))
        if expired
        else (now - BACKDATE, now + CLIENT_CERTIFICATE_VALIDITY)
    )
    if trust == "subject_issuer":
        issuer = ca.issuing
        builder = _builder(
            key, API_CERTIFICATE_SUBJECT.removeprefix("CN="), issuer.certificate.subject, start, end
        )
        certificate = builder.sign(issuer.key, hashes.SHA256())
        chain = [certificate, issuer.certificate]
    else:
        name = "obo-api (self-signed)" if trust == "thumbprint" else "not-registered"
        builder = _builder(key, name, None, start, end)
        certificate = builder.sign(key, hashes.SHA256())
        chain = [certificate]
    pem = _key_pem(key, password) + "".join(certificate_pem(c) for c in chain)
    return ClientCertificate(pem=pem, certificate=certificate, trust=trust)


def _builder(
    key: rsa.RSAPrivateKey,
    common_name: str,
    issuer: x509.Name | None,
    start: dt.datetime,
    end: dt.datetime,
) -> x509.CertificateBuilder:
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer or subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(end)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
    )


def _new_cas() -> tuple[Issuer, Issuer]:
    root_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    root = (
        self_signed_builder(root_key, "Contoso Client Root CA (emulated)", BACKDATE, CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    issuing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = dt.datetime.now(dt.UTC)
    issuing = (
        x509.CertificateBuilder()
        .subject_name(
            x509.Name(
                [x509.NameAttribute(NameOID.COMMON_NAME, "Contoso Client Issuing CA (emulated)")]
            )
        )
        .issuer_name(root.subject)
        .public_key(issuing_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(root_key, hashes.SHA256())
    )
    return Issuer(root, root_key), Issuer(issuing, issuing_key)


def _load_cas(path: Path) -> tuple[Issuer, Issuer] | None:
    if not path.is_file():
        return None
    data = json.loads(path.read_text(encoding="utf-8"))
    loaded = []
    for name in ("root", "issuing"):
        key = serialization.load_pem_private_key(data[name]["key"].encode(), password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"{path}: the {name} CA's key is not an RSA key")
        loaded.append(
            Issuer(x509.load_pem_x509_certificate(data[name]["certificate"].encode()), key)
        )
    return loaded[0], loaded[1]


def _key_pem(key: rsa.RSAPrivateKey, password: str | None = None) -> str:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    ).decode("ascii")
