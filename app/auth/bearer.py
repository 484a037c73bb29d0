"""Extract the bearer token from a request (RFC 6750 section 2)."""

from __future__ import annotations

import re

from flask import Request

from app.auth.tokens import MAX_TOKEN_LENGTH
from app.errors import AuthenticationRequired, InvalidRequest

_TOKEN68 = re.compile(r"[A-Za-z0-9\-._~+/]+=*")
_SEPARATOR = re.compile(r"[ \t]+")
# WSGI servers join repeated headers with a comma, so a second Bearer credential shows here.
_JOINED_BEARER = re.compile(r",[ \t]*bearer(?:[ \t]|$)", re.IGNORECASE)


def bearer_token(request: Request) -> str:
    """The token from ``Authorization: Bearer <token>``; the only place a token is accepted."""
    headers = request.headers.getlist("Authorization")
    in_query = "access_token" in request.args
    in_form = request.mimetype == "application/x-www-form-urlencoded" and (
        "access_token" in request.form
    )
    if not headers:
        if in_query or in_form:
            raise AuthenticationRequired(
                "tokens in the query string or form body are not accepted; "
                "send Authorization: Bearer <token>"
            )
        raise AuthenticationRequired()
    if len(headers) > 1:
        raise InvalidRequest("more than one Authorization header")
    if in_query or in_form:
        # RFC 6750: a client MUST NOT use more than one method to transmit the token.
        raise InvalidRequest("token sent both in the Authorization header and the request")
    return _parse_header(headers[0])


def _parse_header(value: str) -> str:
    if _JOINED_BEARER.search(value):
        raise InvalidRequest("the Authorization header carries more than one token")
    # HTTP whitespace is SP and HTAB only; str.strip() and split() would also eat VT, NBSP, NEL.
    credentials = value.strip(" \t")
    separator = _SEPARATOR.search(credentials)
    scheme = credentials[: separator.start()] if separator else credentials
    if scheme.lower() != "bearer":
        raise AuthenticationRequired("the Authorization scheme must be Bearer")
    token = credentials[separator.end() :] if separator else ""
    if not token:
        raise InvalidRequest("the Bearer token is empty")
    if _SEPARATOR.search(token):
        raise InvalidRequest("the Authorization header carries more than one token")
    if separator and "\t" in separator.group():
        # RFC 6750 section 2.1 is "Bearer" 1*SP b64token: a tab makes the header malformed.
        raise InvalidRequest("the Bearer scheme must be followed by spaces, not tabs")
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidRequest(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    if not _TOKEN68.fullmatch(token):
        raise InvalidRequest("the token has characters outside the RFC 6750 token grammar")
    return token
