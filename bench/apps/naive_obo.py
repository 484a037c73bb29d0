"""Bench only, not part of the product: the pattern of Microsoft's Python OBO sample.

As in Azure-Samples/ms-identity-python-on-behalf-of (FlaskAPI), every request fetches the
tenant's JWKS, verifies the token with the matching key, and calls
``acquire_token_on_behalf_of`` on one ConfidentialClientApplication with MSAL's default
cache, which that call never reads: one Entra exchange per request. The Graph call itself is
made like the API's (pooled), so the difference measured is the key fetch and the exchange.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Mapping
from typing import Any

import jwt
import msal
from flask import Flask, jsonify, request
from flask.typing import ResponseReturnValue

from bench.apps import TIMEOUT, pooled_session


def create_app(env: Mapping[str, str]) -> Flask:
    authority = f"{env['AZURE_AUTHORITY_HOST'].rstrip('/')}/{env['AZURE_TENANT_ID']}"
    client_id = env["AZURE_CLIENT_ID"]
    graph_url = env["GRAPH_URL"].rstrip("/")
    scopes = env.get("GRAPH_SCOPES", "https://graph.microsoft.com/.default").split()
    keys_session = pooled_session()
    graph_session = pooled_session()
    lock = threading.Lock()
    clients: list[Any] = []

    def confidential_client() -> Any:
        # The sample's singleton: created on first use, with MSAL's default token cache.
        with lock:
            if not clients:
                clients.append(
                    msal.ConfidentialClientApplication(
                        client_id,
                        client_credential=env["AZURE_CLIENT_SECRET"],
                        authority=authority,
                        instance_discovery=False,
                    )
                )
            return clients[0]

    def verified(token: str) -> dict[str, Any]:
        jwks = keys_session.get(f"{authority}/discovery/v2.0/keys", timeout=TIMEOUT).json()
        kid = jwt.get_unverified_header(token)["kid"]
        jwk = next(key for key in jwks["keys"] if key["kid"] == kid)
        claims: dict[str, Any] = jwt.decode(
            token,
            jwt.PyJWK(jwk, algorithm="RS256").key,
            algorithms=["RS256"],
            audience=client_id,
            issuer=f"{authority}/v2.0",
        )
        return claims

    app = Flask(__name__)

    @app.get("/api/me")
    def me() -> ResponseReturnValue:
        parts = request.headers.get("Authorization", "").split()
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return jsonify(error="unauthorized"), 401
        try:
            verified(parts[1])
        except (jwt.PyJWTError, StopIteration, KeyError):
            return jsonify(error="invalid_token"), 401
        result = confidential_client().acquire_token_on_behalf_of(parts[1], scopes)
        if "access_token" not in result:
            return jsonify(error=result.get("error")), 401
        headers = {
            "Authorization": f"Bearer {result['access_token']}",
            "Accept": "application/json",
        }
        with graph_session.get(
            f"{graph_url}/me", headers=headers, timeout=TIMEOUT, stream=True
        ) as response:
            body = response.content
        if response.status_code != 200:
            return jsonify(error="bad_gateway", status=response.status_code), 502
        return jsonify(json.loads(body))

    @app.get("/healthz")
    def healthz() -> ResponseReturnValue:
        return jsonify(status="ok")

    return app


app = create_app(os.environ)
