"""Minting Entra-shaped v2 JWTs: access tokens (user and app-only), ID tokens, client_info."""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
import time
from collections.abc import Iterable, Mapping
from typing import Any

import jwt

from emulator.directory import ClientApp, User
from emulator.encoding import b64url, b64url_decode
from emulator.keys import SigningKey

DEFAULT_LIFETIME = 3599


def issuer_url(base_url: str, tenant_id: str) -> str:
    return f"{base_url}/{tenant_id}/v2.0"


def sign(claims: Mapping[str, Any], key: SigningKey) -> str:
    """Sign like Entra: RS256 with `kid` and `x5t` (both the key's thumbprint) in the header."""
    headers = {"typ": "JWT", "kid": key.kid, "x5t": key.kid}
    return jwt.encode(dict(claims), key.private_key, algorithm="RS256", headers=headers)


def new_uti(now: float) -> str:
    """An opaque token id like Entra's `uti`. It carries the issue time in microseconds so the
    emulator can tell tokens minted within the same second apart (CAE needs that)."""
    return b64url(struct.pack(">Q", int(now * 1_000_000)) + secrets.token_bytes(8))


def uti_issued_at(uti: object) -> float | None:
    """The issue time hidden in an emulator `uti`, or None for a foreign or mangled one."""
    if not isinstance(uti, str):
        return None
    try:
        raw = b64url_decode(uti)
    except ValueError:
        return None
    return struct.unpack(">Q", raw[:8])[0] / 1_000_000 if len(raw) == 16 else None


def pairwise_sub(oid: str, app_id: str) -> str:
    """Entra's `sub` is stable per user and per application, unlike `oid`."""
    return b64url(hashlib.sha256(f"{oid}:{app_id}".encode()).digest())[:43]


def client_info(user: User) -> str:
    """MSAL keys its token cache by this: base64url of {"uid": oid, "utid": tid}."""
    return b64url(json.dumps({"uid": user.id, "utid": user.tenant_id}).encode())


def _common(
    issuer: str, tenant_id: str, audience: str, lifetime: int, now: float
) -> dict[str, Any]:
    issued = int(now)
    return {
        "aud": audience,
        "iss": issuer,
        "iat": issued,
        "nbf": issued,
        "exp": issued + lifetime,
        "aio": b64url(secrets.token_bytes(48)),
        "rh": "0." + b64url(secrets.token_bytes(40)) + ".",
        "tid": tenant_id,
        "uti": new_uti(now),
        "ver": "2.0",
    }


def user_access_claims(
    *,
    issuer: str,
    user: User,
    client: ClientApp,
    audience: str,
    scopes: Iterable[str],
    lifetime: int = DEFAULT_LIFETIME,
    roles: Iterable[str] = (),
    capabilities: Iterable[str] = (),
    now: float | None = None,
) -> dict[str, Any]:
    """Claims of a delegated (user) v2 access token."""
    claims = _common(issuer, user.tenant_id, audience, lifetime, now or time.time())
    claims.update(
        azp=client.app_id,
        azpacr="1" if client.is_confidential else "0",
        name=user.display_name,
        oid=user.id,
        preferred_username=user.upn,
        scp=" ".join(sorted(scopes)),
        sub=pairwise_sub(user.id, audience),
        upn=user.upn,
    )
    if roles := sorted(roles):
        claims["roles"] = roles
    if caps := list(capabilities):
        claims["xms_cc"] = caps
    return dict(sorted(claims.items()))


def app_access_claims(
    *,
    issuer: str,
    tenant_id: str,
    client: ClientApp,
    audience: str,
    roles: Iterable[str],
    lifetime: int = DEFAULT_LIFETIME,
    now: float | None = None,
) -> dict[str, Any]:
    """Claims of an app-only v2 access token (client credentials): `roles`, no `scp`."""
    claims = _common(issuer, tenant_id, audience, lifetime, now or time.time())
    claims.update(
        azp=client.app_id,
        azpacr="1",
        idtyp="app",
        oid=client.service_principal_id,
        sub=client.service_principal_id,
    )
    if sorted_roles := sorted(roles):
        claims["roles"] = sorted_roles
    return dict(sorted(claims.items()))


def id_token_claims(
    *, issuer: str, user: User, client_id: str, lifetime: int = 3600, now: float | None = None
) -> dict[str, Any]:
    """Claims of the v2 ID token returned beside user tokens (audience: the calling client)."""
    claims = _common(issuer, user.tenant_id, client_id, lifetime, now or time.time())
    claims.update(
        name=user.display_name,
        oid=user.id,
        preferred_username=user.upn,
        sub=pairwise_sub(user.id, client_id),
    )
    return dict(sorted(claims.items()))
