"""Bench only, not part of the product: the Graph call of ``GET /api/me`` without the API.

One fixed Graph token (``BENCH_GRAPH_TOKEN``), no token validation, no On-Behalf-Of exchange;
the same pooled HTTPS session, streamed read, JSON parse and JSON answer as the API. Served
under the API's gunicorn settings, it is the ceiling the API is measured against.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping

from flask import Flask, jsonify
from flask.typing import ResponseReturnValue

from bench.apps import TIMEOUT, pooled_session


def create_app(env: Mapping[str, str]) -> Flask:
    graph_url = env["GRAPH_URL"].rstrip("/")
    headers = {"Authorization": f"Bearer {env['BENCH_GRAPH_TOKEN']}", "Accept": "application/json"}
    session = pooled_session()
    app = Flask(__name__)

    @app.get("/api/me")
    def me() -> ResponseReturnValue:
        with session.get(
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
