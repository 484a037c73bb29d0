"""Strict parsing of outside values: ASCII digits only, bounded, never an unexpected error."""

from __future__ import annotations

import pytest

from app.parsing import Malformed, decimal_integer, decimal_number, delta_seconds, http_date

NOT_ASCII_DIGITS = ["²", "٣", "١٠", "５", "߁", "𝟗"]


@pytest.mark.parametrize(("text", "value"), [("1", 1), ("999", 999), ("007", 7)])
def test_decimal_integer_accepts_ascii_digits(text: str, value: int) -> None:
    assert decimal_integer(text, low=1, high=999) == value


@pytest.mark.parametrize(
    "text",
    [
        *NOT_ASCII_DIGITS,
        "",
        " 5",
        "5 ",
        "+5",
        "-5",
        "5.0",
        "1e2",
        "0x10",
        "1_000",
        "0",
        "1000",
        "9" * 11,
        "9" * 5000,
    ],
)
def test_decimal_integer_refuses_anything_else(text: str) -> None:
    with pytest.raises(Malformed):
        decimal_integer(text, low=1, high=999)


@pytest.mark.parametrize(("text", "value"), [("10", 10.0), ("3.05", 3.05), ("0.5", 0.5)])
def test_decimal_number_accepts_digits_and_one_point(text: str, value: float) -> None:
    assert decimal_number(text, low=0.1, high=60) == value


@pytest.mark.parametrize(
    "text",
    [
        *NOT_ASCII_DIGITS,
        "1e3",
        "1E1",
        "nan",
        "NaN",
        "inf",
        "Infinity",
        "-1",
        "+1",
        ".5",
        "5.",
        "1.2.3",
        "1,5",
        " 1",
        "0.01",
        "61",
        "1" * 30,
    ],
)
def test_decimal_number_refuses_anything_else(text: str) -> None:
    with pytest.raises(Malformed):
        decimal_number(text, low=0.1, high=60)


@pytest.mark.parametrize(
    ("text", "value"),
    [("0", 0), ("120", 120), ("0000120", 120), ("3601", 3600), ("9" * 5000, 3600)],
)
def test_delta_seconds_is_capped_not_refused_when_large(text: str, value: int) -> None:
    assert delta_seconds(text, ceiling=3600) == value


@pytest.mark.parametrize("text", [*NOT_ASCII_DIGITS, "", "-1", "1.5", " 1", "1e3"])
def test_delta_seconds_refuses_anything_else(text: str) -> None:
    with pytest.raises(Malformed):
        delta_seconds(text, ceiling=3600)


def test_http_date_reads_imf_fixdate() -> None:
    assert http_date("Wed, 21 Oct 2015 07:28:00 GMT") == 1445412480.0


@pytest.mark.parametrize(
    "text",
    [
        "Wed, ٢١ Oct 2015 07:28:00 GMT",
        "yesterday",
        "",
        "Wed, 21 Oct 99999 07:28:00 GMT",
        "Wed, 32 Oct 2015 07:28:00 GMT",
    ],
)
def test_http_date_refuses_anything_else(text: str) -> None:
    with pytest.raises(Malformed):
        http_date(text)
