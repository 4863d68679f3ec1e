"""Small synthetic transaction sets for the engine tests, and lifetimes-based references."""

from __future__ import annotations

import ibis
import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa

from tests.conftest import quiet_reference

START = pd.Timestamp("2022-01-01")
SPAN_DAYS = 548  # 18 months
REGIONS = ("east", "north", "south")
CHANNELS = ("store", "web")


def make_transactions(n_customers: int = 300, seed: int = 20240601) -> pd.DataFrame:
    """A few hundred customers, two segment columns, dates spanning 18 months.

    Each customer gets 1 + Poisson(3) purchases at random seconds within 200 days after a
    random start, amounts with cents. One in five orders is placed exactly one hour after the
    start, so many customers have several orders in one period and ties at their first
    timestamp (43 of 300 with different regions there: the tie-break rule is exercised).
    Segment values are drawn per transaction, so later transactions can carry other segments
    than the first (the summary must take the first).
    """
    rng = np.random.default_rng(seed)
    counts = 1 + rng.poisson(3.0, n_customers)
    ids = np.repeat([f"c{i:04d}" for i in range(n_customers)], counts)
    first = rng.integers(0, SPAN_DAYS * 86400, n_customers)
    offsets = np.repeat(first, counts) + rng.integers(0, 200 * 86400, counts.sum())
    offsets = np.minimum(offsets, SPAN_DAYS * 86400 - 1)
    # one in five transactions repeats the customer's first timestamp's day (same period)
    same_day = rng.random(counts.sum()) < 0.2
    offsets = np.where(same_day, np.repeat(first, counts) + 3600, offsets)
    n = int(counts.sum())
    return pd.DataFrame(
        {
            "customer_id": ids,
            "date": START + pd.to_timedelta(offsets, unit="s"),
            "amount": np.round(rng.gamma(2.0, 20.0, n), 2),
            "order_id": [f"o{i}" for i in range(n)],
            "region": rng.choice(REGIONS, n),
            "channel": rng.choice(CHANNELS, n),
        }
    )


def in_memory(df: pd.DataFrame) -> ir.Table:
    """An Ibis memtable of ``df`` (through Arrow: Ibis' pandas type inference warns on pandas 3)."""
    return ibis.memtable(pa.Table.from_pandas(df, preserve_index=False))


def lifetimes_summary(df: pd.DataFrame, freq: str, observation_end: object = None) -> pd.DataFrame:
    """lifetimes' summary_data_from_transaction_data, sorted by customer_id."""
    from lifetimes.utils import summary_data_from_transaction_data

    with quiet_reference():
        ref = summary_data_from_transaction_data(
            df,
            "customer_id",
            "date",
            monetary_value_col="amount",
            observation_period_end=observation_end,
            freq=freq,
        )
    return ref.sort_index()


def lifetimes_monthly_summary(df: pd.DataFrame, observation_end: object = None) -> pd.DataFrame:
    """lifetimes' summary for freq='M', with T and recency in whole months.

    summary_data_from_transaction_data(freq='M') divides by numpy.timedelta64(1, 'M'), which
    pandas >= 2 rejects ("Unit M is not supported"). This runs the same steps with lifetimes'
    own bucketing (_find_first_transactions: periods, per-period spend sums, first flag) and
    takes differences of monthly periods, the convention calibration_and_holdout_data uses for
    duration_holdout.
    """
    from lifetimes.utils import _find_first_transactions

    end = df["date"].max() if observation_end is None else pd.Timestamp(observation_end)
    end_period = end.to_period("M")
    with quiet_reference():
        periods = _find_first_transactions(
            df,
            "customer_id",
            "date",
            "amount",
            observation_period_end=end_period.to_timestamp(),
            freq="M",
        )
    ordinal = periods["date"].map(lambda p: p.ordinal)
    grouped = periods.assign(ordinal=ordinal).groupby("customer_id")
    first = grouped["ordinal"].min()
    repeat = periods.loc[~periods["first"]].groupby("customer_id")["amount"].mean()
    out = pd.DataFrame(
        {
            "frequency": grouped.size() - 1,
            "recency": grouped["ordinal"].max() - first,
            "T": end_period.ordinal - first,
        }
    ).astype(float)
    out["monetary_value"] = repeat.reindex(out.index).fillna(0.0)
    return out.sort_index()


def lifetimes_calibration(
    df: pd.DataFrame, freq: str, calibration_end: object, observation_end: object = None
) -> pd.DataFrame:
    """lifetimes' calibration_and_holdout_data, sorted by customer_id."""
    from lifetimes.utils import calibration_and_holdout_data

    with quiet_reference():
        ref = calibration_and_holdout_data(
            df,
            "customer_id",
            "date",
            calibration_period_end=calibration_end,
            observation_period_end=observation_end,
            freq=freq,
            monetary_value_col="amount",
        )
    return ref.sort_index()
