"""Checking JWTs the emulator issued: signature first, then the claim checks callers share.

The token endpoint (OBO assertions) and the fake Graph and ARM each word their refusals the way
the real service does, so this module only classifies what is wrong.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import jwt

from emulator.keys import KeyRing

LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


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
            options={"verify_exp": False, "verify_nbf": False, "verify_iat": False,
                     "verify_aud": False, "verify_iss": False},
        )
    except jwt.InvalidSignatureError as exc:
        raise BadSignature(kid) from exc
    except (jwt.DecodeError, jwt.InvalidAlgorithmError) as exc:
        raise MalformedToken(str(exc)) from exc
    return VerifiedToken(header=header, claims=claims)


def issued_by_emulator(issuer: object, tenant_id: object, request_host: str) -> bool:
    """True if `issuer` is this emulator's v2 issuer for `tenant_id`, whichever loopback
    name the token was minted under (127.0.0.1, localhost or ::1 on the same port)."""
    if not isinstance(issuer, str) or not isinstance(tenant_id, str):
        return False
    parts = urlsplit(issuer)
    port = urlsplit(f"https://{request_host}").port
    hosts = {request_host} | {f"{h}:{port}" for h in LOOPBACK_HOSTS}
    return parts.scheme == "https" and parts.netloc in hosts and parts.path == f"/{tenant_id}/v2.0"
