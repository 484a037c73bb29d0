"""The README's error contract as assertions, one copy for every suite.

Works on Flask test responses and on ``requests`` responses alike (both have
``status_code``, ``headers`` and ``text``; ``json`` is a property on one, a method on the other).
"""

from __future__ import annotations

import base64
import json
import re
from typing import Any

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*")


def response_json(response: Any) -> Any:
    """The parsed JSON body of a Flask or ``requests`` response."""
    body = response.json
    return body() if callable(body) else body


def challenge_params(header: str) -> dict[str, str]:
    """Parse ``Bearer a="b", c="d"`` into a dict (and check the scheme)."""
    assert header.startswith("Bearer "), header
    params = {}
    for part in header[len("Bearer ") :].split('", '):
        key, _, value = part.partition("=")
        params[key] = value.strip('"')
    return params


def assert_error_shape(response: Any) -> dict[str, Any]:
    """What every refusal has: a JSON object with non-empty ``error`` and
    ``error_description`` strings, ``Cache-Control: no-store``, a Bearer challenge on a 401
    (RFC 9110 section 15.5.2), and no token in the body. Returns the body."""
    assert 400 <= response.status_code < 600, response.status_code
    assert response.headers["Content-Type"] == "application/json", response.headers
    assert response.headers["Cache-Control"] == "no-store"
    body = response_json(response)
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), str) and body["error"], body
    assert isinstance(body.get("error_description"), str) and body["error_description"], body
    if response.status_code == 401:
        assert response.headers.get("WWW-Authenticate", "").startswith("Bearer realm="), (
            "a 401 without a Bearer challenge"
        )
    assert not JWT_SHAPE.search(response.text), "a token in the response body"
    return body


def assert_refusal(
    response: Any,
    status: int,
    error: str,
    *,
    description: str = "",
    challenge: str | None = None,
    retry_after: int | range | None = None,
) -> dict[str, Any]:
    """Status, JSON body (``error``, a telling part of ``error_description``) and headers.

    ``challenge``: the ``error`` of the WWW-Authenticate challenge, "" for a bare challenge
    (realm only), None for no header.
    ``retry_after``: the exact seconds (or a range of them), None for no header.
    Returns the body.
    """
    assert response.status_code == status, (response.status_code, response.text)
    body = assert_error_shape(response)
    assert body["error"] == error, body
    assert description in body["error_description"], body
    if challenge is None:
        assert "WWW-Authenticate" not in response.headers, response.headers["WWW-Authenticate"]
    else:
        params = challenge_params(response.headers["WWW-Authenticate"])
        assert params["realm"], params
        if challenge:
            assert params["error"] == challenge, params
            assert params["error_description"] == body["error_description"], params
        else:
            assert "error" not in params, params
    if retry_after is None:
        assert "Retry-After" not in response.headers
    else:
        seconds = int(response.headers["Retry-After"])
        expected = (
            retry_after if isinstance(retry_after, range) else range(retry_after, retry_after + 1)
        )
        assert seconds in expected, f"Retry-After {seconds}, expected {expected}"
    return body


def challenge_claims(response: Any) -> dict[str, Any]:
    """The decoded ``claims`` of a WWW-Authenticate insufficient_claims challenge."""
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["error"] == "insufficient_claims", params
    claims: dict[str, Any] = json.loads(base64.b64decode(params["claims"]))
    return claims
