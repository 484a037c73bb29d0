"""Opaque refresh tokens: encrypted, bound to a user and a client, valid across restarts.

Refresh tokens issued to a single-page app (through a `spa` redirect URI) live for a fixed
24 hours from the sign-in, whatever their rotations, and each may be redeemed once.
"""

from __future__ import annotations

import json
import secrets
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.fernet import Fernet, InvalidToken

from emulator.state_dir import write_atomically

REFRESH_KEY_FILE = "refresh-token.key"
# Entra's refresh tokens expire after 90 days of inactivity; a SPA's after 24 hours.
REFRESH_TOKEN_LIFETIME = 90 * 24 * 3600
SPA_REFRESH_TOKEN_LIFETIME = 24 * 3600
_PREFIX = "0."

RejectionReason = Literal["malformed", "expired", "spa_expired", "redeemed"]


class RefreshTokenRejected(Exception):
    def __init__(self, reason: RejectionReason, grant: RefreshGrant | None = None) -> None:
        super().__init__(reason)
        self.reason: RejectionReason = reason
        self.grant = grant


@dataclass(frozen=True)
class RefreshGrant:
    user_id: str
    tenant_id: str
    client_id: str
    issued_at: float  # when this token was issued
    signed_in_at: float  # when the sign-in it comes from happened
    mfa: bool  # whether that sign-in satisfied MFA
    spa: bool  # issued to a single-page app: fixed lifetime, single use
    token_id: str


class RefreshTokenCodec:
    def __init__(self, key_path: Path) -> None:
        if not key_path.is_file():
            write_atomically(key_path, Fernet.generate_key(), mode=0o600)
        self._fernet = Fernet(key_path.read_bytes().strip())
        self._lock = threading.Lock()
        self._redeemed: dict[str, float] = {}  # SPA token id -> when it stops mattering

    def issue(
        self,
        *,
        user_id: str,
        tenant_id: str,
        client_id: str,
        mfa: bool = False,
        spa: bool = False,
        signed_in_at: float | None = None,
    ) -> str:
        now = time.time()
        body = {
            "oid": user_id,
            "tid": tenant_id,
            "cid": client_id,
            "iat": now,
            "auth": now if signed_in_at is None else signed_in_at,
            "mfa": mfa,
            "spa": spa,
            "jti": secrets.token_urlsafe(16),
        }
        return _PREFIX + self._fernet.encrypt(json.dumps(body).encode()).decode("ascii")

    def read(self, token: str) -> RefreshGrant:
        """The grant a token carries, without redeeming it."""
        return self._decode(token)

    def redeem(self, token: str, now: float | None = None) -> RefreshGrant:
        """The grant a token carries; a SPA's token is spent by this call."""
        moment = time.time() if now is None else now
        grant = self._decode(token)
        if grant.spa:
            if moment - grant.signed_in_at > SPA_REFRESH_TOKEN_LIFETIME:
                raise RefreshTokenRejected("spa_expired", grant)
            self._spend(grant, moment)
        elif moment - grant.issued_at > REFRESH_TOKEN_LIFETIME:
            raise RefreshTokenRejected("expired", grant)
        return grant

    def _decode(self, token: str) -> RefreshGrant:
        if not token.startswith(_PREFIX):
            raise RefreshTokenRejected("malformed")
        try:
            body = json.loads(self._fernet.decrypt(token[len(_PREFIX) :].encode("ascii")))
            issued_at = float(body["iat"])
            return RefreshGrant(
                str(body["oid"]),
                str(body["tid"]),
                str(body["cid"]),
                issued_at,
                float(body.get("auth", issued_at)),
                bool(body.get("mfa")),
                bool(body.get("spa")),
                str(body.get("jti", "")),
            )
        except (InvalidToken, UnicodeEncodeError, ValueError, KeyError, TypeError) as exc:
            raise RefreshTokenRejected("malformed") from exc

    def _spend(self, grant: RefreshGrant, now: float) -> None:
        with self._lock:
            self._redeemed = {k: v for k, v in self._redeemed.items() if v > now}
            if grant.token_id in self._redeemed:
                raise RefreshTokenRejected("redeemed", grant)
            self._redeemed[grant.token_id] = grant.signed_in_at + SPA_REFRESH_TOKEN_LIFETIME
