"""Step-up: an OBO exchange refused for MFA, the SPA signing in again with the claims
challenge, the MFA step on the page, and the exchange succeeding with the new token."""

from __future__ import annotations

import pytest
import requests

from emulator import API_CLIENT_SECRET, GRAPH_APP_ID, MFA_POLICY_ID, USERS, Emulator
from tests.emulator.support import (
    GRAPH_USER_READ,
    Browser,
    Page,
    Pkce,
    assert_entra_error,
    authorize_params,
    bearer,
    obo_form,
    redeem_code,
    reply_fields,
    token_url,
)


def _spa_token(
    emulator: Emulator, browser: Browser, http: requests.Session, user: str, **overrides: str
) -> str:
    pkce = Pkce.generate()
    code = browser.sign_in(user, authorize_params(pkce, **overrides))["code"]
    return str(redeem_code(http, emulator, code, pkce).json()["access_token"])


def _exchange(emulator: Emulator, http: requests.Session, assertion: str) -> requests.Response:
    return http.post(token_url(emulator), data=obo_form(assertion))


@pytest.mark.parametrize("user", ["dave", "judy"])
def test_the_claims_challenge_leads_to_an_mfa_step_and_a_working_exchange(
    emulator: Emulator, browser: Browser, http: requests.Session, user: str
) -> None:
    refused = _exchange(emulator, http, _spa_token(emulator, browser, http, user))
    challenge = refused.json()["claims"]
    assert refused.status_code == 400
    assert MFA_POLICY_ID in challenge

    pkce = Pkce.generate()
    page = browser.authorize(authorize_params(pkce, claims=challenge))
    assert page.status_code == 200  # the session's user is asked for MFA, no picker
    assert "user-alice" not in page.text
    assert USERS[user].upn in page.text
    approved = browser.click(Page.of(page), "mfa-approve")
    assert approved.status_code == 302
    code = reply_fields(approved.headers["Location"])["code"]
    stepped_up = redeem_code(http, emulator, code, pkce).json()["access_token"]

    exchanged = _exchange(emulator, http, stepped_up)

    assert exchanged.status_code == 200
    assert exchanged.headers["Cache-Control"] == "no-store, no-cache"
    me = http.get(f"{emulator.graph_url}/me", headers=bearer(exchanged.json()["access_token"]))
    assert me.status_code == 200
    assert me.json()["id"] == USERS[user].id


def test_after_mfa_the_session_answers_a_silent_step_up(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    challenge = _exchange(emulator, http, _spa_token(emulator, browser, http, "dave")).json()[
        "claims"
    ]
    silent_before = browser.authorize(
        authorize_params(Pkce.generate(), prompt="none", claims=challenge)
    )
    _spa_token(emulator, browser, http, "dave", claims=challenge)  # the MFA step

    pkce = Pkce.generate()
    silent_after = browser.authorize(authorize_params(pkce, prompt="none", claims=challenge))

    assert silent_before.status_code == 302
    before = reply_fields(silent_before.headers["Location"])
    assert before["error"] == "interaction_required"
    assert before["error_description"].startswith("AADSTS50076: ")
    assert silent_after.status_code == 302
    code = reply_fields(silent_after.headers["Location"])["code"]
    token = redeem_code(http, emulator, code, pkce).json()["access_token"]
    assert _exchange(emulator, http, token).status_code == 200


def test_a_user_with_per_user_mfa_is_asked_at_every_sign_in(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    first = browser.click(
        Page.of(browser.authorize(authorize_params(Pkce.generate()))), "user-kevin"
    )
    assert first.status_code == 200
    assert 'id="mfa-approve"' in first.text
    assert first.headers["Content-Security-Policy"].startswith("default-src 'none'")

    with Browser(emulator) as another:
        token = _spa_token(emulator, another, http, "kevin")

    exchanged = _exchange(emulator, http, token)
    assert exchanged.status_code == 200
    assert exchanged.json()["token_type"] == "Bearer"


def test_an_mfa_policy_on_graph_asks_for_mfa_when_the_spa_signs_in_for_graph(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    page = browser.click(
        Page.of(
            browser.authorize(
                authorize_params(Pkce.generate(), scope="User.Read openid profile offline_access")
            )
        ),
        "user-dave",
    )

    assert page.status_code == 200
    assert 'id="mfa-approve"' in page.text
    assert "Microsoft Graph" in page.text


def test_without_the_mfa_step_the_token_does_not_satisfy_the_policy(
    emulator: Emulator, browser: Browser, http: requests.Session
) -> None:
    token = _spa_token(emulator, browser, http, "dave")

    refused = _exchange(emulator, http, token)

    assert refused.status_code == 400
    assert refused.headers["Pragma"] == "no-cache"
    assert_entra_error(refused.json(), "invalid_grant", 50076)
    assert refused.json()["suberror"] == "basic_action"
    assert API_CLIENT_SECRET not in refused.text
    assert f"access '{GRAPH_APP_ID}'" in refused.json()["error_description"]


def test_the_api_mints_mfa_tokens_through_the_control_plane(
    emulator: Emulator, http: requests.Session
) -> None:
    minted = http.post(f"{emulator.base_url}/_emulator/tokens", json={"user": "judy", "mfa": True})

    assert minted.status_code == 200
    assert minted.headers["Content-Type"] == "application/json"
    exchanged = _exchange(emulator, http, minted.json()["access_token"])
    assert exchanged.status_code == 200
    assert exchanged.json()["token_type"] == "Bearer"
    assert GRAPH_USER_READ in exchanged.json()["scope"]
