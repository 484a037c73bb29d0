"""A local certificate authority and the emulator's TLS server certificate.

MSAL refuses non-HTTPS authorities, so the emulator serves HTTPS with a certificate issued by a
CA that lives in the state directory; clients trust it through `ca-bundle.pem`.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from emulator.state_dir import write_atomically

CA_FILE = "ca.pem"
CA_KEY_FILE = "ca-key.pem"
SERVER_CERT_FILE = "server.pem"
SERVER_KEY_FILE = "server-key.pem"
CA_BUNDLE_FILE = "ca-bundle.pem"

SERVER_DNS_NAMES = ("localhost",)
SERVER_IPS = (ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("::1"))
# Browsers and strict TLS stacks reject leaf certificates valid for more than 398 days.
SERVER_VALIDITY = dt.timedelta(days=397)
CA_VALIDITY = dt.timedelta(days=3650)
RENEW_BEFORE = dt.timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    ca: Path
    server_cert: Path
    server_key: Path
    ca_bundle: Path

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        context.load_cert_chain(self.server_cert, self.server_key)
        return context


def ensure_tls_files(state_dir: Path, server_names: Sequence[str] = ()) -> TlsFiles:
    """Create (or reuse) the CA and server certificate, and rewrite the CA bundle. The server
    certificate also covers `server_names` (a new one is issued if it does not)."""
    state_dir.mkdir(parents=True, exist_ok=True)
    ca_cert, ca_key = _load_or_create_ca(state_dir)
    _ensure_server_cert(state_dir, ca_cert, ca_key, (*SERVER_DNS_NAMES, *server_names))
    files = TlsFiles(
        ca=state_dir / CA_FILE,
        server_cert=state_dir / SERVER_CERT_FILE,
        server_key=state_dir / SERVER_KEY_FILE,
        ca_bundle=state_dir / CA_BUNDLE_FILE,
    )
    write_ca_bundle(files.ca_bundle, ca_cert)
    return files


def write_ca_bundle(path: Path, ca_cert: x509.Certificate) -> None:
    """System roots plus the local CA, for machines whose REQUESTS_CA_BUNDLE already points
    at the system bundle (replacing it with the local CA alone would break other hosts)."""
    system = _system_bundle()
    local = ca_cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
    text = system.rstrip("\n") + "\n" + local if system else local
    write_atomically(path, text.encode("ascii", "replace"), mode=0o644)


def _system_bundle() -> str:
    try:
        import certifi

        return Path(certifi.where()).read_text(encoding="utf-8", errors="replace")
    except ImportError:
        pass
    cafile = ssl.get_default_verify_paths().cafile
    if cafile and Path(cafile).is_file():
        return Path(cafile).read_text(encoding="utf-8", errors="replace")
    return ""


def self_signed_builder(
    key: rsa.RSAPrivateKey, common_name: str, backdate: dt.timedelta, validity: dt.timedelta
) -> x509.CertificateBuilder:
    """A builder for a certificate that ``key`` issues to itself; the caller adds extensions."""
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - backdate)
        .not_valid_after(now + validity)
    )


def _load_or_create_ca(state_dir: Path) -> tuple[x509.Certificate, rsa.RSAPrivateKey]:
    cert_path, key_path = state_dir / CA_FILE, state_dir / CA_KEY_FILE
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if isinstance(key, rsa.RSAPrivateKey) and not _expires_soon(cert):
            return cert, key
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (
        self_signed_builder(key, "Entra Emulator Local CA", dt.timedelta(minutes=5), CA_VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    _write_key(key_path, key)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)
    (state_dir / SERVER_CERT_FILE).unlink(missing_ok=True)  # it was signed by the old CA
    return cert, key


def _ensure_server_cert(
    state_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: rsa.RSAPrivateKey,
    dns_names: Sequence[str],
) -> None:
    cert_path, key_path = state_dir / SERVER_CERT_FILE, state_dir / SERVER_KEY_FILE
    if cert_path.is_file() and key_path.is_file():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        if (
            cert.issuer == ca_cert.subject
            and not _expires_soon(cert)
            and set(dns_names) <= set(_dns_names(cert))
        ):
            return
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = _now()
    san = [x509.DNSName(n) for n in dict.fromkeys(dns_names)] + [
        x509.IPAddress(ip) for ip in SERVER_IPS
    ]
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + SERVER_VALIDITY)
        .add_extension(x509.SubjectAlternativeName(san), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    _write_key(key_path, key)
    write_atomically(cert_path, cert.public_bytes(serialization.Encoding.PEM), mode=0o644)


def _dns_names(cert: x509.Certificate) -> list[str]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return san.get_values_for_type(x509.DNSName)


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=not cert_sign,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _expires_soon(cert: x509.Certificate) -> bool:
    return cert.not_valid_after_utc - _now() < RENEW_BEFORE


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _write_key(path: Path, key: rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    write_atomically(path, pem, mode=0o600)
