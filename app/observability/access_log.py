"""One access line per request, written by the app once the response is ready.

It replaces gunicorn's access log (off in gunicorn.conf.py) because only the app knows the
route, the caller and what the request did. It holds the path without its query string and no
header value but the request id: a token pasted into a URL or a header never reaches it.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from app.observability.request_record import RequestRecord

ACCESS_LOGGER = "app.access"
# Claims safe to log: who called (object id, tenant) and through which client application.
CALLER_CLAIMS = ("oid", "tid", "azp")

log = logging.getLogger(ACCESS_LOGGER)


def access_fields(
    record: RequestRecord,
    *,
    method: str,
    route: str | None,
    path: str,
    status: int,
    claims: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """The fields of a request's access line (the request id comes from the log filter)."""
    caller = {name: _claim(claims, name) for name in CALLER_CLAIMS}
    return {
        "method": method,
        "route": route,
        "path": path,
        "status": status,
        "duration_ms": record.milliseconds(),
        **caller,
        "error": record.error,
        "downstream_status": record.downstream_status,
        "token_cache": " ".join(record.token_cache) or None,
        "entra_calls": record.entra_calls,
    }


def log_access(fields: Mapping[str, Any]) -> None:
    """Write the access line: ``METHOD ROUTE STATUS`` and the fields."""
    log.info(
        "%s %s %s", fields["method"], fields["route"] or "-", fields["status"], extra=dict(fields)
    )


def _claim(claims: Mapping[str, Any] | None, name: str) -> str | None:
    value = claims.get(name) if claims is not None else None
    return value if isinstance(value, str) else None
