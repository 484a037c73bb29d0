"""The managed identity endpoint in App Service's protocol (2019-08-01), as MSAL's
ManagedIdentityClient and a bare HTTP client meet it."""

from __future__ import annotations

import time
from typing import Any

import msal
import pytest
import requests

from emulator import (
    MANAGED_IDENTITY_CLIENT_ID,
    MANAGED_IDENTITY_PRINCIPAL_ID,
    TENANT_ID,
    Emulator,
)
from tests.emulator.support import claims_of

EXCHANGE = "api://AzureADTokenExchange"
EXCHANGE_APP_ID = "fb60f99c-7a34-4190-8149-302f77469936"


def ask(
    http: requests.Session, emulator: Emulator, header: str | None = None, **params: str
) -> requests.Response:
    query = {
        "api-version": "2019-08-01",
        "resource": EXCHANGE,
        "client_id": MANAGED_IDENTITY_CLIENT_ID,
        **params,
    }
    sent = emulator.managed_identity_header if header is None else header
    return http.get(
        emulator.managed_identity_endpoint,
        headers={"X-IDENTITY-HEADER": sent},
        params={k: v for k, v in query.items() if v},
    )


def test_msal_gets_the_identitys_token(
    emulator: Emulator, http: requests.Session, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in emulator.managed_identity_environment().items():
        monkeypatch.setenv(name, value)
    client = msal.ManagedIdentityClient(
        msal.UserAssignedManagedIdentity(client_id=MANAGED_IDENTITY_CLIENT_ID), http_client=http
    )

    first = client.acquire_token_for_client(resource=EXCHANGE)
    again = client.acquire_token_for_client(resource=EXCHANGE)

    assert first["token_source"] == "identity_provider"
    assert again["token_source"] == "cache"  # MSAL keeps it: 24 hours, renewed after 12
    assert emulator.counters()["managed-identity"] == 1
    claims = claims_of(first["access_token"])
    assert claims["aud"] == EXCHANGE_APP_ID  # Entra's v2 tokens carry the app id
    assert claims["iss"] == f"{emulator.base_url}/{TENANT_ID}/v2.0"
    assert claims["sub"] == claims["oid"] == MANAGED_IDENTITY_PRINCIPAL_ID
    assert claims["azp"] == MANAGED_IDENTITY_CLIENT_ID
    assert claims["idtyp"] == "app"
    assert claims["exp"] - claims["iat"] == 24 * 3600


def test_the_answer_is_app_services(emulator: Emulator, http: requests.Session) -> None:
    response = ask(http, emulator)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access_token", "expires_on", "resource", "token_type", "client_id"}
    assert isinstance(body["expires_on"], str)
    assert int(body["expires_on"]) > time.time() + 23 * 3600
    assert body["resource"] == EXCHANGE
    assert body["client_id"] == MANAGED_IDENTITY_CLIENT_ID


@pytest.mark.parametrize(
    "params",
    [
        {"object_id": MANAGED_IDENTITY_PRINCIPAL_ID, "client_id": ""},
        {
            "mi_res_id": "/subscriptions/e3a1c0de-0000-4000-8000-00000000c001/resourcegroups/obo/"
            "providers/Microsoft.ManagedIdentity/userAssignedIdentities/obo-api-identity",
            "client_id": "",
        },
    ],
)
def test_the_identity_may_be_named_other_ways(
    emulator: Emulator, http: requests.Session, params: dict[str, str]
) -> None:
    response = ask(http, emulator, **params)
    assert response.status_code == 200, response.text
    assert claims_of(response.json()["access_token"])["sub"] == MANAGED_IDENTITY_PRINCIPAL_ID


@pytest.mark.parametrize(
    ("header", "params", "status", "message"),
    [
        ("", {}, 401, "X-IDENTITY-HEADER header is missing or does not match"),
        ("wrong", {}, 401, "X-IDENTITY-HEADER header is missing or does not match"),
        (None, {"api-version": "2017-09-01"}, 400, "api-version must be 2019-08-01"),
        (None, {"resource": ""}, 400, "AADSTS500011"),
        (None, {"resource": "https://unknown.example"}, 400, "AADSTS500011"),
        (
            None,
            {"client_id": "e3a1c0de-0000-4000-8000-0000000000ff"},
            400,
            "Unable to load the proper Managed Identity.",
        ),
        (None, {"client_id": ""}, 400, "Unable to load the proper Managed Identity."),
    ],
)
def test_refusals_are_app_services(
    emulator: Emulator,
    http: requests.Session,
    header: str | None,
    params: dict[str, str],
    status: int,
    message: str,
) -> None:
    response = ask(http, emulator, header, **params)
    assert response.status_code == status
    body = response.json()
    assert body["statusCode"] == status
    assert message in body["message"]
    assert body["correlationId"]


def test_a_status_fault_answers_in_its_shape(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("managed-identity", "status", status=500, count=1)
    failed, recovered = ask(http, emulator), ask(http, emulator)
    assert failed.status_code == 500
    assert failed.json()["statusCode"] == 500
    assert recovered.status_code == 200


def test_the_control_plane_tells_the_settings(emulator: Emulator, http: requests.Session) -> None:
    body: dict[str, Any] = http.get(f"{emulator.base_url}/_emulator/managed-identity").json()
    assert body == {
        "IDENTITY_ENDPOINT": emulator.managed_identity_endpoint,
        "IDENTITY_HEADER": emulator.managed_identity_header,
        "client_id": MANAGED_IDENTITY_CLIENT_ID,
    }
    assert emulator.managed_identity_endpoint == f"{emulator.base_url}/msi/token"
