"""Calls to downstream APIs (Graph, ARM) with the caller's delegated token.

Downstream APIs are configuration (base URL + scopes); this module only knows HTTP. A 401 gets
one new token and one retry: a 401 carrying a claims challenge (Continuous Access Evaluation)
gets a token exchanged with those claims, and if Entra then needs the user, the challenge goes
back to the client; a 401 without one gets a fresh exchange in place of the cached token. A
second 401 is the downstream API's problem, not the client's: 502.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

import requests
from flask import Flask, current_app

from app.auth import Caller
from app.auth.obo import DownstreamTokenProvider
from app.config import DownstreamApi, Settings
from app.errors import BadGateway, DownstreamError, DownstreamThrottled, GatewayTimeout
from app.http import BodyTooLarge, TimeoutSession, parse_retry_after
from app.observability import metrics
from app.observability.request_id import client_request_id_header

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 8 * 1024 * 1024
MAX_PAGES = 50
_CHALLENGE_PARAM = re.compile(r'([A-Za-z_]+)="([^"]*)"')


class DownstreamClient:
    """GETs JSON from a configured downstream API on behalf of a caller."""

    def __init__(
        self,
        apis: Mapping[str, DownstreamApi],
        tokens: DownstreamTokenProvider,
        session: requests.Session,
    ) -> None:
        self._apis = apis
        self._tokens = tokens
        self._session = session

    def base_url(self, api_name: str) -> str:
        """The configured base URL of ``api_name`` (no trailing slash)."""
        return self._apis[api_name].base_url

    def get(
        self, caller: Caller, api_name: str, path: str, params: Mapping[str, str] | None = None
    ) -> dict[str, Any]:
        """One JSON object from ``{base_url}{path}``."""
        api = self._apis[api_name]
        return self._get_url(caller, api, f"{api.base_url}{path}", params)

    def get_all(
        self,
        caller: Caller,
        api_name: str,
        path: str,
        params: Mapping[str, str] | None = None,
        link: str = "nextLink",
    ) -> dict[str, Any]:
        """All items of a paged collection, following ``link`` on the same host, bounded."""
        api = self._apis[api_name]
        page = self._get_url(caller, api, f"{api.base_url}{path}", params)
        items = _items(api, page)
        for _ in range(MAX_PAGES - 1):
            next_url = page.get(link)
            if not next_url:
                return {"value": items}
            page = self._get_url(caller, api, _same_origin(api, next_url), None)
            items.extend(_items(api, page))
        log.warning("stopped following %s after %d pages", link, MAX_PAGES)
        return {"value": items, "truncated": True}

    def _get_url(
        self, caller: Caller, api: DownstreamApi, url: str, params: Mapping[str, str] | None
    ) -> dict[str, Any]:
        token = self._tokens.acquire(api, caller.token, caller.expires_at)
        response = self._send(api, url, params, token)
        if response.status_code == 401:
            token = self._token_after_401(caller, api, response)
            response = self._send(api, url, params, token)
        return _json_or_raise(api, response)

    def _token_after_401(
        self, caller: Caller, api: DownstreamApi, response: requests.Response
    ) -> str:
        """One new token: exchanged with the claims of a CAE challenge, else afresh."""
        claims = _cae_claims(response)
        if claims is not None:
            log.info("%s sent a claims challenge; exchanging again with the claims", api.name)
            return self._tokens.acquire(
                api, caller.token, caller.expires_at, claims_challenge=claims
            )
        log.info("%s refused the cached token; exchanging again", api.name)
        return self._tokens.reacquire(api, caller.token, caller.expires_at)

    def _send(
        self, api: DownstreamApi, url: str, params: Mapping[str, str] | None, token: str
    ) -> requests.Response:
        headers = {
            "Authorization": f"Bearer {token}",
            "Accept": "application/json",
            **client_request_id_header(),
        }
        try:
            return metrics.downstream_call(
                api.name, lambda: self._session.get(url, params=params, headers=headers)
            )
        except BodyTooLarge as exc:
            raise BadGateway(
                f"{api.name} answered with a body over {MAX_BODY_BYTES} bytes"
            ) from exc
        except requests.Timeout as exc:
            raise GatewayTimeout(f"{api.name} did not answer in time") from exc
        except requests.RequestException as exc:
            raise BadGateway(f"{api.name} could not be reached ({type(exc).__name__})") from exc


def _cae_claims(response: requests.Response) -> str | None:
    """The decoded claims of a 401 Bearer challenge that carries a ``claims`` parameter.

    Graph says ``error="insufficient_claims"``, ARM says ``error="invalid_token"`` for the
    same revocation; Microsoft's guidance (and the Azure SDKs) treat any 401 Bearer challenge
    with ``claims`` as a claims challenge, so the error code is not checked.
    """
    if response.status_code != 401:
        return None
    header = response.headers.get("WWW-Authenticate", "")
    if header[:7].lower() != "bearer ":
        return None
    params = {name.lower(): value for name, value in _CHALLENGE_PARAM.findall(header)}
    encoded = params.get("claims")
    if not encoded:
        return None
    try:
        claims = base64.b64decode(encoded + "=" * (-len(encoded) % 4))
        if not isinstance(json.loads(claims), dict):
            raise ValueError("the claims are not a JSON object")
        return claims.decode("utf-8")
    except (binascii.Error, ValueError):
        log.warning("ignoring a malformed claims challenge")
        return None


def _json_or_raise(api: DownstreamApi, response: requests.Response) -> dict[str, Any]:
    status = response.status_code
    if status == 429:
        raise DownstreamThrottled(
            f"{api.name} is throttling requests; retry later",
            retry_after=parse_retry_after(response.headers.get("Retry-After"), 5),
        )
    if status >= 500:
        raise BadGateway(f"{api.name} answered HTTP {status}")
    if status == 401:
        # After a new token: the client's own token is fine, so a 401 here would mislead it.
        raise BadGateway(
            f"{api.name} refused a newly acquired token (HTTP 401)",
            extra={"downstream": {"status": status, "error": _error_object(response.content)}},
        )
    if status >= 400:
        error = _error_object(response.content)
        raise DownstreamError(
            status,
            f"{api.name} answered HTTP {status}: {error.get('code', 'error')}: "
            f"{error.get('message', '')}",
            downstream={"status": status, "error": error},
        )
    try:
        data = json.loads(response.content)
    except (ValueError, RecursionError):
        data = None
    if not isinstance(data, dict):
        raise BadGateway(f"{api.name} answered with a body that is not a JSON object")
    return data


def _items(api: DownstreamApi, page: dict[str, Any]) -> list[Any]:
    value = page.get("value")
    if value is None:
        return []
    if not isinstance(value, list):
        raise BadGateway(f"{api.name} answered with a collection whose value is not a list")
    return value


def _error_object(body: bytes) -> dict[str, Any]:
    """The ``error`` object of a Graph/ARM error body, or a stand-in for anything else."""
    try:
        data = json.loads(body)
    except (ValueError, RecursionError):
        return {"code": "non_json_error", "message": "the downstream error body is not JSON"}
    error = data.get("error") if isinstance(data, dict) else None
    if isinstance(error, dict):
        return {key: error[key] for key in ("code", "message", "innerError") if key in error}
    return {
        "code": str(error or "error"),
        "message": str(data.get("message", ""))[:300] if isinstance(data, dict) else "",
    }


def _same_origin(api: DownstreamApi, url: object) -> str:
    """Refuse to send the user's token to a host other than the API's own."""
    if not isinstance(url, str):
        raise BadGateway(f"{api.name} returned a next link that is not a string")
    base, link = urlsplit(api.base_url), urlsplit(url)
    if (link.scheme, link.netloc) != (base.scheme, base.netloc):
        raise BadGateway(f"{api.name} returned a next link to another host")
    return url


def init_app(app: Flask, settings: Settings, tokens: DownstreamTokenProvider) -> None:
    session = TimeoutSession(
        settings.http_timeout, total=settings.http_total_timeout, max_body=MAX_BODY_BYTES
    )
    app.extensions["downstream"] = DownstreamClient(settings.downstream, tokens, session)


def downstream() -> DownstreamClient:
    """The downstream client of the current app."""
    client: DownstreamClient = current_app.extensions["downstream"]
    return client
