"""Token validation, the require_auth decorator and On-Behalf-Of token acquisition."""

from __future__ import annotations

from dataclasses import dataclass

from flask import Flask

from app.auth.decorators import current_caller, current_claims, require_auth
from app.auth.keys import SigningKeyCache
from app.auth.obo import DownstreamTokenProvider
from app.auth.token_cache import PartitionedTokenCache
from app.auth.tokens import TokenValidator
from app.config import Settings
from app.http import TimeoutSession

__all__ = ["AuthState", "current_caller", "current_claims", "init_app", "require_auth"]


@dataclass(frozen=True)
class AuthState:
    keys: SigningKeyCache
    validator: TokenValidator
    tokens: DownstreamTokenProvider


def init_app(app: Flask, settings: Settings) -> AuthState:
    """Build the per-process auth parts and register them on ``app``."""
    keys = SigningKeyCache(
        settings.metadata_url,
        TimeoutSession(settings.http_timeout, pool_size=2),
        refresh_seconds=settings.keys_refresh_hours * 3600,
        min_refresh_seconds=settings.keys_min_refresh_seconds,
        cold_retry_seconds=settings.keys_cold_retry_seconds,
    )
    validator = TokenValidator(keys, settings.audiences, leeway=settings.clock_skew_seconds)
    tokens = DownstreamTokenProvider(
        settings, PartitionedTokenCache(max_users=settings.obo_cache_max_users)
    )
    state = AuthState(keys=keys, validator=validator, tokens=tokens)
    app.extensions["auth"] = state
    app.config["API_SCOPE"] = settings.api_scope
    app.config["AUTH_REALM"] = settings.realm
    return state
