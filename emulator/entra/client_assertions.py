"""Client assertions at the token endpoint, checked as Entra checks them.

An assertion whose issuer is the client itself was signed with one of its certificates: one
registered by thumbprint (x5t#S256 or x5t), or one that chains, through x5c, to the client CA
and carries a subject name the registration trusts. Any other issuer must match one of the
app's federated identity credentials (issuer, subject, audience), and the token must be signed
by that issuer's keys: a Kubernetes cluster's (workload identity) or this tenant's own (a
managed identity's token).

Entra does not refuse an assertion it has seen before: MSAL reuses its own for up to ten
minutes and a workload identity token for as long as the kubelet leaves it, so the emulator
does not either; `jti` is not required.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from emulator.directory import ClientApp, FederatedCredential, find_resource
from emulator.entra.errors import ClientAuthenticationFailed, RequestInvalid, missing_parameter
from emulator.entra.key_credentials import ClientCertificateAuthority, KeyCredentials, thumbprint
from emulator.signing import KeyRing, TokenRejected, VerifiedToken, b64url_decode, verify_signature

CLIENT_ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SIGNATURE_ALGORITHMS = ["RS256", "PS256"]  # MSAL signs PS256 with x5t#S256, RS256 with x5t
CLOCK_SKEW = 300
CERTIFICATE_DOCS = (
    "Review the documentation at https://docs.microsoft.com/en-us/azure/"
    "active-directory/develop/active-directory-certificate-credentials ."
)
FEDERATION_DOCS = (
    "Please check your federated identity credential Subject, Audience and "
    "Issuer against the presented assertion. "
    "https://learn.microsoft.com/entra/workload-id/workload-identity-federation"
)


@dataclass(frozen=True)
class AssertionTrust:
    """What a client assertion is checked against, for one request."""

    token_endpoints: Collection[str]  # accepted aud values: this token endpoint, as reached
    is_own_issuer: Callable[[object], bool]  # an issuer URL of this tenant, on this emulator
    tenant_keys: KeyRing
    issuer_keys: Mapping[str, KeyRing]  # trusted external issuers' signing keys, by issuer
    key_credentials: KeyCredentials
    client_ca: ClientCertificateAuthority
    now: float


def check_client_assertion(
    form: Mapping[str, str], client: ClientApp, trust: AssertionTrust
) -> None:
    """Return if the assertion authenticates `client`, or raise Entra's refusal."""
    assertion_type = form.get("client_assertion_type")
    if not assertion_type:
        raise missing_parameter("client_assertion_type")
    if assertion_type != CLIENT_ASSERTION_TYPE:
        raise RequestInvalid(
            90100, f"The client_assertion_type '{assertion_type}' is not supported."
        )
    assertion = form["client_assertion"]
    header, claims = _unverified(assertion)
    issuer = claims.get("iss")
    if isinstance(issuer, str) and issuer.startswith("https://"):
        _check_federated(assertion, client, trust, claims)
    else:
        _check_signed_by_client(assertion, header, claims, client, trust)


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.InvalidTokenError as exc:
        raise RequestInvalid(50027, "JWT token is invalid or malformed.") from exc
    return header, claims


# -- a certificate of the client -------------------------------------------------------------


def _check_signed_by_client(
    assertion: str,
    header: dict[str, Any],
    claims: dict[str, Any],
    client: ClientApp,
    trust: AssertionTrust,
) -> None:
    app_id = client.app_id.lower()
    if str(claims.get("iss", "")).lower() != app_id or str(claims.get("sub", "")).lower() != app_id:
        raise ClientAuthenticationFailed(
            700021,
            "Client assertion application identifier doesn't match 'client_id' "
            f"parameter. {CERTIFICATE_DOCS}",
        )
    certificate, sent = _signing_certificate(header, client, trust)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise _key_not_found(sent, client)
    try:
        jwt.decode(
            assertion,
            public_key,
            algorithms=SIGNATURE_ALGORITHMS,
            options={
                "verify_signature": True,
                "verify_exp": False,
                "verify_nbf": False,
                "verify_iat": False,
                "verify_aud": False,
                "verify_iss": False,
            },
        )
    except jwt.InvalidTokenError as exc:
        raise ClientAuthenticationFailed(
            700027,
            "Client assertion failed signature validation. [Reason - The provided "
            "signature value did not match the expected signature value., Thumbprint of key "
            f"used by client: '{sent}', Found key '{_validity(certificate)}']",
        ) from exc
    if claims.get("aud") not in trust.token_endpoints:
        raise ClientAuthenticationFailed(
            700023,
            f"Client assertion audience claim does not match Realm issuer. {CERTIFICATE_DOCS}",
        )
    _check_time(claims, trust.now)


def _signing_certificate(
    header: dict[str, Any], client: ClientApp, trust: AssertionTrust
) -> tuple[x509.Certificate, str]:
    """The certificate the assertion names, and its thumbprint as sent (hex, for messages):
    a registered one, else one the subject name + issuer trust accepts."""
    algorithm: Literal["sha1", "sha256"] = "sha256" if "x5t#S256" in header else "sha1"
    sent = header.get("x5t#S256", header.get("x5t"))
    sent = sent if isinstance(sent, str) else ""
    shown = _hex(sent)
    registered = trust.key_credentials.find(client.app_id, sent, algorithm) if sent else None
    if registered is not None:
        if registered.not_valid_after_utc.timestamp() < trust.now:
            raise ClientAuthenticationFailed(
                700027,
                "Client assertion contains an invalid signature. [Reason - The key used "
                f"is expired., Thumbprint of key used by client: '{shown}', Found key "
                f"'{_validity(registered)}']",
            )
        return registered, shown
    chain = _x5c(header)
    if chain and _trusted_by_subject(chain, sent, algorithm, client, trust):
        return chain[0], shown
    raise _key_not_found(shown, client)


def _trusted_by_subject(
    chain: list[x509.Certificate],
    sent: str,
    algorithm: Literal["sha1", "sha256"],
    client: ClientApp,
    trust: AssertionTrust,
) -> bool:
    leaf = chain[0]
    if sent and thumbprint(leaf, algorithm) != sent.rstrip("="):
        return False
    now = dt.datetime.fromtimestamp(trust.now, dt.UTC)
    return (
        leaf.subject.rfc4514_string() in client.trusted_certificate_subjects
        and trust.client_ca.chains_to_root(chain, now)
    )


def _x5c(header: dict[str, Any]) -> list[x509.Certificate]:
    """The x5c certificates (standard base64 DER; MSAL's entries hold line breaks)."""
    entries = header.get("x5c")
    if not isinstance(entries, list) or not entries:
        return []
    try:
        return [
            x509.load_der_x509_certificate(base64.b64decode("".join(str(e).split())))
            for e in entries
        ]
    except (ValueError, binascii.Error):
        return []


def _key_not_found(shown: str, client: ClientApp) -> ClientAuthenticationFailed:
    return ClientAuthenticationFailed(
        700027,
        "Client assertion failed signature validation. [Reason - The key was not "
        f"found., Thumbprint of key used by client: '{shown}', Please visit the Azure Portal, "
        "Graph Explorer or directly use MS Graph to see configured keys for app Id "
        f"'{client.app_id}'. Review the documentation at https://docs.microsoft.com/en-us/graph/"
        "deployments if you are not using the global cloud.]",
    )


def _hex(sent: str) -> str:
    """A thumbprint as Entra's messages show it: hex, as the portal lists it."""
    try:
        return b64url_decode(sent.rstrip("=")).hex().upper()
    except ValueError:
        return sent


def _validity(certificate: x509.Certificate) -> str:
    start, end = certificate.not_valid_before_utc, certificate.not_valid_after_utc
    return f"Start={start:%m/%d/%Y %H:%M:%S}, End={end:%m/%d/%Y %H:%M:%S}"


# -- a federated identity credential ---------------------------------------------------------


def _check_federated(
    assertion: str, client: ClientApp, trust: AssertionTrust, claims: dict[str, Any]
) -> None:
    issuer = str(claims["iss"])
    records = [f for f in client.federated_credentials if _issuer_matches(f, issuer, trust)]
    if not records:
        raise ClientAuthenticationFailed(
            700211,
            "No matching federated identity record found for presented assertion "
            f"issuer '{issuer}'. {FEDERATION_DOCS}",
        )
    keys = trust.tenant_keys if records[0].issuer is None else trust.issuer_keys.get(issuer)
    _verify_federated_signature(assertion, keys)
    subject = claims.get("sub")
    records = [f for f in records if f.subject == subject]
    if not records:
        raise ClientAuthenticationFailed(
            700213,
            "No matching federated identity record found for presented assertion "
            f"subject '{subject}'. {FEDERATION_DOCS}",
        )
    audiences = claims.get("aud")
    presented = [audiences] if isinstance(audiences, str) else audiences
    if not isinstance(presented, list) or not any(
        _same_audience(a, f) for f in records for a in presented
    ):
        raise ClientAuthenticationFailed(
            700212,
            "No matching federated identity record found for presented assertion "
            f"audience '{audiences}'. {FEDERATION_DOCS}",
        )
    _check_time(claims, trust.now)


def _issuer_matches(record: FederatedCredential, issuer: str, trust: AssertionTrust) -> bool:
    # Entra compares issuer and subject exactly (case-sensitive since 2025).
    return trust.is_own_issuer(issuer) if record.issuer is None else record.issuer == issuer


def _verify_federated_signature(assertion: str, keys: KeyRing | None) -> VerifiedToken:
    if keys is None:
        raise ClientAuthenticationFailed(
            700027,
            "Client assertion failed signature validation. [Reason - The key was not found.]",
        )
    try:
        return verify_signature(assertion, keys)
    except TokenRejected as exc:
        raise ClientAuthenticationFailed(
            700027, f"Client assertion failed signature validation. [Reason - {exc}.]"
        ) from exc


def _same_audience(presented: object, record: FederatedCredential) -> bool:
    """Entra puts the token exchange's app id in its own tokens' aud; the credential names
    its URI. Either spelling of one resource matches."""
    if not isinstance(presented, str):
        return False
    for accepted in record.audiences:
        if presented == accepted:
            return True
        resource = find_resource(presented)
        if resource is not None and resource is find_resource(accepted):
            return True
    return False


# -- both ------------------------------------------------------------------------------------


def _check_time(claims: dict[str, Any], now: float) -> None:
    """Entra sets no limit on how far exp may be (its documentation asks for 5 to 10 minutes
    after nbf); it refuses an assertion that has expired or is not valid yet."""
    exp, nbf = _time(claims.get("exp")), _time(claims.get("nbf"))
    expired = exp is None or exp + CLOCK_SKEW <= now
    early = nbf is not None and nbf - CLOCK_SKEW > now
    if expired or early:
        raise ClientAuthenticationFailed(
            700024,
            f"Client assertion is not within its valid time range. Current time: "
            f"{_iso(now)}, assertion valid from {_iso(nbf)}, expiry time of assertion "
            f"{_iso(exp)}. {CERTIFICATE_DOCS}",
        )


def _time(value: object) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _iso(epoch: float | None) -> str:
    if epoch is None:
        return "(none)"
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"
