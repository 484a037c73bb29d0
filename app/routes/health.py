"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app.auth.keys import KeysUnavailable, SigningKeyCache
from app.errors import ServiceUnavailable, render

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is up; makes no outbound call."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready once the tenant's metadata and signing keys are loaded."""
    keys: SigningKeyCache = current_app.extensions["auth"].keys
    try:
        issuer = keys.issuer()  # loads metadata and keys if they are not loaded yet
    except KeysUnavailable as exc:
        # Rendered here, not raised: a probe polls, and the key cache already logs each failed
        # load attempt; a warning per poll would bury it.
        return render(
            ServiceUnavailable("signing keys are not loaded yet", retry_after=exc.retry_after)
        )
    loaded = keys.current
    return jsonify(status="ready", issuer=issuer, keys=len(loaded.keys) if loaded else 0)
