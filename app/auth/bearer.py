"""Extract the bearer token from a request (RFC 6750 section 2)."""

from __future__ import annotations

import re

from flask import Request

from app.auth.tokens import MAX_TOKEN_LENGTH
from app.errors import AuthenticationRequired, InvalidRequest

_TOKEN68 = re.compile(r"^[A-Za-z0-9\-._~+/]+=*$")


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
    scheme, _, rest = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        raise AuthenticationRequired("the Authorization scheme must be Bearer")
    parts = rest.split()
    if not parts:
        raise InvalidRequest("the Bearer token is empty")
    if len(parts) > 1:
        raise InvalidRequest("the Authorization header carries more than one token")
    token = parts[0]
    if len(token) > MAX_TOKEN_LENGTH:
        raise InvalidRequest(f"the token is longer than {MAX_TOKEN_LENGTH} characters")
    if not _TOKEN68.match(token):
        raise InvalidRequest("the token has characters outside the RFC 6750 token grammar")
    return token
