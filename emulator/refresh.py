"""Opaque refresh tokens: encrypted, bound to a user and a client, valid across restarts."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from emulator.files import write_atomically

REFRESH_KEY_FILE = "refresh-token.key"
# Entra's refresh tokens expire after 90 days of inactivity.
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600
_PREFIX = "0."


class RefreshTokenRejected(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason  # "malformed" or "expired"


@dataclass(frozen=True)
class RefreshGrant:
    user_id: str
    tenant_id: str
    client_id: str
    issued_at: float
    mfa: bool  # whether the sign-in it came from satisfied MFA


class RefreshTokenCodec:
    def __init__(self, key_path: Path) -> None:
        if not key_path.is_file():
            write_atomically(key_path, Fernet.generate_key(), mode=0o600)
        self._fernet = Fernet(key_path.read_bytes().strip())

    def issue(self, *, user_id: str, tenant_id: str, client_id: str, mfa: bool = False) -> str:
        body = {"oid": user_id, "tid": tenant_id, "cid": client_id, "iat": time.time(), "mfa": mfa}
        return _PREFIX + self._fernet.encrypt(json.dumps(body).encode()).decode("ascii")

    def redeem(self, token: str, now: float | None = None) -> RefreshGrant:
        if not token.startswith(_PREFIX):
            raise RefreshTokenRejected("malformed")
        try:
            body = json.loads(self._fernet.decrypt(token[len(_PREFIX):].encode("ascii")))
        except (InvalidToken, UnicodeEncodeError, ValueError) as exc:
            raise RefreshTokenRejected("malformed") from exc
        grant = RefreshGrant(
            body["oid"], body["tid"], body["cid"], float(body["iat"]), bool(body.get("mfa")))
        if (now or time.time()) - grant.issued_at > REFRESH_TOKEN_LIFETIME:
            raise RefreshTokenRejected("expired")
        return grant
