"""Liveness and readiness probes (no authentication)."""

from __future__ import annotations

from flask import Blueprint, current_app, jsonify
from flask.typing import ResponseReturnValue

from app.errors import ServiceUnavailable

bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> ResponseReturnValue:
    """The process is up; makes no outbound call."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz() -> ResponseReturnValue:
    """Ready once the tenant's metadata and signing keys are loaded."""
    keys = current_app.extensions["auth"].keys
    if not keys.ready():
        raise ServiceUnavailable("signing keys are not loaded yet", retry_after=5)
    return jsonify(status="ready", keys=len(keys.current.keys))
