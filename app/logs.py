"""Logging set-up with a last line of defence: nothing token-shaped reaches a log line.

Code in this project never logs tokens or secrets on purpose; this filter catches what a
library or an exception message might carry (a JWT, a Bearer header, a form-encoded secret).
"""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    (re.compile(r"eyJ[A-Za-z0-9_-]*\.[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]*)?"), "[token]"),
    # A credential, not prose: "Bearer scheme" in a message stays readable.
    (re.compile(r"(?i)\b(bearer)\s+[A-Za-z0-9\-._~+/]{16,}=*"), r"\1 [token]"),
    (re.compile(r"(?i)\b(client_secret|assertion|access_token|refresh_token|id_token|"
                r"client_assertion|password)=[^&\s\"']+"), r"\1=[redacted]"),
    (re.compile(r"(?i)(\"(?:client_secret|assertion|access_token|refresh_token|id_token)\"\s*:\s*)"
                r"\"[^\"]*\""), r'\1"[redacted]"'),
)


def redact(text: str) -> str:
    """Replace anything that looks like a token or a secret."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def describe_exception(exc: BaseException, limit: int = 500) -> str:
    """``Class: message`` of an exception, redacted and bounded, for a log line."""
    return f"{type(exc).__name__}: {redact(str(exc))[:limit]}"


class RedactingFilter(logging.Filter):
    """Rewrites each record's message (and traceback) with ``redact``."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True


def configure_logging(level: str) -> None:
    """Set the root logger's ``level`` (LOG_LEVEL) and give it a redacting handler
    (gunicorn's own handlers get one in its config)."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root.addHandler(handler)
    root.setLevel(level)
    for existing in root.handlers:
        if not any(isinstance(f, RedactingFilter) for f in existing.filters):
            existing.addFilter(RedactingFilter())
    # urllib3 logs full request lines at DEBUG; never let it carry query strings to the log.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
    logging.getLogger("msal").setLevel(logging.WARNING)
