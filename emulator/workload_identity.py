"""The emulated AKS cluster's service account tokens (workload identity): its signing keys and
the token file the kubelet projects into the pod, which the API reads as its client assertion.

AKS publishes the cluster's keys at its OIDC issuer URL, and Entra fetches them from there; the
emulator's Entra is handed the keys when the emulator is composed (`ServiceAccountIssuer.keys`).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any, cast

from flask import Blueprint, Flask, Response, current_app, jsonify, request

from emulator.control.endpoints import bad_request
from emulator.directory import (
    TOKEN_EXCHANGE_AUDIENCE,
    WORKLOAD_IDENTITY_ISSUER,
    WORKLOAD_IDENTITY_SUBJECT,
)
from emulator.signing import KeyRing
from emulator.state_dir import exclusive, write_atomically

EXTENSION_KEY = "emulator.workload_identity"
KEYS_FILE = "workload-identity-keys.json"
# The azure-workload-identity webhook projects tokens with expirationSeconds 3600; the kubelet
# writes a new one when 80% of that has passed.
TOKEN_LIFETIME = 3600
MAX_LIFETIME = 24 * 3600

bp = Blueprint("workload_identity", __name__, url_prefix="/_emulator/workload-identity")


class ServiceAccountIssuer:
    """Signs service account tokens as the cluster's API server does."""

    def __init__(self, state_dir: Path) -> None:
        with exclusive(state_dir):
            self.keys = KeyRing(state_dir / KEYS_FILE)

    def issue(
        self,
        *,
        lifetime: int = TOKEN_LIFETIME,
        subject: str = WORKLOAD_IDENTITY_SUBJECT,
        audience: str = TOKEN_EXCHANGE_AUDIENCE,
        issuer: str = WORKLOAD_IDENTITY_ISSUER,
    ) -> str:
        """A projected service account token; a negative `lifetime` gives an expired one."""
        now = int(time.time())
        expires = now + lifetime
        issued = min(now, expires - TOKEN_LIFETIME)  # a token near its end was issued earlier
        namespace, _, name = subject.removeprefix("system:serviceaccount:").partition(":")
        claims: dict[str, Any] = {
            "aud": [audience],
            "exp": expires,
            "iat": issued,
            "iss": issuer,
            "jti": str(uuid.uuid4()),
            "kubernetes.io": {
                "namespace": namespace,
                "pod": {"name": f"{name}-7d9c5b8f6-x2k4p", "uid": str(uuid.uuid4())},
                "serviceaccount": {
                    "name": name,
                    "uid": str(uuid.uuid5(uuid.NAMESPACE_URL, subject)),
                },
            },
            "nbf": issued,
            "sub": subject,
        }
        return self.keys.signer.sign(claims)

    def write_token_file(self, path: Path, **options: Any) -> str:
        """Write a new token to `path` as the kubelet does (the whole file at once); returns
        the token."""
        token = self.issue(**options)
        write_atomically(path, token.encode("ascii"), mode=0o600)
        return token


def init_app(app: Flask, issuer: ServiceAccountIssuer) -> None:
    app.extensions[EXTENSION_KEY] = issuer
    app.register_blueprint(bp)


def issuer_of(app: Flask) -> ServiceAccountIssuer:
    return cast(ServiceAccountIssuer, app.extensions[EXTENSION_KEY])


@bp.post("/tokens")
def mint_token() -> Response | tuple[Response, int]:
    """A service account token: {"lifetime": seconds} (optional; negative: expired)."""
    spec = request.get_json(silent=True)
    spec = {} if spec is None else spec
    lifetime = spec.get("lifetime", TOKEN_LIFETIME) if isinstance(spec, dict) else None
    if (
        not isinstance(lifetime, int)
        or isinstance(lifetime, bool)
        or not (-MAX_LIFETIME <= lifetime <= MAX_LIFETIME)
    ):
        return bad_request(f"lifetime must be an integer from -{MAX_LIFETIME} to {MAX_LIFETIME}")
    token = issuer_of(current_app).issue(lifetime=lifetime)
    return jsonify(
        {"token": token, "issuer": WORKLOAD_IDENTITY_ISSUER, "subject": WORKLOAD_IDENTITY_SUBJECT}
    )
