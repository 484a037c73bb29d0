"""The README's error contract as assertions, shared by the end-to-end tests."""

from __future__ import annotations

import base64
import json
import re
import uuid
from typing import Any

import jwt
import requests
from cryptography.hazmat.primitives.asymmetric import rsa

JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]*\.eyJ[A-Za-z0-9_-]*")
_FORGERY_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def assert_refusal(response: requests.Response, status: int, error: str, *,
                   description: str = "", challenge: str | None = None,
                   retry_after: int | range | None = None) -> dict[str, Any]:
    """Status, JSON body (``error``, a telling part of ``error_description``) and headers.

    ``challenge``: the ``error`` of the WWW-Authenticate challenge, "" for a bare challenge,
    None for no header.
    ``retry_after``: the exact seconds (or a range of them), None for no header.
    """
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json()
    assert body["error"] == error, body
    assert description in body["error_description"], body
    if challenge is None:
        assert "WWW-Authenticate" not in response.headers
    elif challenge:
        assert f'error="{challenge}"' in response.headers["WWW-Authenticate"]
    else:
        assert response.headers["WWW-Authenticate"].startswith("Bearer realm=")
        assert "error=" not in response.headers["WWW-Authenticate"]
    if retry_after is None:
        assert "Retry-After" not in response.headers
    else:
        seconds = int(response.headers["Retry-After"])
        expected = retry_after if isinstance(retry_after, range) else range(
            retry_after, retry_after + 1)
        assert seconds in expected, f"Retry-After {seconds}, expected {expected}"
    assert not JWT_SHAPE.search(response.text), "a token in the response body"
    return body


def challenge_claims(response: requests.Response) -> dict[str, Any]:
    """The decoded ``claims`` of a WWW-Authenticate insufficient_claims challenge."""
    header = response.headers["WWW-Authenticate"]
    assert header.startswith("Bearer ")
    assert 'error="insufficient_claims"' in header
    encoded = header.split('claims="')[1].split('"')[0]
    claims: dict[str, Any] = json.loads(base64.b64decode(encoded))
    return claims


def with_kid(token: str, kid: str | None = None, key: Any = None) -> str:
    """``token``'s claims signed again under ``kid`` (default: a random one), by ``key``
    (default: a key nobody publishes)."""
    claims = jwt.decode(token, options={"verify_signature": False})
    return jwt.encode(claims, key or _FORGERY_KEY, algorithm="RS256",
                      headers={"kid": kid or uuid.uuid4().hex})
