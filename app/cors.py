"""Cross-origin access for browser frontends (single-page apps on another origin).

Off unless ``CORS_ALLOWED_ORIGINS`` lists origins. The API takes bearer tokens, never
cookies, so credentials are not allowed; refusals carry the CORS headers too, because a SPA
can read a claims challenge or a back-off only from a response its browser lets it see.
"""

from __future__ import annotations

from flask import Flask, Response
from flask_cors import CORS

ALLOWED_HEADERS = ["Authorization", "Content-Type", "X-Request-ID"]
# WWW-Authenticate carries the claims challenge; Retry-After the back-off.
EXPOSED_HEADERS = ["WWW-Authenticate", "Retry-After", "X-Request-ID"]
PREFLIGHT_MAX_AGE_SECONDS = 600


def init_app(app: Flask, allowed_origins: tuple[str, ...]) -> None:
    """Answer preflights and add CORS headers for ``allowed_origins`` (exact matches)."""
    if not allowed_origins:
        return
    CORS(
        app,
        origins=list(allowed_origins),
        methods=["GET", "HEAD", "OPTIONS"],
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        supports_credentials=False,
        max_age=PREFLIGHT_MAX_AGE_SECONDS,
        vary_header=True,
        send_wildcard=allowed_origins == ("*",),
    )
    if allowed_origins != ("*",):
        app.after_request(_vary_on_origin)


def _vary_on_origin(response: Response) -> Response:
    # flask-cors omits Vary for a single allowed origin, but the answer still depends on the
    # Origin header (a disallowed origin gets no Access-Control-Allow-Origin), so say so.
    response.vary.add("Origin")
    return response
