"""Purchase periods: the time unit transactions are collapsed to, as integer ordinals.

The summary statistics of the BG/NBD and Pareto/NBD models (frequency, recency, T) are counted
in whole periods of a chosen unit. We follow the conventions of
``lifetimes.utils.summary_data_from_transaction_data`` (Davidson-Pilon et al., lifetimes 0.11),
which buckets timestamps with pandas periods:

* ``D`` (days): calendar days; a timestamp's period is its date.
* ``W`` (weeks): pandas' ``W`` is ``W-SUN``, weeks that *end* on Sunday, so a week runs from
  Monday 00:00 to Sunday 23:59:59 (the same bucketing as ISO weeks).
* ``M`` (months): calendar months.

Every period is mapped to an integer ordinal so that differences of ordinals are differences in
whole periods (what lifetimes gets by subtracting period start timestamps and dividing by one
period; for months lifetimes' division by ``numpy.timedelta64(1, 'M')`` no longer runs under
pandas >= 2, and we use whole calendar months, the convention lifetimes' own
``calibration_and_holdout_data`` uses for ``duration_holdout``).

Ordinals (timestamps are read as wall-clock time, i.e. UTC for naive timestamps):

* day ordinal ``d`` = days since 1970-01-01;
* week ordinal = ``floor((d + 3) / 7)``: 1970-01-01 was a Thursday, so the Monday that starts its
  week is day -3 and every Monday starts a new ordinal;
* month ordinal = ``12 * year + month - 1``.

The same formulas exist twice: as an Ibis expression (run by the engine) and in Python (for
literal dates such as the observation end); tests check that they agree with pandas periods.
"""

from __future__ import annotations

import datetime as dt
import math
from enum import StrEnum

import ibis
import ibis.expr.types as ir

from cltv_api.errors import FieldError, InvalidInput

_EPOCH = dt.date(1970, 1, 1)
# 1970-01-01 was a Thursday: shifting day ordinals by 3 makes weeks start on Mondays.
_WEEK_SHIFT = 3


class TimeUnit(StrEnum):
    """Length of one purchase period; the values are the pandas period aliases lifetimes uses."""

    DAYS = "D"
    WEEKS = "W"
    MONTHS = "M"


_ALIASES = {
    "d": TimeUnit.DAYS,
    "day": TimeUnit.DAYS,
    "days": TimeUnit.DAYS,
    "w": TimeUnit.WEEKS,
    "week": TimeUnit.WEEKS,
    "weeks": TimeUnit.WEEKS,
    "m": TimeUnit.MONTHS,
    "month": TimeUnit.MONTHS,
    "months": TimeUnit.MONTHS,
}


def parse_time_unit(value: str | TimeUnit) -> TimeUnit:
    """Return the :class:`TimeUnit` for ``"D"/"W"/"M"`` or ``"days"/"weeks"/"months"``."""
    if isinstance(value, TimeUnit):
        return value
    unit = _ALIASES.get(str(value).strip().lower())
    if unit is None:
        raise InvalidInput(
            f"unknown time unit {value!r}; use days, weeks or months (D, W, M)",
            errors=[
                FieldError("time_unit", "must be one of days, weeks, months", value=str(value))
            ],
        )
    return unit


def period_expr(date: ir.TimestampValue | ir.DateValue, unit: TimeUnit) -> ir.IntegerValue:
    """Ibis expression for the period ordinal (int64) of each value of ``date``."""
    if unit is TimeUnit.MONTHS:
        return (date.year() * 12 + date.month() - 1).cast("int64")
    days = _as_date(date).epoch_days().cast("int64")
    if unit is TimeUnit.DAYS:
        return days
    return ((days + _WEEK_SHIFT) / 7).floor().cast("int64")


def period_ordinal(when: dt.datetime | dt.date | str, unit: TimeUnit) -> int:
    """Python twin of :func:`period_expr` for one literal timestamp."""
    ts = to_timestamp(when)
    if unit is TimeUnit.MONTHS:
        return ts.year * 12 + ts.month - 1
    days = (ts.date() - _EPOCH).days
    if unit is TimeUnit.DAYS:
        return days
    return math.floor((days + _WEEK_SHIFT) / 7)


def to_timestamp(when: dt.datetime | dt.date | str) -> dt.datetime:
    """Parse a date/time argument into a naive datetime (InvalidInput when unparseable).

    Strings are ISO 8601 (``2024-03-31``, ``2024-03-31T18:00:00+03:00``); other spellings that
    pandas reads (``31 March 2024``) are accepted too. A pandas Timestamp is a datetime and is
    taken as it is (to the microsecond). A timezone-aware value is converted to UTC and made
    naive, matching how the engine reads naive timestamps as UTC wall-clock time.
    """
    if isinstance(when, dt.datetime):
        ts = when
    elif isinstance(when, dt.date):
        ts = dt.datetime(when.year, when.month, when.day)
    elif isinstance(when, str):
        ts = _parse_datetime(when)
    else:
        raise InvalidInput(f"cannot read {when!r} as a date: expected a date, datetime or string")
    if ts.tzinfo is not None:
        ts = ts.astimezone(dt.UTC).replace(tzinfo=None)
    return ts


def _parse_datetime(text: str) -> dt.datetime:
    """ISO 8601 with the standard library; pandas (imported only then) for other spellings."""
    try:
        return dt.datetime.fromisoformat(text.strip())
    except ValueError:
        pass
    import pandas as pd  # noqa: PLC0415

    try:
        ts = pd.Timestamp(text)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"cannot read {text!r} as a date: {exc}") from exc
    if ts is pd.NaT:
        raise InvalidInput(f"cannot read {text!r} as a date")
    result: dt.datetime = ts.to_pydatetime()
    return result


def timestamp_literal(when: dt.datetime) -> ir.TimestampScalar:
    """An Ibis timestamp literal (microsecond precision) for comparisons with the date column."""
    return ibis.literal(when, type="timestamp")


def _as_date(date: ir.TimestampValue | ir.DateValue) -> ir.DateValue:
    if isinstance(date, ir.DateValue):
        return date
    return date.date()
