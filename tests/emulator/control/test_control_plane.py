"""The control plane: counters, every fault mode, key rotation and settings."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

import msal
import pytest
import requests

from emulator import API_CLIENT_ID, GRAPH_APP_ID, TENANT_ID, Emulator
from tests.emulator.support import (
    GRAPH_USER_READ,
    assert_entra_error,
    bearer,
    claims_of,
    obo_form,
    token_url,
    trusting_session,
)

API_VERSION = "2022-12-01"


def _control(emu: Emulator, path: str) -> str:
    return f"{emu.base_url}/_emulator/{path}"


def _graph_token(emu: Emulator) -> str:
    return emu.issue_user_token(
        "alice", scope="User.Read", audience=GRAPH_APP_ID, azp=API_CLIENT_ID
    )


def _me(emu: Emulator, http: requests.Session, token: str) -> requests.Response:
    return http.get(f"{emu.graph_url}/me", headers=bearer(token))


def _discovery(
    emu: Emulator, http: requests.Session, timeout: float | None = None
) -> requests.Response:
    return http.get(f"{emu.authority}/v2.0/.well-known/openid-configuration", timeout=timeout)


def test_counters_over_http(emulator: Emulator, http: requests.Session) -> None:
    _discovery(emulator, http)
    http.post(token_url(emulator), data=obo_form(emulator.issue_user_token("alice")))
    _me(emulator, http, "not-a-token")

    counts = http.get(_control(emulator, "counters")).json()

    assert counts["openid-configuration"] == 1
    assert counts["token"] == counts["token.on_behalf_of"] == 1
    assert counts["graph"] == 1  # failed requests count too
    assert counts["arm"] == counts["keys"] == 0
    reset = http.post(_control(emulator, "counters/reset"))
    assert reset.status_code == 200
    assert set(reset.json().values()) == {0}


def test_status_fault_answers_in_the_targets_shape_count_times(
    emulator: Emulator, http: requests.Session
) -> None:
    created = http.post(
        _control(emulator, "faults"),
        json={"target": "graph", "mode": "status", "status": 503, "retry_after": 3, "count": 2},
    )
    assert created.status_code == 201
    token = _graph_token(emulator)

    first, second, third = (_me(emulator, http, token) for _ in range(3))

    for response in (first, second):
        assert response.status_code == 503
        assert response.headers["Retry-After"] == "3"
        assert response.json()["error"]["code"] == "serviceNotAvailable"
    assert third.status_code == 200
    assert http.get(_control(emulator, "faults")).json() == {"faults": []}


def test_status_fault_on_token_endpoint_is_entra_shaped(
    emulator: Emulator, http: requests.Session
) -> None:
    emulator.add_fault("token", "status", status=429, retry_after=5, count=1)

    response = http.post(token_url(emulator), data=obo_form(emulator.issue_user_token("alice")))

    assert response.status_code == 429
    assert response.headers["Retry-After"] == "5"
    assert_entra_error(response.json(), "temporarily_unavailable", 90033)
    assert emulator.counters()["token.on_behalf_of"] == 1


def test_status_fault_on_arm(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("arm", "status", status=500, count=1)
    token = emulator.issue_user_token(
        "alice", scope="user_impersonation", audience="https://management.azure.com"
    )

    response = http.get(
        f"{emulator.arm_url}/subscriptions",
        headers=bearer(token),
        params={"api-version": API_VERSION},
    )

    assert response.status_code == 500
    assert response.json()["error"]["code"] == "InternalServerError"
    assert response.headers["x-ms-request-id"]


def test_delay_fault_delays_then_answers(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("openid-configuration", "delay", seconds=1.0, count=1)

    with pytest.raises(requests.exceptions.ReadTimeout):  # still waiting after 0.2 s
        _discovery(emulator, http, timeout=0.2)
    answered = _discovery(emulator, http)

    assert answered.status_code == 200
    assert answered.headers["Access-Control-Allow-Origin"] == "*"
    assert answered.json()["issuer"] == f"{emulator.base_url}/{TENANT_ID}/v2.0"
    assert emulator.faults() == []  # count=1: used up by the first request


def test_delay_fault_trips_client_timeouts(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("keys", "delay", seconds=1.0, count=1)

    with pytest.raises(requests.exceptions.ReadTimeout):
        http.get(f"{emulator.authority}/discovery/v2.0/keys", timeout=0.2)


def test_reset_fault_drops_the_connection(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("keys", "reset", count=1)

    with pytest.raises(requests.exceptions.ConnectionError):
        http.get(f"{emulator.authority}/discovery/v2.0/keys")
    assert http.get(f"{emulator.authority}/discovery/v2.0/keys").status_code == 200
    assert emulator.counters()["keys"] == 2


def test_html_fault_looks_like_a_broken_proxy(
    emulator: Emulator, http: requests.Session, api_app: msal.ConfidentialClientApplication
) -> None:
    emulator.add_fault("token", "html", status=502, count=1)

    response = http.post(token_url(emulator), data=obo_form(emulator.issue_user_token("alice")))

    assert response.status_code == 502
    assert response.headers["Content-Type"].startswith("text/html")
    assert "<html>" in response.text
    emulator.add_fault("token", "html", count=1)  # 200 with HTML: MSAL cannot parse it
    with pytest.raises(ValueError, match="Expecting value"):
        api_app.acquire_token_on_behalf_of(emulator.issue_user_token("alice"), [GRAPH_USER_READ])


def test_huge_fault_pads_a_valid_json_body(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("openid-configuration", "huge", size=300_000, count=1)

    response = _discovery(emulator, http)

    assert response.status_code == 200
    assert 299_000 <= len(response.content) <= 301_000
    assert response.json()["issuer"] == f"{emulator.base_url}/{TENANT_ID}/v2.0"


def test_empty_keys_fault(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("keys", "empty_keys", count=1)

    first = http.get(f"{emulator.authority}/discovery/v2.0/keys")
    second = http.get(f"{emulator.authority}/discovery/v2.0/keys")

    assert first.status_code == 200
    assert first.json() == {"keys": []}
    assert len(second.json()["keys"]) == 2


def _challenge_claims(header: str) -> dict[str, Any]:
    encoded = header.split('claims="')[1].split('"')[0]
    return dict(json.loads(base64.b64decode(encoded)))


def test_cae_fault_revokes_older_tokens_until_claims_are_met(
    emulator: Emulator, http: requests.Session, api_app: msal.ConfidentialClientApplication
) -> None:
    assertion = emulator.issue_user_token("alice")
    old = api_app.acquire_token_on_behalf_of(assertion, [GRAPH_USER_READ])["access_token"]
    fault = emulator.add_fault("graph", "cae")

    refused = _me(emulator, http, old)

    assert refused.status_code == 401
    header = refused.headers["WWW-Authenticate"]
    assert 'error="insufficient_claims"' in header
    assert 'client_id="00000003-0000-0000-c000-000000000000"' in header
    challenge = _challenge_claims(header)
    assert challenge == {
        "access_token": {"nbf": {"essential": True, "value": str(int(fault["created_at"]))}}
    }
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"
    retried = api_app.acquire_token_on_behalf_of(
        assertion, [GRAPH_USER_READ], claims_challenge=json.dumps(challenge)
    )
    assert _me(emulator, http, retried["access_token"]).status_code == 200
    assert _me(emulator, http, old).status_code == 401  # count=None: until cleared


def test_cae_fault_on_arm(emulator: Emulator, http: requests.Session) -> None:
    token = emulator.issue_user_token(
        "alice", scope="user_impersonation", audience="https://management.azure.com"
    )
    emulator.add_fault("arm", "cae", count=1)

    refused = http.get(
        f"{emulator.arm_url}/subscriptions",
        headers=bearer(token),
        params={"api-version": API_VERSION},
    )

    assert refused.status_code == 401
    header = refused.headers["WWW-Authenticate"]
    assert header.startswith(
        'Bearer authorization_uri="https://login.windows.net/", '
        'error="invalid_token", error_description="User session has been '
        'revoked", claims="'
    )
    assert "nbf" in _challenge_claims(header)["access_token"]
    assert refused.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_interaction_fault_turns_a_claims_retry_into_mfa(
    emulator: Emulator, api_app: msal.ConfidentialClientApplication
) -> None:
    emulator.add_fault("token", "interaction", count=1)
    assertion = emulator.issue_user_token("alice")
    challenge = json.dumps({"access_token": {"nbf": {"essential": True, "value": "1"}}})

    plain = api_app.acquire_token_on_behalf_of(assertion, [GRAPH_USER_READ])
    with_claims = api_app.acquire_token_on_behalf_of(
        assertion, [GRAPH_USER_READ], claims_challenge=challenge
    )

    assert "access_token" in plain
    assert_entra_error(with_claims, "interaction_required", 50076)
    assert json.loads(with_claims["claims"])["access_token"]["capolids"]["essential"] is True


@pytest.mark.parametrize(
    "spec",
    [
        {"target": "nowhere", "mode": "status", "status": 500},
        {"target": "graph", "mode": "explode"},
        {"target": "graph", "mode": "status"},
        {"target": "graph", "mode": "empty_keys"},
        {"target": "keys", "mode": "delay", "seconds": -1},
        {"target": "keys", "mode": "status", "status": 503, "count": 0},
    ],
)
def test_invalid_faults_are_rejected(
    emulator: Emulator, http: requests.Session, spec: dict[str, object]
) -> None:
    response = http.post(_control(emulator, "faults"), json=spec)

    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
    with pytest.raises(ValueError):
        emulator.add_fault(**spec)  # type: ignore[arg-type]


def test_faults_can_be_listed_and_cleared(emulator: Emulator, http: requests.Session) -> None:
    emulator.add_fault("graph", "status", status=500)
    emulator.add_fault("arm", "delay", seconds=1, count=3)

    listed = http.get(_control(emulator, "faults")).json()["faults"]
    cleared = http.delete(_control(emulator, "faults"))

    assert [(f["target"], f["mode"], f.get("count")) for f in listed] == [
        ("graph", "status", None),
        ("arm", "delay", 3),
    ]
    assert cleared.status_code == 200
    assert emulator.faults() == []


def test_key_rotation_keeps_the_previous_key_published(fresh_emulator: Emulator) -> None:
    emu = fresh_emulator
    with trusting_session(emu) as http:
        old_kid = emu.signing_kids()[0]
        old_token = _graph_token(emu)

        rotated = http.post(_control(emu, "keys/rotate"), json={}).json()
        new_token = _graph_token(emu)
        jwks = http.get(f"{emu.authority}/discovery/v2.0/keys").json()["keys"]

        assert rotated["signer"] != old_kid
        assert rotated["published"] == [rotated["signer"], old_kid]
        assert [k["kid"] for k in jwks] == rotated["published"]
        assert claims_of(new_token) and new_token.split(".")[0] != old_token.split(".")[0]
        assert _me(emu, http, old_token).status_code == 200
        assert _me(emu, http, new_token).status_code == 200


def test_rotation_with_drop_old_invalidates_old_tokens(fresh_emulator: Emulator) -> None:
    emu = fresh_emulator
    with trusting_session(emu) as http:
        old_kid, old_token = emu.signing_kids()[0], _graph_token(emu)
        old_assertion = emu.issue_user_token("alice")

        new_kid = emu.rotate_keys(drop_old=True)

        assert old_kid not in emu.signing_kids()
        assert emu.signing_kids()[0] == new_kid and len(emu.signing_kids()) == 2
        assert _me(emu, http, old_token).status_code == 401
        refused = http.post(token_url(emu), data=obo_form(old_assertion))
        assert_entra_error(refused.json(), "invalid_grant", 50013)
        assert "The key was not found" in refused.json()["error_description"]


def test_counters_include_refusals_and_faults(
    emulator: Emulator, http: requests.Session, make_api_app: Callable[..., object]
) -> None:
    emulator.add_fault("token", "status", status=503, count=1)

    http.post(token_url(emulator), data={"grant_type": "client_credentials"})
    http.post(token_url(emulator), data={"grant_type": "refresh_token"})

    counts = emulator.counters()
    assert (counts["token"], counts["token.client_credentials"], counts["token.refresh_token"]) == (
        2,
        1,
        1,
    )
