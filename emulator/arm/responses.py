"""Azure Resource Manager's response conventions: request/correlation ids, its error shape."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from flask import Response, g, request

STATUS_CODES = {
    400: "BadRequest",
    401: "AuthenticationFailed",
    403: "AuthorizationFailed",
    404: "NotFound",
    429: "TooManyRequests",
    500: "InternalServerError",
    502: "BadGateway",
    503: "ServiceUnavailable",
    504: "GatewayTimeout",
}


def request_id() -> str:
    if "arm_request_id" not in g:
        g.arm_request_id = str(uuid.uuid4())
    return str(g.arm_request_id)


def add_arm_headers(response: Response) -> Response:
    rid = request_id()
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    response.headers["x-ms-request-id"] = rid
    response.headers["x-ms-correlation-request-id"] = (
        request.headers.get("x-ms-correlation-request-id") or rid
    )
    response.headers["x-ms-routing-request-id"] = f"EMULATOR:{stamp}:{rid}"
    response.headers["x-ms-ratelimit-remaining-tenant-reads"] = "11999"
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Pragma"] = "no-cache"
    response.headers["Expires"] = "-1"
    return response


def arm_json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type="application/json; charset=utf-8")


def arm_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    response = arm_json({"error": {"code": code, "message": message}}, status)
    response.headers.update(headers or {})
    return response


def arm_status_error(status: int) -> Response:
    """ARM's answer for an injected HTTP status."""
    code = STATUS_CODES.get(status, "InternalServerError" if status >= 500 else "BadRequest")
    return arm_error(
        status,
        code,
        f"The request failed with HTTP status {status}. Please retry the request later.",
    )
