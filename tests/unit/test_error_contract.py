"""Every row of the error contract: status, JSON body and WWW-Authenticate."""

from __future__ import annotations

import base64
import json
import logging
import re
from typing import Any

import pytest
import requests
import responses
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.exceptions import Unauthorized

from app import errors
from tests.support.contract import (
    assert_error_shape,
    assert_refusal,
    challenge_claims,
    challenge_params,
)
from tests.support.stubs import ARM_URL, METADATA_URL, TOKEN_URL, StubServices
from tests.support.tokens import REALM, Signer, TokenFactory, bearer

# --- the request carries no usable credentials --------------------------------------------


@pytest.mark.parametrize(
    "headers", [{}, {"Authorization": "Basic dXNlcjpwYXNz"}, {"Authorization": "Negotiate abc"}]
)
def test_missing_or_other_scheme_is_bare_401(client: FlaskClient, headers: dict[str, str]) -> None:
    response = client.get("/api/me", headers=headers)
    assert_refusal(response, 401, "unauthorized", challenge="")
    assert response.headers["WWW-Authenticate"] == f'Bearer realm="{REALM}"'


@pytest.mark.parametrize(
    ("value", "description"),
    [
        ("Bearer", "empty"),
        ("Bearer    ", "empty"),
        ("Bearer abc def", "more than one token"),
        ("Bearer a.b.c,Bearer d.e.f", "more than one token"),
        ("Bearer abc$def", "token grammar"),
    ],
)
def test_malformed_header_is_400_invalid_request(
    client: FlaskClient, stubs: StubServices, value: str, description: str
) -> None:
    response = client.get("/api/me", headers={"Authorization": value})
    assert_refusal(
        response, 400, "invalid_request", description=description, challenge="invalid_request"
    )
    assert challenge_params(response.headers["WWW-Authenticate"])["realm"] == REALM
    assert len(stubs.mock.calls) == 0


# --- token validation failures: 401 invalid_token -----------------------------------------


@pytest.mark.parametrize(
    ("builder", "description"),
    [
        ("expired", "expired"),
        ("wrong_audience", "audience api://someone-else is not accepted"),
        ("graph_audience", "for Microsoft Graph"),
        ("v1", "v1 token; set accessTokenAcceptedVersion to 2"),
        ("other_tenant", "is not the expected issuer"),
        ("id_token", "not an access token"),
    ],
)
def test_invalid_tokens_are_401_invalid_token(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, builder: str, description: str
) -> None:
    response = client.get("/api/me", headers=bearer(getattr(tokens, builder)()))
    assert_refusal(
        response, 401, "invalid_token", description=description, challenge="invalid_token"
    )
    assert stubs.token_calls == 0


def test_foreign_key_is_401(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, foreign_signer: Signer
) -> None:
    response = client.get("/api/me", headers=bearer(tokens.foreign_key(foreign_signer)))
    assert_refusal(
        response,
        401,
        "invalid_token",
        description="signature verification failed",
        challenge="invalid_token",
    )
    assert stubs.token_calls == 0


# --- authorization: 403 insufficient_scope -------------------------------------------------


@pytest.mark.parametrize(
    ("builder", "description"),
    [
        ("missing_scope", "lacks the access_as_user scope"),
        ("app_only", "app-only token"),
    ],
)
def test_scope_failures_are_403(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, builder: str, description: str
) -> None:
    response = client.get("/api/me", headers=bearer(getattr(tokens, builder)()))
    assert_refusal(
        response, 403, "insufficient_scope", description=description, challenge="insufficient_scope"
    )
    assert challenge_params(response.headers["WWW-Authenticate"])["scope"] == "access_as_user"
    assert stubs.token_calls == 0


# --- OBO failures: Entra's answers as it sends them -----------------------------------------

CORRELATION = (
    "\r\nTrace ID: 5c3bd525-61b3-44d4-a70a-fb93e9ddc500\r\nCorrelation ID: "
    "d66bc564-8e3b-45d1-8909-988927d3ec8e\r\nTimestamp: 2026-11-21 10:00:00Z"
)
MFA = (
    "AADSTS50076: Due to a configuration change made by your administrator, or because you "
    "moved to a new location, you must use multi-factor authentication to access "
    "'00000003-0000-0000-c000-000000000000'."
)
BLOCKED = (
    "AADSTS53003: Access has been blocked by Conditional Access policies. The access "
    "policy does not allow token issuance."
)
CA_CLAIMS = '{"access_token":{"capolids":{"essential":true,"values":["c1"]}}}'


def entra_error(code: int, error: str, description: str, **extra: Any) -> dict[str, Any]:
    """A token-endpoint error body in the shape Entra sends (trace lines included)."""
    return {
        "error": error,
        "error_description": description + CORRELATION,
        "error_codes": [code],
        "timestamp": "2026-11-21 10:00:00Z",
        "trace_id": "5c3bd525-61b3-44d4-a70a-fb93e9ddc500",
        "correlation_id": "d66bc564-8e3b-45d1-8909-988927d3ec8e",
        "error_uri": f"https://login.microsoftonline.com/error?code={code}",
        **extra,
    }


# (Entra's answer, status, body error, challenge error, a telling part of the description)
ENTRA_REFUSALS = [
    pytest.param(
        entra_error(50076, "invalid_grant", MFA, suberror="basic_action"),
        401,
        "interaction_required",
        "insufficient_user_authentication",
        "AADSTS50076: the user must sign in again interactively",
        id="mfa-without-claims-invalid_grant",
    ),
    pytest.param(
        entra_error(50076, "interaction_required", MFA, suberror="basic_action"),
        401,
        "interaction_required",
        "insufficient_user_authentication",
        "AADSTS50076: the user must sign in again interactively",
        id="mfa-without-claims-interaction_required",
    ),
    pytest.param(
        entra_error(
            50079,
            "invalid_grant",
            "AADSTS50079: Due to a configuration "
            "change made by your administrator, or because you moved to a new "
            "location, you are required to use multi-factor authentication.",
            suberror="additional_action",
        ),
        401,
        "interaction_required",
        "insufficient_user_authentication",
        "AADSTS50079: the user must complete an action outside sign-in",
        id="additional_action",
    ),
    pytest.param(
        entra_error(
            50055,
            "user_password_expired",
            "AADSTS50055: Password is expired.",
            suberror="user_password_expired",
            password_change_url="https://portal.microsoftonline.com/ChangePassword.aspx",
        ),
        401,
        "interaction_required",
        "insufficient_user_authentication",
        "AADSTS50055: the user's password has expired",
        id="password-expired",
    ),
    pytest.param(
        entra_error(
            50158,
            "interaction_required",
            "AADSTS50158: External security "
            "challenge not satisfied. User will be redirected to another page "
            "or authentication provider to satisfy additional authentication "
            "challenges.",
        ),
        401,
        "interaction_required",
        "insufficient_user_authentication",
        "AADSTS50158: the user must sign in again interactively",
        id="legacy-interaction_required",
    ),
    pytest.param(
        entra_error(53003, "invalid_grant", BLOCKED, suberror="message_only"),
        403,
        "access_denied",
        None,
        "AADSTS53003: Access has been blocked by Conditional Access policies. The "
        "access policy does not allow token issuance.",
        id="blocked-message_only",
    ),
    pytest.param(
        entra_error(
            65001,
            "invalid_grant",
            "AADSTS65001: The user or administrator "
            "has not consented to use the application with ID "
            "'6e5f1a2b-3c4d-4e5f-8a9b-0c1d2e3f4a5b' named 'my-obo-api'. Send an "
            "interactive authorization request for this user and resource.",
            suberror="consent_required",
        ),
        403,
        "consent_required",
        None,
        "AADSTS65001: consent is missing",
        id="consent",
    ),
    pytest.param(
        entra_error(
            65004,
            "invalid_grant",
            "AADSTS65004: User declined to consent to access the app.",
            suberror="consent_required",
        ),
        403,
        "consent_required",
        None,
        "AADSTS65004: consent is missing",
        id="consent-by-suberror",
    ),
    pytest.param(
        entra_error(
            500133, "invalid_grant", "AADSTS500133: Assertion is not within its valid time range."
        ),
        401,
        "invalid_token",
        "invalid_token",
        "AADSTS500133: the token expired",
        id="assertion-expired",
    ),
    pytest.param(
        entra_error(
            50013,
            "invalid_grant",
            "AADSTS50013: Assertion failed signature validation.",
            suberror="bad_token",
        ),
        401,
        "invalid_token",
        "invalid_token",
        "AADSTS50013: Entra ID refused",
        id="assertion-refused",
    ),
]


@pytest.mark.parametrize(("answer", "status", "error", "challenge", "description"), ENTRA_REFUSALS)
def test_entra_refusals_follow_the_contract(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    answer: dict[str, Any],
    status: int,
    error: str,
    challenge: str | None,
    description: str,
) -> None:
    stubs.obo_errors.append((400, answer, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    body = assert_refusal(response, status, error, description=description, challenge=challenge)
    assert set(body) == {"error", "error_description"}
    assert "Trace ID" not in body["error_description"]


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        ({"error": "invalid_grant", "error_codes": "65001"}, 401, "invalid_token"),
        ({"error": "invalid_grant", "error_codes": [True, "65001", None]}, 401, "invalid_token"),
        (
            {"error": "interaction_required", "claims": {"access_token": {}}},
            401,
            "interaction_required",
        ),
        ({"error": ["not", "a", "string"], "suberror": 7}, 502, "bad_gateway"),
    ],
)
def test_malformed_entra_answers_still_get_the_contract(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    answer: dict[str, Any],
    status: int,
    error: str,
) -> None:
    stubs.obo_errors.append((400, answer, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert response.status_code == status
    assert assert_error_shape(response)["error"] == error


@pytest.mark.parametrize(
    "answer",
    [
        entra_error(50076, "interaction_required", MFA, suberror="basic_action", claims=CA_CLAIMS),
        entra_error(50076, "invalid_grant", MFA, suberror="basic_action", claims=CA_CLAIMS),
        entra_error(53003, "invalid_grant", BLOCKED, suberror="message_only", claims=CA_CLAIMS),
    ],
    ids=["interaction_required", "invalid_grant", "message_only"],
)
def test_any_answer_with_claims_is_a_claims_challenge(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, answer: dict[str, Any]
) -> None:
    stubs.obo_errors.append((400, answer, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    code = f"AADSTS{answer['error_codes'][0]}"
    body = assert_refusal(
        response, 401, "interaction_required", description=code, challenge="insufficient_claims"
    )
    assert body["claims"] == CA_CLAIMS
    assert challenge_claims(response) == json.loads(CA_CLAIMS)
    assert (
        base64.b64decode(challenge_params(response.headers["WWW-Authenticate"])["claims"]).decode()
        == CA_CLAIMS
    )


def test_consent_missing_names_the_fixes(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.obo_errors.append(
        (
            400,
            entra_error(
                65001, "invalid_grant", "AADSTS65001: consent", suberror="consent_required"
            ),
            {},
        )
    )
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    body = assert_refusal(response, 403, "consent_required", description="admin consent")
    assert "knownClientApplications" in body["error_description"]


@pytest.mark.parametrize(
    ("status", "headers", "retry_after"),
    [
        (429, {"Retry-After": "17"}, 17),
        (503, {"Retry-After": "9"}, 9),
        (500, {}, 5),
        (429, {"Retry-After": "²"}, 5),
        (429, {"Retry-After": "9" * 5000}, 3600),
    ],
)
def test_entra_throttling_or_failure_is_503(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    status: int,
    headers: dict[str, str],
    retry_after: int,
) -> None:
    answer = entra_error(90000, "temporarily_unavailable", "AADSTS90000: try again")
    stubs.obo_errors.append((status, answer, headers))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 503, "temporarily_unavailable", retry_after=retry_after)


def test_entra_unreachable_is_503_and_the_cause_is_logged(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, caplog: pytest.LogCaptureFixture
) -> None:
    cause = (
        "HTTPSConnectionPool(host='login.microsoftonline.com', port=443): Max retries "
        "exceeded (Caused by SSLError(SSLCertVerificationError(1, '[SSL: "
        "CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
        "certificate chain')))"
    )
    stubs.mock.replace(responses.POST, TOKEN_URL, body=requests.exceptions.SSLError(cause))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 503, "temporarily_unavailable", retry_after=5)
    warnings = [
        record.getMessage()
        for record in caplog.records
        if record.name == "app.auth.obo" and record.levelno == logging.WARNING
    ]
    assert warnings == [f"token request for graph failed: SSLError: {cause}"]


@pytest.mark.parametrize("failure", [{"status": 503}, {"body": requests.ConnectionError("x")}])
def test_entra_metadata_down_at_the_first_exchange_is_503(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    failure: dict[str, Any],
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert client.get("/readyz").status_code == 200  # keys loaded; MSAL not created yet
    stubs.mock.replace(responses.GET, METADATA_URL, **failure)
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 503, "temporarily_unavailable", retry_after=5)
    assert stubs.token_calls == 0
    logged = [message for message in caplog.messages if "Entra ID metadata" in message]
    assert len(logged) == 1
    assert re.fullmatch(r"could not reach Entra ID metadata: \w+: .+", logged[0]), logged


# --- downstream failures ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (
            403,
            {
                "code": "Authorization_RequestDenied",
                "message": "Insufficient privileges to complete the operation.",
            },
        ),
        (404, {"code": "Request_ResourceNotFound", "message": "Resource does not exist."}),
    ],
)
def test_downstream_4xx_is_passed_on(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    status: int,
    error: dict[str, str],
) -> None:
    stubs.graph_responses.append((status, {"error": error}, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    body = assert_refusal(response, status, "downstream_error", description=error["code"])
    assert body["downstream"] == {"status": status, "error": error}
    assert "graph-token" not in response.get_data(as_text=True)


@pytest.mark.parametrize(
    ("header", "retry_after"), [("30", 30), ("²", 5), ("٣", 5), ("9" * 5000, 3600), ("-1", 5)]
)
def test_downstream_429_keeps_retry_after(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, header: str, retry_after: int
) -> None:
    stubs.graph_responses.append(
        (429, {"error": {"code": "TooManyRequests"}}, {"Retry-After": header})
    )
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 429, "throttled", retry_after=retry_after)


def test_downstream_5xx_is_502(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.graph_responses.append((503, {"error": {"code": "serviceNotAvailable"}}, {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 502, "bad_gateway", description="graph answered HTTP 503")


@pytest.mark.parametrize(
    ("exception", "status", "error"),
    [
        (requests.ConnectionError("reset"), 502, "bad_gateway"),
        (requests.ReadTimeout("slow"), 504, "gateway_timeout"),
        (requests.ConnectTimeout("slow"), 504, "gateway_timeout"),
    ],
)
def test_downstream_network_failures(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    exception: Exception,
    status: int,
    error: str,
) -> None:
    stubs.mock.replace(responses.GET, f"{ARM_URL}/subscriptions", body=exception)
    response = client.get("/api/subscriptions", headers=bearer(tokens.valid()))
    assert_refusal(response, status, error, description="arm")


def test_downstream_non_json_is_502(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory
) -> None:
    stubs.graph_responses.append((200, "<html>proxy error</html>", {}))
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 502, "bad_gateway", description="not a JSON object")


def test_unexpected_error_is_generic_500(
    app: Flask,
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def explode(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("internal detail that must not leak")

    monkeypatch.setattr(app.extensions["downstream"], "get", explode)
    response = client.get("/api/me", headers=bearer(tokens.valid()))
    assert_refusal(response, 500, "server_error")
    body = response.get_data(as_text=True)
    assert "internal detail" not in body and "Traceback" not in body
    assert json.loads(body) == {
        "error": "server_error",
        "error_description": "the server could not handle the request",
    }


# --- every 401 carries a challenge (RFC 9110 section 15.5.2) ---------------------------------


def all_subclasses(cls: type) -> list[type]:
    return [sub for child in cls.__subclasses__() for sub in (child, *all_subclasses(child))]


@pytest.mark.parametrize(
    "error_class",
    [cls for cls in all_subclasses(errors.ApiError) if cls.status == 401],
    ids=lambda cls: cls.__name__,
)
def test_every_401_error_has_a_challenge(error_class: type[errors.ApiError]) -> None:
    assert error_class.challenge is not None
    # Clients answer invalid_token by acquiring a new token silently; only say it when that helps.
    assert error_class.challenge != "invalid_token" or error_class.error == "invalid_token"


def test_a_401_raised_by_flask_has_a_challenge(app: Flask, client: FlaskClient) -> None:
    @app.get("/api/plain-401")
    def plain_401() -> None:
        raise Unauthorized()

    response = client.get("/api/plain-401")
    assert_refusal(response, 401, "unauthorized", challenge="")
