"""Outbound HTTP: pooled sessions in which every call ends by a deadline, body included.

requests' read timeout applies to each socket read, so a server that trickles a few bytes
every few seconds holds a thread for as long as it likes. Here each call gets a deadline
(``total`` seconds, HTTP_TOTAL_TIMEOUT) when it starts. The transport adapter connects and
waits for the headers with timeouts no longer than what is left of it, then reads the body
itself, one socket read at a time, each bounded by the time left, before it returns. Callers
(Graph and ARM calls, the key cache, MSAL through ``http_client``) therefore always get a
fully read, size-checked response, or a ``TotalTimeout`` (a ``requests.ReadTimeout``).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit
from urllib.request import getproxies

import requests
from requests.adapters import HTTPAdapter
from requests.utils import get_environ_proxies
from urllib3.exceptions import DecodeError, ReadTimeoutError
from urllib3.exceptions import HTTPError as Urllib3Error

from app.parsing import Malformed, decimal_integer, delta_seconds, http_date

_READ_SIZE = 64 * 1024


class BodyTooLarge(requests.RequestException):
    """A response body exceeded the size we are willing to hold in memory."""


class TotalTimeout(requests.ReadTimeout):
    """The whole call, body included, did not finish within the session's deadline."""


@dataclass(frozen=True)
class Deadline:
    """When a call must be over, on the ``time.monotonic()`` clock."""

    at: float

    def remaining(self) -> float:
        return self.at - time.monotonic()


class DeadlineAdapter(HTTPAdapter):
    """Sends with timeouts cut to the call's deadline and reads the body within it."""

    def __init__(
        self, timeout: tuple[float, float], total: float, max_body: int, pool_size: int
    ) -> None:
        super().__init__(pool_connections=pool_size, pool_maxsize=pool_size)
        self._connect_timeout, self._read_timeout = timeout
        self._total = total
        self._max_body = max_body

    def send(
        self,
        request: requests.PreparedRequest,
        stream: bool = False,
        timeout: Deadline | float | tuple[float, float] | tuple[float, None] | None = None,
        verify: bool | str = True,
        cert: Any = None,
        proxies: Any = None,
    ) -> requests.Response:
        """Send ``request`` (once per redirect hop); the body is always read before returning."""
        deadline = (
            timeout if isinstance(timeout, Deadline) else Deadline(time.monotonic() + self._total)
        )
        left = self._left(deadline, request)
        response = super().send(
            request,
            stream=True,
            verify=verify,
            cert=cert,
            proxies=proxies,
            timeout=(min(self._connect_timeout, left), min(self._read_timeout, left)),
        )
        response._content = self._read_body(response, deadline)
        # As requests marks a body it has read, so iter_content() serves these bytes too.
        setattr(response, "_content_consumed", True)  # noqa: B010 - untyped in types-requests
        return response

    def _left(self, deadline: Deadline, request: requests.PreparedRequest) -> float:
        left = deadline.remaining()
        if left <= 0:
            raise TotalTimeout(f"no complete response within {self._total:g} s", request=request)
        return left

    def _read_body(self, response: requests.Response, deadline: Deadline) -> bytes:
        declared = _declared_length(response)
        if declared is not None and declared > self._max_body:
            response.close()
            raise BodyTooLarge(
                f"response body of {declared} bytes exceeds {self._max_body}", response=response
            )
        try:
            body = self._read_chunks(response, deadline)
        except (TotalTimeout, BodyTooLarge):
            response.close()
            raise
        except ReadTimeoutError as exc:
            response.close()
            raise requests.ReadTimeout(exc, request=response.request) from exc
        except DecodeError as exc:
            response.close()
            raise requests.exceptions.ContentDecodingError(exc, response=response) from exc
        except Urllib3Error as exc:
            response.close()
            raise requests.ConnectionError(exc, request=response.request) from exc
        response.raw.release_conn()
        return body

    def _read_chunks(self, response: requests.Response, deadline: Deadline) -> bytes:
        # read1 makes one socket read (more only within a compressed or chunked frame), so
        # the deadline is checked again after at most one read timeout of min(read, left).
        raw = response.raw
        chunks: list[bytes] = []
        size = 0
        while True:
            left = self._left(deadline, response.request)
            _set_socket_timeout(raw, min(self._read_timeout, left))
            try:
                chunk = raw.read1(_READ_SIZE, decode_content=True)
            except ReadTimeoutError as exc:
                if left < self._read_timeout:  # what timed out was the deadline
                    raise TotalTimeout(
                        f"no complete response within {self._total:g} s", request=response.request
                    ) from exc
                raise
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self._max_body:
                raise BodyTooLarge(
                    f"response body exceeds {self._max_body} bytes", response=response
                )
            chunks.append(chunk)


def _set_socket_timeout(raw: Any, seconds: float) -> None:
    # urllib3 sets the socket's timeout again for the next request on this connection.
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        sock.settimeout(seconds)


class TimeoutSession(requests.Session):
    """A pooled session whose every call, redirects and body included, ends within ``total``
    seconds; connect and read timeouts bound each step. Bodies over ``max_body`` bytes are
    refused with BodyTooLarge. A ``timeout`` given by the caller is replaced.

    requests reads the environment on every call (``trust_env``): the CA bundle and proxy
    variables, and ``~/.netrc`` -- about a quarter of a warm call. Here the CA bundle
    (REQUESTS_CA_BUNDLE, else CURL_CA_BUNDLE) is read when the session is built; the proxy
    variables, if any are set then, once per origin (NO_PROXY by requests' own rules); and
    ``~/.netrc`` never: every call brings its own credentials."""

    def __init__(
        self, timeout: tuple[float, float], *, total: float, max_body: int, pool_size: int = 20
    ) -> None:
        super().__init__()
        self._total = total
        adapter = DeadlineAdapter(timeout, total, max_body, pool_size)
        self.mount("https://", adapter)
        self.mount("http://", adapter)
        self.trust_env = False
        self.verify = (
            os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        )
        self._proxy_variables = bool(getproxies())
        self._origin_proxies: dict[tuple[str, str], dict[str, str]] = {}

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs["timeout"] = Deadline(time.monotonic() + self._total)
        if self._proxy_variables:
            kwargs["proxies"] = {**self._environment_proxies(url), **(kwargs.get("proxies") or {})}
        return super().request(method, url, *args, **kwargs)

    def _environment_proxies(self, url: str | bytes) -> dict[str, str]:
        text = url.decode("ascii") if isinstance(url, bytes) else url
        parts = urlsplit(text)
        origin = (parts.scheme, parts.netloc)
        if origin not in self._origin_proxies:
            self._origin_proxies[origin] = get_environ_proxies(text)
        return self._origin_proxies[origin]


def _declared_length(response: requests.Response) -> int | None:
    """The Content-Length a response declares, or None when absent or malformed."""
    value = response.headers.get("Content-Length")
    if value is None:
        return None
    try:
        return decimal_integer(value.strip(" \t"), low=0, high=10**18, max_length=18)
    except Malformed:
        return None


def json_object(response: requests.Response) -> dict[str, Any]:
    """The response body as a JSON object; ValueError if it is anything else."""
    data = json.loads(response.content)
    if not isinstance(data, dict):
        raise ValueError("response body is not a JSON object")
    return data


def parse_retry_after(value: str | None, default: int, ceiling: int = 3600) -> int:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), 1..ceiling."""
    if not value:
        return default
    value = value.strip(" \t")
    try:
        return max(1, delta_seconds(value, ceiling=ceiling))
    except Malformed:
        pass
    try:
        when = http_date(value)
    except Malformed:
        return default
    seconds = when - time.time()
    return max(1, min(int(seconds), ceiling))
