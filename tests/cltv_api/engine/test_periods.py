"""Period ordinals agree with pandas periods (lifetimes' bucketing), in Python and in the engine."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pytest

from cltv_api.engine import TimeUnit, parse_time_unit
from cltv_api.engine.periods import period_expr, period_ordinal, to_timestamp
from cltv_api.errors import InvalidInput

from ._data import in_memory

# Boundaries that matter: Sunday 23:59:59 vs Monday 00:00 (pandas W = W-SUN), month ends,
# leap day, year end, dates before the 1970 epoch (negative ordinals), a Thursday 1970-01-01.
EDGE_TIMES = pd.to_datetime(
    [
        "2022-01-02 23:59:59",  # Sunday
        "2022-01-03 00:00:00",  # Monday
        "2020-02-29 12:00",
        "2020-03-01 00:00",
        "2021-12-31 23:59:59.999999",
        "2022-01-01 00:00",
        "1969-12-28 23:00",  # Sunday before the epoch
        "1969-12-29 00:00",  # Monday of the epoch's week
        "1970-01-01 00:00",
        "1970-01-04 23:59",
        "1970-01-05 00:00",
    ],
    format="ISO8601",
)
RANDOM_TIMES = pd.Timestamp("2019-06-01") + pd.to_timedelta(
    np.random.default_rng(3).integers(0, 3 * 365 * 86400, 200), unit="s"
)
TIMES = EDGE_TIMES.append(RANDOM_TIMES)


@pytest.mark.parametrize("unit", list(TimeUnit))
def test_python_ordinal_differences_equal_pandas_period_differences(unit: TimeUnit) -> None:
    base = pd.Timestamp("2000-01-01")
    ours = np.array([period_ordinal(t, unit) - period_ordinal(base, unit) for t in TIMES])
    ref = np.array([(t.to_period(unit.value) - base.to_period(unit.value)).n for t in TIMES])
    np.testing.assert_array_equal(ours, ref)


@pytest.mark.parametrize("unit", list(TimeUnit))
def test_engine_ordinals_equal_python_ordinals(unit: TimeUnit) -> None:
    table = in_memory(pd.DataFrame({"date": TIMES}))
    ours = table.select(p=period_expr(table.date, unit)).to_pyarrow()["p"].to_numpy()
    np.testing.assert_array_equal(ours, [period_ordinal(t, unit) for t in TIMES])


def test_weeks_start_on_monday() -> None:
    sunday, monday = pd.Timestamp("2024-03-10 23:59"), pd.Timestamp("2024-03-11 00:00")
    assert period_ordinal(monday, TimeUnit.WEEKS) == period_ordinal(sunday, TimeUnit.WEEKS) + 1
    tuesday_before = pd.Timestamp("2024-03-05")
    assert period_ordinal(tuesday_before, TimeUnit.WEEKS) == period_ordinal(sunday, TimeUnit.WEEKS)


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("D", TimeUnit.DAYS),
        ("days", TimeUnit.DAYS),
        ("Weeks", TimeUnit.WEEKS),
        ("m", TimeUnit.MONTHS),
    ],
)
def test_time_unit_aliases(text: str, unit: TimeUnit) -> None:
    assert parse_time_unit(text) is unit


def test_unknown_time_unit_names_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        parse_time_unit("fortnights")
    assert info.value.errors[0].field == "time_unit"


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("2024-03-31", dt.datetime(2024, 3, 31)),
        ("2024-03-31 18:05", dt.datetime(2024, 3, 31, 18, 5)),
        ("2024-03-31T18:00:00+03:00", dt.datetime(2024, 3, 31, 15, 0)),
        ("2024-03-31T00:30:00Z", dt.datetime(2024, 3, 31, 0, 30)),
        ("31 March 2024", dt.datetime(2024, 3, 31)),  # not ISO: read by pandas
        (dt.date(2024, 3, 31), dt.datetime(2024, 3, 31)),
        (
            dt.datetime(2024, 3, 31, 23, 0, tzinfo=dt.timezone(dt.timedelta(hours=-5))),
            dt.datetime(2024, 4, 1, 4, 0),
        ),
        (pd.Timestamp("2024-03-31 12:00", tz="Europe/Moscow"), dt.datetime(2024, 3, 31, 9, 0)),
    ],
)
def test_to_timestamp_reads_iso_strings_dates_and_aware_values_as_naive_utc(
    given: object, expected: dt.datetime
) -> None:
    out = to_timestamp(given)  # type: ignore[arg-type]
    assert out == expected and out.tzinfo is None


@pytest.mark.parametrize("bad", ["not a date", "2024-13-45", ""])
def test_to_timestamp_names_what_it_cannot_read(bad: str) -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        to_timestamp(bad)
