"""Token validation, the require_auth decorator and On-Behalf-Of token acquisition."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from app.auth.decorators import Caller, current_caller, current_claims, require_auth
from app.auth.keys import MAX_DOCUMENT_BYTES, SigningKeyCache
from app.auth.obo import DownstreamTokenProvider
from app.auth.shared_cache import open_shared_cache
from app.auth.token_cache import PartitionedTokenCache
from app.auth.tokens import TokenValidator
from app.config import Settings
from app.http import TimeoutSession

__all__ = ["AuthState", "Caller", "current_caller", "current_claims", "init_app", "require_auth"]


@dataclass(frozen=True)
class AuthState:
    keys: SigningKeyCache
    validator: TokenValidator
    tokens: DownstreamTokenProvider


def init_app(app: Flask, settings: Settings) -> AuthState:
    """Build the per-process auth parts and register them on ``app``."""
    session = TimeoutSession(
        settings.http_timeout,
        total=settings.http_total_timeout,
        max_body=MAX_DOCUMENT_BYTES,
        pool_size=2,
    )
    keys = SigningKeyCache(
        settings.metadata_url, session, cold_retry_seconds=settings.keys_cold_retry_seconds
    )
    validator = TokenValidator(keys, settings.audiences)
    tokens = DownstreamTokenProvider(
        settings,
        PartitionedTokenCache(
            max_users=settings.obo_cache_max_users, shared=open_shared_cache(settings.token_cache)
        ),
    )
    state = AuthState(keys=keys, validator=validator, tokens=tokens)
    app.extensions["auth"] = state
    app.config["API_SCOPE"] = settings.api_scope
    app.config["AUTH_REALM"] = settings.realm
    return state
