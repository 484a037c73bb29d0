"""Strict parsers for values that come from outside: query strings, headers, the environment.

One helper per kind of value, ASCII only and bounded. ``str.isdigit()`` and ``int()`` accept
``²`` and ``٣``, and ``float()`` accepts ``1e3``, ``nan`` and ``inf``; nothing here does.
Each helper raises ``Malformed`` (a ValueError); callers turn it into their own error: a 400
for a request, a ConfigError for a setting, a default for a header a server sent.
"""

from __future__ import annotations

import re
from datetime import UTC
from email.utils import parsedate_to_datetime

_DIGITS = re.compile(r"[0-9]+")
_DECIMAL_NUMBER = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# A delta-seconds value longer than this is past any ceiling we apply; int() is not asked to
# convert it (and refuses beyond 4300 digits, which would escape as an unexpected error).
_MAX_SECONDS_DIGITS = 10


class Malformed(ValueError):
    """A value from outside that does not have the expected form."""


def decimal_integer(text: str, *, low: int, high: int, max_length: int = 10) -> int:
    """An ASCII decimal integer of at most ``max_length`` digits, from ``low`` to ``high``."""
    if len(text) > max_length or not _DIGITS.fullmatch(text):
        raise Malformed(f"expected at most {max_length} ASCII digits")
    value = int(text)
    if not low <= value <= high:
        raise Malformed(f"expected a value from {low} to {high}")
    return value


def decimal_number(text: str, *, low: float, high: float, max_length: int = 20) -> float:
    """ASCII digits with an optional decimal point and fraction (no sign, exponent, nan, inf)."""
    if len(text) > max_length or not _DECIMAL_NUMBER.fullmatch(text):
        raise Malformed("expected a decimal number such as 10 or 3.05")
    value = float(text)
    if not low <= value <= high:
        raise Malformed(f"expected a value from {low:g} to {high:g}")
    return value


def delta_seconds(text: str, *, ceiling: int) -> int:
    """RFC 9110 delta-seconds (``1*DIGIT``), capped at ``ceiling``.

    Like RFC 9111 section 1.2.2 asks of caches, a value too large to represent is taken as
    the largest one, not refused.
    """
    if not _DIGITS.fullmatch(text):
        raise Malformed("expected delta-seconds (ASCII digits)")
    digits = text.lstrip("0") or "0"
    if len(digits) > _MAX_SECONDS_DIGITS:
        return ceiling
    return min(int(digits), ceiling)


def http_date(text: str) -> float:
    """An RFC 9110 HTTP-date (IMF-fixdate or an obsolete form) as a POSIX timestamp."""
    if not text.isascii():
        raise Malformed("expected an HTTP-date")
    try:
        when = parsedate_to_datetime(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        return when.timestamp()
    except (TypeError, ValueError, IndexError, OverflowError) as exc:
        raise Malformed("expected an HTTP-date") from exc
