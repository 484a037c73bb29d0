"""Logging set-up: one line per record, JSON or text, with a last line of defence: nothing
token-shaped reaches a log line.

Code in this project never logs tokens or secrets on purpose; the redacting filter catches
what a library or an exception message might carry (a JWT, a Bearer header, a form-encoded
secret), in the message and in every field added with ``extra=`` (a request path, say).
Under gunicorn, gunicorn.conf.py puts the same filters and formatters on every handler.
"""

from __future__ import annotations

import json
import logging
import re

from pythonjsonlogger.json import JsonFormatter

_PATTERNS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*)?"), "[token]"),
    # A credential, not prose: "Bearer scheme" in a message stays readable.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*"), r"\1 [token]"),
    (
        re.compile(
            r"(?i)\b(client_secret|assertion|access_token|refresh_token|id_token|"
            r"client_assertion|password)=[^&\s\"']+"
        ),
        r"\1=[redacted]",
    ),
    (
        re.compile(
            r"(?i)(\"(?:client_secret|assertion|access_token|refresh_token|id_token)\"\s*:\s*)"
            r"\"[^\"]*\""
        ),
        r'\1"[redacted]"',
    ),
)
# The attributes every LogRecord has; anything else on a record came from ``extra=``.
_RECORD_ATTRIBUTES = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s]: %(message)s"
# A text value is written bare when it is made of these, else as a JSON string (escaped).
_BARE_VALUE = re.compile(r"[\x21\x23-\x7E]+")


def redact(text: str) -> str:
    """Replace anything that looks like a token or a secret."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    """``Class: message`` of an exception, redacted and bounded, for a log line."""
    return f"{type(exc).__name__}: {redact(str(exc))[:limit]}"


def extra_fields(record: logging.LogRecord) -> dict[str, object]:
    """The fields a record was given with ``extra=`` (and by filters, such as request_id)."""
    return {key: value for key, value in record.__dict__.items() if key not in _RECORD_ATTRIBUTES}


class RedactingFilter(logging.Filter):
    """Rewrites each record's message, traceback and string fields with ``redact``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        for key, value in extra_fields(record).items():
            if isinstance(value, str):
                setattr(record, key, redact(value))
        return True


def json_formatter() -> logging.Formatter:
    """One JSON object per line: time, level, logger, message, request_id and every extra
    field (python-json-logger)."""
    return JsonFormatter(
        "%(levelname)s %(name)s %(message)s %(request_id)s",
        rename_fields={"levelname": "level", "name": "logger"},
        timestamp="time",
    )


class TextFormatter(logging.Formatter):
    """``time level logger [request id]: message key=value ...`` for a terminal (make dev)."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT, defaults={"request_id": "-"})

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = [
            f"{key}={_text_value(value)}"
            for key, value in extra_fields(record).items()
            if key != "request_id" and value is not None
        ]
        return " ".join([line, *fields]) if fields else line


def _text_value(value: object) -> str:
    text = str(value)
    return text if _BARE_VALUE.fullmatch(text) else json.dumps(text)


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT (``json`` or ``text``)."""
    return json_formatter() if log_format == "json" else TextFormatter()


def configure_logging(level: str, log_format: str = "json") -> None:
    """Set the root logger's ``level`` (LOG_LEVEL) and give it a redacting handler in
    ``log_format`` (LOG_FORMAT) when it has none (gunicorn's handlers come from its config)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(formatter(log_format))
        root.addHandler(handler)
    root.setLevel(level)
    for existing in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in existing.filters):
            existing.addFilter(RedactingFilter())
    # urllib3 logs full request lines at DEBUG; never let it carry query strings to the log.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("msal").setLevel(logging.WARNING)
