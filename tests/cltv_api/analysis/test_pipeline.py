"""The analysis layer end to end on generated transactions in embedded DuckDB."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import GeneratorConfig, generate_table
from cltv_api.analysis import (
    FitRequest,
    FittedModels,
    Valuation,
    fit_models,
    score_customers,
    segment_table,
)
from cltv_api.engine import Engine, summarize
from cltv_api.errors import InvalidInput
from models import clv


@pytest.fixture(scope="module")
def engine() -> Engine:
    return Engine.duckdb()


@pytest.fixture(scope="module")
def tx_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("tx") / "tx.parquet"
    pq.write_table(generate_table(GeneratorConfig(n_customers=6000, seed=11)), path)
    return path


@pytest.fixture(scope="module")
def summary(engine: Engine, tx_path: Path, tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    out = tmp_path_factory.mktemp("summary") / "summary.parquet"
    return engine.persist(
        summarize(engine.table(tx_path), "weeks", segment_cols=["channel", "region"]), out
    )


@pytest.fixture(scope="module")
def pooled(summary) -> FittedModels:  # type: ignore[no-untyped-def]
    return fit_models(
        summary, FitRequest(purchase_model="bgnbd", segment_by=("channel",), time_unit="weeks")
    )


def test_customer_clv_equals_model_library_on_expanded_customers(
    summary, pooled: FittedModels
) -> None:  # type: ignore[no-untyped-def]
    val = Valuation(horizon=12, horizon_unit="months", annual_discount_rate=0.1, margin=0.3)
    scored = score_customers(summary, pooled, val).order_by("customer_id").to_pandas()
    fit = pooled.fits[0]
    direct = clv.customer_lifetime_value(
        fit.purchase,
        fit.spend,
        scored["frequency"],
        scored["recency"],
        scored["T"],
        scored["monetary_value"],
        clv.Horizon.from_units(12, "months", "weeks", 0.1),
        margin=0.3,
    )  # type: ignore[arg-type]
    np.testing.assert_allclose(scored["clv"], direct, rtol=1e-9)
    assert np.all(scored["clv_lower"] <= scored["clv"]) and np.all(
        scored["clv"] <= scored["clv_upper"]
    )
    assert scored["p_alive"].between(0, 1).all()
    np.testing.assert_allclose(
        scored["expected_revenue"], scored["expected_spend"] * scored["expected_purchases"]
    )


def test_segment_totals_add_up_to_customers(summary, pooled: FittedModels) -> None:  # type: ignore[no-untyped-def]
    val = Valuation(horizon=24, margin=0.5)
    rows = segment_table(summary, pooled, val)
    scored = score_customers(summary, pooled, val).to_pandas()
    by_channel = scored.groupby("channel")
    for row in rows[:-1]:
        group = by_channel.get_group(row.segment["channel"])
        assert row.customers == len(group)
        assert row.clv_total == pytest.approx(group["clv"].sum(), rel=1e-9)
        assert row.clv_median == pytest.approx(group["clv"].median(), rel=1e-9)
        assert row.share_active == pytest.approx(group["p_alive"].mean(), rel=1e-9)
        assert row.expected_revenue == pytest.approx(group["expected_revenue"].sum(), rel=1e-9)
        assert row.clv_mean_lower < row.clv_mean < row.clv_mean_upper
    overall = rows[-1]
    assert overall.segment == {}
    assert overall.customers == len(scored)
    assert overall.clv_median == pytest.approx(scored["clv"].median(), rel=1e-9)
    assert sum(r.share_of_value for r in rows[:-1]) == pytest.approx(1.0)


def test_two_column_segments_are_every_combination_present(summary, pooled: FittedModels) -> None:  # type: ignore[no-untyped-def]
    val = Valuation(horizon=12, margin=0.4)
    rows = segment_table(summary, pooled, val, by=["channel", "region"])
    scored = score_customers(summary, pooled, val).to_pandas()
    groups = scored.groupby(["channel", "region"])
    assert [tuple(r.segment.values()) for r in rows[:-1]] == sorted(groups.groups)
    for row in rows[:-1]:
        group = groups.get_group((row.segment["channel"], row.segment["region"]))
        assert row.customers == len(group)
        assert row.clv_total == pytest.approx(group["clv"].sum(), rel=1e-9)
        assert row.clv_median == pytest.approx(group["clv"].median(), rel=1e-9)
    assert rows[-1].customers == len(scored)


def test_overall_interval_does_not_depend_on_how_customers_are_grouped(
    summary, pooled: FittedModels
) -> None:  # type: ignore[no-untyped-def]
    # The all-customers row must combine segment gradients of a shared model, not their variances.
    val = Valuation()
    by_channel = segment_table(summary, pooled, val, by=["channel"])[-1]
    by_region = segment_table(summary, pooled, val, by=["region"])[-1]
    assert by_channel.clv_total_lower == pytest.approx(by_region.clv_total_lower, rel=1e-9)
    assert by_channel.clv_total_upper == pytest.approx(by_region.clv_total_upper, rel=1e-9)


def test_per_segment_fit_has_one_model_per_segment_and_round_trips_json(summary) -> None:  # type: ignore[no-untyped-def]
    request = FitRequest(purchase_model="bgnbd", segment_by=("channel",), per_segment=True)
    fitted = fit_models(summary, request)
    assert sorted(f.segment["channel"] for f in fitted.fits) == ["Online", "Partner", "Retail"]
    assert sum(f.n_customers for f in fitted.fits) == summary.count().execute()
    restored = FittedModels.from_dict(json.loads(json.dumps(fitted.to_dict())))
    val = Valuation()
    assert [r.clv_total for r in segment_table(summary, restored, val)] == pytest.approx(
        [r.clv_total for r in segment_table(summary, fitted, val)], rel=1e-12
    )


def test_auto_without_holdout_picks_the_lowest_bic(summary) -> None:  # type: ignore[no-untyped-def]
    fitted = fit_models(summary, FitRequest(purchase_model="auto"))
    fit = fitted.fits[0]
    bics = {c.model: c.bic for c in fit.candidates if c.bic is not None}
    assert set(bics) == {"bgnbd", "mbgnbd", "pnbd"}
    assert fit.purchase_model == min(bics, key=bics.__getitem__)
    assert "lowest BIC" in fit.selection_reason


def test_holdout_scores_predictions_against_actual_purchases(
    engine: Engine, tx_path: Path, summary
) -> None:  # type: ignore[no-untyped-def]
    cal = summarize(engine.table(tx_path), "weeks", calibration_end="1997-09-30")
    fitted = fit_models(summary, FitRequest(purchase_model="auto"), calibration=cal)
    fit = fitted.fits[0]
    scores = fit.calibration
    assert scores is not None and scores["model"] == fit.purchase_model
    # Data generated from a BG/NBD process: the calibration fit predicts the holdout total well.
    assert scores["predicted_total"] == pytest.approx(scores["actual_total"], rel=0.1)
    assert [row["frequency_cal"] for row in scores["by_frequency"]][:2] == ["0", "1"]
    rmses = {c.model: c.holdout_rmse for c in fit.candidates}
    assert fit.purchase_model == min(rmses, key=lambda k: rmses[k] or np.inf)
    assert "holdout" in fit.selection_reason


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"purchase_model": "magic"}, "purchase_model"),
        ({"spend_model": "lognormal"}, "spend_model"),
        ({"per_segment": True}, "per_segment"),
    ],
)
def test_bad_fit_requests_name_the_field(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        FitRequest(**kwargs)  # type: ignore[arg-type]
    assert info.value.errors[0].field == field


def test_bad_valuation_names_the_field(summary, pooled: FittedModels) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput) as info:
        Valuation(margin=30)
    assert info.value.errors[0].field == "margin"
    with pytest.raises(InvalidInput) as info:
        segment_table(summary, pooled, Valuation(horizon=10**9))
    assert info.value.errors[0].field == "horizon"


def test_unknown_segment_column_is_a_clear_error(summary, pooled: FittedModels) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(InvalidInput, match="nps"):
        segment_table(summary, pooled, Valuation(), by=["nps"])


def test_bgbb_counts_one_opportunity_per_period(
    engine: Engine, tx_path: Path, tmp_path: Path
) -> None:
    # Monthly periods as discrete opportunities: BG/BB fits the same summary columns, and the
    # valuation refuses a horizon step that is not a whole number of periods.
    monthly = engine.persist(summarize(engine.table(tx_path), "months"), tmp_path / "m.parquet")
    fitted = fit_models(monthly, FitRequest(purchase_model="bgbb", time_unit="months"))
    assert set(fitted.fits[0].purchase.params_) == {"alpha", "beta", "gamma", "delta"}
    row = segment_table(monthly, fitted, Valuation(horizon=12))[-1]
    assert row.clv_mean_lower < row.clv_mean < row.clv_mean_upper
    scored = score_customers(monthly, fitted, Valuation(horizon=12)).to_pandas()
    assert row.clv_total == pytest.approx(scored["clv"].sum(), rel=1e-9)
    with pytest.raises(InvalidInput) as info:
        segment_table(monthly, fitted, Valuation(horizon=52, horizon_unit="weeks"))
    assert info.value.errors[0].field == "horizon_unit"


@pytest.mark.parametrize(
    "columns",
    [
        # whole numbers: their own codes
        [np.array([3.0, 1.0, 3.0, 0.0, 1.0]), np.array([2.0, 5.0, 2.0, 7.0, 4.0])],
        # fractional and infinite values: coded by a sort
        [np.array([3.5, 1.0, 3.5, 0.0, 1.0]), np.array([2.0, 5.0, 2.0, np.inf, 4.0])],
    ],
)
def test_distinct_histories_are_sorted_and_map_back(columns: list[np.ndarray]) -> None:
    # the valuation's distinct histories come from the models' compress
    from models._compress import compress

    comp = compress(*columns)
    codes = comp.inverse
    distinct = list(zip(*comp.columns, strict=True))
    assert distinct == sorted(set(zip(*columns, strict=True)))
    for i, code in enumerate(codes):
        assert distinct[code] == tuple(c[i] for c in columns)
