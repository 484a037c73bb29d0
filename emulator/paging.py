"""Opaque continuation tokens ($skiptoken) for the fake Graph and ARM list endpoints."""

from __future__ import annotations

import json

from emulator.encoding import b64url, b64url_decode

_PREFIX = "RU1V"


def encode_skiptoken(offset: int) -> str:
    return _PREFIX + b64url(json.dumps({"offset": offset}).encode())


def decode_skiptoken(token: str) -> int:
    """The offset a token stands for; ValueError for a token this emulator did not make."""
    if not token.startswith(_PREFIX):
        raise ValueError("not an emulator skip token")
    try:
        offset = json.loads(b64url_decode(token[len(_PREFIX):]))["offset"]
    except (KeyError, TypeError) as exc:
        raise ValueError("not an emulator skip token") from exc
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise ValueError("not an emulator skip token")
    return offset
