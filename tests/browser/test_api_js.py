"""samples/spa/api.js in Chromium: reading the API's WWW-Authenticate and Retry-After headers."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from tests.browser.browser_support import SpaPage

pytestmark = pytest.mark.browser

CLAIMS = '{"access_token":{"capolids":{"essential":true,"values":["p1"]}}}'
CLAIMS_B64 = base64.b64encode(CLAIMS.encode()).decode()
CLAIMS_B64URL = base64.urlsafe_b64encode(CLAIMS.encode()).decode().rstrip("=")


def call(page: SpaPage, function: str, argument: Any) -> Any:
    """``function(argument)`` from the SPA's own api.js, run in its page."""
    return page.page.evaluate(
        "async ([name, arg]) => (await import('/api.js'))[name](arg)", [function, argument]
    )


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            f'Bearer realm="api://x", error="insufficient_claims", claims="{CLAIMS_B64}"',
            {"realm": "api://x", "error": "insufficient_claims", "claims": CLAIMS_B64},
        ),
        (
            f"Bearer error=insufficient_claims, claims={CLAIMS_B64}",
            {"error": "insufficient_claims", "claims": CLAIMS_B64},
        ),
        (
            'bearer Error = "invalid_token" , error_description="a=b, \\"c\\""',
            {"error": "invalid_token", "error_description": 'a=b, "c"'},
        ),
        ('Bearer realm="api://x"', {"realm": "api://x"}),
        ("Bearer", {}),
        ('Basic realm="x"', {}),
        ('Bearerx error="x"', {}),
        ("", {}),
        (None, {}),
    ],
)
def test_bearer_challenge_parameters(
    static_page: SpaPage, header: str | None, expected: dict[str, str]
) -> None:
    assert call(static_page, "parseBearerChallenge", header) == expected


@pytest.mark.parametrize(
    ("encoded", "expected"),
    [
        (CLAIMS_B64, CLAIMS),
        (CLAIMS_B64URL, CLAIMS),
        (base64.b64encode(b"not json").decode(), None),
        (base64.b64encode(b'{"a":"\xff"}').decode(), None),  # not UTF-8
        ("e30=!", None),
        ("", None),
        (None, None),
    ],
)
def test_claims_are_decoded_from_base64_only_when_they_are_json(
    static_page: SpaPage, encoded: str | None, expected: str | None
) -> None:
    assert call(static_page, "decodeClaims", encoded) == expected


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("7", 7),
        (" 3 ", 3),
        ("0", 0),
        ("86400", 300),  # capped
        ("Thu, 01 Jan 1970 00:00:00 GMT", 0),  # a date in the past: now
        ("Fri, 01 Jan 2100 00:00:00 GMT", 300),
        ("2100-01-01", None),  # not an HTTP-date
        ("-1", None),
        ("1.5", None),
        ("\u0663", None),  # ARABIC-INDIC DIGIT THREE
        ("soon", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_is_whole_seconds_or_a_date(
    static_page: SpaPage, header: str | None, expected: int | None
) -> None:
    assert call(static_page, "parseRetryAfter", header) == expected
