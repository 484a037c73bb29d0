"""Request ids: taken from ``X-Request-ID`` when it is safe, else generated; on every response,
in every log line of the request, and passed on to Graph, ARM and Entra ID.

A client's id is used as it is when it is 1-128 ASCII characters of ``[A-Za-z0-9._:-]`` and
does not look like a token (it goes to logs and to other services); anything else is replaced
by a new id, a UUID4 in hex.
"""

from __future__ import annotations

import logging
import re
import uuid

from app.logs import redact
from app.observability.request_record import current_request_id

REQUEST_ID_HEADER = "X-Request-ID"
# What Microsoft Graph reads as the caller's id for a request; MSAL sends its correlation id
# to Entra ID under the same name.
CLIENT_REQUEST_ID_HEADER = "client-request-id"
_SAFE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")


def new_request_id() -> str:
    return uuid.uuid4().hex


def accept_request_id(value: str | None) -> str:
    """The client's request id if it is safe to log and forward, else a new one."""
    if value is not None and _SAFE_REQUEST_ID.fullmatch(value) and redact(value) == value:
        return value
    return new_request_id()


def client_request_id_header() -> dict[str, str]:
    """``{"client-request-id": <request id>}`` for an outbound call, or {} outside a request."""
    request_id = current_request_id()
    return {CLIENT_REQUEST_ID_HEADER: request_id} if request_id is not None else {}


class RequestIdFilter(logging.Filter):
    """Adds ``request_id`` to every record: the current request's id, or ``-`` outside one."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_request_id() or "-"
        return True
