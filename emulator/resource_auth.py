"""How the fake Graph and ARM check the bearer token they receive, and apply CAE."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Collection
from dataclasses import dataclass
from typing import Literal

from flask import request

from emulator.control import ControlState
from emulator.entra.token_claims import issued_by_emulator, uti_issued_at
from emulator.signing import KeyRing, MalformedToken, TokenRejected, VerifiedToken, verify_signature

# Resource servers allow some clock skew, as Microsoft.IdentityModel does by default.
RESOURCE_CLOCK_SKEW = 300

RejectionKind = Literal["missing", "malformed", "signature", "issuer", "audience", "expired"]


class BearerRejected(Exception):
    def __init__(self, kind: RejectionKind, token: VerifiedToken | None = None) -> None:
        super().__init__(kind)
        self.kind: RejectionKind = kind
        self.token = token


@dataclass(frozen=True)
class Principal:
    """Who a validated access token speaks for: a user (delegated) or an application."""

    token: VerifiedToken

    @property
    def claims(self) -> dict[str, object]:
        return self.token.claims

    @property
    def tenant_id(self) -> str:
        return str(self.claims.get("tid", ""))

    @property
    def is_app(self) -> bool:
        return self.token.is_app_only

    @property
    def scopes(self) -> frozenset[str]:
        return frozenset(str(self.claims.get("scp", "")).split())

    @property
    def roles(self) -> frozenset[str]:
        roles = self.claims.get("roles")
        if not isinstance(roles, list):
            return frozenset()
        return frozenset(r for r in roles if isinstance(r, str))

    @property
    def issued_at(self) -> float:
        """Issue time with sub-second precision when the token is the emulator's own."""
        precise = uti_issued_at(self.claims.get("uti"))
        if precise is not None:
            return precise
        iat = self.claims.get("iat")
        return float(iat) if isinstance(iat, int | float) else 0.0


def authenticate_bearer(
    keys: KeyRing,
    audiences: Collection[str],
    now: float | None = None,
    server_names: Collection[str] = (),
) -> Principal:
    """Validate the request's bearer token: signature, issuer (the emulator's Entra under any of
    its names), audience, then lifetime."""
    scheme, _, raw = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not raw.strip():
        raise BearerRejected("missing")
    try:
        token = verify_signature(raw.strip(), keys)
    except MalformedToken as exc:
        raise BearerRejected("malformed") from exc
    except TokenRejected as exc:
        raise BearerRejected("signature") from exc
    claims = token.claims
    if not issued_by_emulator(claims.get("iss"), claims.get("tid"), request.host, server_names):
        raise BearerRejected("issuer", token)
    if str(claims.get("aud", "")).lower() not in {a.lower() for a in audiences}:
        raise BearerRejected("audience", token)
    moment = time.time() if now is None else now
    if token.expired(moment, RESOURCE_CLOCK_SKEW) or token.not_yet_valid(
        moment, RESOURCE_CLOCK_SKEW
    ):
        raise BearerRejected("expired", token)
    return Principal(token)


def cae_challenge(control: ControlState, target: str, principal: Principal) -> str | None:
    """If a `cae` fault revokes this token (issued before the fault), return the challenge
    for WWW-Authenticate's `claims`: base64 of {"access_token":{"nbf":{...}}}."""
    fault = control.faults.take(target, {"cae"}, lambda f: principal.issued_at < f.created_at)
    if fault is None:
        return None
    challenge = {"access_token": {"nbf": {"essential": True, "value": str(int(fault.created_at))}}}
    return base64.b64encode(json.dumps(challenge, separators=(",", ":")).encode()).decode()
