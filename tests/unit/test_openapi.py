"""The OpenAPI document at /openapi.json and the Swagger UI at /docs.

The document must be valid OpenAPI 3.1, describe exactly the app's routes (the documentation
routes themselves excepted), state the bounds the code enforces and every error the code can
send.
"""

from __future__ import annotations

import re
import runpy
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from openapi_spec_validator import validate

from app import create_app
from app.errors import ApiError, DownstreamError
from app.routes.docs import CONTENT_SECURITY_POLICY, SWAGGER_UI_FILES, SwaggerUi
from tests.support.stubs import BASE_ENV, StubServices
from tests.support.tokens import AUTHORITY_HOST, REALM, TENANT_ID, TokenFactory, bearer

API_OPERATIONS = ("/api/me", "/api/users", "/api/subscriptions")
# Not described by the document: the documentation itself.
UNDOCUMENTED_BLUEPRINTS = ("docs",)
GUNICORN_CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc=)[^>]*>", re.IGNORECASE)


@pytest.fixture()
def document(client: FlaskClient) -> dict[str, Any]:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    body: dict[str, Any] = response.json
    return body


@pytest.fixture()
def swagger_ui(app: Flask, tmp_path: Path) -> Path:
    """A stand-in for node_modules/swagger-ui-dist, so these tests need no npm install."""
    for name in SWAGGER_UI_FILES:
        (tmp_path / name).write_text(f"/* {name} */", encoding="utf-8")
    (tmp_path / "index.html").write_text("<script>alert(1)</script>", encoding="utf-8")
    app.extensions["swagger_ui"] = SwaggerUi(tmp_path)
    return tmp_path


def documented_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    return {(path, method.upper()) for path, item in document["paths"].items() for method in item}


def routed_operations(app: Flask) -> set[tuple[str, str]]:
    operations = set()
    for rule in app.url_map.iter_rules():
        if rule.endpoint.partition(".")[0] in UNDOCUMENTED_BLUEPRINTS:
            continue
        path = re.sub(r"<(?:[^:<>]+:)?([^<>]+)>", r"{\1}", rule.rule)
        operations.update(
            (path, method) for method in rule.methods or () if method not in ("HEAD", "OPTIONS")
        )
    return operations


def error_values(document: dict[str, Any], status: str) -> list[str]:
    """The ``error`` values /api/me documents for ``status``."""
    name = document["paths"]["/api/me"]["get"]["responses"][status]["$ref"].rpartition("/")[2]
    schema = document["components"]["responses"][name]["content"]["application/json"]["schema"]
    values: list[str] = schema["allOf"][1]["properties"]["error"]["enum"]
    return values


def api_errors(cls: type[ApiError] = ApiError) -> list[type[ApiError]]:
    """Every error class of app.errors, subclasses included."""
    found = []
    for sub in cls.__subclasses__():
        if sub.__module__ == "app.errors":
            found.append(sub)
        found.extend(api_errors(sub))
    return found


# --- the document ---------------------------------------------------------------------------


def test_document_is_valid_openapi_3_1_served_without_a_token(client: FlaskClient) -> None:
    response = client.get("/openapi.json")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in response.headers
    assert response.json["openapi"] == "3.1.0"
    validate(response.json)


def test_document_lists_exactly_the_apps_routes(app: Flask, document: dict[str, Any]) -> None:
    assert documented_operations(document) == routed_operations(app)
    assert documented_operations(document) == {
        ("/api/me", "GET"),
        ("/api/users", "GET"),
        ("/api/subscriptions", "GET"),
        ("/healthz", "GET"),
        ("/readyz", "GET"),
    }


def test_security_comes_from_the_settings(document: dict[str, Any]) -> None:
    bearer_scheme = document["components"]["securitySchemes"]["bearer"]
    assert bearer_scheme["type"] == "http" and bearer_scheme["scheme"] == "bearer"
    assert f"`{REALM}/access_as_user`" in bearer_scheme["description"]
    assert document["security"] == [{"bearer": []}]
    assert document["servers"] == [{"url": "/"}]
    for path in API_OPERATIONS:
        assert "security" not in document["paths"][path]["get"]  # the document's default
    for path in ("/healthz", "/readyz"):
        assert document["paths"][path]["get"]["security"] == []


def test_another_scope_and_the_authority_are_reflected(stubs: StubServices) -> None:
    app = create_app({**BASE_ENV, "API_SCOPE": "Files.Read"})
    authority = f"{AUTHORITY_HOST}/{TENANT_ID}"
    app.config["AUTH_AUTHORITY"] = authority
    document = app.test_client().get("/openapi.json").json
    validate(document)
    scope = f"{REALM}/Files.Read"
    flow = document["components"]["securitySchemes"]["entra"]["flows"]["authorizationCode"]
    assert flow == {
        "authorizationUrl": f"{authority}/oauth2/v2.0/authorize",
        "tokenUrl": f"{authority}/oauth2/v2.0/token",
        "scopes": {scope: "Call this API on behalf of the signed-in user"},
    }
    assert document["security"] == [{"bearer": []}, {"entra": [scope]}]


def test_every_error_class_is_documented_on_every_api_route(document: dict[str, Any]) -> None:
    classes = api_errors()
    assert DownstreamError in classes and len(classes) > 10
    for cls in classes:
        if cls is DownstreamError:  # its status is the downstream API's 4xx
            continue
        assert cls.error in error_values(document, str(cls.status)), cls.__name__
    for status in ("400", "403"):
        assert "downstream_error" in error_values(document, status)
    assert "downstream_error" not in error_values(document, "401")  # a 401 is about the token
    for path in API_OPERATIONS:
        responses = document["paths"][path]["get"]["responses"]
        assert set(responses) == {
            "200",
            "400",
            "401",
            "403",
            "429",
            "500",
            "502",
            "503",
            "504",
            "4XX",
        }
        assert responses["4XX"] == {"$ref": "#/components/responses/DownstreamError"}


@pytest.mark.parametrize(
    ("status", "header", "component", "required"),
    [
        ("400", "WWW-Authenticate", "OptionalChallenge", False),
        ("401", "WWW-Authenticate", "Challenge", True),
        ("403", "WWW-Authenticate", "OptionalChallenge", False),
        ("429", "Retry-After", "Retry-After", True),
        ("503", "Retry-After", "Retry-After", True),
    ],
)
def test_error_headers_are_documented(
    document: dict[str, Any], status: str, header: str, component: str, required: bool
) -> None:
    name = document["paths"]["/api/me"]["get"]["responses"][status]["$ref"].rpartition("/")[2]
    response = document["components"]["responses"][name]
    assert response["headers"][header] == {"$ref": f"#/components/headers/{component}"}
    assert document["components"]["headers"][component]["required"] is required
    assert response["headers"]["Cache-Control"] == {"$ref": "#/components/headers/Cache-Control"}


def test_error_schema_is_the_contracts_body(document: dict[str, Any]) -> None:
    error = document["components"]["schemas"]["Error"]
    assert error["required"] == ["error", "error_description"]
    assert set(error["properties"]) == {"error", "error_description", "claims", "downstream"}
    assert error["additionalProperties"] is False


def test_success_schemas(document: dict[str, Any]) -> None:
    schemas = document["components"]["schemas"]
    users = schemas["UserCollection"]
    assert users["required"] == ["value"]
    assert users["properties"]["@odata.nextLink"]["type"] == "string"
    assert users["properties"]["value"]["items"] == {"$ref": "#/components/schemas/User"}
    subscriptions = schemas["SubscriptionList"]
    assert subscriptions["required"] == ["value"]
    assert subscriptions["properties"]["truncated"] == {
        "const": True,
        "description": subscriptions["properties"]["truncated"]["description"],
    }


# --- the bounds in the document are the ones the code enforces -------------------------------


def users_parameter(document: dict[str, Any], name: str) -> dict[str, Any]:
    parameters = document["paths"]["/api/users"]["get"]["parameters"]
    schema: dict[str, Any] = next(p["schema"] for p in parameters if p["name"] == name)
    return schema


def test_top_bounds_are_the_codes(
    client: FlaskClient, document: dict[str, Any], tokens: TokenFactory
) -> None:
    schema = users_parameter(document, "$top")
    assert (schema["type"], schema["minimum"], schema["maximum"]) == ("integer", 1, 999)
    token = bearer(tokens.valid())
    for value, status in [
        (schema["minimum"], 200),
        (schema["maximum"], 200),
        (schema["minimum"] - 1, 400),
        (schema["maximum"] + 1, 400),
    ]:
        response = client.get(f"/api/users?$top={value}", headers=token)
        assert response.status_code == status, (value, response.json)


@pytest.mark.parametrize("name", ["$select", "$filter"])
def test_text_bounds_are_the_codes(
    client: FlaskClient, document: dict[str, Any], tokens: TokenFactory, name: str
) -> None:
    schema = users_parameter(document, name)
    # The code counts UTF-8 bytes, which a schema cannot: maxLength is that cap in characters
    # of 4 bytes, so every value the schema allows is accepted.
    assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 1, 256)
    assert "At most 1024 bytes in UTF-8" in users_description(document, name)
    token = bearer(tokens.valid())
    longest = "\U0001f600" * schema["maxLength"]
    for value, status in [
        (longest, 200),
        ("a" * 1024, 200),
        (longest + "a", 400),
        ("a" * 1025, 400),
        (" \t", 400),
        ("", 400),
    ]:
        documented = (
            schema["minLength"] <= len(value) <= schema["maxLength"]
            and re.search(schema["pattern"], value) is not None
        )
        if documented:
            assert status == 200, len(value)
        response = client.get("/api/users", query_string={name: value}, headers=token)
        assert response.status_code == status, (len(value), response.json)
        if status == 400:
            assert response.json["error"] == "invalid_request"


def test_skiptoken_bounds_are_the_codes(
    client: FlaskClient, document: dict[str, Any], tokens: TokenFactory
) -> None:
    schema = users_parameter(document, "$skiptoken")
    assert (schema["type"], schema["minLength"], schema["maxLength"]) == ("string", 1, 512)
    token = bearer(tokens.valid())
    for value in ["A" * 512, "A" * 513, "", "X'4453'", "a b", "a%b", "\u00e9", "Ab0-._~()*!+/="]:
        documented = (
            len(value) <= schema["maxLength"]
            and re.fullmatch(schema["pattern"].strip("^$"), value) is not None
        )
        response = client.get("/api/users", query_string={"$skiptoken": value}, headers=token)
        assert response.status_code == (200 if documented else 400), (value, response.json)


def test_every_parameter_at_its_longest_fits_the_request_line(
    client: FlaskClient, document: dict[str, Any], tokens: TokenFactory, tmp_cwd: Path
) -> None:
    # gunicorn answers 414 (text/html, before the API sees the request) to a request line over
    # limit_request_line; the longest documented values, each byte percent-encoded, fit it.
    limit = runpy.run_path(str(GUNICORN_CONFIG))["limit_request_line"]
    values = {
        "$top": str(users_parameter(document, "$top")["maximum"]),
        "$select": "\U0001f600" * users_parameter(document, "$select")["maxLength"],
        "$filter": "\U0001f600" * users_parameter(document, "$filter")["maxLength"],
        "$skiptoken": "=" * users_parameter(document, "$skiptoken")["maxLength"],
    }
    query = "&".join(
        f"{percent_encoded(name)}={percent_encoded(value)}" for name, value in values.items()
    )
    assert len(f"GET /api/users?{query} HTTP/1.1") <= limit
    response = client.get(f"/api/users?{query}", headers=bearer(tokens.valid()))
    assert response.status_code == 200, response.json


def percent_encoded(text: str) -> str:
    """Every byte percent-encoded: the longest a client can make it."""
    return "".join(f"%{byte:02X}" for byte in text.encode("utf-8"))


def users_description(document: dict[str, Any], name: str) -> str:
    parameters = document["paths"]["/api/users"]["get"]["parameters"]
    description: str = next(p["description"] for p in parameters if p["name"] == name)
    return description


# --- Swagger UI ---------------------------------------------------------------------------------


def test_docs_page_runs_no_inline_script(client: FlaskClient, swagger_ui: Path) -> None:
    response = client.get("/docs", buffered=True)  # buffered: the file is closed
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Content-Security-Policy"] == CONTENT_SECURITY_POLICY
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "default-src 'none';" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY
    page = response.get_data(as_text=True)
    assert not INLINE_SCRIPT.search(page)
    assert re.findall(r'<script src="([^"]+)"', page) == [
        "docs/swagger-ui-bundle.js",
        "docs/swagger-init.js",
    ]
    assert not re.search(r"(?:https?:)?//", page)  # nothing from another origin


def test_init_script_loads_the_document_and_nothing_else(client: FlaskClient) -> None:
    response = client.get("/docs/swagger-init.js", buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/javascript; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store"
    script = response.get_data(as_text=True)
    assert 'url: "openapi.json"' in script
    assert "validatorUrl: null" in script  # the default is a badge from another site
    assert "http" not in script


@pytest.mark.parametrize(
    ("name", "content_type"),
    [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8"),
        ("swagger-ui.css", "text/css; charset=utf-8"),
        ("favicon-32x32.png", "image/png"),
        ("favicon-16x16.png", "image/png"),
    ],
)
def test_allowed_swagger_ui_files_are_served(
    client: FlaskClient, swagger_ui: Path, name: str, content_type: str
) -> None:
    response = client.get(f"/docs/{name}", buffered=True)
    assert response.status_code == 200
    assert response.headers["Content-Type"] == content_type
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.get_data(as_text=True) == f"/* {name} */"


@pytest.mark.parametrize(
    "name",
    [
        "index.html",
        "swagger-initializer.js",
        "package.json",
        "swagger-ui-bundle.js.map",
        "..%2Fpackage.json",
        "%2e%2e",
        "SWAGGER-UI.CSS",
    ],
)
def test_other_files_are_not_served(client: FlaskClient, swagger_ui: Path, name: str) -> None:
    response = client.get(f"/docs/{name}")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.json["error"] == "not_found"


@pytest.mark.parametrize("path", ["/docs", "/docs/swagger-ui-bundle.js"])
def test_missing_swagger_ui_says_to_run_npm_ci(
    app: Flask, client: FlaskClient, tmp_path: Path, path: str
) -> None:
    app.extensions["swagger_ui"] = SwaggerUi(tmp_path / "node_modules" / "swagger-ui-dist")
    response = client.get(path)
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json"
    assert response.headers["Cache-Control"] == "no-store"
    assert "WWW-Authenticate" not in response.headers
    assert response.json["error"] == "not_found"
    assert "run `npm ci` in the project root" in response.json["error_description"]
