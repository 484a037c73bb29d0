"""The claims of the JWTs Entra issues: v2 access tokens (user and app-only) and ID tokens.

By default the claims are those Microsoft's v2 access token reference lists for every token;
optional claims (`upn`, `amr`, `idtyp`, ...) appear only when a caller adds them.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import struct
import time
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

from emulator.directory import ClientApp, ManagedIdentity, User
from emulator.signing import b64url, b64url_decode

ID_TOKEN_LIFETIME = 3600
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")


def issuer_url(base_url: str, tenant_id: str) -> str:
    return f"{base_url}/{tenant_id}/v2.0"


def emulator_hosts(request_host: str, server_names: Iterable[str] = ()) -> frozenset[str]:
    """The hosts (netlocs) this emulator answers as: the request's, the loopback names on its
    port, and the names it poses under (a national cloud's hosts, reached on port 443)."""
    port = urlsplit(f"https://{request_host}").port
    names = [*LOOPBACK_HOSTS, *server_names]
    return frozenset({request_host, *server_names, *(f"{h}:{port}" for h in names if port)})


def issued_by_emulator(
    issuer: object, tenant_id: object, request_host: str, server_names: Iterable[str] = ()
) -> bool:
    """True if `issuer` is this emulator's v2 issuer for `tenant_id`, whichever of its names
    the token was minted under (127.0.0.1, localhost, ::1 on the same port, or a server
    name)."""
    if not isinstance(issuer, str) or not isinstance(tenant_id, str):
        return False
    parts = urlsplit(issuer)
    return (
        parts.scheme == "https"
        and parts.netloc in emulator_hosts(request_host, server_names)
        and parts.path == f"/{tenant_id}/v2.0"
    )


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
    lifetime: int,
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
    )
    if sorted_roles := sorted(roles):
        claims["roles"] = sorted_roles
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
    lifetime: int,
    now: float | None = None,
) -> dict[str, Any]:
    """Claims of an app-only v2 access token (client credentials): `roles`, no `scp`."""
    claims = _common(issuer, tenant_id, audience, lifetime, now or time.time())
    claims.update(
        azp=client.app_id,
        azpacr="1",
        oid=client.service_principal_id,
        sub=client.service_principal_id,
    )
    if sorted_roles := sorted(roles):
        claims["roles"] = sorted_roles
    return dict(sorted(claims.items()))


def managed_identity_claims(
    *,
    issuer: str,
    identity: ManagedIdentity,
    audience: str,
    lifetime: int,
    now: float | None = None,
) -> dict[str, Any]:
    """Claims of a managed identity's app-only token, as its local endpoint returns it."""
    claims = _common(issuer, identity.tenant_id, audience, lifetime, now or time.time())
    claims.update(
        azp=identity.client_id,
        azpacr="2",  # the client authenticated with a managed identity
        idtyp="app",
        oid=identity.principal_id,
        sub=identity.principal_id,
        xms_mirid=identity.resource_id,
    )
    return dict(sorted(claims.items()))


def id_token_claims(
    *,
    issuer: str,
    user: User,
    client_id: str,
    nonce: str | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Claims of the v2 ID token returned beside user tokens (audience: the calling client)."""
    claims = _common(issuer, user.tenant_id, client_id, ID_TOKEN_LIFETIME, now or time.time())
    claims.update(
        name=user.display_name,
        oid=user.id,
        preferred_username=user.upn,
        sub=pairwise_sub(user.id, client_id),
    )
    if nonce is not None:
        claims["nonce"] = nonce
    return dict(sorted(claims.items()))
