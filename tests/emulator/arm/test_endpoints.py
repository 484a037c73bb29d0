"""The fake Azure Resource Manager: token checks, api-version, subscription paging."""

from __future__ import annotations

from typing import Any

import msal
import pytest
import requests

from emulator import API_CLIENT_ID, ARM_AUDIENCE, GRAPH_APP_ID, TENANT_ID, Emulator
from emulator.directory import subscriptions_in
from tests.emulator.support import ARM_SCOPE, bearer

API_VERSION = "2022-12-01"


def _arm_token(emu: Emulator, user: str = "alice", **kw: Any) -> str:
    return emu.issue_user_token(
        user, scope="user_impersonation", audience=ARM_AUDIENCE, azp=API_CLIENT_ID, **kw
    )


def _list(http: requests.Session, emu: Emulator, token: str, **params: str) -> requests.Response:
    return http.get(f"{emu.arm_url}/subscriptions", headers=bearer(token), params=params)


def test_subscriptions_page_two_at_a_time(emulator: Emulator, http: requests.Session) -> None:
    token = _arm_token(emulator)
    first = _list(http, emulator, token, **{"api-version": API_VERSION})
    assert first.status_code == 200
    assert first.headers["x-ms-request-id"]
    assert first.headers["x-ms-correlation-request-id"]

    seen, pages = [], 0
    url: str | None = f"{emulator.arm_url}/subscriptions?api-version={API_VERSION}"
    while url:
        body = http.get(url, headers=bearer(token)).json()
        pages += 1
        assert body["count"] == {"type": "Total", "value": 5}
        seen += body["value"]
        url = body.get("nextLink")
        if url:
            assert url.startswith(
                f"{emulator.arm_url}/subscriptions?api-version={API_VERSION}&%24skiptoken="
            )

    assert pages == 3
    expected = subscriptions_in(TENANT_ID)
    assert [s["subscriptionId"] for s in seen] == [s.subscription_id for s in expected]
    sub = seen[0]
    assert sub["id"] == f"/subscriptions/{sub['subscriptionId']}"
    assert sub["state"] == "Enabled"
    assert sub["tenantId"] == TENANT_ID
    assert {
        "displayName",
        "authorizationSource",
        "subscriptionPolicies",
        "managedByTenants",
    } <= sub.keys()


def test_correlation_id_is_echoed(emulator: Emulator, http: requests.Session) -> None:
    response = http.get(
        f"{emulator.arm_url}/subscriptions",
        params={"api-version": API_VERSION},
        headers={**bearer(_arm_token(emulator)), "x-ms-correlation-request-id": "corr-1"},
    )

    assert response.headers["x-ms-correlation-request-id"] == "corr-1"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({}, "MissingApiVersionParameter"),
        ({"api-version": "2099-01-01"}, "InvalidApiVersionParameter"),
    ],
)
def test_api_version_is_required(
    emulator: Emulator, http: requests.Session, params: dict[str, str], code: str
) -> None:
    response = _list(http, emulator, _arm_token(emulator), **params)

    assert response.status_code == 400
    assert response.json()["error"]["code"] == code


@pytest.mark.parametrize(
    ("make_token", "code"),
    [
        (lambda emu: None, "AuthenticationFailed"),
        (lambda emu: _arm_token(emu, lifetime=-3600), "ExpiredAuthenticationToken"),
        (
            lambda emu: emu.issue_user_token("alice", audience=GRAPH_APP_ID),
            "InvalidAuthenticationTokenAudience",
        ),
        (lambda emu: _arm_token(emu)[:-4] + "AAAA", "InvalidAuthenticationToken"),
    ],
    ids=["missing", "expired", "graph-audience", "bad-signature"],
)
def test_invalid_tokens_are_401(
    emulator: Emulator, http: requests.Session, make_token: Any, code: str
) -> None:
    token = make_token(emulator)
    headers = bearer(token) if token else {}

    response = http.get(
        f"{emulator.arm_url}/subscriptions", headers=headers, params={"api-version": API_VERSION}
    )

    assert response.status_code == 401
    assert response.json()["error"]["code"] == code
    assert response.headers["WWW-Authenticate"].startswith(
        'Bearer authorization_uri="https://login.windows.net/", error="invalid_token"'
    )


def test_one_subscription(emulator: Emulator, http: requests.Session) -> None:
    sub = subscriptions_in(TENANT_ID)[0]
    token = _arm_token(emulator)

    found = http.get(
        f"{emulator.arm_url}/subscriptions/{sub.subscription_id}",
        headers=bearer(token),
        params={"api-version": API_VERSION},
    )
    missing = http.get(
        f"{emulator.arm_url}/subscriptions/0f0f0f0f-0000-4000-8000-000000000000",
        headers=bearer(token),
        params={"api-version": API_VERSION},
    )

    assert found.json()["displayName"] == sub.display_name
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "SubscriptionNotFound"


def test_obo_token_lists_subscriptions(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication, http: requests.Session
) -> None:
    result = api_app.acquire_token_on_behalf_of(emulator.issue_user_token("bob"), [ARM_SCOPE])

    response = _list(http, emulator, result["access_token"], **{"api-version": API_VERSION})

    assert response.status_code == 200
    assert len(response.json()["value"]) == 2
    assert emulator.counters()["arm"] == 1
