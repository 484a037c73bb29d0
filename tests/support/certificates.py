"""Client certificates and their files, for the tests of AZURE_CLIENT_CERTIFICATE_PATH: keys,
self-signed or CA-issued certificates (expired or not yet valid ones too), written as PEM
(key encrypted or not) or PKCS#12."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import NameOID

DAY = dt.timedelta(days=1)


def rsa_key(bits: int = 2048) -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)


def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def certificate(
    key: CertificateIssuerPrivateKeyTypes,
    name: str = "obo-api",
    *,
    issuer: tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes] | None = None,
    valid_from: dt.timedelta = -DAY,
    valid_until: dt.timedelta = 365 * DAY,
    ca: bool = False,
) -> x509.Certificate:
    """A certificate for `key`: self-signed, or issued by `issuer` (certificate, key); its
    validity relative to now."""
    now = dt.datetime.now(dt.UTC)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    issuer_name, signing_key = (issuer[0].subject, issuer[1]) if issuer else (subject, key)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now + valid_from)
        .not_valid_after(now + valid_until)
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(signing_key, hashes.SHA256())
    )


def key_pem(key: CertificateIssuerPrivateKeyTypes, password: str | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def certificate_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def pem_file(
    path: Path,
    key: CertificateIssuerPrivateKeyTypes | None,
    certificates: Sequence[x509.Certificate],
    password: str | None = None,
) -> Path:
    """A PEM file with the key (if any) first, then the certificates in the order given."""
    data = (key_pem(key, password) if key is not None else b"") + b"".join(
        certificate_pem(c) for c in certificates
    )
    path.write_bytes(data)
    return path


def pkcs12_file(
    path: Path,
    key: rsa.RSAPrivateKey,
    cert: x509.Certificate,
    others: Sequence[x509.Certificate] = (),
    password: str | None = None,
) -> Path:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password.encode())
        if password
        else serialization.NoEncryption()
    )
    path.write_bytes(
        pkcs12.serialize_key_and_certificates(
            b"obo-api", key, cert, list(others) or None, encryption
        )
    )
    return path
