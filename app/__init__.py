"""The application factory."""

from __future__ import annotations

import os
from collections.abc import Mapping

from dotenv import load_dotenv
from flask import Flask, Response

from app import auth, cors, downstream, errors, routes
from app.config import load_settings
from app.logs import configure_logging

MAX_REQUEST_BYTES = 64 * 1024


def create_app(env: Mapping[str, str] | None = None) -> Flask:
    """Build the API from ``env`` (default: the process environment after loading .env)."""
    if env is None:
        load_dotenv()
        env = os.environ
    settings = load_settings(env)
    configure_logging()
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_REQUEST_BYTES
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
