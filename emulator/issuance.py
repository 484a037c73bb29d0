"""Building successful token-endpoint responses in Entra's shape."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from emulator.directory import API, ClientApp, User
from emulator.scopes import ScopeRequest, response_scope
from emulator.state import EmulatorState
from emulator.tokens import (
    app_access_claims,
    client_info,
    id_token_claims,
    issuer_url,
    sign,
    user_access_claims,
)


@dataclass(frozen=True)
class Issuer:
    """Who is asking, where: everything a grant needs to mint tokens."""

    state: EmulatorState
    base_url: str
    tenant_id: str
    client: ClientApp
    wants_client_info: bool
    now: float

    @property
    def url(self) -> str:
        return issuer_url(self.base_url, self.tenant_id)


def user_token_response(
    issuer: Issuer,
    user: User,
    request: ScopeRequest,
    granted: frozenset[str],
    *,
    capabilities: Iterable[str] = (),
    with_refresh_token: bool,
    mfa: bool = False,
) -> dict[str, Any]:
    """access_token (+ refresh_token, id_token, client_info) for a user."""
    lifetime = issuer.state.token_lifetime
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
    body = _bearer(sign(claims, issuer.state.keys.signer), lifetime)
    body["scope"] = response_scope(request, granted)
    if with_refresh_token:
        body["refresh_token"] = issuer.state.refresh_tokens.issue(
            user_id=user.id, tenant_id=user.tenant_id, client_id=issuer.client.app_id, mfa=mfa)
    if "openid" in request.oidc:
        id_claims = id_token_claims(
            issuer=issuer.url, user=user, client_id=issuer.client.app_id, now=issuer.now)
        body["id_token"] = sign(id_claims, issuer.state.keys.signer)
    if issuer.wants_client_info:
        body["client_info"] = client_info(user)
    return body


def app_token_response(
    issuer: Issuer, request: ScopeRequest, roles: frozenset[str]
) -> dict[str, Any]:
    """An app-only token: Entra's client-credentials response has no scope, RT or ID token."""
    lifetime = issuer.state.token_lifetime
    claims = app_access_claims(
        issuer=issuer.url,
        tenant_id=issuer.tenant_id,
        client=issuer.client,
        audience=request.audience,
        roles=roles,
        lifetime=lifetime,
        now=issuer.now,
    )
    return _bearer(sign(claims, issuer.state.keys.signer), lifetime)


def _bearer(access_token: str, lifetime: int) -> dict[str, Any]:
    return {
        "token_type": "Bearer",
        "expires_in": lifetime,
        "ext_expires_in": lifetime,
        "access_token": access_token,
    }
