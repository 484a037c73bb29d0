"""The fake Microsoft Graph: token checks, /me, /users query options and paging."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from emulator import API_CLIENT_ID, GRAPH_APP_ID, USERS, Emulator
from emulator.directory import TENANT_ID, users_in
from tests.emulator.support import bearer


def _graph_token(
    emu: Emulator, user: str = "alice", scope: str = "User.Read User.ReadBasic.All", **kw: Any
) -> str:
    return emu.issue_user_token(user, scope=scope, audience=GRAPH_APP_ID, azp=API_CLIENT_ID, **kw)


def _get(http: requests.Session, url: str, token: str, **params: str) -> requests.Response:
    return http.get(url, headers=bearer(token), params=params)


def _assert_graph_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status
    error = response.json()["error"]
    assert error["code"] == code
    assert set(error["innerError"]) == {"date", "request-id", "client-request-id"}
    assert error["innerError"]["request-id"] == response.headers["request-id"]
    return dict(error)


def test_me_returns_the_signed_in_user(emulator: Emulator, http: requests.Session) -> None:
    response = _get(http, f"{emulator.graph_url}/me", _graph_token(emulator))

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json;odata.metadata=minimal")
    body = response.json()
    assert body["@odata.context"] == f"{emulator.base_url}/v1.0/$metadata#users/$entity"
    alice = USERS["alice"]
    assert body["id"] == alice.id
    assert body["displayName"] == "Alice Anders"
    assert body["mail"] == body["userPrincipalName"] == "alice@contoso.test"
    assert body["businessPhones"] == list(alice.business_phones)
    assert {
        "givenName",
        "surname",
        "jobTitle",
        "officeLocation",
        "mobilePhone",
        "preferredLanguage",
    } <= body.keys()
    assert response.headers["request-id"]
    assert emulator.counters()["graph"] == 1


def test_me_echoes_client_request_id(emulator: Emulator, http: requests.Session) -> None:
    response = http.get(
        f"{emulator.graph_url}/me",
        headers={**bearer(_graph_token(emulator)), "client-request-id": "abc-1"},
    )

    assert response.headers["client-request-id"] == "abc-1"
    assert response.headers["request-id"] != "abc-1"


def test_me_select(emulator: Emulator, http: requests.Session) -> None:
    response = _get(
        http, f"{emulator.graph_url}/me", _graph_token(emulator), **{"$select": "displayName,mail"}
    )

    assert response.json() == {
        "@odata.context": f"{emulator.base_url}/v1.0/$metadata#users(displayName,mail)/$entity",
        "displayName": "Alice Anders",
        "mail": "alice@contoso.test",
    }


def test_users_pages_with_next_link(emulator: Emulator, http: requests.Session) -> None:
    token = _graph_token(emulator)
    url: str | None = f"{emulator.graph_url}/users?$top=3"
    pages: list[list[str]] = []
    while url:
        response = http.get(url, headers=bearer(token))
        assert response.status_code == 200
        body = response.json()
        pages.append([u["userPrincipalName"] for u in body["value"]])
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith(f"{emulator.base_url}/v1.0/users?$top=3&$skiptoken=")

    expected = [u.upn for u in users_in(TENANT_ID)]
    assert [len(p) for p in pages] == [3] * (len(expected) // 3) + (
        [len(expected) % 3] if len(expected) % 3 else []
    )
    assert sum(pages, []) == expected


def test_users_default_page_holds_everyone(emulator: Emulator, http: requests.Session) -> None:
    body = _get(http, f"{emulator.graph_url}/users", _graph_token(emulator)).json()

    assert len(body["value"]) == len(users_in(TENANT_ID))
    assert "@odata.nextLink" not in body
    assert body["@odata.context"] == f"{emulator.base_url}/v1.0/$metadata#users"


def test_users_select_keeps_only_those_properties(
    emulator: Emulator, http: requests.Session
) -> None:
    body = _get(
        http,
        f"{emulator.graph_url}/users",
        _graph_token(emulator),
        **{"$select": "displayName,mail", "$top": "2"},
    ).json()

    assert all(set(u) == {"displayName", "mail"} for u in body["value"])
    assert "$select=displayName,mail" in body["@odata.nextLink"]


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("startswith(displayName,'a')", ["alice"]),
        ("mail eq 'bob@contoso.test'", ["bob"]),
        ("startswith(givenName,'c') or startswith(givenName,'d')", ["carol", "dave"]),
        ("startswith(displayName,'G') and mail eq 'grace@contoso.test'", ["grace"]),
        ("userPrincipalName eq 'nobody@contoso.test'", []),
    ],
)
def test_users_filter(
    emulator: Emulator, http: requests.Session, expression: str, expected: list[str]
) -> None:
    body = _get(
        http, f"{emulator.graph_url}/users", _graph_token(emulator), **{"$filter": expression}
    ).json()

    assert [u["userPrincipalName"].split("@")[0] for u in body["value"]] == expected


@pytest.mark.parametrize(
    ("params", "code", "message"),
    [
        ({"$top": "1000"}, "Request_BadRequest", "Invalid page size specified: '1000'"),
        ({"$top": "0"}, "Request_BadRequest", "Must be between 1 and 999 inclusive"),
        ({"$top": "ten"}, "BadRequest", "Invalid $top value"),
        (
            {"$select": "displayName,shoeSize"},
            "BadRequest",
            "Could not find a property named 'shoeSize'",
        ),
        ({"$filter": "endswith(mail,'.test')"}, "Request_UnsupportedQuery", "Unsupported Query"),
        (
            {"$filter": "startswith(officeLocation,'B')"},
            "Request_UnsupportedQuery",
            "property 'officeLocation' of resource 'User'",
        ),
        (
            {"$filter": "startswith(displayName,'a') and mail eq 'x' or mail eq 'y'"},
            "Request_UnsupportedQuery",
            "Unsupported Query",
        ),
        ({"$skiptoken": "forged"}, "Directory_ExpiredPageToken", "page token"),
    ],
)
def test_users_bad_query_options(
    emulator: Emulator, http: requests.Session, params: dict[str, str], code: str, message: str
) -> None:
    response = _get(http, f"{emulator.graph_url}/users", _graph_token(emulator), **params)

    assert message in _assert_graph_error(response, 400, code)["message"]


def test_users_needs_a_directory_scope(emulator: Emulator, http: requests.Session) -> None:
    response = _get(http, f"{emulator.graph_url}/users", _graph_token(emulator, scope="User.Read"))

    _assert_graph_error(response, 403, "Authorization_RequestDenied")


def test_users_are_scoped_to_the_callers_tenant(emulator: Emulator, http: requests.Session) -> None:
    body = _get(http, f"{emulator.graph_url}/users", _graph_token(emulator, "ivan")).json()

    assert [u["userPrincipalName"] for u in body["value"]] == ["ivan@fabrikam.test"]


def test_user_by_upn_or_id(emulator: Emulator, http: requests.Session) -> None:
    token = _graph_token(emulator)

    by_upn = _get(http, f"{emulator.graph_url}/users/bob@contoso.test", token)
    by_id = _get(http, f"{emulator.graph_url}/users/{USERS['bob'].id}", token)
    missing = _get(http, f"{emulator.graph_url}/users/nobody@contoso.test", token)

    assert by_upn.json()["id"] == by_id.json()["id"] == USERS["bob"].id
    _assert_graph_error(missing, 404, "Request_ResourceNotFound")


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "Access token is empty."),
        ({"Authorization": "Bearer nodots"}, "IDX14100"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Access token is empty."),
    ],
)
def test_missing_or_malformed_token_is_401(
    emulator: Emulator, http: requests.Session, headers: dict[str, str], message: str
) -> None:
    response = http.get(f"{emulator.graph_url}/me", headers=headers)

    assert message in _assert_graph_error(response, 401, "InvalidAuthenticationToken")["message"]
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith('Bearer realm="", authorization_uri="https://login.microsoftonline')
    assert 'client_id="00000003-0000-0000-c000-000000000000"' in challenge


@pytest.mark.parametrize(
    ("make_token", "message"),
    [
        (lambda emu: _graph_token(emu, lifetime=-3600), "Lifetime validation failed"),
        (lambda emu: emu.issue_user_token("alice"), "Invalid audience"),
        (lambda emu: _graph_token(emu)[:-4] + "AAAA", "Invalid signature"),
        (lambda emu: _graph_token(emu, iss="https://sts.windows.net/x/"), "Invalid issuer"),
    ],
    ids=["expired", "api-audience", "bad-signature", "foreign-issuer"],
)
def test_invalid_tokens_are_401(
    emulator: Emulator, http: requests.Session, make_token: Any, message: str
) -> None:
    response = _get(http, f"{emulator.graph_url}/me", make_token(emulator))

    assert message in _assert_graph_error(response, 401, "InvalidAuthenticationToken")["message"]
    assert "WWW-Authenticate" in response.headers


def test_small_clock_skew_is_tolerated(emulator: Emulator, http: requests.Session) -> None:
    response = _get(http, f"{emulator.graph_url}/me", _graph_token(emulator, lifetime=-60))

    assert response.status_code == 200
