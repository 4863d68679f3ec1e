"""Per-customer RFM summary (frequency, recency, T, monetary value) as one Ibis expression.

The statistics are the BG/NBD / Pareto/NBD summary (x, t_x, T) of Fader, Hardie & Lee (2005),
"Counting your customers the easy way", Marketing Science 24(2), and the mean repeat spend
m_x of the Gamma-Gamma spend model (Fader & Hardie 2013, "The Gamma-Gamma model of monetary
value"). They follow ``lifetimes.utils.summary_data_from_transaction_data`` and
``lifetimes.utils.calibration_and_holdout_data`` (lifetimes 0.11.3) step by step:

1. Transactions are bucketed into periods of the time unit (see :mod:`.periods`); all
   transactions of a customer in one period collapse into one purchase whose spend is their sum.
2. Periods after the observation end's period are dropped, so a customer whose first purchase
   is after the observation end is not in the summary.
3. ``frequency`` x = number of purchase periods - 1 (repeat purchases),
   ``recency`` t_x = last - first purchase period, ``T`` = observation-end period - first
   purchase period, all in whole periods.
4. ``monetary_value`` = mean of the per-period spend over the repeat periods only (the first
   purchase period is excluded), 0 when x = 0.

x, t_x and T are identical to lifetimes'; monetary_value agrees up to floating-point rounding
(the order of summation differs; a few 1e-16 relative to the customer's total spend).

All values are float64 (as lifetimes returns them). Nothing is executed except one aggregate
query for validation and the default observation end; the returned table is lazy and runs on
whatever backend holds the transactions (DuckDB, Spark, PostgreSQL...).

Segments: a customer's value of each segment column is the value on their first transaction
(earliest timestamp). When several transactions share that timestamp, the smallest value
(string order) of that column is taken, independently for each segment column.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Sequence
from typing import Literal, TypeAlias

import ibis
import ibis.expr.types as ir

from cltv_api.errors import FieldError, InvalidInput

from .periods import TimeUnit, parse_time_unit, period_expr, period_ordinal, timestamp_literal
from .periods import to_timestamp as _to_timestamp
from .validate import AMOUNT, CUSTOMER, DATE, TableStats, prepare_transactions, scan_transactions

DateLike: TypeAlias = dt.datetime | dt.date | str
"""A date argument: a datetime (pandas Timestamps are datetimes), a date or an ISO string."""

SUMMARY_COLUMNS = ("frequency", "recency", "T", "monetary_value")
CALIBRATION_COLUMNS = (
    "frequency_cal",
    "recency_cal",
    "T_cal",
    "monetary_value_cal",
    "frequency_holdout",
    "monetary_value_holdout",
    "duration_holdout",
)
_PERIOD = "_period"


def summarize(
    table: ir.Table,
    time_unit: str | TimeUnit = TimeUnit.DAYS,
    *,
    observation_end: DateLike | None = None,
    calibration_end: DateLike | None = None,
    segment_cols: Sequence[str] = (),
) -> ir.Table:
    """Per-customer summary of a transaction table, as a lazy Ibis table.

    Parameters
    ----------
    table
        Transactions with ``customer_id``, ``date``, ``amount`` and the ``segment_cols``.
    time_unit
        Length of a purchase period: ``"days"``, ``"weeks"`` or ``"months"`` (or D, W, M).
    observation_end
        End of the observation window (inclusive, whole period). Default: the latest date.
    calibration_end
        When given, split the window like ``lifetimes.utils.calibration_and_holdout_data``:
        the result has the columns of :data:`CALIBRATION_COLUMNS` instead of
        :data:`SUMMARY_COLUMNS`.
    segment_cols
        Segment columns to carry; each customer gets the value of their first transaction.

    Returns
    -------
    ibis.Table
        One row per customer: ``customer_id``, the segment columns, then the statistics.
    """
    (whole,) = summarize_parts(
        table,
        time_unit,
        observation_end=observation_end,
        calibration_end=calibration_end,
        segment_cols=segment_cols,
        parts=1,
    )
    return whole


PART_ROWS = 1_000_000
"""Transactions per customer partition that :func:`summarize_parts` aims for (``"auto"``)."""
MAX_PARTS = 16
"""At most this many partitions: each one scans the input again."""
PARTITIONED_BACKENDS = frozenset({"duckdb"})
"""Backends where ``"auto"`` partitions: DuckDB's hash tables then hold one part's customers
at a time (Spark partitions by itself; PostgreSQL gets one part)."""


def summarize_parts(
    table: ir.Table,
    time_unit: str | TimeUnit = TimeUnit.DAYS,
    *,
    observation_end: DateLike | None = None,
    calibration_end: DateLike | None = None,
    segment_cols: Sequence[str] = (),
    parts: int | Literal["auto"] = "auto",
) -> list[ir.Table]:
    """The summary of :func:`summarize` as lazy tables over disjoint sets of customers.

    Customers are split by a hash of their id, so each part holds whole customers and the
    parts together are exactly the rows of :func:`summarize` (same observation end for all,
    found by one validation scan). Computing the parts one after another (see
    :meth:`.Engine.store`) bounds the engine's aggregation memory by one part: on 2.8M
    transactions in DuckDB, three parts ran in the time of one (plain SQL, 0.99 vs 0.97 s)
    with 325 instead of 576 MB peak.
    ``"auto"`` picks ``ceil(rows / PART_ROWS)`` parts (at most :data:`MAX_PARTS`) on the
    backends of :data:`PARTITIONED_BACKENDS`, else one.
    """
    unit = parse_time_unit(time_unit)
    segments = list(dict.fromkeys(segment_cols))
    tx = prepare_transactions(table, segments)
    obs = None if observation_end is None else _to_timestamp(observation_end)
    if calibration_end is None:
        stats = scan_transactions(tx)
        obs = _observation_end(obs, stats)
        _require_customers(stats, obs, unit)
        return [
            customer_summary(part, unit, obs, segments)
            for part in _customer_parts(tx, _n_parts(parts, stats, tx))
        ]
    cal = _to_timestamp(calibration_end)
    if obs is not None and cal >= obs:
        raise InvalidInput(
            f"calibration_end ({cal}) must be before observation_end ({obs})",
            errors=[FieldError("calibration_end", "must be before observation_end")],
        )
    stats = scan_transactions(tx, calibration_end=cal, observation_end=obs)
    obs = _observation_end(obs, stats)
    _require_calibration_and_holdout(stats, cal, obs)
    return [
        calibration_holdout_summary(part, unit, cal, obs, segments)
        for part in _customer_parts(tx, _n_parts(parts, stats, tx))
    ]


def _n_parts(parts: int | Literal["auto"], stats: TableStats, tx: ir.Table) -> int:
    if parts != "auto":
        if parts < 1:
            raise ValueError(f"parts must be at least 1, got {parts}")
        return parts
    if _backend_name(tx) not in PARTITIONED_BACKENDS:
        return 1
    return max(1, min(MAX_PARTS, math.ceil(stats.n_rows / PART_ROWS)))


def _customer_parts(tx: ir.Table, parts: int) -> list[ir.Table]:
    """``tx`` split into ``parts`` by the engine's hash of the customer id (non-negative mod)."""
    if parts == 1:
        return [tx]
    bucket = ((tx[CUSTOMER].hash() % parts) + parts) % parts
    return [tx.filter(bucket == part) for part in range(parts)]


def customer_summary(
    tx: ir.Table, unit: TimeUnit, observation_end: dt.datetime, segments: Sequence[str] = ()
) -> ir.Table:
    """Frequency, recency, T and monetary value per customer (validated input, no checks).

    ``tx`` comes from :func:`.validate.prepare_transactions`; see the module docstring for the
    definitions.
    """
    obs_period = period_ordinal(observation_end, unit)
    dated = tx.mutate(**{_PERIOD: period_expr(tx[DATE], unit)})
    dated = dated.filter(dated[_PERIOD] <= obs_period)
    stats = _customer_statistics(dated)
    n_repeat = stats.n_periods - 1
    out = stats.select(
        stats[CUSTOMER],
        frequency=n_repeat.cast("float64"),
        recency=(stats.last_period - stats.first_period).cast("float64"),
        T=(ibis.literal(obs_period) - stats.first_period).cast("float64"),
        monetary_value=ibis.ifelse(
            n_repeat > 0, stats.repeat_spend / n_repeat.cast("float64"), 0.0
        ).cast("float64"),
    )
    return _with_segments(out, dated, segments)


MONEY = "decimal(38, 12)"
"""Amounts are summed as exact decimals (12 decimal places, 26 integer digits): a parallel
engine adds floats in a varying order, so float sums differ in their last bits from run to run,
and so would every figure fitted on them. Decimal sums make a summary reproducible bit for bit
(and the repeat spend, total minus first, exact)."""


def _customer_statistics(dated: ir.Table) -> ir.Table:
    """Per customer: number of purchase periods, first/last period and spend after the first.

    Two aggregations: spend per (customer, period), then per customer. The repeat periods'
    spend is the total minus the first period's spend (no join or window: the fastest form we
    measured in DuckDB), both exact decimal sums of the amounts (see :data:`MONEY`); they
    equal lifetimes' float sums up to the amounts' rounding to 12 decimal places.
    """
    money = dated[AMOUNT].cast(MONEY)
    periods = dated.group_by([CUSTOMER, _PERIOD]).aggregate(spend=money.sum())
    period = periods[_PERIOD]
    stats = periods.group_by(CUSTOMER).aggregate(
        n_periods=periods.count(),
        first_period=period.min(),
        last_period=period.max(),
        total_spend=periods.spend.sum(),
        first_spend=periods.spend.argmin(period),
    )
    return stats.mutate(repeat_spend=(stats.total_spend - stats.first_spend).cast("float64"))


def _with_segments(out: ir.Table, tx: ir.Table, segments: Sequence[str]) -> ir.Table:
    """Join each customer's segment values (at their first transaction) onto ``out``.

    The value on the earliest transaction; between transactions at that timestamp, the
    smallest non-null value, column by column (null only when all of them are null).
    """
    if not segments:
        return out
    if _backend_name(tx) in ORDERED_FIRST_BACKENDS:
        seg = _first_values_ordered(tx, segments)
    else:
        seg = _first_values_joined(tx, segments)
    joined = out.join(seg, CUSTOMER)
    return joined.select(CUSTOMER, *segments, *[c for c in out.columns if c != CUSTOMER])


ORDERED_FIRST_BACKENDS = frozenset({"duckdb"})
"""Backends whose ``first`` aggregate takes an ordering and keeps nulls (DuckDB's
``FIRST(x ORDER BY date, x)``); Ibis refuses it for PySpark and PostgreSQL, which get the
join of :func:`_first_values_joined`. Both give the same values (tests compare the engines)."""


def _first_values_ordered(tx: ir.Table, segments: Sequence[str]) -> ir.Table:
    """One aggregate: each column's first value ordered by (date, value), nulls last.

    The whole summary of 2.8M transactions ran 12% faster in DuckDB with it than with the
    join (20% under a 256 MB memory limit, where the join spills).
    """
    return tx.group_by(CUSTOMER).aggregate(
        **{
            col: tx[col].first(
                order_by=[tx[DATE], ibis.asc(tx[col], nulls_first=False)], include_null=True
            )
            for col in segments
        }
    )


def _first_values_joined(tx: ir.Table, segments: Sequence[str]) -> ir.Table:
    """Each customer's earliest timestamp joined back on (customer, date), then ``min``."""
    firsts = tx.group_by(CUSTOMER).aggregate(_first_date=tx[DATE].min())
    first = tx.join(firsts, [tx[CUSTOMER] == firsts[CUSTOMER], tx[DATE] == firsts._first_date])
    return first.group_by(CUSTOMER).aggregate(**{col: first[col].min() for col in segments})


def _backend_name(table: ir.Table) -> str | None:
    """The name of the backend a table is bound to (None for an unbound table)."""
    try:
        return str(table._find_backend().name)
    except ibis.common.exceptions.IbisError:
        return None


def calibration_holdout_summary(
    tx: ir.Table,
    unit: TimeUnit,
    calibration_end: dt.datetime,
    observation_end: dt.datetime,
    segments: Sequence[str] = (),
) -> ir.Table:
    """Calibration statistics and holdout counts per customer, like lifetimes.

    As in ``lifetimes.utils.calibration_and_holdout_data``: the calibration summary uses the
    transactions dated ``<= calibration_end`` (raw timestamps) with that date as its
    observation end; the holdout holds transactions with ``calibration_end < date <=
    observation_end``. ``frequency_holdout`` is the number of distinct holdout purchase periods,
    ``monetary_value_holdout`` the mean amount of the holdout *transactions* (not per-period
    sums), both 0 for customers without holdout purchases; customers whose first purchase is
    in the holdout are dropped. ``duration_holdout`` = observation-end period - calibration-end
    period (whole periods).
    """
    cal_lit = timestamp_literal(calibration_end)
    calibration = customer_summary(tx.filter(tx[DATE] <= cal_lit), unit, calibration_end, segments)
    calibration = calibration.rename({f"{c}_cal": c for c in SUMMARY_COLUMNS})
    holdout = tx.filter((tx[DATE] > cal_lit) & (tx[DATE] <= timestamp_literal(observation_end)))
    holdout = holdout.group_by(CUSTOMER).aggregate(
        frequency_holdout=period_expr(holdout[DATE], unit).nunique().cast("float64"),
        monetary_value_holdout=holdout[AMOUNT].cast(MONEY).mean().cast("float64"),
    )
    joined = calibration.left_join(holdout, calibration[CUSTOMER] == holdout[CUSTOMER])
    duration = period_ordinal(observation_end, unit) - period_ordinal(calibration_end, unit)
    return joined.select(
        calibration[CUSTOMER],
        *[calibration[c] for c in segments],
        *[calibration[f"{c}_cal"] for c in SUMMARY_COLUMNS],
        frequency_holdout=joined.frequency_holdout.fill_null(0.0),
        monetary_value_holdout=joined.monetary_value_holdout.fill_null(0.0),
        # an integer literal cast in SQL: PostgreSQL reads a bare 21.0 as NUMERIC
        duration_holdout=ibis.literal(duration, type="int64").cast("float64"),
    )


def _observation_end(obs: dt.datetime | None, stats: TableStats) -> dt.datetime:
    if obs is not None:
        return obs
    assert stats.last_date is not None  # scan_transactions rejects empty tables
    return stats.last_date


def _require_customers(stats: TableStats, obs: dt.datetime, unit: TimeUnit) -> None:
    assert stats.first_date is not None
    if period_ordinal(stats.first_date, unit) > period_ordinal(obs, unit):
        raise InvalidInput(
            f"no transactions on or before observation_end {obs} "
            f"(the first transaction is on {stats.first_date})",
            errors=[FieldError("observation_end", "is before the first transaction")],
        )


def _require_calibration_and_holdout(stats: TableStats, cal: dt.datetime, obs: dt.datetime) -> None:
    assert stats.first_date is not None and stats.last_date is not None
    if cal >= obs:
        raise InvalidInput(
            f"calibration_end ({cal}) must be before observation_end ({obs})",
            errors=[FieldError("calibration_end", "must be before observation_end")],
        )
    if stats.first_date > cal:
        raise InvalidInput(
            f"no transactions on or before calibration_end {cal} "
            f"(the first transaction is on {stats.first_date})",
            errors=[FieldError("calibration_end", "is before the first transaction")],
        )
    n_holdout = stats.n_holdout if stats.n_holdout is not None else int(stats.last_date > cal)
    if n_holdout == 0:
        raise InvalidInput(
            f"no transactions after calibration_end {cal} and on or before observation_end {obs}",
            errors=[FieldError("calibration_end", "leaves an empty holdout period")],
        )
