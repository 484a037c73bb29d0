"""The application factory."""

from __future__ import annotations

from collections.abc import Mapping

from flask import Flask, Response

from app import auth, cors, downstream, errors, observability, routes
from app.config import load_settings, read_environment
from app.logs import configure_logging

MAX_REQUEST_BYTES = 64 * 1024


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """Build the API from ``env`` (default: the process environment after loading .env)."""
    settings = load_settings(read_environment() if env is None else env)
    configure_logging(settings.log_level, settings.log_format)
    app = Flask(__name__, static_folder=None)  # no static files: no /static route
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
    observability.init_app(app)
    errors.init_app(app)
    state = auth.init_app(app, settings)
    downstream.init_app(app, settings, state.tokens)
    routes.init_app(app)
    cors.init_app(app, settings.cors_allowed_origins)
    app.after_request(_security_headers)
    return app


def _security_headers(response: Response) -> Response:
    # Responses carry user data; no browser or proxy may keep them.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Content-Type-Options"] = "nosniff"
    return response
