"""Secrets never reach the log or a cache.

Here, tokens in every place a client may put one, and the log of this test's requests;
the ``traffic`` fixture checks the output of every stack of the session when it ends.
"""

from __future__ import annotations

import http.client
import json
from collections import Counter
from collections.abc import Iterable
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from scripts.stack import Stack
from tests.e2e.leaks import Traffic, secrets_in
from tests.e2e.server_output import ServerOutput
from tests.support.contract import assert_refusal

ACCESS_LOGGER = "app.access"  # one JSON record per request, with its path and status
LOG_WAIT_SECONDS = 10.0

pytestmark = pytest.mark.e2e


def send_raw(stack: Stack, path: str, headers: list[tuple[str, str]]) -> tuple[int, Any]:
    """A GET with headers exactly as given (requests cannot repeat a header)."""
    url = urlsplit(stack.api_url)
    connection = http.client.HTTPConnection(url.hostname or "", url.port, timeout=30)
    try:
        connection.putrequest("GET", path)
        for name, value in headers:
            connection.putheader(name, value)
        connection.endheaders()
        response = connection.getresponse()
        assert response.getheader("Cache-Control") == "no-store"
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def access_log(lines: Iterable[str]) -> Counter[tuple[str, int]]:
    """The (path, status) of each access-log line, counted. Not in order: a request is logged
    after it is answered, so the next request, on another thread, may be logged first."""
    counted: Counter[tuple[str, int]] = Counter()
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # not a log record: a traceback line, say
        if isinstance(record, dict) and record.get("logger") == ACCESS_LOGGER:
            counted[(record["path"], record["status"])] += 1
    return counted


def test_user_data_and_refusals_are_never_cached(stack: Stack) -> None:
    token = stack.emulator.issue_user_token("alice")
    for path in ("/api/me", "/api/users?$top=2", "/api/subscriptions"):
        response = stack.get(path, token)
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
    assert_refusal(stack.get("/api/me"), 401, "unauthorized", challenge="")
    assert_refusal(
        stack.get("/api/me", token + "x"), 401, "invalid_token", challenge="invalid_token"
    )
    assert_refusal(
        stack.get("/api/me", stack.emulator.issue_app_token()),
        403,
        "insufficient_scope",
        challenge="insufficient_scope",
    )
    assert_refusal(
        stack.get("/api/users?$top=0", token), 400, "invalid_request", description="$top"
    )
    stack.emulator.add_fault("graph", "status", status=404, count=1)
    assert_refusal(stack.get("/api/me", token), 404, "downstream_error")
    assert_refusal(stack.get("/api/nothing-here", token), 404, "not_found")


def test_no_token_or_secret_reaches_the_log(
    stack: Stack, stack_output: ServerOutput, traffic: Traffic
) -> None:
    emulator = stack.emulator
    token, other = emulator.issue_user_token("bob"), emulator.issue_user_token("carol")
    traffic.tokens.extend([token, other])
    url = stack.api_url
    start = stack_output.mark()

    refusals = [
        (
            requests.get(f"{url}/api/me", params={"access_token": token}, timeout=30),
            401,
            "unauthorized",
            "query string",
        ),
        (
            stack.get("/api/me", other, params={"access_token": token}),
            400,
            "invalid_request",
            "both",
        ),
        (
            requests.get(f"{url}/api/me", data={"access_token": token}, timeout=30),
            401,
            "unauthorized",
            "form body",
        ),
        (stack.get("/api/me", other, data={"access_token": token}), 400, "invalid_request", "both"),
        (
            stack.get("/api/me", headers={"Authorization": f"Bearer {token} {other}"}),
            400,
            "invalid_request",
            "more than one token",
        ),
        (
            stack.get("/api/me", headers={"Authorization": f"Bearer\t{token}"}),
            400,
            "invalid_request",
            "not tabs",
        ),
        (
            stack.get("/api/me", headers={"Authorization": f"Bearer {token}!"}),
            400,
            "invalid_request",
            "grammar",
        ),
        (
            stack.get("/api/me", headers={"Authorization": f"Basic {token}"}),
            401,
            "unauthorized",
            "must be Bearer",
        ),
        (
            stack.get("/api/me", headers={"Authorization": token}),
            401,
            "unauthorized",
            "must be Bearer",
        ),
    ]
    for response, status, error, description in refusals:
        assert_refusal(
            response,
            status,
            error,
            description=description,
            challenge="invalid_request" if status == 400 else "",
        )
    status, body = send_raw(
        stack,
        "/api/me",
        [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {other}")],
    )
    assert (status, body["error"]) == (400, "invalid_request")
    assert_refusal(stack.get(f"/api/{token}"), 404, "not_found")
    assert stack.get("/api/me", token).status_code == 200

    # Every request is logged, the path of the one with a token in it redacted.
    expected = Counter([("/api/me", status) for _, status, _, _ in refusals])
    expected.update([("/api/me", 400), ("/api/[token]", 404), ("/api/me", 200)])
    lines = stack_output.wait_for(
        lambda lines: access_log(lines) >= expected, LOG_WAIT_SECONDS, start=start
    )
    missing = expected - access_log(lines)
    assert not missing, f"no access-log line for {dict(missing)}"
    assert secrets_in(stack_output.text(), traffic.tokens) == []
