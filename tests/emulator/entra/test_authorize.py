"""The authorize endpoint: the account picker, parameter checks, where refusals go, prompts,
login_hint, and the session cookie that silent sign-in relies on."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import requests

from emulator import SPA_CLIENT_ID, TENANT_ID, USERS, Emulator
from emulator.directory import users_in
from tests.emulator.support import (
    PAGE_SECURITY_HEADERS,
    SPA_REDIRECT_URI,
    Browser,
    Page,
    Pkce,
    authorize_params,
    reply_fields,
)


def _assert_page(response: requests.Response) -> None:
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    for header in PAGE_SECURITY_HEADERS:
        assert response.headers[header]
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]
    assert "Cross-Origin-Opener-Policy" not in response.headers  # popups keep their opener


def _assert_error_page(response: requests.Response, code: int) -> None:
    _assert_page(response)
    assert "Location" not in response.headers
    assert f'data-error-code="AADSTS{code}"' in response.text


def _assert_redirected_error(
    response: requests.Response, params: dict[str, str], error: str, code: int
) -> dict[str, str]:
    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(params.get("redirect_uri", SPA_REDIRECT_URI))
    fields = reply_fields(location)
    assert fields["error"] == error
    assert fields["error_description"].startswith(f"AADSTS{code}: ")
    assert fields["error_uri"].endswith(f"error?code={code}")
    assert fields["state"] == params["state"]
    assert "code" not in fields
    return fields


def test_the_picker_lists_the_tenants_users_with_stable_ids(
    emulator: Emulator, browser: Browser
) -> None:
    response = browser.authorize(authorize_params(Pkce.generate()))

    _assert_page(response)
    page = Page.of(response)
    users = [u.username for u in users_in(TENANT_ID)]
    assert [b for b in page.buttons if b.startswith("user-")] == [f"user-{u}" for u in users]
    assert page.buttons["user-alice"]["data-user"] == "alice"
    assert "ivan" not in page.buttons  # another tenant's user
    assert page.action == f"/{TENANT_ID}/login"
    assert page.fields["flow"]
    assert "Frontend SPA" in response.text
    assert (
        "form-action 'self' http://localhost:3000;" in (response.headers["Content-Security-Policy"])
    )
    assert emulator.counters()["authorize"] == 1


def test_picking_a_user_sends_a_code_in_the_fragment_and_sets_the_session_cookie(
    emulator: Emulator, browser: Browser
) -> None:
    params = authorize_params(Pkce.generate())
    page = Page.of(browser.authorize(params))

    response = browser.click(page, "user-bob")

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{SPA_REDIRECT_URI}#code=")
    fields = reply_fields(location)
    assert fields.keys() == {"code", "state"}
    assert fields["state"] == params["state"]
    cookie = response.headers["Set-Cookie"]
    assert cookie.startswith("emulator_session=")
    for attribute in ("Secure", "HttpOnly", "SameSite=None", "Path=/"):
        assert attribute in cookie
    assert response.headers["Referrer-Policy"] == "same-origin"
    assert emulator.counters()["login"] == 1


def test_query_response_mode_and_a_redirect_uri_with_a_query(
    emulator: Emulator, browser: Browser
) -> None:
    redirect_uri = "http://localhost:3000/callback?from=test"
    emulator.add_spa_redirect_uris(redirect_uri)
    params = authorize_params(
        Pkce.generate(),
        response_mode="query",
        redirect_uri=redirect_uri,
        login_hint="carol@contoso.test",
    )

    response = browser.authorize(params)

    assert response.status_code == 302
    location = response.headers["Location"]
    assert location.startswith(f"{redirect_uri}&code=")
    assert "#" not in location
    assert reply_fields(location)["state"] == params["state"]
    assert response.headers["Set-Cookie"].startswith("emulator_session=")


def test_login_hint_signs_that_user_in_without_the_picker(
    emulator: Emulator, browser: Browser
) -> None:
    params = authorize_params(Pkce.generate(), login_hint="grace@contoso.test")

    response = browser.authorize(params)

    assert response.status_code == 302
    assert reply_fields(response.headers["Location"])["code"].startswith("1.")
    assert response.headers["Cache-Control"] == "no-store, no-cache"
    assert emulator.counters()["login"] == 0


def test_prompt_login_shows_the_picker_with_the_hinted_user_preselected(browser: Browser) -> None:
    browser.sign_in("alice", authorize_params(Pkce.generate()))

    response = browser.authorize(
        authorize_params(Pkce.generate(), prompt="login", login_hint="heidi@contoso.test")
    )

    _assert_page(response)
    page = Page.of(response)
    assert page.buttons["user-heidi"]["aria-current"] == "true"
    assert "autofocus" in page.buttons["user-heidi"]
    assert "aria-current" not in page.buttons["user-alice"]


def test_a_session_signs_in_again_without_a_page(emulator: Emulator, browser: Browser) -> None:
    browser.sign_in("alice", authorize_params(Pkce.generate()))
    params = authorize_params(Pkce.generate())

    response = browser.authorize(params)

    assert response.status_code == 302
    assert reply_fields(response.headers["Location"]).keys() == {"code", "state"}
    assert "Set-Cookie" in response.headers  # the same session, cookie refreshed
    assert emulator.counters()["login"] == 1


def test_prompt_select_account_shows_the_picker_despite_a_session(browser: Browser) -> None:
    browser.sign_in("alice", authorize_params(Pkce.generate()))

    response = browser.authorize(authorize_params(Pkce.generate(), prompt="select_account"))

    _assert_page(response)
    assert "user-alice" in Page.of(response).buttons


def test_prompt_none_without_a_session_is_login_required(browser: Browser) -> None:
    params = authorize_params(Pkce.generate(), prompt="none")

    response = browser.authorize(params)

    fields = _assert_redirected_error(response, params, "login_required", 50058)
    assert "no user is signed in" in fields["error_description"]
    assert response.headers["Location"].startswith(f"{SPA_REDIRECT_URI}#")
    assert "Set-Cookie" not in response.headers


def test_prompt_none_with_a_session_answers_silently(browser: Browser) -> None:
    browser.sign_in("carol", authorize_params(Pkce.generate()))
    params = authorize_params(Pkce.generate(), prompt="none", login_hint="carol@contoso.test")

    response = browser.authorize(params)

    assert response.status_code == 302
    fields = reply_fields(response.headers["Location"])
    assert fields.keys() == {"code", "state"}
    assert fields["state"] == params["state"]
    assert "Set-Cookie" not in response.headers


def test_prompt_none_for_another_user_than_the_session_is_login_required(browser: Browser) -> None:
    browser.sign_in("carol", authorize_params(Pkce.generate()))
    params = authorize_params(Pkce.generate(), prompt="none", login_hint="bob@contoso.test")

    response = browser.authorize(params)

    _assert_redirected_error(response, params, "login_required", 50058)
    assert response.headers["Cache-Control"] == "no-store, no-cache"


def test_prompt_consent_asks_then_cancel_is_access_denied(browser: Browser) -> None:
    params = authorize_params(Pkce.generate(), prompt="consent", login_hint="bob")
    consent = browser.authorize(params)
    _assert_page(consent)
    page = Page.of(consent)
    assert {"consent-accept", "consent-cancel"} <= page.buttons.keys()
    assert "openid" in consent.text

    response = browser.click(page, "consent-cancel")

    _assert_redirected_error(response, params, "access_denied", 65004)
    assert "Set-Cookie" not in response.headers


def test_prompt_consent_accepted_sends_the_code(browser: Browser) -> None:
    params = authorize_params(Pkce.generate(), prompt="consent", login_hint="bob")

    response = browser.click(Page.of(browser.authorize(params)), "consent-accept")

    assert response.status_code == 302
    assert reply_fields(response.headers["Location"]).keys() == {"code", "state"}
    assert response.headers["Set-Cookie"].startswith("emulator_session=")


@pytest.mark.parametrize(
    ("overrides", "code"),
    [
        ({"redirect_uri": "http://localhost:4000/"}, 50011),
        ({"redirect_uri": None}, 900971),
        ({"client_id": None}, 900144),
        ({"client_id": "0f0f0f0f-1111-4000-8000-000000000000"}, 700016),
        ({"client_id": "e3a1c0de-0000-4000-8000-00000000a001"}, 50011),  # the API: no SPA URIs
    ],
    ids=["unregistered-redirect", "no-redirect", "no-client", "unknown-client", "not-a-spa"],
)
def test_a_bad_client_or_redirect_uri_is_a_page_never_a_redirect(
    browser: Browser, overrides: dict[str, str | None], code: int
) -> None:
    response = browser.authorize(authorize_params(Pkce.generate(), **overrides))

    _assert_error_page(response, code)


def test_an_unknown_tenant_is_a_page(browser: Browser) -> None:
    response = browser.authorize(authorize_params(Pkce.generate()), tenant="nowhere.test")

    _assert_error_page(response, 90002)
    assert "nowhere.test" in response.text


def test_the_page_escapes_what_the_request_sent(browser: Browser) -> None:
    hostile = "http://localhost:3000/<script>alert(1)</script>"

    response = browser.authorize(authorize_params(Pkce.generate(), redirect_uri=hostile))

    _assert_error_page(response, 50011)
    assert "<script>" not in response.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in response.text
    assert "script-src" not in response.headers["Content-Security-Policy"]
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


@pytest.mark.parametrize(
    ("overrides", "error", "code"),
    [
        ({"response_type": None}, "invalid_request", 900144),
        ({"response_type": "token"}, "unsupported_response_type", 700054),
        ({"response_type": "code id_token"}, "unsupported_response_type", 700054),
        ({"scope": None}, "invalid_request", 900144),
        ({"scope": "https://unknown.example/read openid"}, "invalid_resource", 500011),
        ({"code_challenge": None}, "invalid_request", 9002325),
        ({"code_challenge_method": "plain"}, "invalid_request", 90100),
        ({"code_challenge_method": None}, "invalid_request", 90100),
        ({"code_challenge": "too-short"}, "invalid_request", 501491),
        ({"prompt": "always"}, "invalid_request", 90023),
        ({"claims": "{not json"}, "invalid_request", 90100),
        ({"response_mode": "form_post"}, "invalid_request", 70007),
    ],
    ids=[
        "no-response-type",
        "token",
        "hybrid",
        "no-scope",
        "unknown-resource",
        "no-pkce",
        "plain-pkce",
        "pkce-method-missing",
        "bad-challenge",
        "bad-prompt",
        "bad-claims",
        "form-post",
    ],
)
def test_bad_requests_go_back_to_the_app(
    browser: Browser, overrides: dict[str, str | None], error: str, code: int
) -> None:
    params = authorize_params(Pkce.generate(), **overrides)

    response = browser.authorize(params)

    _assert_redirected_error(response, params, error, code)
    expected_separator = "?" if overrides.get("response_mode") == "form_post" else "#"
    assert response.headers["Location"].startswith(f"{SPA_REDIRECT_URI}{expected_separator}")


def test_an_expired_or_forged_flow_is_a_page(emulator: Emulator, browser: Browser) -> None:
    response = browser.session.post(
        f"{emulator.base_url}/{TENANT_ID}/login",
        data={"flow": "forged", "action": "pick", "user": "alice"},
        allow_redirects=False,
    )

    _assert_error_page(response, 50089)


def test_a_form_post_from_another_site_is_refused(emulator: Emulator, browser: Browser) -> None:
    page = Page.of(browser.authorize(authorize_params(Pkce.generate())))

    response = browser.session.post(
        f"{emulator.base_url}{page.action}",
        data={**page.fields, "user": "alice"},
        headers={"Origin": "https://evil.example"},
        allow_redirects=False,
    )

    _assert_error_page(response, 90100)
    assert "Set-Cookie" not in response.headers


def test_the_stylesheet_is_served_for_the_csp(emulator: Emulator, browser: Browser) -> None:
    page = browser.authorize(authorize_params(Pkce.generate()))
    href = page.text.split('rel="stylesheet" href="')[1].split('"')[0]

    css = browser.session.get(f"{emulator.base_url}{href}")

    assert css.status_code == 200
    assert css.headers["Content-Type"].startswith("text/css")
    assert ".account" in css.text
    assert urlsplit(href).path.startswith("/_entra/static/")


def test_each_user_has_a_button(browser: Browser) -> None:
    page = Page.of(browser.authorize(authorize_params(Pkce.generate())))

    for user in users_in(TENANT_ID):
        button = page.buttons[f"user-{user.username}"]
        assert button["name"] == "user"
        assert button["value"] == user.username
    assert USERS["alice"].display_name in page.response.text
    assert page.response.status_code == 200
    assert SPA_CLIENT_ID not in page.response.headers["Content-Security-Policy"]
