"""Entra's part of the control plane (/_emulator/, JSON): token lifetime, the SPA's redirect
URIs, user tokens minted without a sign-in (optionally as if after MFA), and client
certificates for the API."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Response, jsonify, request

from emulator.control.endpoints import bad_request
from emulator.directory import API_SCOPE, find_user
from emulator.entra.issuance import mint_user_token
from emulator.entra.key_credentials import TRUSTS
from emulator.entra.redirect_uris import InvalidRedirectUri
from emulator.entra.runtime import checked_token_lifetime, current_entra
from emulator.state import current_state

bp = Blueprint("entra_controls", __name__, url_prefix="/_emulator")
MAX_MINTED_LIFETIME = 24 * 3600


@bp.get("/settings")
def get_settings() -> Response:
    return jsonify({"token_lifetime": current_entra().token_lifetime})


@bp.post("/settings")
def update_settings() -> Response | tuple[Response, int]:
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict) or "token_lifetime" not in spec:
        return bad_request("the body must be a JSON object with token_lifetime")
    try:
        current_entra().token_lifetime = checked_token_lifetime(spec["token_lifetime"])
    except ValueError as exc:
        return bad_request(str(exc))
    return get_settings()


@bp.get("/spa/redirect-uris")
def list_redirect_uris() -> Response:
    return jsonify({"redirect_uris": current_entra().redirect_uris.all()})


@bp.post("/spa/redirect-uris")
def add_redirect_uris() -> Response | tuple[Response, int]:
    """Register more redirect URIs (type spa) for the frontend: {"redirect_uris": [...]}."""
    spec = request.get_json(silent=True)
    uris = spec.get("redirect_uris") if isinstance(spec, dict) else None
    if not isinstance(uris, list) or not uris:
        return bad_request("the body must be a JSON object with a non-empty redirect_uris list")
    try:
        current_entra().redirect_uris.add(*uris)
    except InvalidRedirectUri as exc:
        return bad_request(str(exc))
    return list_redirect_uris()


@bp.post("/tokens")
def mint_token() -> Response | tuple[Response, int]:
    """A user's access token for the API, as the SPA would hold it: {"user": "dave",
    "scope": "access_as_user", "mfa": true, "lifetime": 3600} (all but user optional)."""
    spec = request.get_json(silent=True)
    if not isinstance(spec, dict):
        return bad_request("the body must be a JSON object")
    user = find_user(spec["user"]) if isinstance(spec.get("user"), str) else None
    if user is None:
        return bad_request("user must name a user of the directory")
    options = _mint_options(spec)
    if isinstance(options, str):
        return bad_request(options)
    token = mint_user_token(
        current_state().keys, current_entra(), request.host_url.rstrip("/"), user, **options
    )
    return jsonify({"access_token": token})


@bp.post("/client-certificates")
def new_client_certificate() -> Response | tuple[Response, int]:
    """A new certificate for the API: {"trust": "thumbprint" | "subject_issuer" | "none",
    "password": null, "expired": false} (all optional). The answer holds the PEM file's text
    (private key included) and the thumbprints the portal would list."""
    spec = request.get_json(silent=True)
    spec = {} if spec is None else spec
    if not isinstance(spec, dict):
        return bad_request("the body must be a JSON object")
    trust, password, expired = (
        spec.get("trust", "thumbprint"),
        spec.get("password"),
        spec.get("expired", False),
    )
    if trust not in TRUSTS:
        return bad_request(f"trust must be one of {', '.join(TRUSTS)}")
    if password is not None and (not isinstance(password, str) or not password):
        return bad_request("password must be a non-empty string or null")
    if not isinstance(expired, bool):
        return bad_request("expired must be true or false")
    made = current_entra().new_client_certificate(trust, password=password, expired=expired)
    return jsonify(
        {
            "pem": made.pem,
            "trust": made.trust,
            "subject": made.subject,
            "thumbprint_sha1": made.thumbprint_sha1,
            "thumbprint_sha256": made.thumbprint_sha256,
        }
    ), 201


def _mint_options(spec: dict[str, Any]) -> dict[str, Any] | str:
    """The optional fields, checked; a message for the first bad one."""
    scope, mfa, lifetime = (
        spec.get("scope", API_SCOPE),
        spec.get("mfa", False),
        spec.get("lifetime", 3600),
    )
    if not isinstance(scope, str) or not scope.strip():
        return "scope must be a non-empty string"
    if not isinstance(mfa, bool):
        return "mfa must be true or false"
    if (
        not isinstance(lifetime, int)
        or isinstance(lifetime, bool)
        or not (-MAX_MINTED_LIFETIME <= lifetime <= MAX_MINTED_LIFETIME)
    ):
        return f"lifetime must be an integer from -{MAX_MINTED_LIFETIME} to {MAX_MINTED_LIFETIME}"
    return {"scope": scope, "mfa": mfa, "lifetime": lifetime}
