"""Secrets in the API's output: what the session sent, and how to look for it by kind.

The session's ``traffic`` fixture records every token sent and every API's output; when the
session ends it checks all of them with ``assert_no_secrets``.
"""

from __future__ import annotations

import base64
import re
from dataclasses import dataclass, field
from urllib.parse import quote_plus

from emulator import API_CLIENT_ID, API_CLIENT_SECRET
from tests.e2e.server_output import ServerOutput
from tests.support.contract import JWT_SHAPE

# The emulator's refresh tokens: "0." + a Fernet token.
REFRESH_TOKEN_SHAPE = re.compile(r"0\.gAAAAA[A-Za-z0-9_=-]{20,}")
BEARER_CREDENTIAL = re.compile(r"(?i)\bbearer\s+[A-Za-z0-9\-._~+/]{16,}")
AUTHORIZATION_HEADER = re.compile(
    r"(?i)authorization[\"']?\s*[:=]\s*[\"']?(bearer|basic)\s+[A-Za-z0-9\-._~+/=]{8,}"
)


@dataclass
class Traffic:
    """What the session sent: every token, and the output of every API it started."""

    # Not in the repr: pytest prints a failing function's arguments.
    tokens: list[str] = field(default_factory=list, repr=False)
    apis: list[tuple[str, ServerOutput]] = field(default_factory=list, repr=False)


def secrets_in(text: str, tokens: list[str]) -> list[str]:
    """The kinds of secret ``text`` holds, by name only, so that a failure does not print them:
    a token the tests sent (even its payload or signature alone), a token the API was issued
    (JWT or refresh-token shaped), the client secret, a credential after Bearer or Basic."""
    basic = base64.b64encode(f"{API_CLIENT_ID}:{API_CLIENT_SECRET}".encode()).decode()
    found = {
        "a token the tests sent": any(
            segment in text for sent in set(tokens) for segment in sent.split(".")[1:]
        ),
        "a JWT": JWT_SHAPE.search(text) is not None,
        "a refresh token": REFRESH_TOKEN_SHAPE.search(text) is not None,
        "the client secret": any(
            secret in text for secret in (API_CLIENT_SECRET, quote_plus(API_CLIENT_SECRET), basic)
        ),
        "a Bearer credential": BEARER_CREDENTIAL.search(text) is not None,
        "an Authorization header": AUTHORIZATION_HEADER.search(text) is not None,
    }
    return [name for name, present in found.items() if present]


def assert_no_secrets(traffic: Traffic) -> None:
    """No API's output holds a secret; and each output was captured, or the check proves
    nothing (each stack waited on /readyz or /healthz, so its access log names one)."""
    for url, output in traffic.apis:
        text = output.text()
        captured = "/readyz" in text or "/healthz" in text  # not in the assert: it prints
        assert captured, f"no access log from the API at {url}"
        found = secrets_in(text, traffic.tokens)
        assert found == [], f"the API at {url} wrote {', '.join(found)} to its log"
