"""Issuing tokens: successful token-endpoint responses in Entra's shape, and single tokens
minted directly (for tests and the command line)."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.directory import API, API_CLIENT_ID, CLIENTS, SPA_CLIENT_ID, ClientApp, User
from emulator.entra.refresh_tokens import SPA_REFRESH_TOKEN_LIFETIME
from emulator.entra.runtime import EntraRuntime
from emulator.entra.scopes import ScopeRequest, response_scope
from emulator.entra.token_claims import (
    app_access_claims,
    client_info,
    id_token_claims,
    issuer_url,
    user_access_claims,
)
from emulator.signing import KeyRing


@dataclass(frozen=True)
class Issuer:
    """Who is asking, where: everything a grant needs to mint tokens."""

    keys: KeyRing
    entra: EntraRuntime
    base_url: str
    tenant_id: str
    client: ClientApp
    wants_client_info: bool
    now: float

    @property
    def url(self) -> str:
        return issuer_url(self.base_url, self.tenant_id)

    def sign(self, claims: Mapping[str, Any]) -> str:
        return self.keys.signer.sign(claims)


@dataclass(frozen=True)
class SignIn:
    """How the user authenticated, which the tokens issued from it carry forward."""

    mfa: bool = False
    spa: bool = False  # through a `spa` redirect URI: its refresh tokens live 24 hours
    signed_in_at: float | None = None
    nonce: str | None = None  # for the ID token, from the authorize request


def user_token_response(
    issuer: Issuer,
    user: User,
    request: ScopeRequest,
    granted: frozenset[str],
    *,
    capabilities: Iterable[str] = (),
    with_refresh_token: bool,
    sign_in: SignIn = SignIn(),
) -> dict[str, Any]:
    """access_token (+ refresh_token, id_token, client_info) for a user."""
    lifetime = issuer.entra.access_token_lifetime()
    claims = user_access_claims(
        issuer=issuer.url,
        user=user,
        client=issuer.client,
        audience=request.audience,
        scopes=granted,
        lifetime=lifetime,
        roles=user.app_roles if request.resource is API else (),
        capabilities=capabilities,
        now=issuer.now,
    )
    if sign_in.mfa:
        issuer.entra.mfa.add(claims["uti"], claims["exp"])
    body = _bearer(issuer.sign(claims), lifetime, response_scope(request, granted))
    if with_refresh_token:
        body["refresh_token"] = issuer.entra.refresh_tokens.issue(
            user_id=user.id,
            tenant_id=user.tenant_id,
            client_id=issuer.client.app_id,
            mfa=sign_in.mfa,
            spa=sign_in.spa,
            signed_in_at=sign_in.signed_in_at,
        )
        if sign_in.spa:
            started = issuer.now if sign_in.signed_in_at is None else sign_in.signed_in_at
            body["refresh_token_expires_in"] = int(
                started + SPA_REFRESH_TOKEN_LIFETIME - issuer.now
            )
    if "openid" in request.oidc:
        body["id_token"] = issuer.sign(
            id_token_claims(
                issuer=issuer.url,
                user=user,
                client_id=issuer.client.app_id,
                nonce=sign_in.nonce,
                now=issuer.now,
            )
        )
    if issuer.wants_client_info:
        body["client_info"] = client_info(user)
    return body


def app_token_response(
    issuer: Issuer, request: ScopeRequest, roles: frozenset[str]
) -> dict[str, Any]:
    """An app-only token: Entra's client-credentials response has no scope, RT or ID token."""
    lifetime = issuer.entra.access_token_lifetime()
    claims = app_access_claims(
        issuer=issuer.url,
        tenant_id=issuer.tenant_id,
        client=issuer.client,
        audience=request.audience,
        roles=roles,
        lifetime=lifetime,
        now=issuer.now,
    )
    body = _bearer(issuer.sign(claims), lifetime, None)
    return body


def _bearer(access_token: str, lifetime: int, scope: str | None) -> dict[str, Any]:
    body: dict[str, Any] = {"token_type": "Bearer"}
    if scope is not None:
        body["scope"] = scope
    body.update(expires_in=lifetime, ext_expires_in=lifetime, access_token=access_token)
    return body


def mint_user_token(
    keys: KeyRing,
    entra: EntraRuntime,
    base_url: str,
    user: User,
    *,
    scope: str = "access_as_user",
    audience: str | None = None,
    lifetime: int = 3600,
    mfa: bool = False,
    overrides: Mapping[str, Any] | None = None,
) -> str:
    """A user's v2 access token as the SPA would hold it (default: for the API, azp = SPA),
    without a sign-in. `mfa` records it as issued after MFA. Overrides replace claims; an
    override of None removes the claim."""
    aud = audience or API_CLIENT_ID
    claims = user_access_claims(
        issuer=issuer_url(base_url, user.tenant_id),
        user=user,
        client=CLIENTS[SPA_CLIENT_ID],
        audience=aud,
        scopes=scope.split(),
        lifetime=lifetime,
        roles=user.app_roles if aud == API_CLIENT_ID else (),
        now=time.time(),
    )
    claims.update(overrides or {})
    claims = {k: v for k, v in claims.items() if v is not None}
    if mfa and isinstance(claims.get("uti"), str):
        entra.mfa.add(claims["uti"], float(claims.get("exp", time.time() + lifetime)))
    return keys.signer.sign(claims)
