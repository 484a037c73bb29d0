"""require_auth with app roles, and the claims accessor."""

from __future__ import annotations

from flask import Flask, jsonify
from flask.testing import FlaskClient
from flask.typing import ResponseReturnValue

from app.auth import current_claims, require_auth
from tests.support.contract import challenge_params
from tests.support.stubs import StubServices
from tests.support.tokens import TokenFactory, bearer


def add_routes(app: Flask) -> FlaskClient:
    @app.get("/api/reports")
    @require_auth(roles=["Reports.Read.All", "Reports.Admin"])
    def reports() -> ResponseReturnValue:
        return jsonify(oid=current_claims()["oid"], roles=current_claims()["roles"])

    @app.get("/api/files")
    @require_auth(scope="Files.Read")
    def files() -> ResponseReturnValue:
        return jsonify(scp=current_claims()["scp"])

    return app.test_client()


def test_app_role_route_accepts_an_app_token(
    app: Flask, stubs: StubServices, tokens: TokenFactory
) -> None:
    client = add_routes(app)
    response = client.get("/api/reports", headers=bearer(tokens.app_only()))
    assert response.status_code == 200
    assert response.json["roles"] == ["Reports.Read.All"]
    assert response.headers["Cache-Control"] == "no-store"
    assert stubs.token_calls == 0


def test_app_role_route_refuses_a_token_without_the_role(app: Flask, tokens: TokenFactory) -> None:
    client = add_routes(app)
    response = client.get("/api/reports", headers=bearer(tokens.valid()))
    assert response.status_code == 403
    assert response.json["error"] == "insufficient_scope"
    assert "Reports.Read.All Reports.Admin" in response.json["error_description"]
    params = challenge_params(response.headers["WWW-Authenticate"])
    assert params["scope"] == "Reports.Read.All Reports.Admin"


def test_route_specific_scope_is_exact_and_case_sensitive(app: Flask, tokens: TokenFactory) -> None:
    client = add_routes(app)
    ok = client.get("/api/files", headers=bearer(tokens.valid(scp="User.Read Files.Read")))
    assert ok.status_code == 200
    assert ok.json == {"scp": "User.Read Files.Read"}
    for scp in ("files.read", "Files.ReadWrite", "Files.Read.All", "access_as_user"):
        response = client.get("/api/files", headers=bearer(tokens.valid(scp=scp)))
        assert response.status_code == 403, scp
        assert response.json["error"] == "insufficient_scope"
        assert challenge_params(response.headers["WWW-Authenticate"])["scope"] == "Files.Read"
