"""The OData query options the fake Graph understands on /users: $top, $select, $filter
(startswith and eq, joined by and/or) and $skiptoken."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from emulator.signing import b64url, b64url_decode

DEFAULT_TOP = 100
MAX_TOP = 999
USER_PROPERTIES = (
    "businessPhones",
    "displayName",
    "givenName",
    "jobTitle",
    "mail",
    "mobilePhone",
    "officeLocation",
    "preferredLanguage",
    "surname",
    "userPrincipalName",
    "id",
)
STARTSWITH_PROPERTIES = ("displayName", "givenName", "surname", "mail", "userPrincipalName")
EQ_PROPERTIES = (*STARTSWITH_PROPERTIES, "id", "jobTitle")

_QUOTED = r"'(?P<{name}>(?:[^']|'')*)'"
_CLAUSE = re.compile(
    r"\s*(?:startswith\(\s*(?P<sw>[A-Za-z]+)\s*,\s*" + _QUOTED.format(name="swv") + r"\s*\)"
    r"|(?P<eq>[A-Za-z]+)\s+eq\s+" + _QUOTED.format(name="eqv") + r")\s*",
    re.IGNORECASE,
)
_JOIN = re.compile(r"(and|or)\s+", re.IGNORECASE)
_SKIPTOKEN_PREFIX = "RU1V"

Predicate = Callable[[Mapping[str, Any]], bool]


class GraphQueryError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class UserQuery:
    top: int
    explicit_top: bool
    select: tuple[str, ...] | None
    filter_text: str | None
    predicate: Predicate | None
    offset: int

    def next_link(self, base: str, offset: int) -> str:
        params = [("$top", str(self.top))] if self.explicit_top else []
        if self.select:
            params.append(("$select", ",".join(self.select)))
        if self.filter_text:
            params.append(("$filter", self.filter_text))
        params.append(("$skiptoken", encode_skiptoken(offset)))
        query = "&".join(f"{k}={quote(v, safe=',()')}" for k, v in params)
        return f"{base}/v1.0/users?{query}"


def parse_user_query(args: Mapping[str, str]) -> UserQuery:
    filter_text = args.get("$filter")
    return UserQuery(
        top=_top(args.get("$top")),
        explicit_top="$top" in args,
        select=parse_select(args.get("$select")),
        filter_text=filter_text,
        predicate=_filter(filter_text) if filter_text else None,
        offset=_offset(args["$skiptoken"]) if "$skiptoken" in args else 0,
    )


def _top(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_TOP
    try:
        top = int(raw)
    except ValueError as exc:
        raise GraphQueryError("BadRequest", f"Invalid $top value '{raw}'.") from exc
    if not 1 <= top <= MAX_TOP:
        raise GraphQueryError(
            "Request_BadRequest",
            f"Invalid page size specified: '{raw}'. Must be between 1 and {MAX_TOP} inclusive.",
        )
    return top


def parse_select(raw: str | None) -> tuple[str, ...] | None:
    if raw is None:
        return None
    canonical = {p.lower(): p for p in USER_PROPERTIES}
    selected = []
    for name in (n.strip() for n in raw.split(",") if n.strip()):
        if name.lower() not in canonical:
            raise GraphQueryError(
                "BadRequest",
                f"Could not find a property named '{name}' on type 'microsoft.graph.user'.",
            )
        selected.append(canonical[name.lower()])
    return tuple(selected) or None


def project(user: Mapping[str, Any], select: tuple[str, ...] | None) -> dict[str, Any]:
    return dict(user) if select is None else {name: user[name] for name in select}


def _filter(text: str) -> Predicate:
    clauses: list[Predicate] = []
    joins: set[str] = set()
    pos = 0
    while True:
        match = _CLAUSE.match(text, pos)
        if match is None:
            raise GraphQueryError("Request_UnsupportedQuery", "Unsupported Query.")
        clauses.append(_clause(match))
        pos = match.end()
        if pos == len(text):
            break
        join = _JOIN.match(text, pos)
        if join is None:
            raise GraphQueryError("Request_UnsupportedQuery", "Unsupported Query.")
        joins.add(join.group(1).lower())
        pos = join.end()
    if len(joins) > 1:  # without parentheses the emulator will not guess precedence
        raise GraphQueryError("Request_UnsupportedQuery", "Unsupported Query.")
    combine = any if joins == {"or"} else all
    return lambda user: combine(clause(user) for clause in clauses)


def _clause(match: re.Match[str]) -> Predicate:
    if match.group("sw"):
        name = _property(match.group("sw"), STARTSWITH_PROPERTIES)
        prefix = match.group("swv").replace("''", "'").lower()
        return lambda user: str(user.get(name) or "").lower().startswith(prefix)
    name = _property(match.group("eq"), EQ_PROPERTIES)
    value = match.group("eqv").replace("''", "'").lower()
    return lambda user: str(user.get(name) or "").lower() == value


def _property(name: str, supported: tuple[str, ...]) -> str:
    for candidate in supported:
        if candidate.lower() == name.lower():
            return candidate
    raise GraphQueryError(
        "Request_UnsupportedQuery",
        f"Unsupported or invalid query filter clause specified for property '{name}' of "
        "resource 'User'.",
    )


def encode_skiptoken(offset: int) -> str:
    """An opaque $skiptoken for the page that starts at `offset`."""
    return _SKIPTOKEN_PREFIX + b64url(json.dumps({"offset": offset}).encode())


def _offset(token: str) -> int:
    expired = GraphQueryError(
        "Directory_ExpiredPageToken",
        "The specified page token value has expired and can no longer be included in your request.",
    )
    if not token.startswith(_SKIPTOKEN_PREFIX):
        raise expired
    try:
        offset = json.loads(b64url_decode(token[len(_SKIPTOKEN_PREFIX) :]))["offset"]
    except (ValueError, KeyError, TypeError) as exc:
        raise expired from exc
    if not isinstance(offset, int) or isinstance(offset, bool) or offset < 0:
        raise expired
    return offset
