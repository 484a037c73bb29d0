"""Microsoft Graph v1.0 endpoints: /me, /users (with paging and query options), /users/{id}."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, request

from emulator.control import current_control, serves
from emulator.directory import GRAPH, find_user, users_in
from emulator.graph.query import GraphQueryError, parse_select, parse_user_query, project
from emulator.graph.responses import WWW_AUTHENTICATE, add_graph_headers, graph_error, graph_json
from emulator.resource_auth import BearerRejected, Principal, authenticate_bearer, cae_challenge
from emulator.state import current_state

bp = Blueprint("graph", __name__, url_prefix="/v1.0")
bp.after_request(add_graph_headers)
COUNTERS = ("graph",)

READ_SELF_SCOPES = frozenset(
    {"User.Read", "User.ReadWrite", "User.ReadBasic.All", "User.Read.All", "Directory.Read.All"}
)
READ_ALL_SCOPES = frozenset({"User.ReadBasic.All", "User.Read.All", "Directory.Read.All"})
READ_ALL_ROLES = frozenset({"User.Read.All", "Directory.Read.All"})

_REJECTIONS = {
    "missing": "Access token is empty.",
    "malformed": "IDX14100: JWT is not well formed, there are no dots (.).",
    "signature": "Access token validation failure. Invalid signature.",
    "issuer": "Access token validation failure. Invalid issuer.",
    "audience": "Access token validation failure. Invalid audience.",
    "expired": "Lifetime validation failed, the token is expired.",
}
CAE_MESSAGE = (
    "Continuous access evaluation resulted in challenge with result: InteractionRequired "
    "and code: TokenCreatedWithOutdatedPolicies"
)

View = Callable[..., Response]


def _authenticated(view: View) -> View:
    """Run `view` for the token's principal, or answer as Graph does (401 + challenge)."""

    @functools.wraps(view)
    def wrapper(**path_args: str) -> Response:
        try:
            principal = authenticate_bearer(
                current_state().keys,
                GRAPH.identifier_uris,
                server_names=current_state().server_names,
            )
        except BearerRejected as exc:
            return graph_error(
                401,
                "InvalidAuthenticationToken",
                _REJECTIONS[exc.kind],
                {"WWW-Authenticate": WWW_AUTHENTICATE},
            )
        if claims := cae_challenge(current_control(), "graph", principal):
            challenge = f'{WWW_AUTHENTICATE}, error="insufficient_claims", claims="{claims}"'
            return graph_error(
                401, "InvalidAuthenticationToken", CAE_MESSAGE, {"WWW-Authenticate": challenge}
            )
        try:
            return view(principal, **path_args)
        except GraphQueryError as exc:
            return graph_error(400, exc.code, exc.message)

    return wrapper


def _denied() -> Response:
    return graph_error(
        403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation."
    )


def _context(fragment: str, select: tuple[str, ...] | None, suffix: str = "") -> str:
    columns = f"({','.join(select)})" if select else ""
    return f"{request.host_url}v1.0/$metadata#{fragment}{columns}{suffix}"


@bp.get("/me")
@serves("graph")
@_authenticated
def me(principal: Principal) -> Response:
    if principal.is_app:
        return graph_error(
            400, "BadRequest", "/me request is only valid with delegated authentication flow."
        )
    if not principal.scopes & READ_SELF_SCOPES:
        return _denied()
    user = find_user(str(principal.claims.get("oid", "")), principal.tenant_id)
    if user is None:
        return _not_found(str(principal.claims.get("oid")))
    select = parse_select(request.args.get("$select"))
    body = {"@odata.context": _context("users", select, "/$entity")}
    return graph_json(body | project(user.graph_properties(), select))


@bp.get("/users")
@serves("graph")
@_authenticated
def list_users(principal: Principal) -> Response:
    if not (principal.scopes & READ_ALL_SCOPES or principal.roles & READ_ALL_ROLES):
        return _denied()
    query = parse_user_query(request.args)
    users = [u.graph_properties() for u in users_in(principal.tenant_id)]
    if query.predicate is not None:
        users = [u for u in users if query.predicate(u)]
    end = query.offset + query.top
    body: dict[str, Any] = {"@odata.context": _context("users", query.select)}
    if end < len(users):
        body["@odata.nextLink"] = query.next_link(request.host_url.rstrip("/"), end)
    body["value"] = [project(u, query.select) for u in users[query.offset : end]]
    return graph_json(body)


@bp.get("/users/<path:key>")
@serves("graph")
@_authenticated
def get_user(principal: Principal, key: str) -> Response:
    user = find_user(key, principal.tenant_id)
    own = user is not None and user.id == principal.claims.get("oid")
    allowed = principal.scopes & (READ_SELF_SCOPES if own else READ_ALL_SCOPES)
    if not (allowed or principal.roles & READ_ALL_ROLES):
        return _denied()
    if user is None:
        return _not_found(key)
    select = parse_select(request.args.get("$select"))
    body = {"@odata.context": _context("users", select, "/$entity")}
    return graph_json(body | project(user.graph_properties(), select))


def _not_found(key: str) -> Response:
    return graph_error(
        404,
        "Request_ResourceNotFound",
        f"Resource '{key}' does not exist or one of its queried reference-property objects "
        "are not present.",
    )
