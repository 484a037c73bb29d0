"""Secrets never reach the log or a cache. Runs last (by name): it reads the output of every
stack the session started, after all other end-to-end tests have sent their tokens."""

from __future__ import annotations

import base64
import http.client
import json
import re
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus, urlsplit

import pytest
import requests

from emulator.directory import API_CLIENT_ID, API_CLIENT_SECRET
from scripts.stack import Stack
from tests.e2e.conftest import Traffic
from tests.e2e.contract import JWT_SHAPE, assert_refusal

# gunicorn's access log line (gunicorn.conf.py): address "METHOD PATH PROTOCOL" status ...
ACCESS_LINE = re.compile(r'^\S+ "(?P<method>[A-Z]+) (?P<path>\S+) HTTP/1\.1" (?P<status>\d{3}) ',
                         re.MULTILINE)
# The emulator's refresh tokens: "0." + a Fernet token.
REFRESH_TOKEN_SHAPE = re.compile(r"0\.gAAAAA[A-Za-z0-9_=-]{20,}")
BEARER_CREDENTIAL = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}")
AUTHORIZATION_HEADER = re.compile(
    r"(?i)authorization[\"']?\s*[:=]\s*[\"']?(bearer|basic)\s+[A-Za-z0-9\-._~+/=]{8,}")
LOG_WAIT_SECONDS = 5.0

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


def access_lines_since(api_log: Path, offset: int, expected: list[tuple[str, int]]
                       ) -> list[tuple[str, int]]:
    """The (path, status) of access-log lines written after ``offset``, once they end with
    ``expected``: gunicorn logs a request only after it has answered it (so the line of a
    request made before ``offset`` may come first)."""
    deadline = time.monotonic() + LOG_WAIT_SECONDS
    while True:
        with api_log.open(encoding="utf-8") as log:
            log.seek(offset)
            lines = [(m["path"], int(m["status"])) for m in ACCESS_LINE.finditer(log.read())]
        if lines[-len(expected):] == expected or time.monotonic() > deadline:
            return lines


def test_user_data_and_refusals_are_never_cached(stack: Stack) -> None:
    token = stack.emulator.issue_user_token("alice")
    for path in ("/api/me", "/api/users?$top=2", "/api/subscriptions"):
        response = stack.get(path, token)
        assert response.status_code == 200, response.text
        assert response.headers["Cache-Control"] == "no-store"
    assert_refusal(stack.get("/api/me"), 401, "unauthorized", challenge="")
    assert_refusal(stack.get("/api/me", token + "x"), 401, "invalid_token",
                   challenge="invalid_token")
    assert_refusal(stack.get("/api/me", stack.emulator.issue_app_token()), 403,
                   "insufficient_scope", challenge="insufficient_scope")
    assert_refusal(stack.get("/api/users?$top=0", token), 400, "invalid_request",
                   description="$top")
    stack.emulator.add_fault("graph", "status", status=404, count=1)
    assert_refusal(stack.get("/api/me", token), 404, "downstream_error")
    assert_refusal(stack.get("/api/nothing-here", token), 404, "not_found")


def test_no_token_or_secret_reaches_the_log(stack: Stack, api_log: Path,
                                            traffic: Traffic) -> None:
    emulator = stack.emulator
    token, other = emulator.issue_user_token("bob"), emulator.issue_user_token("carol")
    traffic.tokens.extend([token, other])
    url = stack.api_url
    offset = api_log.stat().st_size

    refusals = [
        (requests.get(f"{url}/api/me", params={"access_token": token}, timeout=30),
         401, "unauthorized", "query string"),
        (stack.get("/api/me", other, params={"access_token": token}),
         400, "invalid_request", "both"),
        (requests.get(f"{url}/api/me", data={"access_token": token}, timeout=30),
         401, "unauthorized", "form body"),
        (stack.get("/api/me", other, data={"access_token": token}),
         400, "invalid_request", "both"),
        (stack.get("/api/me", headers={"Authorization": f"Bearer {token} {other}"}),
         400, "invalid_request", "more than one token"),
        (stack.get("/api/me", headers={"Authorization": f"Bearer\t{token}"}),
         400, "invalid_request", "not tabs"),
        (stack.get("/api/me", headers={"Authorization": f"Bearer {token}!"}),
         400, "invalid_request", "grammar"),
        (stack.get("/api/me", headers={"Authorization": f"Basic {token}"}),
         401, "unauthorized", "must be Bearer"),
        (stack.get("/api/me", headers={"Authorization": token}),
         401, "unauthorized", "must be Bearer"),
    ]
    for response, status, error, description in refusals:
        assert_refusal(response, status, error, description=description,
                       challenge="invalid_request" if status == 400 else "")
    status, body = send_raw(stack, "/api/me", [("Authorization", f"Bearer {token}"),
                                               ("Authorization", f"Bearer {other}")])
    assert (status, body["error"]) == (400, "invalid_request")
    assert_refusal(stack.get(f"/api/{token}"), 404, "not_found")
    assert stack.get("/api/me", token).status_code == 200

    expected = [("/api/me", status) for _, status, _, _ in refusals]
    expected += [("/api/me", 400), ("/api/[token]", 404), ("/api/me", 200)]
    logged = access_lines_since(api_log, offset, expected)

    log = api_log.read_text(encoding="utf-8")
    assert secrets_in(log, traffic.tokens) == []
    # Not vacuous: the log holds every stack's output and an access line per request above.
    assert len(traffic.api_urls) >= 1 and len(traffic.tokens) >= 10
    for api_url in traffic.api_urls:
        assert f"Listening at: {api_url}" in log
    assert logged[-len(expected):] == expected and len(logged) <= len(expected) + 1


def secrets_in(log: str, tokens: list[str]) -> list[str]:
    """The kinds of secret ``log`` holds, by name only, so that a failure does not print them:
    a token the tests sent (even its payload or signature alone), a token the API was issued
    (JWT or refresh-token shaped), the client secret, a credential after Bearer or Basic."""
    basic = base64.b64encode(f"{API_CLIENT_ID}:{API_CLIENT_SECRET}".encode()).decode()
    found = {
        "a token the tests sent": any(segment in log for sent in set(tokens)
                                      for segment in sent.split(".")[1:]),
        "a JWT": JWT_SHAPE.search(log) is not None,
        "a refresh token": REFRESH_TOKEN_SHAPE.search(log) is not None,
        "the client secret": any(secret in log for secret in (
            API_CLIENT_SECRET, quote_plus(API_CLIENT_SECRET), basic)),
        "a Bearer credential": BEARER_CREDENTIAL.search(log) is not None,
        "an Authorization header": AUTHORIZATION_HEADER.search(log) is not None,
    }
    return [name for name, present in found.items() if present]
