"""Outbound HTTP: pooled sessions that always time out, and bounded response reading."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import requests
from requests.adapters import HTTPAdapter


class TimeoutSession(requests.Session):
    """A pooled session whose requests time out unless the caller says otherwise."""

    def __init__(self, timeout: tuple[float, float], pool_size: int = 20) -> None:
        super().__init__()
        self._timeout = timeout
        adapter = HTTPAdapter(pool_connections=pool_size, pool_maxsize=pool_size)
        self.mount("https://", adapter)
        self.mount("http://", adapter)

    def request(
        self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any
    ) -> requests.Response:
        kwargs.setdefault("timeout", self._timeout)
        return super().request(method, url, *args, **kwargs)


class BodyTooLarge(ValueError):
    """A response body exceeded the size we are willing to hold in memory."""


def read_body(response: requests.Response, limit: int) -> bytes:
    """Read at most ``limit`` bytes of a streamed response, or raise BodyTooLarge."""
    length = response.headers.get("Content-Length", "")
    if length.isdigit() and int(length) > limit:
        response.close()
        raise BodyTooLarge(f"response body of {length} bytes exceeds {limit}")
    chunks: list[bytes] = []
    size = 0
    for chunk in response.iter_content(chunk_size=65536):
        size += len(chunk)
        if size > limit:
            response.close()
            raise BodyTooLarge(f"response body exceeds {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def read_json_object(response: requests.Response, limit: int) -> dict[str, Any]:
    """Read a bounded JSON object body; raise ValueError if it is anything else."""
    data = json.loads(read_body(response, limit))
    if not isinstance(data, dict):
        raise ValueError("response body is not a JSON object")
    return data


def parse_retry_after(value: str | None, default: int, ceiling: int = 3600) -> int:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date)."""
    if not value:
        return default
    value = value.strip()
    if value.isdigit():
        return max(1, min(int(value), ceiling))
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return default
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    seconds = int((when - datetime.now(UTC)).total_seconds())
    return max(1, min(seconds, ceiling))
