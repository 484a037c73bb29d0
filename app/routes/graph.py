"""Microsoft Graph on behalf of the signed-in user."""

from __future__ import annotations

import logging
import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

from flask import Blueprint, jsonify, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import MultiDict

from app.auth import current_caller, require_auth
from app.downstream import downstream
from app.errors import BadRequest
from app.parsing import Malformed, decimal_integer

log = logging.getLogger(__name__)

bp = Blueprint("graph", __name__, url_prefix="/api")

# gunicorn refuses a request line over 8190 bytes before the API sees it. Every parameter at
# its longest, each UTF-8 byte percent-encoded (3 characters), still fits:
# 3 x (1024 + 1024 + 512) plus names and the rest of the line is 7750 bytes.
MAX_QUERY_BYTES = 1024  # $select, $filter: UTF-8 bytes
MAX_SKIPTOKEN_LENGTH = 512  # $skiptoken: ASCII characters
QUERY_OPTIONS = ("$top", "$select", "$filter", "$skiptoken")
# Graph's $skiptoken is opaque; these cover the forms it takes (base64, base64url, X'hex').
_SKIPTOKEN = re.compile(r"[A-Za-z0-9._~'()*!+/=-]+")
# Graph's URLs in a body: of no use to the API's clients, whose token is not for Graph.
_CONTEXT, _NEXT_LINK = "@odata.context", "@odata.nextLink"


@bp.get("/me")
@require_auth()
def me() -> ResponseReturnValue:
    """The caller's Graph profile."""
    profile = downstream().get(current_caller(), "graph", "/me")
    profile.pop(_CONTEXT, None)
    return jsonify(profile)


@bp.get("/users")
@require_auth()
def users() -> ResponseReturnValue:
    """One page of the tenant's users; $top, $select, $filter and $skiptoken are passed on to
    Graph, and Graph's link to the next page becomes the API's own."""
    query = _graph_query(request.args)
    page = downstream().get(current_caller(), "graph", "/users", query)
    page.pop(_CONTEXT, None)
    skiptoken = _next_skiptoken(page.pop(_NEXT_LINK, None))
    if skiptoken is not None:
        same_query: dict[str, Any] = {**query, "$skiptoken": skiptoken}
        page[_NEXT_LINK] = url_for("graph.users", **same_query)
    return jsonify(page)


def _graph_query(args: MultiDict[str, str]) -> dict[str, str]:
    """The OData query options to pass on to Graph, each given at most once and checked."""
    for name in QUERY_OPTIONS:
        if len(args.getlist(name)) > 1:
            raise BadRequest(f"{name} may be given only once")
    query: dict[str, str] = {}
    if "$top" in args:
        query["$top"] = _top(args["$top"])
    for name in ("$select", "$filter"):
        if name in args:
            query[name] = _odata_text(name, args[name])
    if "$skiptoken" in args:
        query["$skiptoken"] = _skiptoken(args["$skiptoken"])
    return query


def _top(value: str) -> str:
    try:
        return str(decimal_integer(value, low=1, high=999, max_length=3))
    except Malformed:
        raise BadRequest("$top must be an integer from 1 to 999") from None


def _odata_text(name: str, value: str) -> str:
    if not value.strip() or len(value.encode("utf-8")) > MAX_QUERY_BYTES:
        raise BadRequest(f"{name} must be non-blank and at most {MAX_QUERY_BYTES} bytes in UTF-8")
    return value


def _skiptoken(value: str) -> str:
    if not _is_skiptoken(value):
        raise BadRequest(
            f"$skiptoken must be 1 to {MAX_SKIPTOKEN_LENGTH} letters, digits or "
            "-._~'()*!+/=, as the API's @odata.nextLink gives it"
        )
    return value


def _is_skiptoken(value: str) -> bool:
    return len(value) <= MAX_SKIPTOKEN_LENGTH and _SKIPTOKEN.fullmatch(value) is not None


def _next_skiptoken(link: object) -> str | None:
    """The $skiptoken of Graph's link to the next page, if any. A link anywhere else, or one
    the API could not take back, is dropped: a client is never handed a downstream URL."""
    if link is None:
        return None
    skiptoken = _skiptoken_of_users_link(link)
    if skiptoken is None:
        log.warning(
            "dropped graph's @odata.nextLink: not a page of %s/users the API can pass on",
            downstream().base_url("graph"),
        )
    return skiptoken


def _skiptoken_of_users_link(link: object) -> str | None:
    if not isinstance(link, str):
        return None
    expected = urlsplit(f"{downstream().base_url('graph')}/users")
    parts = urlsplit(link)
    if (parts.scheme, parts.netloc, parts.path) != (
        expected.scheme,
        expected.netloc,
        expected.path,
    ):
        return None
    values = parse_qs(parts.query).get("$skiptoken", [])
    return values[0] if len(values) == 1 and _is_skiptoken(values[0]) else None
