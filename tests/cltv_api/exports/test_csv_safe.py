"""Safe CSV: formula injection neutralised, numbers kept as numbers, ISO dates, locale options."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cltv_api.exports.csv_safe import (
    UTF8_BOM,
    check_options,
    format_cell,
    format_number,
    neutralise,
    write_csv,
)


def read(text: str, sep: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(text.removeprefix(UTF8_BOM)), delimiter=sep))


# OWASP "CSV Injection" payloads: each starts with a character a spreadsheet treats as a formula.
PAYLOADS = [
    '=HYPERLINK("http://evil.example","click")',
    "+1+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+1",
    "\r=1+1",
]


@pytest.mark.parametrize("payload", PAYLOADS)
def test_text_that_would_start_a_formula_gets_a_leading_apostrophe(payload: str) -> None:
    text = write_csv(["name"], [[payload]])
    assert read(text)[1] == ["'" + payload]


def test_numbers_stay_numbers_and_numeric_text_is_not_prefixed() -> None:
    rows = read(write_csv(["a", "b", "c", "d"], [[-12.5, -3, "-12.5", "+0.25"]]))
    # a negative amount is data, not a formula: no apostrophe, still a number when read back
    assert rows[1] == ["-12.5", "-3", "-12.5", "+0.25"]
    assert float(rows[1][0]) == -12.5


def test_numbers_have_no_exponent_and_round_trip() -> None:
    assert format_number(1e-7) == "0.0000001"
    assert format_number(1.5e16) == "15000000000000000"
    assert float(format_number(0.1 + 0.2)) == 0.1 + 0.2
    assert format_number(Decimal("2.50")) == "2.5"
    assert format_number(float("nan")) == "" and format_number(float("inf")) == ""


def test_dates_are_iso_and_none_is_empty_and_booleans_are_words() -> None:
    assert format_cell(date(2024, 1, 31)) == "2024-01-31"
    assert format_cell(datetime(2024, 1, 31, 12, 0, tzinfo=UTC)) == "2024-01-31T12:00:00+00:00"
    assert format_cell(None) == ""
    assert format_cell(True) == "true"


def test_decimal_comma_with_semicolon_separator_and_bom() -> None:
    text = write_csv(["Клиент", "value"], [["Иванов", 1234.5]], sep=";", decimal="comma", bom=True)
    assert text.startswith(UTF8_BOM)
    assert read(text, ";") == [["Клиент", "value"], ["Иванов", "1234,5"]]
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")


def test_tab_separator_quotes_a_neutralised_leading_tab() -> None:
    rows = read(write_csv(["x"], [["\tabc"]], sep="\t"), "\t")
    assert rows[1] == ["'\tabc"]


def test_impossible_locale_options_are_refused() -> None:
    assert check_options(",", "comma") == [("sep", "must not be ',' with decimal=comma (use ';')")]
    assert check_options("|", "point")[0][0] == "sep"
    with pytest.raises(ValueError, match="sep"):
        write_csv(["a"], [[1.5]], sep=",", decimal="comma")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=30))
def test_no_written_text_cell_starts_a_formula(value: str) -> None:
    # Property: after neutralising, a cell either is a plain number or starts with no trigger.
    cell = neutralise(value)
    plain_number = cell == value and value.strip("+-").replace(".", "", 1).isdigit()
    assert plain_number or not cell.startswith(("=", "+", "-", "@", "\t", "\r"))


def test_arrow_batches_are_neutralised_like_single_cells() -> None:
    import pyarrow as pa

    from cltv_api.exports.csv_safe import neutralise, neutralise_arrow

    values = ["=HYPERLINK(1)", "+7", "-3", "@sum", "\tx", "plain", None, "-cmd"]
    batch = pa.record_batch({"customer_id": values, "clv": [1.5] * len(values)})
    out = neutralise_arrow(batch)
    expected = [None if v is None else neutralise(v) for v in values]
    assert out.column(0).to_pylist() == expected
    assert out.column(1).to_pylist() == [1.5] * len(values)
