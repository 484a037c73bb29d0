"""Azure Resource Manager on behalf of the signed-in user."""

from __future__ import annotations

from flask import Blueprint, jsonify
from flask.typing import ResponseReturnValue

from app.auth import current_caller, require_auth
from app.downstream import downstream

bp = Blueprint("arm", __name__, url_prefix="/api")

SUBSCRIPTIONS_API_VERSION = "2022-12-01"


@bp.get("/subscriptions")
@require_auth()
def subscriptions() -> ResponseReturnValue:
    """Every subscription the caller can see, all pages joined."""
    return jsonify(
        downstream().get_all(
            current_caller(), "arm", "/subscriptions", {"api-version": SUBSCRIPTIONS_API_VERSION}
        )
    )
