"""The token endpoint's grants: on-behalf-of, refresh_token, client_credentials, password."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from emulator.assertions import validate_user_assertion
from emulator.client_auth import missing_credential
from emulator.directory import (
    API,
    MFA_POLICY_ID,
    THROTTLE_RETRY_AFTER,
    ClientApp,
    Resource,
    Tenant,
    User,
    find_user,
)
from emulator.entra_errors import (
    ConsentRequired,
    InteractionRequired,
    InvalidGrant,
    InvalidRequest,
    TemporarilyUnavailable,
)
from emulator.issuance import Issuer, app_token_response, user_token_response
from emulator.refresh import RefreshTokenRejected
from emulator.scopes import app_role_grant, delegated_grant, parse_scope

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
MFA_CLAIMS_CHALLENGE = json.dumps(
    {"access_token": {"capolids": {"essential": True, "values": [MFA_POLICY_ID]}}},
    separators=(",", ":"),
)


@dataclass(frozen=True)
class GrantRequest:
    issuer: Issuer
    tenant: Tenant
    form: Mapping[str, str]
    host: str

    def param(self, name: str) -> str:
        value = self.form.get(name)
        if not value:
            raise InvalidRequest(
                900144, f"The request body must contain the following parameter: '{name}'.")
        return value


@dataclass(frozen=True)
class ClaimsParameter:
    capabilities: tuple[str, ...] = ()
    is_challenge: bool = False  # asks for more than client capabilities (xms_cc)


def on_behalf_of(req: GrantRequest) -> dict[str, Any]:
    _require_confidential(req)
    if req.param("requested_token_use") != "on_behalf_of":
        raise InvalidRequest(
            90100, "The 'requested_token_use' parameter must be 'on_behalf_of'.")
    assertion, user = validate_user_assertion(
        req.param("assertion"), client=req.issuer.client, tenant=req.tenant,
        keys=req.issuer.state.keys, host=req.host, now=req.issuer.now)
    amr = assertion.claims.get("amr")
    mfa = isinstance(amr, list) and "mfa" in amr
    return _delegated_response(req, user, mfa=mfa, with_refresh_token=True)


def refresh_token(req: GrantRequest) -> dict[str, Any]:
    try:
        grant = req.issuer.state.refresh_tokens.redeem(req.param("refresh_token"))
    except RefreshTokenRejected as exc:
        raise _refresh_error(exc.reason) from exc
    user = find_user(grant.user_id, req.tenant.id)
    if grant.client_id != req.issuer.client.app_id or user is None:
        raise InvalidGrant(70000, "Provided grant is invalid or malformed.")
    return _delegated_response(req, user, mfa=grant.mfa, with_refresh_token=True)


def password(req: GrantRequest) -> dict[str, Any]:
    username = req.param("username")
    req.param("password")  # any non-empty password signs the user in
    user = find_user(username, req.tenant.id)
    if user is None:
        raise InvalidGrant(
            50034, f"The user account {{EmailHidden}} does not exist in the {req.tenant.id} "
            "directory. To sign into this application, the account must be added to the "
            "directory.")
    request = parse_scope(req.form.get("scope"), req.tenant)
    granted = delegated_grant(request, req.issuer.client)
    return user_token_response(
        req.issuer, user, request, granted,
        capabilities=_claims(req).capabilities,
        with_refresh_token="offline_access" in request.oidc)


def client_credentials(req: GrantRequest) -> dict[str, Any]:
    _require_confidential(req)
    request = parse_scope(req.form.get("scope"), req.tenant)
    roles = app_role_grant(request, req.issuer.client)
    return app_token_response(req.issuer, request, roles)


def _delegated_response(
    req: GrantRequest, user: User, *, mfa: bool, with_refresh_token: bool
) -> dict[str, Any]:
    """The shared tail of OBO and refresh: consent, claims challenges, the user's policy."""
    request = parse_scope(req.form.get("scope"), req.tenant)
    granted = delegated_grant(request, req.issuer.client)
    claims = _claims(req)
    if claims.is_challenge and req.issuer.state.faults.take("token", {"interaction"}):
        raise mfa_required(request.resource)
    _enforce_user_policy(user, request.resource, req.issuer.client, mfa=mfa)
    return user_token_response(
        req.issuer, user, request, granted, capabilities=claims.capabilities,
        with_refresh_token=with_refresh_token, mfa=mfa)


def _enforce_user_policy(
    user: User, resource: Resource, client: ClientApp, *, mfa: bool
) -> None:
    """Conditional access and consent as they hit the downstream (Graph/ARM) call."""
    if resource is API:
        return
    if user.behaviour == "mfa_required" and not mfa:
        raise mfa_required(resource)
    if user.behaviour == "consent_required":
        raise ConsentRequired(
            65001, f"The user or administrator has not consented to use the application "
            f"with ID '{client.app_id}' named '{client.display_name}'. Send an interactive "
            "authorization request for this user and resource.")
    if user.behaviour == "throttled":
        raise TemporarilyUnavailable(
            90055, "TenantThrottlingError - There are too many incoming requests. This "
            "request has been throttled; retry after the interval in the Retry-After header.",
            headers={"Retry-After": str(THROTTLE_RETRY_AFTER)})


def mfa_required(resource: Resource) -> InteractionRequired:
    return InteractionRequired(
        50076, "Due to a configuration change made by your administrator, or because you "
        "moved to a new location, you must use multi-factor authentication to access "
        f"'{resource.app_id}'.", claims=MFA_CLAIMS_CHALLENGE)


def _claims(req: GrantRequest) -> ClaimsParameter:
    raw = req.form.get("claims")
    if not raw:
        return ClaimsParameter()
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise InvalidRequest(90100, "The 'claims' parameter is not valid JSON.") from exc
    if not isinstance(data, dict):
        raise InvalidRequest(90100, "The 'claims' parameter must be a JSON object.")
    access = _object(data.get("access_token"))
    values = _object(access.get("xms_cc")).get("values")
    capabilities = tuple(v for v in values if isinstance(v, str)) if isinstance(
        values, list) else ()
    other = set(access) - {"xms_cc"} or set(data) - {"access_token"}
    return ClaimsParameter(capabilities, bool(other))


def _object(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _require_confidential(req: GrantRequest) -> None:
    if not req.issuer.client.is_confidential:
        raise missing_credential()


def _refresh_error(reason: str) -> InvalidGrant:
    if reason == "expired":
        stamp = dt.datetime.now(dt.UTC).strftime("%m/%d/%Y %H:%M:%S")
        return InvalidGrant(
            700082, "The refresh token has expired due to inactivity. The token was issued "
            f"more than 90 days before {stamp} and was inactive for 90.00:00:00.")
    return InvalidGrant(9002313, "Invalid request. Request is malformed or invalid.")


Grant = Callable[[GrantRequest], dict[str, Any]]
GRANTS: Mapping[str, Grant] = {
    JWT_BEARER: on_behalf_of,
    "refresh_token": refresh_token,
    "client_credentials": client_credentials,
    "password": password,
}
