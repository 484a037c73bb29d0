"""Request ids, one access line per request, and Prometheus metrics.

``init_app`` makes every request of the app, refusals and errors included: take or make a
request id (``request_id``), keep a record of what it did (``request_record``), answer with
``X-Request-ID``, write its access line (``access_log``) and count it (``metrics``). The
``/metrics`` endpoint is not the app's: gunicorn's master serves it (``metrics_server``).
"""

from __future__ import annotations

import logging

from flask import Flask, Response, g, request

from app.observability import access_log, metrics
from app.observability.request_id import REQUEST_ID_HEADER, RequestIdFilter, accept_request_id
from app.observability.request_record import begin_request, current_record, end_request


def init_app(app: Flask) -> None:
    """Observe every request of ``app``; call it before anything else registers hooks, so
    that the request's clock starts first and its access line is written last."""
    _add_request_id_to_log_lines()
    app.before_request(_begin)
    app.after_request(_finish)
    app.teardown_request(_end)
    metrics.worker_started()


def _add_request_id_to_log_lines() -> None:
    """The root logger's handlers (gunicorn's get the filter from its config)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RequestIdFilter) for f in handler.filters):
            handler.addFilter(RequestIdFilter())


def _begin() -> None:
    begin_request(accept_request_id(request.headers.get(REQUEST_ID_HEADER)))


def _finish(response: Response) -> Response:
    record = current_record() or begin_request(accept_request_id(None))
    response.headers[REQUEST_ID_HEADER] = record.request_id
    route = request.url_rule.rule if request.url_rule is not None else None
    claims = g.get("claims")
    fields = access_log.access_fields(
        record,
        method=request.method,
        route=route,
        path=request.path,
        status=response.status_code,
        claims=claims,
    )
    access_log.log_access(fields)
    metrics.request_done(route, response.status_code, fields["duration_ms"] / 1000)
    return response


def _end(exc: BaseException | None) -> None:
    end_request()
