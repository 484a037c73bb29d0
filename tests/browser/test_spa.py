"""The sample SPA (samples/spa/) in Chromium, as its user sees it: signing in, the API's MFA
claims challenge, missing consent, a throttled downstream API, and a token renewed silently."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from emulator import TENANT_ID, USERS
from emulator.directory import subscriptions_in
from tests.browser.browser_support import SpaPage, SpaStack

pytestmark = pytest.mark.browser

TENANT_SUBSCRIPTIONS = subscriptions_in(TENANT_ID)


def test_alice_signs_in_sees_her_profile_and_subscriptions_and_signs_out(spa: SpaPage) -> None:
    alice = USERS["alice"]

    spa.sign_in("alice")

    spa.expect_loaded()
    expect(spa.page.locator("#account")).to_have_text(f"{alice.display_name} ({alice.upn})")
    expect(spa.profile).to_contain_text(alice.display_name)
    expect(spa.profile).to_contain_text(alice.job_title)
    expect(spa.users).to_have_count(5)
    expect(spa.subscriptions).to_have_text(
        [f"{s.display_name} ({s.subscription_id}) Enabled" for s in TENANT_SUBSCRIPTIONS]
    )
    expect(spa.error).to_be_hidden()

    spa.sign_out_button.click()

    expect(spa.status).to_have_attribute("data-state", "signed-out")
    expect(spa.sign_in_button).to_be_visible()
    expect(spa.profile).to_be_empty()


def test_dave_steps_up_with_mfa_when_the_api_sends_a_claims_challenge(spa: SpaPage) -> None:
    dave = USERS["dave"]

    spa.sign_in("dave")
    # The API answers 401 insufficient_claims; the SPA goes back to Entra ID with the claims.
    spa.approve_mfa()

    spa.expect_loaded()
    expect(spa.profile).to_contain_text(dave.display_name)
    expect(spa.subscriptions).to_have_count(len(TENANT_SUBSCRIPTIONS))
    expect(spa.activity_line(r"^GET /api/me: 401 interaction_required$")).to_have_count(1)
    expect(spa.activity_line(r"^Claims challenge from the API: \{.*capolids")).to_have_count(1)
    expect(spa.activity_line("^Signed in again with the claims")).to_have_count(1)
    expect(spa.error).to_be_hidden()


def test_erin_is_told_what_an_administrator_must_do_about_consent(spa: SpaPage) -> None:
    spa.sign_in("erin")

    expect(spa.status).to_have_attribute("data-state", "error")
    expect(spa.error).to_be_visible()
    expect(spa.error).to_contain_text("Administrator consent required")
    expect(spa.error).to_contain_text("Grant admin consent")
    expect(spa.error).to_contain_text("knownClientApplications")
    expect(spa.error).to_contain_text("403 consent_required")
    expect(spa.profile).to_be_empty()


def test_a_throttled_call_is_retried_once_after_retry_after(
    spa: SpaPage, spa_stack: SpaStack
) -> None:
    spa.sign_in("alice")
    spa.expect_loaded()
    spa_stack.stack.emulator.add_fault("graph", "status", status=429, retry_after=1, count=1)

    spa.reload_button.click()

    spa.expect_loaded(2)
    expect(spa.activity_line(r"^GET /api/me: 429 throttled, retrying in 1 s$")).to_have_count(1)
    expect(spa.profile).to_contain_text(USERS["alice"].display_name)
    assert spa_stack.counters()["graph"] >= 2


def test_an_expired_access_token_is_renewed_with_the_refresh_token_without_a_sign_in(
    spa: SpaPage, spa_stack: SpaStack
) -> None:
    # Tokens for 60 s: inside MSAL.js's 5-minute renewal margin, so each one it holds is due
    # for renewal by the time the SPA next needs it.
    spa_stack.stack.emulator.set_token_lifetime(60)
    spa.sign_in("alice")
    spa.expect_loaded()
    spa_stack.stack.emulator.reset_counters()

    spa.reload_button.click()

    spa.expect_loaded(2)
    expect(spa.profile).to_contain_text(USERS["alice"].display_name)
    counters = spa_stack.counters()
    assert counters["token.refresh_token"] >= 1
    assert counters["authorize"] == 0
    assert counters["token.authorization_code"] == 0


def test_an_api_the_browser_cannot_reach_is_reported_with_the_likely_cause(
    spa: SpaPage, spa_stack: SpaStack
) -> None:
    spa.sign_in("alice")
    spa.expect_loaded()
    spa.page.route(f"{spa_stack.stack.api_url}/**", lambda route: route.abort())

    spa.reload_button.click()

    expect(spa.status).to_have_attribute("data-state", "error")
    expect(spa.error).to_contain_text(f"No answer from {spa_stack.stack.api_url}")
    expect(spa.error).to_contain_text(f"CORS_ALLOWED_ORIGINS include {spa_stack.spa.origin}")
