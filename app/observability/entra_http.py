"""The HTTP client MSAL is given: each call to Entra ID carries the request id and is counted.

MSAL Python sends a correlation id with every token request as the ``client-request-id``
header (a new UUID per call) and has no parameter to choose it, unlike MSAL.NET's
``WithCorrelationId``. It sends its requests through the ``http_client`` it is given, so this
client sets that header to the API's request id: Entra ID logs it, and echoes it as
``correlation_id`` in error answers. It also counts each call (``metrics.entra_call``), which
is how a request's access line knows how many calls to Entra ID it made.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import requests

from app.observability import metrics
from app.observability.request_id import client_request_id_header


class ObservedEntraClient:
    """MSAL's ``http_client`` (post, get, close) over a requests session."""

    def __init__(self, session: requests.Session) -> None:
        self._session = session

    def post(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send(self._session.post, url, kwargs)

    def get(self, url: str, **kwargs: Any) -> requests.Response:
        return self._send(self._session.get, url, kwargs)

    def close(self) -> None:
        self._session.close()

    @staticmethod
    def _send(
        send: Callable[..., requests.Response], url: str, kwargs: dict[str, Any]
    ) -> requests.Response:
        kwargs["headers"] = {**(kwargs.get("headers") or {}), **client_request_id_header()}
        endpoint = entra_endpoint(url)
        try:
            response = send(url, **kwargs)
        except requests.RequestException:
            metrics.entra_call(endpoint, "unreachable")
            raise
        metrics.entra_call(endpoint, entra_outcome(response.status_code))
        return response


def entra_endpoint(url: str) -> str:
    """The metric label of an Entra ID URL: ``token``, ``metadata`` or ``other``."""
    path = urlsplit(url).path
    if path.endswith("/token"):
        return "token"
    if path.endswith("/.well-known/openid-configuration"):
        return "metadata"
    return "other"


def entra_outcome(status: int) -> str:
    """``ok``, ``refused`` (4xx: the grant or the client), ``throttled`` (429), ``failed``
    (5xx)."""
    if status == 429:
        return "throttled"
    if status >= 500:
        return "failed"
    if status >= 400:
        return "refused"
    return "ok"
