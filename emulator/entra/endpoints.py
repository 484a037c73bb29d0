"""Entra ID's machine endpoints: OpenID discovery, signing keys, the v2 token endpoint (with
CORS for single-page apps), user realm."""

from __future__ import annotations

import re
import time
from typing import Any

from flask import Blueprint, Response, jsonify, request

from emulator.control import current_control, serves
from emulator.directory import CLIENTS, Tenant, find_tenant, find_user
from emulator.entra.client_assertions import AssertionTrust
from emulator.entra.client_authentication import authenticate_client
from emulator.entra.errors import (
    NO_CACHE_HEADERS,
    EntraError,
    GrantTypeUnsupported,
    TenantUnknown,
    missing_parameter,
    render_entra_error,
)
from emulator.entra.grants import GRANT_COUNTERS, GRANTS, GrantRequest
from emulator.entra.issuance import Issuer
from emulator.entra.runtime import current_entra
from emulator.entra.token_claims import emulator_hosts, issued_by_emulator, issuer_url
from emulator.state import current_state

bp = Blueprint("entra", __name__)

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$", re.I)
# A header name as RFC 9110 defines a token, for echoing a preflight's requested headers.
_HEADER_NAMES = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+(\s*,\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+)*$")
PREFLIGHT_MAX_AGE = "86400"


def base_url() -> str:
    return request.host_url.rstrip("/")


def require_tenant(name: str) -> Tenant:
    tenant = find_tenant(name)
    if tenant is not None:
        return tenant
    if _GUID.match(name) or "." in name:
        raise TenantUnknown(
            90002,
            f"Tenant '{name}' not found. Check to make sure you have the correct tenant "
            "ID and are signing into the correct cloud. Check with your subscription "
            "administrator, this may happen if there are no active subscriptions for the tenant.",
        )
    raise TenantUnknown(
        900023,
        f"Specified tenant identifier '{name}' is neither a valid DNS name, nor a "
        "valid external domain.",
    )


@bp.get("/<tenant>/v2.0/.well-known/openid-configuration")
@serves("openid-configuration")
def openid_configuration(tenant: str) -> Response:
    try:
        found = require_tenant(tenant)
    except EntraError as err:
        return render_entra_error(err)
    response = jsonify(discovery_document(base_url(), found))
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def discovery_document(base: str, tenant: Tenant) -> dict[str, Any]:
    """The v2 OpenID Provider metadata, with Entra's fields and endpoints on this host."""
    root = f"{base}/{tenant.id}"
    return {
        "token_endpoint": f"{root}/oauth2/v2.0/token",
        "token_endpoint_auth_methods_supported": [
            "client_secret_post",
            "private_key_jwt",
            "client_secret_basic",
        ],
        "jwks_uri": f"{root}/discovery/v2.0/keys",
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer_url(base, tenant.id),
        "request_uri_parameter_supported": False,
        "userinfo_endpoint": f"{base}/oidc/userinfo",
        "authorization_endpoint": f"{root}/oauth2/v2.0/authorize",
        "device_authorization_endpoint": f"{root}/oauth2/v2.0/devicecode",
        "http_logout_supported": True,
        "frontchannel_logout_supported": True,
        "end_session_endpoint": f"{root}/oauth2/v2.0/logout",
        "claims_supported": [
            "sub",
            "iss",
            "cloud_instance_name",
            "cloud_instance_host_name",
            "cloud_graph_host_name",
            "msgraph_host",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "acr",
            "nonce",
            "preferred_username",
            "name",
            "tid",
            "ver",
            "at_hash",
            "c_hash",
            "email",
        ],
        "kerberos_endpoint": f"{root}/kerberos",
        "tenant_region_scope": tenant.region_scope,
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": request.host,
        "rbac_url": "https://pas.windows.net",
    }


@bp.get("/<tenant>/discovery/v2.0/keys")
@serves("keys")
def keys(tenant: str) -> Response:
    try:
        found = require_tenant(tenant)
    except EntraError as err:
        return render_entra_error(err)
    issuer = issuer_url(base_url(), found.id)
    response = jsonify({"keys": [k.jwk(issuer) for k in current_state().keys.published()]})
    response.headers["Access-Control-Allow-Origin"] = "*"
    return response


def _grant_counter() -> str | None:
    return GRANT_COUNTERS.get(request.form.get("grant_type", ""))


@bp.route("/<tenant>/oauth2/v2.0/token", methods=["POST"], provide_automatic_options=False)
@serves("token", detail=_grant_counter)
def token(tenant: str) -> Response:
    try:
        found = require_tenant(tenant)
        grant = GRANTS.get(_grant_type())
        if grant is None:
            raise GrantTypeUnsupported(
                70003, f"The app requested an unsupported grant type '{_grant_type()}'."
            )
        client = authenticate_client(
            request.form, request.headers.get("Authorization"), found, _assertion_trust(found)
        )
        issuer = Issuer(
            current_state().keys,
            current_entra(),
            base_url(),
            found.id,
            client,
            wants_client_info=request.form.get("client_info") == "1",
            now=time.time(),
        )
        body = grant(
            GrantRequest(
                issuer,
                found,
                request.form,
                request.host,
                request.headers.get("Origin"),
                current_control().faults,
            )
        )
    except EntraError as err:
        return _cross_origin(render_entra_error(err))
    response = jsonify(body)
    response.headers.update(NO_CACHE_HEADERS)
    return _cross_origin(response)


def _assertion_trust(tenant: Tenant) -> AssertionTrust:
    """What this request's client assertion is checked against. Its aud must be this token
    endpoint under a name of the emulator (tenant by id or domain; v2, or v1's)."""
    state, entra = current_state(), current_entra()
    host, names = request.host, state.server_names
    endpoints = {
        f"https://{h}/{t}/oauth2{version}/token"
        for h in emulator_hosts(host, names)
        for t in (tenant.id, tenant.domain)
        for version in ("/v2.0", "")
    }
    return AssertionTrust(
        token_endpoints=endpoints,
        is_own_issuer=lambda issuer: issued_by_emulator(issuer, tenant.id, host, names),
        tenant_keys=state.keys,
        issuer_keys=entra.trusted_issuers,
        key_credentials=entra.key_credentials,
        client_ca=entra.client_ca,
        now=time.time(),
    )


def _grant_type() -> str:
    grant_type = request.form.get("grant_type")
    if not grant_type:
        raise missing_parameter("grant_type")
    return grant_type


def _cross_origin(response: Response) -> Response:
    """Let a single-page app's browser read the answer: Entra answers CORS on the token
    endpoint for clients registered on the SPA platform (the Origin is not matched against
    the redirect URIs; any cross-origin caller of such a client may read it)."""
    origin = request.headers.get("Origin")
    client = CLIENTS.get(request.form.get("client_id", "").lower())
    if origin and client is not None and client.single_page_app:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers.add("Vary", "Origin")
    return response


@bp.route("/<tenant>/oauth2/v2.0/token", methods=["OPTIONS"], provide_automatic_options=False)
def token_preflight(tenant: str) -> Response:
    """A browser's CORS preflight (MSAL.js sends headers such as X-AnchorMailbox)."""
    response = Response(status=204)
    origin = request.headers.get("Origin")
    if origin:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Allow-Methods"] = "POST, OPTIONS"
        wanted = request.headers.get("Access-Control-Request-Headers", "").strip()
        if wanted and _HEADER_NAMES.match(wanted):
            response.headers["Access-Control-Allow-Headers"] = wanted
        response.headers["Access-Control-Max-Age"] = PREFLIGHT_MAX_AGE
        response.headers["Vary"] = "Origin"
    return response


@bp.get("/common/userrealm/<path:username>")
@serves("userrealm")
def user_realm(username: str) -> Response:
    """Home realm discovery, which MSAL's username/password flow calls first."""
    user = find_user(username)
    domain = username.rpartition("@")[2] if "@" in username else None
    if user is None:
        return jsonify({"ver": "1.0", "account_type": "Unknown", "domain_name": domain})
    tenant = find_tenant(user.tenant_id)
    return jsonify(
        {
            "ver": "1.0",
            "account_type": "Managed",
            "domain_name": tenant.domain if tenant else domain,
            "cloud_instance_name": "microsoftonline.com",
            "cloud_audience_urn": "urn:federation:MicrosoftOnline",
        }
    )
