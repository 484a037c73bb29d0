"""The token endpoint's grants: on-behalf-of, refresh_token, authorization_code (PKCE),
client_credentials and password."""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.control.faults import FaultBook
from emulator.directory import Tenant, User, find_user
from emulator.entra.assertions import validate_user_assertion
from emulator.entra.client_authentication import missing_credential
from emulator.entra.conditional_access import (
    enforce_user_policy,
    injected_mfa_refusal,
    mfa_refusal,
    parse_claims,
)
from emulator.entra.errors import EntraError, GrantRefused, RequestInvalid, missing_parameter
from emulator.entra.issuance import (
    Issuer,
    SignIn,
    app_token_response,
    user_token_response,
)
from emulator.entra.refresh_tokens import RefreshTokenRejected
from emulator.entra.scopes import app_role_grant, delegated_grant, parse_scope
from emulator.entra.sessions import AuthorizationCode, CodeRejected
from emulator.signing import b64url

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
GRANT_COUNTERS = {
    JWT_BEARER: "token.on_behalf_of",
    "refresh_token": "token.refresh_token",
    "authorization_code": "token.authorization_code",
    "client_credentials": "token.client_credentials",
    "password": "token.password",
}
# RFC 7636: 43 to 128 unreserved characters.
CODE_VERIFIER = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")


@dataclass(frozen=True)
class GrantRequest:
    issuer: Issuer
    tenant: Tenant
    form: Mapping[str, str]
    host: str
    origin: str | None  # the browser's Origin header: the request is cross-origin
    faults: FaultBook

    def param(self, name: str) -> str:
        value = self.form.get(name)
        if not value:
            raise missing_parameter(name)
        return value


def on_behalf_of(req: GrantRequest) -> dict[str, Any]:
    _require_confidential(req)
    if req.param("requested_token_use") != "on_behalf_of":
        raise RequestInvalid(90100, "The 'requested_token_use' parameter must be 'on_behalf_of'.")
    assertion, user = validate_user_assertion(
        req.param("assertion"),
        client=req.issuer.client,
        tenant=req.tenant,
        keys=req.issuer.keys,
        host=req.host,
        now=req.issuer.now,
    )
    # Entra knows how the assertion was obtained because it issued it.
    mfa = assertion.claims.get("uti") in req.issuer.entra.mfa
    return _delegated_response(req, user, SignIn(mfa=mfa))


def refresh_token(req: GrantRequest) -> dict[str, Any]:
    codec = req.issuer.entra.refresh_tokens
    token = req.param("refresh_token")
    try:
        if codec.read(token).spa:
            _require_cross_origin(req)
        grant = codec.redeem(token)
    except RefreshTokenRejected as exc:
        raise _refresh_error(exc) from exc
    user = find_user(grant.user_id, req.tenant.id)
    if grant.client_id != req.issuer.client.app_id or user is None:
        raise GrantRefused(70000, "Provided grant is invalid or malformed.")
    return _delegated_response(
        req, user, SignIn(mfa=grant.mfa, spa=grant.spa, signed_in_at=grant.signed_in_at)
    )


def authorization_code(req: GrantRequest) -> dict[str, Any]:
    redirect_uri = req.param("redirect_uri")
    if redirect_uri in req.issuer.entra.redirect_uris:
        _require_cross_origin(req)
    code = _redeem_code(req, req.param("code"))
    if code.client_id != req.issuer.client.app_id or code.redirect_uri != redirect_uri:
        raise GrantRefused(70000, "Provided grant is invalid or malformed.")
    _check_code_verifier(req.param("code_verifier"), code.code_challenge)
    user = find_user(code.user_id, req.tenant.id)
    if user is None:
        raise GrantRefused(70000, "Provided grant is invalid or malformed.")
    req = _with_scope(req, req.form.get("scope") or code.scope)
    sign_in = SignIn(mfa=code.mfa, spa=True, signed_in_at=code.signed_in_at, nonce=code.nonce)
    return _delegated_response(req, user, sign_in)


def password(req: GrantRequest) -> dict[str, Any]:
    username = req.param("username")
    req.param("password")  # any non-empty password signs the user in
    user = find_user(username, req.tenant.id)
    if user is None:
        raise GrantRefused(
            50034,
            f"The user account {{EmailHidden}} does not exist in the {req.tenant.id} "
            "directory. To sign into this application, the account must be added to the "
            "directory.",
        )
    request = parse_scope(req.form.get("scope"), req.tenant)
    granted = delegated_grant(request, req.issuer.client)
    return user_token_response(
        req.issuer,
        user,
        request,
        granted,
        capabilities=parse_claims(req.form.get("claims")).capabilities,
        with_refresh_token="offline_access" in request.oidc,
    )


def client_credentials(req: GrantRequest) -> dict[str, Any]:
    _require_confidential(req)
    request = parse_scope(req.form.get("scope"), req.tenant)
    roles = app_role_grant(request, req.issuer.client)
    return app_token_response(req.issuer, request, roles)


def _delegated_response(req: GrantRequest, user: User, sign_in: SignIn) -> dict[str, Any]:
    """The shared tail of OBO, refresh and code redemption: consent, claims challenges, the
    user's Conditional Access policy, then the tokens."""
    request = parse_scope(req.form.get("scope"), req.tenant)
    granted = delegated_grant(request, req.issuer.client)
    claims = parse_claims(req.form.get("claims"))
    if claims.is_challenge and req.faults.take("token", {"interaction"}):
        raise injected_mfa_refusal(request.resource)
    if claims.asks_for_mfa and not sign_in.mfa:
        raise mfa_refusal(user, request.resource)
    enforce_user_policy(user, request.resource, req.issuer.client, mfa=sign_in.mfa)
    return user_token_response(
        req.issuer,
        user,
        request,
        granted,
        capabilities=claims.capabilities,
        with_refresh_token=True,
        sign_in=sign_in,
    )


def _redeem_code(req: GrantRequest, code: str) -> AuthorizationCode:
    try:
        grant = req.issuer.entra.sign_ins.redeem_code(code, req.issuer.now)
    except CodeRejected as exc:
        if exc.reason == "redeemed":
            raise GrantRefused(
                54005,
                "OAuth2 Authorization code was already redeemed, please retry with a "
                "new valid code or use an existing refresh token.",
            ) from exc
        if exc.reason == "expired":
            raise GrantRefused(
                70008,
                "The provided authorization code or refresh token has expired due to "
                "inactivity. Send a new interactive authorization request for this user and "
                "resource.",
            ) from exc
        raise GrantRefused(9002313, "Invalid request. Request is malformed or invalid.") from exc
    if grant.tenant_id != req.tenant.id:
        raise GrantRefused(
            700005,
            "Provided Authorization Code is intended to use against other tenant, thus rejected.",
        )
    return grant


def _check_code_verifier(verifier: str, challenge: str) -> None:
    computed = b64url(hashlib.sha256(verifier.encode("ascii", "replace")).digest())
    if not CODE_VERIFIER.match(verifier) or not hmac.compare_digest(computed, challenge):
        raise GrantRefused(
            501481,
            "The Code_Verifier does not match the code_challenge supplied in the "
            "authorization request.",
        )


def _with_scope(req: GrantRequest, scope: str) -> GrantRequest:
    form = dict(req.form)
    form["scope"] = scope
    return GrantRequest(req.issuer, req.tenant, form, req.host, req.origin, req.faults)


def _require_confidential(req: GrantRequest) -> None:
    if not req.issuer.client.is_confidential:
        raise missing_credential()


def _require_cross_origin(req: GrantRequest) -> None:
    if not req.origin:
        raise RequestInvalid(
            9002327,
            "Tokens issued for the 'Single-Page Application' client-type may only be "
            "redeemed via cross-origin requests.",
        )


def _refresh_error(exc: RefreshTokenRejected) -> EntraError:
    if exc.reason == "expired":
        stamp = dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
        return GrantRefused(
            700082,
            "The refresh token has expired due to inactivity. The token was issued "
            f"more than 90 days before {stamp} and was inactive for 90.00:00:00.",
        )
    if exc.reason == "spa_expired" and exc.grant is not None:
        return GrantRefused(
            700084,
            "The refresh token was issued to a single page app (SPA), and therefore "
            "has a fixed, limited lifetime of 1.00:00:00, which can't be extended. It is now "
            "expired and a new sign in request must be sent by the SPA to the sign in page. "
            f"The token was issued on {_iso(exc.grant.signed_in_at)}.",
        )
    if exc.reason == "redeemed":
        return GrantRefused(70000, "Provided grant is invalid or malformed.")
    return GrantRefused(9002313, "Invalid request. Request is malformed or invalid.")


def _iso(epoch: float) -> str:
    moment = dt.datetime.fromtimestamp(epoch, dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond * 10:07d}Z"


Grant = Callable[[GrantRequest], dict[str, Any]]
GRANTS: Mapping[str, Grant] = {
    JWT_BEARER: on_behalf_of,
    "refresh_token": refresh_token,
    "authorization_code": authorization_code,
    "client_credentials": client_credentials,
    "password": password,
}
