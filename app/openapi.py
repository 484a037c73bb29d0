"""The OpenAPI 3.1 description of the API's routes, built per request from the app's settings.

The parameter bounds repeat what ``app.routes.graph`` enforces, and the error responses what
``app.errors`` renders; ``tests/unit/test_openapi.py`` holds the document to both.
"""

from __future__ import annotations

from typing import Any, NamedTuple

Document = dict[str, Any]

TOP_MIN, TOP_MAX = 1, 999
MAX_QUERY_BYTES = 1024
MAX_SKIPTOKEN_LENGTH = 512
SKIPTOKEN_PATTERN = "^[A-Za-z0-9._~'()*!+/=-]+$"
MAX_DESCRIPTION = 300
JSON_MEDIA_TYPE = "application/json"


class _Refusal(NamedTuple):
    """What one error status stands for."""

    name: str  # under components/responses
    errors: tuple[str, ...]  # the body's ``error`` values
    when: str


_REFUSALS: dict[str, _Refusal] = {
    "400": _Refusal(
        "BadRequest",
        ("invalid_request", "downstream_error"),
        "Malformed `Authorization` header (more than one token, empty, bad characters; with a "
        "`WWW-Authenticate` challenge), an invalid or repeated query parameter, or the "
        "downstream API's 400 passed on.",
    ),
    "401": _Refusal(
        "Unauthorized",
        ("unauthorized", "invalid_token", "interaction_required"),
        "No token (`unauthorized`, bare challenge), a token that fails validation or that "
        "Entra ID refuses to exchange (`invalid_token`), or the user must sign in again "
        "(`interaction_required`: after an MFA / Conditional Access claims challenge the "
        "challenge's error is `insufficient_claims` and the body's `claims` is the JSON to "
        "pass to MSAL.js `acquireToken*`).",
    ),
    "403": _Refusal(
        "Forbidden",
        ("insufficient_scope", "consent_required", "access_denied", "downstream_error"),
        "The token lacks the scope or is app-only (`insufficient_scope`, with a challenge), "
        "admin consent for the downstream API is missing (`consent_required`), Entra ID "
        "denies the user access (`access_denied`; signing in again does not help), or the "
        "downstream API's 403 passed on.",
    ),
    "429": _Refusal(
        "Throttled", ("throttled",), "The downstream API is throttling; wait `Retry-After` seconds."
    ),
    "500": _Refusal(
        "ServerError",
        ("server_error",),
        "An unexpected failure, or Entra ID refused the API's own credential.",
    ),
    "502": _Refusal(
        "BadGateway",
        ("bad_gateway",),
        "The downstream API failed, could not be reached or answered something unusable.",
    ),
    "503": _Refusal(
        "Unavailable",
        ("temporarily_unavailable",),
        "Entra ID is unavailable or throttling token requests, or the signing keys are not "
        "loaded yet; wait `Retry-After` seconds.",
    ),
    "504": _Refusal(
        "GatewayTimeout", ("gateway_timeout",), "The downstream API did not answer in time."
    ),
}
# Every 401 carries a challenge; a 400 or 403 when it is about the token or the header.
_CHALLENGES = {"401": "Challenge", "400": "OptionalChallenge", "403": "OptionalChallenge"}
_RETRY_STATUSES = {"429", "503"}


def build_document(*, realm: str, scope: str, authority: str | None, server_url: str) -> Document:
    """The OpenAPI document for an API whose Application ID URI is ``realm``.

    ``authority`` (``https://login.microsoftonline.com/<tenant>``) adds an OAuth 2.0
    authorization-code scheme next to the bearer scheme; ``server_url`` is where the API runs.
    """
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Entra ID On-Behalf-Of API",
            "version": "1.0.0",
            "description": _api_description(realm, scope),
        },
        "servers": [{"url": server_url}],
        "security": _api_security(realm, scope, authority),
        "tags": [
            {"name": "graph", "description": "Microsoft Graph on behalf of the user"},
            {"name": "arm", "description": "Azure Resource Manager on behalf of the user"},
            {"name": "health", "description": "Probes; no authentication"},
        ],
        "paths": _paths(),
        "components": {
            "securitySchemes": _security_schemes(realm, scope, authority),
            "schemas": _schemas(),
            "responses": _error_responses(),
            "headers": _headers(realm),
        },
    }


def _api_description(realm: str, scope: str) -> str:
    return (
        "Validates an Entra ID v2 access token for this API, exchanges it with the "
        "On-Behalf-Of flow and returns what Microsoft Graph or Azure Resource Manager "
        f"answered.\n\nEvery `/api/*` route needs `Authorization: Bearer <token>`, a delegated "
        f"(user) token for the scope `{realm}/{scope}`; app-only tokens are refused. Every "
        "refusal is JSON (`error`, `error_description`), and every response is "
        "`Cache-Control: no-store`."
    )


def _api_security(realm: str, scope: str, authority: str | None) -> list[dict[str, list[str]]]:
    requirements: list[dict[str, list[str]]] = [{"bearer": []}]
    if authority is not None:
        requirements.append({"entra": [f"{realm}/{scope}"]})
    return requirements


def _security_schemes(realm: str, scope: str, authority: str | None) -> dict[str, Any]:
    schemes: dict[str, Any] = {
        "bearer": {
            "type": "http",
            "scheme": "bearer",
            "bearerFormat": "JWT",
            "description": f"A v2 access token from Entra ID with audience `{realm}` and the "
            f"delegated scope `{scope}` (request `{realm}/{scope}`).",
        },
    }
    if authority is not None:
        schemes["entra"] = {
            "type": "oauth2",
            "description": "Sign in with Entra ID (authorization code with PKCE, from a "
            "registered single-page or public client).",
            "flows": {
                "authorizationCode": {
                    "authorizationUrl": f"{authority}/oauth2/v2.0/authorize",
                    "tokenUrl": f"{authority}/oauth2/v2.0/token",
                    "scopes": {f"{realm}/{scope}": "Call this API on behalf of the signed-in user"},
                }
            },
        }
    return schemes


def _paths() -> dict[str, Any]:
    return {
        "/api/me": {
            "get": _api_operation(
                "getMe",
                "graph",
                "The caller's Graph profile (Graph GET /me)",
                _json_response("The user as Graph returns it", "User"),
            )
        },
        "/api/users": {
            "get": _api_operation(
                "listUsers",
                "graph",
                "Users of the tenant (Graph GET /users), a page at a time; $top, $select, $filter "
                "and $skiptoken are passed on",
                _json_response(
                    "One page of users as Graph returns it, `@odata.nextLink` pointing to the API",
                    "UserCollection",
                ),
                parameters=_graph_query_parameters(),
            )
        },
        "/api/subscriptions": {
            "get": _api_operation(
                "listSubscriptions",
                "arm",
                "Every subscription the caller can see (ARM GET /subscriptions, all pages joined)",
                _json_response("All subscriptions", "SubscriptionList"),
            )
        },
        "/healthz": {
            "get": {
                "operationId": "getHealth",
                "tags": ["health"],
                "security": [],
                "summary": "Liveness: the process is up; makes no outbound call",
                "responses": {"200": _json_response("Alive", "Health")},
            }
        },
        "/readyz": {
            "get": {
                "operationId": "getReadiness",
                "tags": ["health"],
                "security": [],
                "summary": "Readiness: the tenant's metadata and signing keys are loaded",
                "responses": {
                    "200": _json_response("Ready", "Readiness"),
                    "503": {"$ref": "#/components/responses/Unavailable"},
                },
            }
        },
    }


def _api_operation(
    operation_id: str,
    tag: str,
    summary: str,
    success: dict[str, Any],
    *,
    parameters: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    responses: dict[str, Any] = {"200": success}
    responses.update(
        {
            status: {"$ref": f"#/components/responses/{refusal.name}"}
            for status, refusal in _REFUSALS.items()
        }
    )
    responses["4XX"] = {"$ref": "#/components/responses/DownstreamError"}
    operation: dict[str, Any] = {"operationId": operation_id, "tags": [tag], "summary": summary}
    if parameters:
        operation["parameters"] = parameters
    operation["responses"] = responses
    return operation


def _graph_query_parameters() -> list[dict[str, Any]]:
    # The API caps $select and $filter in UTF-8 bytes, which a schema cannot state; maxLength is
    # the cap in characters of 4 bytes, the worst case, so every value the schema allows is
    # accepted. At their longest, all parameters percent-encoded still fit gunicorn's request
    # line (8190 bytes); a longer one would get gunicorn's 414 before the API sees it.
    text = {
        "type": "string",
        "minLength": 1,
        "maxLength": MAX_QUERY_BYTES // 4,
        "pattern": r"\S",
    }  # not blank: the API refuses values that are only whitespace
    size = (
        f"At most {MAX_QUERY_BYTES} bytes in UTF-8: {MAX_QUERY_BYTES} ASCII characters, "
        f"{MAX_QUERY_BYTES // 4} of any kind."
    )
    once = "Given at most once."
    return [
        {
            "name": "$top",
            "in": "query",
            "required": False,
            "description": f"Page size, {TOP_MIN} to {TOP_MAX}; a next page is named by "
            f"`@odata.nextLink`. {once}",
            "schema": {"type": "integer", "minimum": TOP_MIN, "maximum": TOP_MAX},
            "example": 10,
        },
        {
            "name": "$select",
            "in": "query",
            "required": False,
            "description": f"Comma-separated properties to return, as Graph's `$select`. {size} "
            f"{once}",
            "schema": text,
            "example": "displayName,mail",
        },
        {
            "name": "$filter",
            "in": "query",
            "required": False,
            "description": "An OData filter, as Graph's `$filter`; Graph's refusal of it is "
            f"passed on as 400 `downstream_error`. {size} {once}",
            "schema": text,
            "example": "startswith(displayName,'A')",
        },
        {
            "name": "$skiptoken",
            "in": "query",
            "required": False,
            "description": "Which page: Graph's opaque token, as `@odata.nextLink` gives it "
            "(follow that link rather than building the URL). "
            f"{once}",
            "schema": {
                "type": "string",
                "minLength": 1,
                "maxLength": MAX_SKIPTOKEN_LENGTH,
                "pattern": SKIPTOKEN_PATTERN,
            },
        },
    ]


def _json_response(description: str, schema: str) -> dict[str, Any]:
    return {
        "description": description,
        "headers": {"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}},
        "content": {JSON_MEDIA_TYPE: {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
    }


def _error_responses() -> dict[str, Any]:
    responses = {
        refusal.name: _error_response(status, refusal) for status, refusal in _REFUSALS.items()
    }
    responses["DownstreamError"] = {
        "description": "Another 4xx of the downstream API, passed on with its status: "
        "`downstream_error`, with `downstream.status` and `downstream.error`.",
        "headers": {"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}},
        "content": {JSON_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    return responses


def _error_response(status: str, refusal: _Refusal) -> dict[str, Any]:
    headers: dict[str, Any] = {"Cache-Control": {"$ref": "#/components/headers/Cache-Control"}}
    if status in _CHALLENGES:
        headers["WWW-Authenticate"] = {"$ref": f"#/components/headers/{_CHALLENGES[status]}"}
    if status in _RETRY_STATUSES:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    schema = {
        "allOf": [
            {"$ref": "#/components/schemas/Error"},
            {"properties": {"error": {"enum": list(refusal.errors)}}},
        ]
    }
    return {
        "description": refusal.when,
        "headers": headers,
        "content": {JSON_MEDIA_TYPE: {"schema": schema}},
    }


def _headers(realm: str) -> dict[str, Any]:
    challenge = (
        f'An RFC 6750 challenge: `Bearer realm="{realm}"`, then `error` and '
        "`error_description`; with `insufficient_scope` also `scope`, with "
        "`insufficient_claims` also `claims` (base64 of the claims JSON)."
    )
    challenge_schema = {"type": "string", "pattern": "^Bearer realm="}
    return {
        "Cache-Control": {
            "description": "Responses carry user data; nothing may keep them.",
            "required": True,
            "schema": {"const": "no-store"},
        },
        "Challenge": {
            "description": f"{challenge} Every 401 has one.",
            "required": True,
            "schema": challenge_schema,
        },
        "OptionalChallenge": {
            "description": f"{challenge} Sent when the refusal is about the token or the "
            "`Authorization` header, not with a downstream API's error.",
            "required": False,
            "schema": challenge_schema,
        },
        "Retry-After": {
            "description": "Seconds to wait before trying again.",
            "required": True,
            "schema": {"type": "integer", "minimum": 1},
        },
    }


def _schemas() -> dict[str, Any]:
    nullable_text = {"type": ["string", "null"]}
    return {
        "Error": {
            "type": "object",
            "required": ["error", "error_description"],
            "additionalProperties": False,
            "properties": {
                "error": {"type": "string", "description": "A stable error code"},
                "error_description": {
                    "type": "string",
                    "maxLength": MAX_DESCRIPTION,
                    "description": "What went wrong and how to fix it",
                },
                "claims": {
                    "type": "string",
                    "description": "With `interaction_required` "
                    "after a claims challenge: the claims JSON for MSAL.js "
                    "`acquireTokenPopup/Redirect({scopes, claims})`",
                },
                "downstream": {"$ref": "#/components/schemas/DownstreamFailure"},
            },
        },
        "DownstreamFailure": {
            "type": "object",
            "required": ["status", "error"],
            "description": "With `downstream_error`: what the downstream API answered",
            "properties": {
                "status": {"type": "integer", "minimum": 400, "maximum": 499},
                "error": {
                    "type": "object",
                    "properties": {
                        "code": {"type": "string"},
                        "message": {"type": "string"},
                        "innerError": {"type": "object"},
                    },
                },
            },
        },
        "User": {
            "type": "object",
            "description": "A Graph user; `$select` decides which properties are present.",
            "properties": {
                "id": {"type": "string"},
                "displayName": nullable_text,
                "givenName": nullable_text,
                "surname": nullable_text,
                "userPrincipalName": nullable_text,
                "mail": nullable_text,
                "jobTitle": nullable_text,
                "officeLocation": nullable_text,
                "mobilePhone": nullable_text,
                "preferredLanguage": nullable_text,
                "businessPhones": {"type": "array", "items": {"type": "string"}},
            },
        },
        "UserCollection": {
            "type": "object",
            "required": ["value"],
            "properties": {
                "@odata.nextLink": {
                    "type": "string",
                    "format": "uri-reference",
                    "description": "The API's own URL of the next page, relative to the API: "
                    "`/api/users` with the same `$top`, `$select` and "
                    "`$filter` and Graph's `$skiptoken`. Absent on the last "
                    "page.",
                },
                "value": {"type": "array", "items": {"$ref": "#/components/schemas/User"}},
            },
        },
        "Subscription": {
            "type": "object",
            "description": "An ARM subscription (api-version 2022-12-01)",
            "required": ["subscriptionId"],
            "properties": {
                "id": {"type": "string"},
                "subscriptionId": {"type": "string"},
                "tenantId": {"type": "string"},
                "displayName": {"type": "string"},
                "state": {
                    "type": "string",
                    "enum": ["Enabled", "Warned", "PastDue", "Disabled", "Deleted"],
                },
                "authorizationSource": {"type": "string"},
                "managedByTenants": {"type": "array", "items": {"type": "object"}},
                "subscriptionPolicies": {"type": "object"},
                "tags": {"type": "object", "additionalProperties": {"type": "string"}},
            },
        },
        "SubscriptionList": {
            "type": "object",
            "required": ["value"],
            "additionalProperties": False,
            "properties": {
                "value": {"type": "array", "items": {"$ref": "#/components/schemas/Subscription"}},
                "truncated": {
                    "const": True,
                    "description": "Present when paging stopped "
                    "after 50 pages; `value` then holds those pages only.",
                },
            },
        },
        "Health": {
            "type": "object",
            "required": ["status"],
            "additionalProperties": False,
            "properties": {"status": {"const": "ok"}},
        },
        "Readiness": {
            "type": "object",
            "required": ["status", "issuer", "keys"],
            "additionalProperties": False,
            "properties": {
                "status": {"const": "ready"},
                "issuer": {"type": "string", "description": "The tenant's discovered issuer"},
                "keys": {
                    "type": "integer",
                    "minimum": 1,
                    "description": "How many signing keys are loaded",
                },
            },
        },
    }
