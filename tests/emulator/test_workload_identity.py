"""The emulated AKS cluster's service account tokens: the control plane mints them."""

from __future__ import annotations

import jwt
import pytest
import requests

from emulator import WORKLOAD_IDENTITY_ISSUER, WORKLOAD_IDENTITY_SUBJECT, Emulator


def test_the_control_plane_mints_a_service_account_token(
    emulator: Emulator, http: requests.Session
) -> None:
    response = http.post(
        f"{emulator.base_url}/_emulator/workload-identity/tokens", json={"lifetime": 600}
    )
    assert response.status_code == 200
    body = response.json()
    assert body["issuer"] == WORKLOAD_IDENTITY_ISSUER
    assert body["subject"] == WORKLOAD_IDENTITY_SUBJECT
    header = jwt.get_unverified_header(body["token"])
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert header["alg"] == "RS256" and header["kid"]
    assert claims["exp"] - claims["iat"] == 3600  # issued 50 minutes ago, 10 left
    assert claims["kubernetes.io"]["namespace"] == "obo"
    assert claims["kubernetes.io"]["serviceaccount"]["name"] == "obo-api"


@pytest.mark.parametrize(
    "body", [{"lifetime": "soon"}, {"lifetime": True}, {"lifetime": 10**6}, []]
)
def test_bad_requests_are_refused(emulator: Emulator, http: requests.Session, body: object) -> None:
    response = http.post(f"{emulator.base_url}/_emulator/workload-identity/tokens", json=body)
    assert response.status_code == 400
    assert response.json()["error"] == "bad_request"
