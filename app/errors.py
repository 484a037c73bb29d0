"""One error hierarchy, rendered into responses in one place.

Every refusal is a JSON body ``{"error": ..., "error_description": ...}``; authentication
refusals add an RFC 6750 ``WWW-Authenticate`` challenge so clients know what to do next.
"""

from __future__ import annotations

import base64
import logging
import re
from typing import Any, ClassVar

from flask import Flask, Response, current_app, g, jsonify, request
from werkzeug.exceptions import HTTPException

from app.observability import metrics

log = logging.getLogger(__name__)

# RFC 6750 section 3: error_description is %x20-21 / %x23-5B / %x5D-7E (no quote, no backslash).
_NOT_DESCRIPTION_CHARS = re.compile(r"[^\x20\x21\x23-\x5B\x5D-\x7E]")
_MAX_DESCRIPTION = 300


def safe_description(text: str) -> str:
    """Make text fit RFC 6750's error_description grammar and a sane length."""
    cleaned = _NOT_DESCRIPTION_CHARS.sub("?", text)
    return cleaned[:_MAX_DESCRIPTION]


class ApiError(Exception):
    """An error a client should see; subclasses set the defaults as class attributes."""

    status: ClassVar[int] = 500
    error: ClassVar[str] = "server_error"
    description: ClassVar[str] = "the server could not handle the request"
    # None: no WWW-Authenticate header; "": a bare Bearer challenge; else the RFC 6750 code.
    challenge: ClassVar[str | None] = None

    def __init__(
        self,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        extra: dict[str, Any] | None = None,
        challenge_params: dict[str, str] | None = None,
    ) -> None:
        self.detail = safe_description(description or self.description)
        self.retry_after = retry_after
        self.extra = extra or {}
        self.challenge_params = challenge_params or {}
        super().__init__(self.detail)

    def body(self) -> dict[str, Any]:
        return {"error": self.error, "error_description": self.detail, **self.extra}

    def headers(self, realm: str) -> dict[str, str]:
        headers: dict[str, str] = {}
        if self.retry_after is not None:
            headers["Retry-After"] = str(max(1, int(self.retry_after)))
        if self.challenge is not None:
            headers["WWW-Authenticate"] = self._challenge(realm)
        return headers

    def _challenge(self, realm: str) -> str:
        params = {"realm": realm}
        if self.challenge:
            params["error"] = self.challenge
            params["error_description"] = self.detail
        params.update(self.challenge_params)
        return "Bearer " + ", ".join(f'{key}="{value}"' for key, value in params.items())


class AuthenticationRequired(ApiError):
    status = 401
    error = "unauthorized"
    description = "send an access token in the Authorization header: Bearer <token>"
    challenge = ""


class InvalidRequest(ApiError):
    status = 400
    error = "invalid_request"
    description = "malformed Authorization header"
    challenge = "invalid_request"


class BadRequest(ApiError):
    status = 400
    error = "invalid_request"
    description = "invalid request parameter"


class InvalidToken(ApiError):
    status = 401
    error = "invalid_token"
    description = "the access token is invalid"
    challenge = "invalid_token"


class InsufficientScope(ApiError):
    status = 403
    error = "insufficient_scope"
    description = "the access token lacks the required scope"
    challenge = "insufficient_scope"

    def __init__(self, description: str, *, scope: str) -> None:
        super().__init__(description, challenge_params={"scope": scope})


class ClaimsChallenge(ApiError):
    """Entra wants the user to satisfy a policy (MFA, Conditional Access, CAE)."""

    status = 401
    error = "interaction_required"
    description = "the user must sign in again to satisfy a Conditional Access policy"
    challenge = "insufficient_claims"

    def __init__(self, description: str, *, claims: str) -> None:
        encoded = base64.b64encode(claims.encode("utf-8")).decode("ascii")
        # The body carries the raw JSON too: MSAL.js takes it as the `claims` request parameter.
        super().__init__(
            description, extra={"claims": claims}, challenge_params={"claims": encoded}
        )


class InteractionRequired(ApiError):
    """Entra needs the user at an interactive sign-in, without a claims challenge to pass on.

    The challenge is RFC 9470's ``insufficient_user_authentication``, not ``invalid_token``:
    the token is valid, and a client that answers invalid_token by acquiring a new token
    silently would get the same answer again, in a loop.
    """

    status = 401
    error = "interaction_required"
    description = "the user must sign in again interactively"
    challenge = "insufficient_user_authentication"


class AccessDenied(ApiError):
    """Entra refuses the user access (suberror message_only); signing in again does not help."""

    status = 403
    error = "access_denied"
    description = "Entra ID denied the user access to the downstream API"


class ConsentRequired(ApiError):
    status = 403
    error = "consent_required"
    description = "consent is missing for this API to call the downstream API"


class ServiceUnavailable(ApiError):
    status = 503
    error = "temporarily_unavailable"
    description = "Entra ID is unavailable; retry later"

    def __init__(self, description: str | None = None, *, retry_after: int = 5) -> None:
        super().__init__(description, retry_after=retry_after)


class DownstreamError(ApiError):
    """A downstream 4xx, passed on with the same status and the downstream error object."""

    error = "downstream_error"

    def __init__(self, status: int, description: str, *, downstream: dict[str, Any]) -> None:
        self.status = status  # type: ignore[misc]
        super().__init__(description, extra={"downstream": downstream})


class DownstreamThrottled(ApiError):
    status = 429
    error = "throttled"
    description = "the downstream API is throttling requests; retry later"


class BadGateway(ApiError):
    status = 502
    error = "bad_gateway"
    description = "the downstream API failed"


class GatewayTimeout(ApiError):
    status = 504
    error = "gateway_timeout"
    description = "the downstream API did not answer in time"


class ServerError(ApiError):
    """A server-side fault the client cannot fix (e.g. the API's own credential is refused)."""


def render(exc: ApiError) -> Response:
    metrics.request_refused(exc.error, exc.challenge)
    response = jsonify(exc.body())
    response.status_code = exc.status
    response.headers.update(exc.headers(current_app.config["AUTH_REALM"]))
    return response


def _handle_api_error(exc: ApiError) -> Response:
    level = logging.WARNING if exc.status >= 500 else logging.INFO
    # token_id is a short hash (set by require_auth), so refusals can be correlated safely.
    log.log(
        level,
        "refused %s %s: %s %s (%s) token=%s",
        request.method,
        request.path,
        exc.status,
        exc.error,
        exc.detail,
        g.get("token_id", "-"),
    )
    return render(exc)


def _handle_http_exception(exc: HTTPException) -> Response:
    status = exc.code or 500
    name = re.sub(r"[^a-z]+", "_", (exc.name or "error").lower()).strip("_")
    description = safe_description(exc.description or name)
    metrics.request_refused(name, None)
    response = jsonify({"error": name, "error_description": description})
    response.status_code = status
    if status == 405 and exc.response is None:
        response.headers["Allow"] = ", ".join(getattr(exc, "valid_methods", None) or [])
    if status == 401:  # RFC 9110 section 15.5.2: a 401 carries a challenge
        response.headers["WWW-Authenticate"] = f'Bearer realm="{current_app.config["AUTH_REALM"]}"'
    return response


def _handle_unexpected(exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.path)
    return render(ServerError())


def init_app(app: Flask) -> None:
    app.register_error_handler(ApiError, _handle_api_error)
    app.register_error_handler(HTTPException, _handle_http_exception)
    app.register_error_handler(Exception, _handle_unexpected)
