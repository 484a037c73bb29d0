"""Nothing token- or secret-shaped survives the log filter."""

from __future__ import annotations

import logging

import pytest

from app import create_app
from app.logs import RedactingFilter, redact
from tests.support.stubs import BASE_ENV
from tests.support.tokens import TokenFactory


@pytest.mark.parametrize(("text", "leak"), [
    ("Authorization: Bearer abc.def-ghi_jkl.mno", "abc.def-ghi_jkl.mno"),
    ("GET /api/me?access_token=abc123&x=1", "abc123"),
    ("data client_secret=s3cr3t&assertion=zzz", "s3cr3t"),
    ('{"refresh_token": "rt-value", "ok": 1}', "rt-value"),
])
def test_redact_removes_secrets(text: str, leak: str) -> None:
    assert leak not in redact(text)


def test_redact_removes_jwts(tokens: TokenFactory) -> None:
    token = tokens.valid()
    cleaned = redact(f"token was {token} and more")
    assert token not in cleaned and token.split(".")[1] not in cleaned
    assert cleaned == "token was [token] and more"


def test_filter_rewrites_arguments_and_tracebacks(tokens: TokenFactory) -> None:
    token = tokens.valid()
    try:
        raise ValueError(f"bad {token}")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "saw %s", (token,),
                                   exc_info=__import__("sys").exc_info())
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert token not in formatted
    assert "saw [token]" in formatted and "ValueError: bad [token]" in formatted


def test_redact_keeps_prose_readable() -> None:
    text = "the Bearer scheme must be followed by spaces"
    assert redact(text) == text


def test_log_level_comes_from_the_settings_not_the_process_environment(
    monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "DEBUG")  # create_app(env) reads env, not os.environ
    root = logging.getLogger()
    before = root.level
    try:
        create_app({**BASE_ENV, "LOG_LEVEL": "ERROR"})
        assert root.level == logging.ERROR
        create_app(BASE_ENV)
        assert root.level == logging.INFO
    finally:
        root.setLevel(before)
