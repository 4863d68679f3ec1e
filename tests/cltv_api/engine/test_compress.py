"""Unique histories with counts are sufficient statistics: expanded, they give back every customer."""

from __future__ import annotations

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from cltv_api.engine import (
    CALIBRATION_HISTORY_KEY,
    HISTORY_KEY,
    expand,
    histories,
    history_counts,
    spend_histories,
    summarize,
)
from cltv_api.errors import InvalidInput
from models._compress import compress


@pytest.fixture
def weekly(tx: ir.Table) -> ir.Table:
    return summarize(tx, "weeks", segment_cols=["region"])


@pytest.fixture
def weekly_df(weekly: ir.Table) -> pd.DataFrame:
    return weekly.to_pyarrow().to_pandas()


def sorted_rows(columns: dict[str, np.ndarray], names: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame({n: columns[n] for n in names})
    return frame.sort_values(names).reset_index(drop=True)


def test_expanded_histories_reproduce_every_customer(
    weekly: ir.Table, weekly_df: pd.DataFrame
) -> None:
    hist = histories(weekly)
    names = list(HISTORY_KEY)
    expanded = sorted_rows(expand(hist), names)
    pd.testing.assert_frame_equal(expanded, sorted_rows(dict(weekly_df), names))
    assert hist.n_customers == len(weekly_df)
    # 300 customers share far fewer distinct weekly histories
    assert hist.n_unique < len(weekly_df)


def test_histories_per_segment_reproduce_every_customer(
    weekly: ir.Table, weekly_df: pd.DataFrame
) -> None:
    hist = histories(weekly, by=["region"])
    names = ["region", *HISTORY_KEY]
    pd.testing.assert_frame_equal(
        sorted_rows(expand(hist), names), sorted_rows(dict(weekly_df), names)
    )
    assert set(hist["region"]) == set(weekly_df["region"])


def test_histories_equal_the_model_cores_compression(
    weekly: ir.Table, weekly_df: pd.DataFrame
) -> None:
    # models._compress.compress groups the same rows in numpy: same unique rows, same counts
    ref = compress(*(weekly_df[c].to_numpy() for c in HISTORY_KEY))
    hist = histories(weekly)
    order = np.lexsort(ref.columns[::-1])
    for name, col in zip(HISTORY_KEY, ref.columns, strict=True):
        np.testing.assert_array_equal(hist[name], col[order])
    np.testing.assert_array_equal(hist.counts, ref.weights[order])


def test_spend_histories_hold_repeat_customers_only(
    weekly: ir.Table, weekly_df: pd.DataFrame
) -> None:
    spend = spend_histories(weekly)
    repeat = weekly_df[weekly_df.frequency > 0]
    names = ["frequency", "monetary_value"]
    pd.testing.assert_frame_equal(
        sorted_rows(expand(spend), names), sorted_rows(dict(repeat), names)
    )
    assert (spend["frequency"] > 0).all()
    all_spend = spend_histories(weekly, repeat_only=False)
    assert all_spend.n_customers == len(weekly_df)


def test_calibration_histories_use_the_calibration_key(tx: ir.Table) -> None:
    cal = summarize(tx, "D", calibration_end="2022-12-31")
    df = cal.to_pyarrow().to_pandas()
    hist = histories(cal, key=CALIBRATION_HISTORY_KEY)
    names = list(CALIBRATION_HISTORY_KEY)
    pd.testing.assert_frame_equal(sorted_rows(expand(hist), names), sorted_rows(dict(df), names))


def test_history_counts_is_an_engine_expression_sorted_by_key(weekly: ir.Table) -> None:
    expr = history_counts(weekly, by=["region"])
    assert isinstance(expr, ir.Table)
    df = expr.to_pyarrow().to_pandas()
    keys = ["region", *HISTORY_KEY]
    pd.testing.assert_frame_equal(df, df.sort_values(keys).reset_index(drop=True))
    assert not df.duplicated(keys).any()


def test_histories_name_a_missing_key_column(weekly: ir.Table) -> None:
    with pytest.raises(InvalidInput, match="channel"):
        histories(weekly, by=["channel"])


def test_predictions_need_one_value_per_unique_history(weekly: ir.Table) -> None:
    hist = histories(weekly)
    with pytest.raises(InvalidInput, match="p_alive"):
        hist.with_predictions(p_alive=np.ones(hist.n_unique + 1))
