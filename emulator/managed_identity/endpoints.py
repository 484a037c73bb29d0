"""The App Service managed identity protocol (api-version 2019-08-01), as MSAL's
ManagedIdentityClient speaks it: GET {IDENTITY_ENDPOINT}?api-version=2019-08-01&resource=...
&client_id=... with the X-IDENTITY-HEADER header; the answer carries `expires_on` in epoch
seconds. Refusals are App Service's JSON: {"statusCode", "message", "correlationId"}.

App Service serves it over plain HTTP on localhost; the emulator serves it on its own HTTPS
port (MSAL's client takes any URL), at /msi/token.
"""

from __future__ import annotations

import hmac
import secrets
import time
import uuid
from typing import cast

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from emulator.control import serves
from emulator.directory import MANAGED_IDENTITIES, TENANT_ID, ManagedIdentity, find_resource
from emulator.entra.token_claims import issuer_url, managed_identity_claims
from emulator.state import current_state

EXTENSION_KEY = "emulator.managed_identity"
PATH = "/msi/token"
API_VERSION = "2019-08-01"
# App Service's managed identity tokens live 24 hours; MSAL renews them after half of that.
TOKEN_LIFETIME = 24 * 3600
COUNTERS = ("managed-identity",)

bp = Blueprint("managed_identity", __name__)


class ManagedIdentityEndpoint:
    """The endpoint's secret header value, new each time the emulator starts (App Service
    rotates IDENTITY_HEADER too)."""

    def __init__(self) -> None:
        self.header = secrets.token_urlsafe(24)


def endpoint_of(app: Flask) -> ManagedIdentityEndpoint:
    return cast(ManagedIdentityEndpoint, app.extensions[EXTENSION_KEY])


@bp.get(PATH)
@bp.get(f"{PATH}/")
@serves("managed-identity")
def token() -> Response:
    sent = request.headers.get("X-IDENTITY-HEADER", "")
    if not hmac.compare_digest(sent.encode(), endpoint_of(current_app).header.encode()):
        return _refusal(
            401, "The X-IDENTITY-HEADER header is missing or does not match IDENTITY_HEADER."
        )
    if request.args.get("api-version") != API_VERSION:
        return _refusal(400, f"The api-version must be {API_VERSION}.")
    resource_uri = request.args.get("resource", "")
    resource = find_resource(resource_uri) if resource_uri else None
    if resource is None:
        return _refusal(
            400,
            f"AADSTS500011: The resource principal named {resource_uri} was "
            f"not found in the tenant named {TENANT_ID}.",
        )
    identity = _identity()
    if identity is None:
        return _refusal(400, "Unable to load the proper Managed Identity.")
    now = time.time()
    claims = managed_identity_claims(
        issuer=issuer_url(request.host_url.rstrip("/"), identity.tenant_id),
        identity=identity,
        audience=resource.audience_for(resource_uri),
        lifetime=TOKEN_LIFETIME,
        now=now,
    )
    return jsonify(
        {
            "access_token": current_state().keys.signer.sign(claims),
            "expires_on": str(claims["exp"]),
            "resource": resource_uri,
            "token_type": "Bearer",
            "client_id": identity.client_id,
        }
    )


def _identity() -> ManagedIdentity | None:
    """The user-assigned identity the query names (client_id, object_id or mi_res_id); the
    emulated compute has no system-assigned identity."""
    client_id, object_id = request.args.get("client_id"), request.args.get("object_id")
    resource_id = request.args.get("mi_res_id")
    if sum(value is not None for value in (client_id, object_id, resource_id)) != 1:
        return None
    for identity in MANAGED_IDENTITIES.values():
        if (
            identity.client_id == (client_id or "").lower()
            or identity.principal_id == (object_id or "").lower()
            or identity.resource_id.lower() == (resource_id or "").lower()
        ):
            return identity
    return None


def _refusal(status: int, message: str) -> Response:
    response = jsonify(
        {"statusCode": status, "message": message, "correlationId": str(uuid.uuid4())}
    )
    response.status_code = status
    return response


def render_status(status: int) -> Response:
    """A `status` fault on the endpoint, in its error shape."""
    return _refusal(status, "An unexpected error occurred while fetching the token.")


@bp.get("/_emulator/managed-identity")
def describe() -> Response:
    """Where the endpoint is and its header: what App Service puts in IDENTITY_ENDPOINT and
    IDENTITY_HEADER, and the identity's client id."""
    return jsonify(
        {
            "IDENTITY_ENDPOINT": f"{request.host_url.rstrip('/')}{PATH}",
            "IDENTITY_HEADER": endpoint_of(current_app).header,
            "client_id": next(iter(MANAGED_IDENTITIES)),
        }
    )
