"""Entra's token-endpoint refusals, as data, and the one JSON shape they are rendered in."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from flask import Response, jsonify, request

NO_CACHE_HEADERS = {"Cache-Control": "no-store, no-cache", "Pragma": "no-cache"}


class EntraError(Exception):
    """An AADSTS error. Subclasses fix the HTTP status, OAuth `error` and `suberror`."""

    status = 400
    error = "invalid_request"
    suberror: str | None = None

    def __init__(
        self,
        code: int,
        message: str,
        *,
        claims: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(f"AADSTS{code}: {message}")
        self.code = code
        self.message = message
        self.claims = claims
        self.headers = headers or {}


class InvalidRequest(EntraError):
    pass


class InvalidClient(EntraError):
    status = 401
    error = "invalid_client"


class UnauthorizedClient(EntraError):
    error = "unauthorized_client"


class InvalidGrant(EntraError):
    error = "invalid_grant"


class InvalidScope(EntraError):
    error = "invalid_scope"


class InvalidResource(EntraError):
    error = "invalid_resource"


class InvalidTenant(EntraError):
    error = "invalid_tenant"


class UnsupportedGrantType(EntraError):
    error = "unsupported_grant_type"


class InteractionRequired(EntraError):
    error = "interaction_required"
    suberror = "basic_action"


class ConsentRequired(EntraError):
    error = "invalid_grant"
    suberror = "consent_required"


class TemporarilyUnavailable(EntraError):
    status = 429
    error = "temporarily_unavailable"


class ServerError(EntraError):
    status = 500
    error = "server_error"


def correlation_id() -> str:
    """Entra echoes the caller's client-request-id as the correlation id."""
    sent = request.headers.get("client-request-id", "")
    try:
        return str(uuid.UUID(sent))
    except ValueError:
        return str(uuid.uuid4())


def render_entra_error(err: EntraError, status: int | None = None) -> Response:
    trace_id, corr = str(uuid.uuid4()), correlation_id()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    body: dict[str, Any] = {
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
    if err.suberror:
        body["suberror"] = err.suberror
    if err.claims:
        body["claims"] = err.claims
    response = jsonify(body)
    response.status_code = status or err.status
    response.headers.update(NO_CACHE_HEADERS)
    response.headers.update({"x-ms-request-id": trace_id, "client-request-id": corr})
    response.headers.update(err.headers)
    return response


def error_for_status(status: int) -> EntraError:
    """The refusal Entra gives for an injected HTTP status (fault mode `status`)."""
    if status == 429 or status in (502, 503, 504):
        return TemporarilyUnavailable(
            90033, "A transient error has occurred. The service is temporarily unavailable; "
            "please try again later.")
    if status >= 500:
        return ServerError(90006, "An internal server error has occurred.")
    return InvalidRequest(90100, "The request is invalid or malformed.")
