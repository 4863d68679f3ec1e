"""Numbers and dates as they appear in exports: separators, currencies, date layouts."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest

from cltv_api.errors import AmbiguousFormat, InvalidInput
from cltv_api.ingest.dates import DateStats, decide_date_spec, stats_from_values
from cltv_api.ingest.numbers import NumberFormat, decide_number_format
from cltv_api.ingest.numbers import stats_from_values as number_stats
from tests.cltv_api.ingest.helpers import column, ingest, write_text


def _amounts(tmp_path: Path, values: list[str], **opts: object) -> list[float]:
    """Ingest a ';'-separated file with one row per amount (customers c0, c1... keep order)."""
    body = "".join(f"c{i:02d};2024-03-01;{v}\n" for i, v in enumerate(values))
    path = write_text(tmp_path / "amounts.csv", "customer;date;amount\n" + body)
    result = ingest(path, tmp_path / "data", **opts)  # type: ignore[arg-type]
    return column(result, "amount")


def test_decimal_comma_with_every_kind_of_space_as_thousands(tmp_path: Path) -> None:
    # "1 234,50" with a plain space, NBSP (U+00A0) and narrow NBSP (U+202F) all mean 1234.5.
    values = ["1 234,50", "1\u00a0234,50", "1\u202f234,50", "12,5", "1 000 000"]
    assert _amounts(tmp_path, values) == [1234.5, 1234.5, 1234.5, 12.5, 1_000_000.0]


def test_dot_thousands_with_decimal_comma(tmp_path: Path) -> None:
    assert _amounts(tmp_path, ["1.234,50", "2.000.000", "7,25"]) == [1234.5, 2_000_000.0, 7.25]


def test_comma_thousands_with_decimal_point(tmp_path: Path) -> None:
    assert _amounts(tmp_path, ["1,234.50", "2,000,000", "7.25"]) == [1234.5, 2_000_000.0, 7.25]


def test_currency_symbols_and_codes_stuck_to_numbers_are_stripped(tmp_path: Path) -> None:
    values = ["1 234,50 ₽", "12,5 руб.", "$12", "USD 7", "99 РУБ", "€3,5"]
    assert _amounts(tmp_path, values) == [1234.5, 12.5, 12.0, 7.0, 99.0, 3.5]


def test_currency_is_an_error_when_stripping_is_off(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        _amounts(tmp_path, ["$12", "5"], strip_currency=False)
    assert [(e.row, e.value) for e in info.value.errors] == [(2, "$12")]


def test_accounting_parentheses_and_unicode_minus_are_negative(tmp_path: Path) -> None:
    # Kept on request: (5,00) and −3 (U+2212) are -5 and -3.
    assert _amounts(tmp_path, ["(5,00)", "−3", "-2,5", "10"], negative_amounts="keep") == [
        -5.0,
        -3.0,
        -2.5,
        10.0,
    ]


def test_lone_three_digit_group_is_ambiguous_until_the_user_says(tmp_path: Path) -> None:
    # "1,234" is 1234 (thousands) or 1.234 (decimal comma): nothing in the column decides.
    with pytest.raises(AmbiguousFormat, match="decimal_separator"):
        _amounts(tmp_path, ["1,234", "5,000"])
    assert _amounts(tmp_path, ["1,234", "5,000"], decimal_separator=",") == [1.234, 5.0]
    assert _amounts(tmp_path, ["1,234", "5,000"], decimal_separator=".") == [1234.0, 5000.0]


def test_other_values_decide_a_lone_three_digit_group(tmp_path: Path) -> None:
    # "12,50" proves the comma is decimal, so "1,234" is 1.234; "7.5" proves "1,234" is 1234.
    assert _amounts(tmp_path, ["1,234", "12,50"]) == [1.234, 12.5]
    assert _amounts(tmp_path, ["1,234", "7.5"]) == [1234.0, 7.5]


def test_number_format_decisions_on_value_classes() -> None:
    def decide(*values: str) -> NumberFormat:
        return decide_number_format(number_stats(values, strip_currency=True), columns="'x'")

    assert decide("1 234,5") == NumberFormat(",", " ")
    assert decide("1.234.567") == NumberFormat(",", ".")  # two dot groups: dots are thousands
    assert decide("12", "7") == NumberFormat(".", None)  # integers only: nothing to decide
    with pytest.raises(AmbiguousFormat, match="mix"):
        decide("12,5", "3.75")  # decimal comma and decimal point in one column


@pytest.mark.parametrize(
    ("first", "second", "label", "expected"),
    [
        ("2024-03-01", "2024-03-13", "iso", [datetime(2024, 3, 1), datetime(2024, 3, 13)]),
        (
            "2024-03-01T10:30:00",
            "2024-03-13 23:59",
            "iso",
            [datetime(2024, 3, 1, 10, 30), datetime(2024, 3, 13, 23, 59)],
        ),
        ("01.03.2024", "13.03.2024", "%d.%m.%Y", [datetime(2024, 3, 1), datetime(2024, 3, 13)]),
        (
            "01.03.2024 10:30",
            "13.03.2024 08:15:30",
            "%d.%m.%Y",
            [datetime(2024, 3, 1, 10, 30), datetime(2024, 3, 13, 8, 15, 30)],
        ),
        ("1/3/2024", "13/3/2024", "%d/%m/%Y", [datetime(2024, 3, 1), datetime(2024, 3, 13)]),
        ("3/1/2024", "3/13/2024", "%m/%d/%Y", [datetime(2024, 3, 1), datetime(2024, 3, 13)]),
        ("01.03.24", "13.03.24", "%d.%m.%y", [datetime(2024, 3, 1), datetime(2024, 3, 13)]),
        ("2024/03/01", "2024/03/13", "%Y/%m/%d", [datetime(2024, 3, 1), datetime(2024, 3, 13)]),
        ("20240301", "20240313", "%Y%m%d", [datetime(2024, 3, 1), datetime(2024, 3, 13)]),
        # Excel serials: 45352 = 2024-03-01 (45292 is 2024-01-01, +31 +29 days); .5 = noon.
        ("45352", "45364.5", "excel", [datetime(2024, 3, 1), datetime(2024, 3, 13, 12)]),
        # Unix seconds: 1709251200 = 2024-03-01T00:00Z; +12 days + 1 h.
        ("1709251200", "1710291600", "unix_s", [datetime(2024, 3, 1), datetime(2024, 3, 13, 1)]),
        (
            "1709251200000",
            "1710291600000",
            "unix_ms",
            [datetime(2024, 3, 1), datetime(2024, 3, 13, 1)],
        ),
    ],
)
def test_every_date_layout_is_detected_and_parsed(
    tmp_path: Path, first: str, second: str, label: str, expected: list[datetime]
) -> None:
    path = write_text(tmp_path / "d.csv", f"customer,date,amount\na,{first},1\nb,{second},2\n")
    result = ingest(path, tmp_path / "data")
    assert result.format.date_format == label
    assert column(result, "date") == expected


def test_all_days_up_to_12_is_ambiguous_and_names_the_column(tmp_path: Path) -> None:
    # 01/03 and 02/03 fit dd/mm and mm/dd: refuse, say which column and what to pass.
    path = write_text(tmp_path / "d.csv", "client,order date,sum\na,01/03/2024,1\nb,02/03/2024,2\n")
    with pytest.raises(AmbiguousFormat, match="order date") as info:
        ingest(path, tmp_path / "data")
    assert "date_format" in info.value.detail
    day_first = ingest(path, tmp_path / "data", date_format="%d/%m/%Y")
    assert column(day_first, "date") == [datetime(2024, 3, 1), datetime(2024, 3, 2)]
    month_first = ingest(path, tmp_path / "data2", date_format="%m/%d/%Y")
    assert column(month_first, "date") == [datetime(2024, 1, 3), datetime(2024, 2, 3)]


def test_a_day_above_12_far_beyond_the_sample_decides_for_the_whole_column(tmp_path: Path) -> None:
    # The sniffer sees only the first 4 KiB (all ambiguous); the full-column check in SQL
    # finds 25/03/2024 at the end and settles on dd/mm instead of refusing the file.
    body = "".join(f"c{i},0{1 + i % 9}/03/2024,1\n" for i in range(400)) + "last,25/03/2024,1\n"
    path = write_text(tmp_path / "d.csv", "customer,date,amount\n" + body)
    result = ingest(path, tmp_path / "data", sample_bytes=4096)
    assert result.format.date_format == "%d/%m/%Y"
    assert max(column(result, "date")) == datetime(2024, 3, 25)


def test_days_above_12_in_both_positions_fit_no_layout(tmp_path: Path) -> None:
    path = write_text(tmp_path / "d.csv", "customer,date,amount\na,13/01/2024,1\nb,01/13/2024,2\n")
    with pytest.raises(InvalidInput, match="neither") as info:
        ingest(path, tmp_path / "data")
    assert not isinstance(info.value, AmbiguousFormat)


def test_unknown_date_format_override_is_refused(tmp_path: Path) -> None:
    path = write_text(tmp_path / "d.csv", "customer,date,amount\na,2024-03-01,1\n")
    with pytest.raises(InvalidInput, match="strptime"):
        ingest(path, tmp_path / "data", date_format="dd.mm.yyyy")


def test_date_decision_rules_on_counts() -> None:
    # Unit check of the decision itself, independent of files.
    assert decide_date_spec(stats_from_values(["13/02/2024"]), column="d").label == "%d/%m/%Y"
    assert decide_date_spec(stats_from_values(["02/13/2024"]), column="d").label == "%m/%d/%Y"
    with pytest.raises(AmbiguousFormat):
        decide_date_spec(stats_from_values(["02/03/2024", "12/11/2024"]), column="d")
    with pytest.raises(InvalidInput, match="Excel serial"):
        decide_date_spec(stats_from_values(["5000000"]), column="d")  # between serial and epoch
    with pytest.raises(InvalidInput, match="recognise"):
        decide_date_spec(stats_from_values(["March 1st"]), column="d")
    assert DateStats().nonempty == 0


def test_unbalanced_parenthesis_or_trailing_minus_is_not_a_number(tmp_path: Path) -> None:
    # "(5" and "12-" could be typos or SAP-style signs: refuse rather than guess a sign.
    with pytest.raises(InvalidInput) as info:
        _amounts(tmp_path, ["(5", "12-", "3"])
    assert [(e.row, e.value) for e in info.value.errors] == [(2, "(5"), (3, "12-")]
