"""Per-history predictions joined back in the engine, and per-segment aggregates."""

from __future__ import annotations

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from cltv_api.engine import HISTORY_KEY, attach, histories, segment_aggregates, summarize
from cltv_api.engine.join import distinct_rows
from cltv_api.errors import InvalidInput

from ._data import in_memory


def score(x: np.ndarray, t_x: np.ndarray, T: np.ndarray) -> np.ndarray:
    """Any function of the history that differs between histories (an injective encoding)."""
    return np.asarray(x * 1e6 + t_x * 1e3 + T, dtype=np.float64)


@pytest.fixture
def summary(tx: ir.Table) -> ir.Table:
    return summarize(tx, "weeks", segment_cols=["region"])


def collect(expr: ir.Table) -> pd.DataFrame:
    return expr.to_pyarrow().to_pandas().sort_values("customer_id").reset_index(drop=True)


def test_each_customer_gets_the_prediction_of_their_history(summary: ir.Table) -> None:
    hist = histories(summary)
    predictions = hist.with_predictions(score=score(hist["frequency"], hist["recency"], hist["T"]))
    assert predictions.num_rows == hist.n_unique
    scored = attach(summary, predictions)
    assert isinstance(scored, ir.Table)  # lazy: the join runs in the engine
    df = collect(scored)
    np.testing.assert_array_equal(df["score"], score(df["frequency"], df["recency"], df["T"]))
    pd.testing.assert_frame_equal(df.drop(columns="score"), collect(summary))


def test_segment_specific_predictions_join_on_segment_and_history(summary: ir.Table) -> None:
    hist = histories(summary, by=["region"])
    offset = {"east": 0.1, "north": 0.2, "south": 0.3}
    seg_offset = np.array([offset[r] for r in hist["region"]])
    value = score(hist["frequency"], hist["recency"], hist["T"]) + seg_offset
    scored = attach(summary, hist.with_predictions(v=value), key=["region", *HISTORY_KEY])
    df = collect(scored)
    expected = score(df["frequency"], df["recency"], df["T"]) + df["region"].map(offset)
    np.testing.assert_allclose(df["v"], expected, rtol=0, atol=1e-9)


def test_null_segment_values_find_their_prediction() -> None:
    summary = in_memory(
        pd.DataFrame(
            {
                "customer_id": ["a", "b", "c"],
                "region": ["east", None, None],
                "frequency": [1.0, 1.0, 0.0],
                "recency": [2.0, 2.0, 0.0],
                "T": [5.0, 5.0, 5.0],
            }
        )
    )
    hist = histories(summary, by=["region"])
    # sorted by (region, key): nulls come last in both engines' ascending order
    assert hist["region"].tolist() == ["east", None, None]
    scored = attach(summary, hist.with_predictions(v=[1.0, 2.0, 3.0]), key=["region", *HISTORY_KEY])
    assert collect(scored)["v"].tolist() == [1.0, 3.0, 2.0]


def test_customers_without_a_prediction_get_null(summary: ir.Table) -> None:
    hist = histories(summary)
    first = {name: hist[name][:1] for name in HISTORY_KEY}  # predict for one history only
    df = collect(attach(summary, {**first, "flag": [1.0]}))
    hit = np.logical_and.reduce([df[name] == first[name][0] for name in HISTORY_KEY])
    assert hit.sum() == hist.counts[0] and (~hit).any()
    assert (df.loc[hit, "flag"] == 1.0).all()
    assert df.loc[~hit, "flag"].isna().all()


def test_predictions_from_a_mapping_with_integer_keys_are_cast(summary: ir.Table) -> None:
    hist = histories(summary)
    keys = {name: [int(hist[name][0])] for name in HISTORY_KEY}
    df = collect(attach(summary, {**keys, "flag": [7]}))
    hit = np.logical_and.reduce([df[name] == keys[name][0] for name in HISTORY_KEY])
    assert hit.sum() == hist.counts[0]
    assert (df.loc[hit, "flag"] == 7).all()


@pytest.mark.parametrize(
    ("predictions", "match"),
    [
        (pa.table({"frequency": [0.0], "recency": [0.0], "p": [1.0]}), "T"),
        (pa.table({"frequency": [0.0], "recency": [0.0], "T": [1.0]}), "at least one column"),
        (
            pa.table({"frequency": [0.0], "recency": [0.0], "T": [1.0], "region": ["x"]}),
            "already in the summary: region",
        ),
        (
            pa.table(
                {"frequency": [0.0, 0.0], "recency": [0.0, 0.0], "T": [1.0, 1.0], "p": [1, 2]}
            ),
            "duplicate",
        ),
    ],
)
def test_bad_prediction_tables_are_rejected(
    summary: ir.Table, predictions: pa.Table, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match):
        attach(summary, predictions)


def test_segment_aggregates_equal_pandas(summary: ir.Table) -> None:
    hist = histories(summary)
    scored = attach(summary, hist.with_predictions(clv=hist["frequency"] * 10 + hist["T"] / 7))
    agg = segment_aggregates(
        scored, ["clv", "monetary_value"], by=["region"], quantiles=(0.25, 0.975)
    )
    got = agg.to_pyarrow().to_pandas().set_index("region")
    df = collect(scored)
    for region, group in df.groupby("region"):
        row = got.loc[region]
        assert row["n_customers"] == len(group)
        for col in ("clv", "monetary_value"):
            values = group[col].to_numpy()
            np.testing.assert_allclose(row[f"{col}_sum"], values.sum(), rtol=1e-12)
            np.testing.assert_allclose(row[f"{col}_mean"], values.mean(), rtol=1e-12)
            # numpy's default (linear) quantile = DuckDB quantile_cont
            np.testing.assert_allclose(row[f"{col}_p25"], np.quantile(values, 0.25), rtol=1e-12)
            np.testing.assert_allclose(row[f"{col}_p97_5"], np.quantile(values, 0.975), rtol=1e-12)
    assert list(got.index) == sorted(df.region.unique())


def test_overall_aggregate_is_one_row(summary: ir.Table) -> None:
    got = segment_aggregates(summary, ["T"], quantiles=(0.5,)).to_pyarrow().to_pylist()
    df = collect(summary)
    assert len(got) == 1
    assert got[0]["n_customers"] == len(df)
    assert got[0]["T_p50"] == pytest.approx(float(np.median(df["T"])), rel=1e-12)


def test_segment_aggregates_reject_bad_quantiles_and_columns(summary: ir.Table) -> None:
    with pytest.raises(InvalidInput, match="quantiles"):
        segment_aggregates(summary, ["T"], quantiles=(1.5,))
    with pytest.raises(InvalidInput, match="clv"):
        segment_aggregates(summary, ["clv"], by=["region"])


def test_distinct_rows_counts_nulls_and_nans_as_one_value_each() -> None:
    table = pa.table(
        {
            "x": [1.0, 1.0, None, None, float("nan"), float("nan"), 2.0],
            "s": ["a", "a", None, None, "b", "b", None],
        }
    )
    assert distinct_rows(table, ["x", "s"]) == 4
    assert distinct_rows(table, ["s"]) == 3
    assert distinct_rows(table.slice(0, 0), ["x"]) == 0


def test_distinct_rows_equals_pandas_on_integer_valued_float_histories() -> None:
    # Regression: Arrow's multi-column group_by took 20 s on keys like these.
    rng = np.random.default_rng(5)
    n = 200_000
    df = pd.DataFrame(
        {
            "frequency": rng.integers(0, 40, n).astype(float),
            "recency": rng.integers(0, 400, n).astype(float),
            "T": rng.integers(0, 400, n).astype(float),
            "channel": rng.choice(["web", "store"], n),
        }
    )
    expected = len(df.drop_duplicates())
    assert distinct_rows(pa.Table.from_pandas(df), list(df.columns)) == expected
