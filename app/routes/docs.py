"""The API's OpenAPI document and a Swagger UI to try it, both without authentication.

Swagger UI's files come from the npm package swagger-ui-dist (``npm ci`` in the project root
installs it into node_modules); nothing is loaded from a CDN. Only the files the page needs
are served, by name, and the page runs no inline script, so its Content-Security-Policy can
forbid inline scripts and every other origin.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from flask import Blueprint, Response, current_app, jsonify, request, send_from_directory
from flask.blueprints import BlueprintSetupState
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import NotFound

from app.errors import ApiError
from app.openapi import build_document

bp = Blueprint("docs", __name__)

PAGE_DIR = Path(__file__).resolve().parent.parent / "api_docs"
SWAGGER_UI_DIR = Path(__file__).resolve().parents[2] / "node_modules" / "swagger-ui-dist"
# The files under /docs/ and their types: ours from PAGE_DIR, the rest from swagger-ui-dist.
OWN_FILES = {"swagger-init.js": "text/javascript"}
SWAGGER_UI_FILES = {
    "swagger-ui-bundle.js": "text/javascript",
    "swagger-ui.css": "text/css",
    "favicon-16x16.png": "image/png",
    "favicon-32x32.png": "image/png",
}
# Swagger UI sets styles from script (allowed) and draws icons as data: images.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)


class SwaggerUiMissing(ApiError):
    status = 404
    error = "not_found"
    description = (
        "Swagger UI is not installed: run `npm ci` in the project root "
        "(it installs swagger-ui-dist into node_modules), then reload"
    )


@dataclass(frozen=True)
class SwaggerUi:
    """Where this app finds swagger-ui-dist's files."""

    directory: Path

    def installed(self) -> bool:
        return all((self.directory / name).is_file() for name in SWAGGER_UI_FILES)


def _register(state: BlueprintSetupState) -> None:
    state.app.extensions["swagger_ui"] = SwaggerUi(SWAGGER_UI_DIR)


bp.record_once(_register)


def _swagger_ui() -> SwaggerUi:
    swagger_ui: SwaggerUi = current_app.extensions["swagger_ui"]
    return swagger_ui


@bp.get("/openapi.json")
def openapi() -> ResponseReturnValue:
    """The OpenAPI 3.1 document, with this deployment's audience, scope and tenant."""
    return jsonify(
        build_document(
            realm=current_app.config["AUTH_REALM"],
            scope=current_app.config["API_SCOPE"],
            authority=current_app.config.get("AUTH_AUTHORITY"),
            server_url=request.script_root or "/",
        )
    )


@bp.get("/docs")
def page() -> ResponseReturnValue:
    """Swagger UI for the document."""
    if not _swagger_ui().installed():
        raise SwaggerUiMissing()
    return send_from_directory(PAGE_DIR, "index.html", mimetype="text/html")


@bp.get("/docs/<name>")
def asset(name: str) -> ResponseReturnValue:
    """One of the page's files, by name from the allow-list."""
    if name in OWN_FILES:
        return send_from_directory(PAGE_DIR, name, mimetype=OWN_FILES[name])
    if name not in SWAGGER_UI_FILES:
        raise NotFound()
    swagger_ui = _swagger_ui()
    if not swagger_ui.installed():
        raise SwaggerUiMissing()
    return send_from_directory(swagger_ui.directory, name, mimetype=SWAGGER_UI_FILES[name])


@bp.after_request
def _content_security_policy(response: Response) -> Response:
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
    return response
