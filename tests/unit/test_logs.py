"""Log lines: JSON or text, one access line per request, the request id on every line of a
request, and nothing token- or secret-shaped in any of them."""

from __future__ import annotations

import io
import json
import logging
import runpy
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask.testing import FlaskClient

from app import create_app
from app.config import ConfigError, load_server_settings, load_settings
from app.logs import RedactingFilter, TextFormatter, json_formatter, redact
from app.observability.request_id import RequestIdFilter
from tests.support.stubs import BASE_ENV, StubServices
from tests.support.tokens import TokenFactory, bearer

GUNICORN_CONFIG = Path(__file__).resolve().parents[2] / "gunicorn.conf.py"
ACCESS_FIELDS = {
    "method",
    "route",
    "path",
    "status",
    "duration_ms",
    "oid",
    "tid",
    "azp",
    "error",
    "downstream_status",
    "token_cache",
    "entra_calls",
    "request_id",
}

JsonLines = Callable[[], list[dict[str, Any]]]


@pytest.fixture()
def json_log() -> Iterator[JsonLines]:
    """The root logger's lines from here on, as gunicorn writes them with LOG_FORMAT=json
    (request id and redacting filters, python-json-logger), parsed."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RequestIdFilter())
    handler.addFilter(RedactingFilter())
    handler.setFormatter(json_formatter())
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    finally:
        root.removeHandler(handler)


def access_lines(lines: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [line for line in lines if line["logger"] == "app.access"]


@pytest.mark.parametrize(
    ("text", "leak"),
    [
        ("Authorization: Bearer abc.def-ghi_jkl.mno", "abc.def-ghi_jkl.mno"),
        ("GET /api/me?access_token=abc123&x=1", "abc123"),
        ("data client_secret=s3cr3t&assertion=zzz", "s3cr3t"),
        ('{"refresh_token": "rt-value", "ok": 1}', "rt-value"),
    ],
)
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
        record = logging.LogRecord(
            "x",
            logging.ERROR,
            __file__,
            1,
            "saw %s",
            (token,),
            exc_info=__import__("sys").exc_info(),
        )
    assert RedactingFilter().filter(record)
    formatted = logging.Formatter().format(record)
    assert token not in formatted
    assert "saw [token]" in formatted and "ValueError: bad [token]" in formatted


def test_redact_keeps_prose_readable() -> None:
    text = "the Bearer scheme must be followed by spaces"
    assert redact(text) == text


def test_log_level_comes_from_the_settings_not_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
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


# --- formats --------------------------------------------------------------------------------


def test_json_lines_carry_the_fields_and_are_redacted(tokens: TokenFactory) -> None:
    token = tokens.valid()
    record = logging.LogRecord(
        "app.test", logging.WARNING, __file__, 1, "sent Bearer %s", (token,), None
    )
    record.__dict__.update({"path": f"/api/{token}", "status": 404})
    for log_filter in (RequestIdFilter(), RedactingFilter()):
        assert log_filter.filter(record)
    line = json_formatter().format(record)
    assert token not in line and token.split(".")[1] not in line
    fields = json.loads(line)
    assert fields["message"] == "sent Bearer [token]"
    assert (fields["level"], fields["logger"], fields["request_id"]) == ("WARNING", "app.test", "-")
    assert (fields["path"], fields["status"]) == ("/api/[token]", 404)
    assert fields["time"].endswith("+00:00")


def test_json_lines_carry_a_redacted_traceback(tokens: TokenFactory) -> None:
    token = tokens.valid()
    try:
        raise ValueError(f"bad {token}")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed", None, exc_info=__import__("sys").exc_info()
        )
    assert RedactingFilter().filter(record)
    fields = json.loads(json_formatter().format(record))
    assert "ValueError: bad [token]" in fields["exc_info"] and token not in json.dumps(fields)


def test_text_lines_show_the_request_id_and_the_fields() -> None:
    record = logging.LogRecord(
        "app.access", logging.INFO, __file__, 1, "GET /api/me 200", None, None
    )
    record.__dict__.update(
        {"request_id": "r-1", "status": 200, "path": "/a b\nforged", "oid": None}
    )
    line = TextFormatter().format(record)
    assert " INFO app.access [r-1]: GET /api/me 200 " in line
    # A value with spaces or control characters is quoted, so it cannot forge a line.
    assert line.endswith('status=200 path="/a b\\nforged"') and "oid=" not in line
    assert "\n" not in line


def test_text_lines_without_a_request_show_a_dash() -> None:
    line = TextFormatter().format(logging.makeLogRecord({"msg": "started", "name": "app"}))
    assert "[-]: started" in line


@pytest.mark.parametrize(
    ("value", "expected"), [(None, "json"), ("json", "json"), ("TEXT", "text"), ("text", "text")]
)
def test_log_format_setting(value: str | None, expected: str) -> None:
    env = {**BASE_ENV, **({"LOG_FORMAT": value} if value else {})}
    assert load_settings(env).log_format == expected
    assert load_server_settings(env).log_format == expected


def test_a_bad_log_format_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="LOG_FORMAT must be one of json, text"):
        load_settings({**BASE_ENV, "LOG_FORMAT": "xml"})


@pytest.mark.parametrize(
    ("log_format", "formatter"),
    [("json", "app.logs.json_formatter"), ("text", "app.logs.TextFormatter")],
)
def test_every_gunicorn_handler_redacts_and_adds_the_request_id(
    tmp_cwd: Path, monkeypatch: pytest.MonkeyPatch, log_format: str, formatter: str
) -> None:
    monkeypatch.setenv("LOG_FORMAT", log_format)
    config = runpy.run_path(str(GUNICORN_CONFIG))
    logging_config = config["logconfig_dict"]
    assert config["accesslog"] is None  # the app writes the access line
    for handler in logging_config["handlers"].values():
        assert handler["filters"] == ["request_id", "redact"]
        assert logging_config["formatters"][handler["formatter"]] == {"()": formatter}
    loggers = logging_config["loggers"]
    assert loggers["app.access"] == {"level": "INFO", "handlers": ["access"], "propagate": False}
    assert loggers["gunicorn.access"]["handlers"] == []


# --- the access line ------------------------------------------------------------------------


def test_one_access_line_per_request_with_its_fields(
    client: FlaskClient, stubs: StubServices, tokens: TokenFactory, json_log: JsonLines
) -> None:
    token = tokens.valid()
    claims = tokens.claims()  # tid and azp as every token of the factory has them
    first = client.get(
        "/api/users?$top=2&x=hidden-value", headers={**bearer(token), "X-Request-ID": "first"}
    )
    second = client.get("/api/users?$top=2", headers={**bearer(token), "X-Request-ID": "second"})
    assert (first.status_code, second.status_code) == (200, 200)
    lines = access_lines(json_log())
    assert sorted(line["request_id"] for line in lines) == ["first", "second"]
    by_id = {line["request_id"]: line for line in lines}
    exchanged, reused = by_id["first"], by_id["second"]
    assert ACCESS_FIELDS <= exchanged.keys()
    assert exchanged["message"] == "GET /api/users 200"
    assert (exchanged["method"], exchanged["route"], exchanged["path"]) == (
        "GET",
        "/api/users",
        "/api/users",
    )
    assert (exchanged["status"], exchanged["downstream_status"], exchanged["error"]) == (
        200,
        200,
        None,
    )
    assert isinstance(exchanged["duration_ms"], float) and exchanged["duration_ms"] >= 0
    assert exchanged["oid"] and (exchanged["tid"], exchanged["azp"]) == (
        claims["tid"],
        claims["azp"],
    )
    # A miss, then the OBO exchange: MSAL fetches the metadata once per process, and the token.
    assert (exchanged["token_cache"], exchanged["entra_calls"]) == ("process:miss", 2)
    assert (reused["token_cache"], reused["entra_calls"]) == ("process:hit", 0)
    text = json.dumps(lines)
    assert token not in text and "hidden-value" not in text and "$top" not in text


@pytest.mark.parametrize(
    ("path", "headers", "status", "error", "route"),
    [
        ("/api/me", {}, 401, "unauthorized", "/api/me"),
        ("/api/me", {"Authorization": "Bearer not-a-jwt"}, 401, "invalid_token", "/api/me"),
        ("/api/users?$top=0", "valid", 400, "invalid_request", "/api/users"),
        ("/api/nothing/{token}", {}, 404, "not_found", None),
    ],
)
def test_refusals_have_an_access_line_with_the_reason(
    client: FlaskClient,
    stubs: StubServices,
    tokens: TokenFactory,
    json_log: JsonLines,
    path: str,
    headers: Any,
    status: int,
    error: str,
    route: str | None,
) -> None:
    token = tokens.valid()
    headers = bearer(token) if headers == "valid" else headers
    response = client.get(path.format(token=token), headers={**headers, "X-Request-ID": "ref"})
    assert response.status_code == status
    lines = json_log()
    [line] = access_lines(lines)
    assert (line["status"], line["error"], line["route"], line["request_id"]) == (
        status,
        error,
        route,
        "ref",
    )
    assert line["path"].startswith(("/api/me", "/api/users", "/api/nothing/[token]"))
    assert line["downstream_status"] is None and line["entra_calls"] == 0
    # The request id is on every line of the request (here: the refusal line too).
    assert {entry["request_id"] for entry in lines} == {"ref"}
    assert token not in json.dumps(lines)
