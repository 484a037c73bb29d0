"""Entra's refusals, as data, and the shapes they are sent in: JSON from the token endpoint,
parameters on the redirect URI from the authorize endpoint."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Response, jsonify, request

NO_CACHE_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class EntraError(Exception):
    """An AADSTS error. Subclasses fix the HTTP status, the OAuth `error` and, where Entra
    always sends one, the `suberror`."""

    status = 400
    error = "invalid_request"
    suberror: str | None = None

    def __init__(
        self,
        code: int,
        message: str,
        *,
        suberror: str | None = None,
        claims: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.code = code
        self.message = message
        if suberror is not None:
            self.suberror = suberror
        self.claims = claims
        self.headers = headers or {}


class RequestInvalid(EntraError):
    pass


class ClientAuthenticationFailed(EntraError):
    status = 401
    error = "invalid_client"


class ClientUnauthorized(EntraError):
    error = "unauthorized_client"


class GrantRefused(EntraError):
    error = "invalid_grant"


class ScopeInvalid(EntraError):
    error = "invalid_scope"


class ResourceUnknown(EntraError):
    error = "invalid_resource"


class TenantUnknown(EntraError):
    error = "invalid_tenant"


class GrantTypeUnsupported(EntraError):
    error = "unsupported_grant_type"


class InteractionNeeded(EntraError):
    error = "interaction_required"


class ConsentMissing(EntraError):
    error = "invalid_grant"
    suberror = "consent_required"


class LoginRequired(EntraError):
    error = "login_required"


class AccessDenied(EntraError):
    error = "access_denied"


class ResponseTypeUnsupported(EntraError):
    error = "unsupported_response_type"


class StsThrottled(EntraError):
    status = 429
    error = "temporarily_unavailable"


class StsFailure(EntraError):
    status = 500
    error = "server_error"


def missing_parameter(name: str) -> RequestInvalid:
    return RequestInvalid(
        900144, f"The request body must contain the following parameter: '{name}'."
    )


def correlation_id() -> str:
    """Entra echoes the caller's client-request-id as the correlation id."""
    sent = request.headers.get("client-request-id", "")
    try:
        return str(uuid.UUID(sent))
    except ValueError:
        return str(uuid.uuid4())


def _described(err: EntraError) -> dict[str, Any]:
    """The fields every refusal carries, in Entra's order."""
    trace_id, corr = str(uuid.uuid4()), correlation_id()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    return {
        "error": err.error,
        "error_description": (
            f"AADSTS{err.code}: {err.message}\r\nTrace ID: {trace_id}\r\n"
            f"Correlation ID: {corr}\r\nTimestamp: {stamp}"
        ),
        "error_codes": [err.code],
        "timestamp": stamp,
        "trace_id": trace_id,
        "correlation_id": corr,
        "error_uri": f"{request.host_url}error?code={err.code}",
    }


def render_entra_error(err: EntraError, status: int | None = None) -> Response:
    """The token endpoint's JSON refusal (also used by discovery and the keys endpoint)."""
    body = _described(err)
    if err.suberror:
        body["suberror"] = err.suberror
    if err.claims:
        body["claims"] = err.claims
    response = jsonify(body)
    response.status_code = status or err.status
    response.headers.update(NO_CACHE_HEADERS)
    response.headers.update(
        {"x-ms-request-id": body["trace_id"], "client-request-id": body["correlation_id"]}
    )
    response.headers.update(err.headers)
    return response


def redirect_error_fields(err: EntraError) -> dict[str, str]:
    """The fields the authorize endpoint appends to the redirect URI for a refusal."""
    body = _described(err)
    fields = {
        "error": body["error"],
        "error_description": body["error_description"],
        "error_uri": body["error_uri"],
    }
    if err.suberror:
        fields["suberror"] = err.suberror
    if err.claims:
        fields["claims"] = err.claims
    return fields


def error_for_status(status: int) -> EntraError:
    """The refusal Entra gives for an injected HTTP status (fault mode `status`)."""
    if status == 429 or status in (502, 503, 504):
        return StsThrottled(
            90033,
            "A transient error has occurred. The service is temporarily unavailable; "
            "please try again later.",
        )
    if status >= 500:
        return StsFailure(90006, "An internal server error has occurred.")
    return RequestInvalid(90100, "The request is invalid or malformed.")


def render_status(status: int) -> Response:
    """A `status` fault on an Entra endpoint, in Entra's JSON shape."""
    return render_entra_error(error_for_status(status), status)
