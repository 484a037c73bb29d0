"""Microsoft Graph's response conventions: OData JSON, request ids, its error shape."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any

from flask import Response, g, request

ODATA_JSON = (
    "application/json;odata.metadata=minimal;odata.streaming=true;"
    "IEEE754Compatible=false;charset=utf-8"
)
# What Graph sends with a 401; it names Entra's public authority, as the real service does.
WWW_AUTHENTICATE = (
    'Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/'
    'authorize", client_id="00000003-0000-0000-c000-000000000000"'
)
STATUS_CODES = {
    400: "invalidRequest",
    401: "InvalidAuthenticationToken",
    403: "accessDenied",
    404: "itemNotFound",
    429: "TooManyRequests",
    500: "generalException",
    502: "BadGateway",
    503: "serviceNotAvailable",
    504: "GatewayTimeout",
}


def request_id() -> str:
    if "graph_request_id" not in g:
        g.graph_request_id = str(uuid.uuid4())
    return str(g.graph_request_id)


def client_request_id() -> str:
    return request.headers.get("client-request-id") or request_id()


def add_graph_headers(response: Response) -> Response:
    rid = request_id()
    response.headers["request-id"] = rid
    response.headers["client-request-id"] = client_request_id()
    response.headers["x-ms-ags-diagnostic"] = json.dumps(
        {
            "ServerInfo": {
                "DataCenter": "Emulator",
                "Slice": "E",
                "Ring": "0",
                "ScaleUnit": "000",
                "RoleInstance": "EMU0",
                "ADSiteName": "EMU",
            }
        },
        separators=(",", ":"),
    )
    response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


def graph_json(body: dict[str, Any], status: int = 200) -> Response:
    return Response(json.dumps(body), status=status, content_type=ODATA_JSON)


def graph_error(
    status: int, code: str, message: str, headers: dict[str, str] | None = None
) -> Response:
    body = {
        "error": {
            "code": code,
            "message": message,
            "innerError": {
                "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S"),
                "request-id": request_id(),
                "client-request-id": client_request_id(),
            },
        }
    }
    response = Response(json.dumps(body), status=status, content_type="application/json")
    response.headers.update(headers or {})
    return response


def graph_status_error(status: int) -> Response:
    """Graph's answer for an injected HTTP status."""
    code = STATUS_CODES.get(status, "generalException" if status >= 500 else "invalidRequest")
    return graph_error(status, code, f"The service returned HTTP {status}. Please retry later.")
