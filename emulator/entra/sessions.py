"""Interactive sign-in state: flows waiting for the user, browser sessions (the emulator's
cookie), and the authorization codes a finished sign-in hands to the app."""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field, replace
from typing import Generic, Literal, Protocol, TypeVar

from emulator.entra.authorization import AuthorizeRequest

FLOW_LIFETIME = 600.0  # a sign-in page left open longer must be started again
SESSION_LIFETIME = 24 * 3600.0
# Entra's authorization codes live about ten minutes.
CODE_LIFETIME = 600.0


class _Expires(Protocol):
    @property
    def expires_at(self) -> float: ...


T = TypeVar("T", bound=_Expires)


@dataclass(frozen=True)
class SignInFlow:
    """An authorize request waiting for the user to pick an account, pass MFA or consent."""

    id: str
    request: AuthorizeRequest
    expires_at: float
    user_id: str | None = None
    mfa_done: bool = False
    consented: bool = False


@dataclass(frozen=True)
class BrowserSession:
    id: str
    user_id: str
    tenant_id: str
    mfa: bool  # the sign-in that opened (or last refreshed) it included MFA
    signed_in_at: float
    expires_at: float


@dataclass(frozen=True)
class AuthorizationCode:
    """What a code stands for: who signed in, for which app, and how the app must redeem it."""

    client_id: str
    redirect_uri: str
    tenant_id: str
    user_id: str
    scope: str
    code_challenge: str
    nonce: str | None
    mfa: bool
    signed_in_at: float
    expires_at: float = 0.0


class CodeRejected(Exception):
    def __init__(self, reason: Literal["unknown", "redeemed", "expired"]) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class _Expiring(Generic[T]):
    """Items that vanish once past their `expires_at`; pruned whenever one is added."""

    items: dict[str, T] = field(default_factory=dict)

    def put(self, key: str, item: T, now: float) -> None:
        self.items = {k: v for k, v in self.items.items() if v.expires_at > now}
        self.items[key] = item

    def get(self, key: str, now: float) -> T | None:
        item = self.items.get(key)
        return item if item is not None and item.expires_at > now else None


class SignInStore:
    """Thread-safe, in memory: a restart signs everyone out, as a new browser profile would."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flows: _Expiring[SignInFlow] = _Expiring()
        self._sessions: _Expiring[BrowserSession] = _Expiring()
        self._codes: _Expiring[AuthorizationCode] = _Expiring()
        self._redeemed: _Expiring[AuthorizationCode] = _Expiring()

    # -- flows -------------------------------------------------------------------------------

    def start_flow(
        self, request: AuthorizeRequest, user_id: str | None = None, mfa_done: bool = False
    ) -> SignInFlow:
        now = time.time()
        flow = SignInFlow(
            secrets.token_urlsafe(24), request, now + FLOW_LIFETIME, user_id, mfa_done
        )
        with self._lock:
            self._flows.put(flow.id, flow, now)
        return flow

    def flow(self, flow_id: str) -> SignInFlow | None:
        with self._lock:
            return self._flows.get(flow_id, time.time())

    def save_flow(self, flow: SignInFlow) -> SignInFlow:
        """Keep the flow as the user's last answer left it."""
        with self._lock:
            self._flows.items[flow.id] = flow
        return flow

    def end_flow(self, flow_id: str) -> None:
        with self._lock:
            self._flows.items.pop(flow_id, None)

    # -- browser sessions --------------------------------------------------------------------

    def open_session(
        self, user_id: str, tenant_id: str, *, mfa: bool, previous: BrowserSession | None = None
    ) -> BrowserSession:
        """A session for this sign-in; the same user's session stays, now MFA'd if this was."""
        now = time.time()
        if previous is not None and previous.user_id == user_id:
            session = replace(previous, mfa=previous.mfa or mfa)
        else:
            session = BrowserSession(
                secrets.token_urlsafe(32), user_id, tenant_id, mfa, now, now + SESSION_LIFETIME
            )
        with self._lock:
            if previous is not None and previous.id != session.id:
                self._sessions.items.pop(previous.id, None)
            self._sessions.put(session.id, session, now)
        return session

    def session(self, session_id: str | None) -> BrowserSession | None:
        if not session_id:
            return None
        with self._lock:
            return self._sessions.get(session_id, time.time())

    def close_session(self, session_id: str | None) -> None:
        with self._lock:
            self._sessions.items.pop(session_id or "", None)

    # -- authorization codes -----------------------------------------------------------------

    def issue_code(self, grant: AuthorizationCode) -> str:
        now = time.time()
        code = "1." + secrets.token_urlsafe(48)
        with self._lock:
            self._codes.put(code, replace(grant, expires_at=now + CODE_LIFETIME), now)
        return code

    def redeem_code(self, code: str, now: float | None = None) -> AuthorizationCode:
        """The code's grant, spent by this call whatever happens next."""
        moment = time.time() if now is None else now
        with self._lock:
            grant = self._codes.items.pop(code, None)
            if grant is None:
                raise CodeRejected("redeemed" if self._redeemed.get(code, moment) else "unknown")
            self._redeemed.put(code, replace(grant, expires_at=moment + CODE_LIFETIME), moment)
        if grant.expires_at <= moment:
            raise CodeRejected("expired")
        return grant
