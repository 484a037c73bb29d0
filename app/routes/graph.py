"""Microsoft Graph on behalf of the signed-in user."""

from __future__ import annotations

from flask import Blueprint, jsonify, request
from flask.typing import ResponseReturnValue

from app.auth import current_caller, require_auth
from app.downstream import downstream
from app.errors import BadRequest
from app.parsing import Malformed, decimal_integer

bp = Blueprint("graph", __name__, url_prefix="/api")

MAX_QUERY_VALUE = 2048


@bp.get("/me")
@require_auth()
def me() -> ResponseReturnValue:
    """The caller's Graph profile."""
    return jsonify(downstream().get(current_caller(), "graph", "/me"))


@bp.get("/users")
@require_auth()
def users() -> ResponseReturnValue:
    """Users of the tenant; $top, $select and $filter are passed on to Graph."""
    return jsonify(downstream().get(current_caller(), "graph", "/users", _graph_query()))


def _graph_query() -> dict[str, str]:
    query: dict[str, str] = {}
    top = request.args.get("$top")
    if top is not None:
        try:
            query["$top"] = str(decimal_integer(top, low=1, high=999, max_length=3))
        except Malformed:
            raise BadRequest("$top must be an integer from 1 to 999") from None
    for name in ("$select", "$filter"):
        value = request.args.get(name)
        if value is not None:
            if not value.strip() or len(value) > MAX_QUERY_VALUE:
                raise BadRequest(
                    f"{name} must be non-empty and at most {MAX_QUERY_VALUE} characters")
            query[name] = value
    return query
