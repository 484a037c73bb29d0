"""The ``require_auth`` route decorator and accessors for the authenticated caller."""

from __future__ import annotations

import functools
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar, cast

from flask import current_app, g, request

from app.auth.bearer import bearer_token
from app.auth.tokens import Claims, TokenValidator
from app.errors import InsufficientScope

log = logging.getLogger(__name__)

View = TypeVar("View", bound=Callable[..., Any])


@dataclass(frozen=True)
class Caller:
    """The validated caller of the current request."""

    token: str
    claims: Claims

    @property
    def expires_at(self) -> float:
        return float(self.claims["exp"])


def token_id(token: str) -> str:
    """A short, non-reversible name for a token, safe to log."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()[:12]


def require_auth(*, scope: str | None = None, roles: Sequence[str] = ()) -> Callable[[View], View]:
    """Require a valid access token with a delegated ``scope`` (default API_SCOPE) or, when
    ``roles`` is given, one of those app roles."""

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            token = bearer_token(request)
            g.token_id = token_id(token)
            validator: TokenValidator = current_app.extensions["auth"].validator
            claims = validator.validate(token)
            # Verified claims, known before authorization: a refused scope still names its caller.
            g.claims = claims
            if roles:
                _require_role(claims, roles)
            else:
                _require_scope(claims, scope or current_app.config["API_SCOPE"])
            g.caller = Caller(token, claims)
            log.debug(
                "accepted token %s oid=%s tid=%s azp=%s",
                g.token_id,
                claims.get("oid"),
                claims.get("tid"),
                claims.get("azp"),
            )
            return view(*args, **kwargs)

        return cast(View, wrapper)

    return decorator


def _require_scope(claims: Claims, scope: str) -> None:
    """Authorization on verified claims: a delegated (user) token carrying ``scope``."""
    scp = claims.get("scp")
    if scp is None:
        raise InsufficientScope(
            "app-only token: this route acts on behalf of a user and needs a delegated token "
            f"with the {scope} scope",
            scope=scope,
        )
    if scope not in scp.split(" "):
        raise InsufficientScope(f"the token lacks the {scope} scope", scope=scope)


def _require_role(claims: Claims, roles: Sequence[str]) -> None:
    granted = set(claims.get("roles") or [])
    if not granted.intersection(roles):
        wanted = " ".join(roles)
        raise InsufficientScope(f"the token lacks an app role among: {wanted}", scope=wanted)


def current_caller() -> Caller:
    """The caller validated by ``require_auth`` for this request."""
    caller: Caller = g.caller
    return caller


def current_claims() -> Claims:
    """The verified claims of the caller's access token."""
    return current_caller().claims
