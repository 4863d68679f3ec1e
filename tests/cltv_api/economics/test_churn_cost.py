"""Cost of churn from a scored fit: engine aggregates, per-period factors and validation."""

from __future__ import annotations

from pathlib import Path

import ibis
import numpy as np
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import GeneratorConfig, generate_table
from cltv_api.analysis import FitRequest, FittedModels, Valuation, fit_models, score_customers
from cltv_api.economics.churn_cost import (
    churn_cost_table,
    cost_of_churn,
    step_churn_factors,
)
from cltv_api.engine import Engine, summarize
from cltv_api.errors import InvalidInput
from models import clv

VALUATION = Valuation(
    horizon=12, horizon_unit="months", annual_discount_rate=0.1, margin=0.3, currency="RUB"
)


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    root = tmp_path_factory.mktemp("churn")
    pq.write_table(generate_table(GeneratorConfig(n_customers=3000, seed=5)), root / "tx.parquet")
    engine = Engine.duckdb()
    table = summarize(
        engine.table(root / "tx.parquet"), "weeks", segment_cols=["channel", "nps_group"]
    )
    return engine.persist(table, Path(root) / "summary.parquet")


@pytest.fixture(scope="module")
def fitted(summary) -> FittedModels:  # type: ignore[no-untyped-def]
    return fit_models(
        summary, FitRequest(purchase_model="bgnbd", segment_by=("channel",), time_unit="weeks")
    )


def test_figures_by_hand_on_a_tiny_scored_table() -> None:
    # Four customers: P(alive) 1, 0.5, 0.25, 0.1; CLTV 10, 5, 2, 1; revenue 20, 10, 4, 2.
    # Sum CLTV 18, active 1.85 -> value lost per churner 18 / 1.85 = 9.7297; one point 0.18.
    # Band [0.2, 0.7): customers 2 and 3 -> revenue at risk 10 x 0.5/0.5 + 4 x 0.75/0.25 = 22.
    scored = ibis.memtable(
        {
            "segment": ["a", "a", "b", "b"],
            "p_alive": [1.0, 0.5, 0.25, 0.1],
            "clv": [10.0, 5.0, 2.0, 1.0],
            "expected_revenue": [20.0, 10.0, 4.0, 2.0],
        }
    )
    rows = churn_cost_table(scored, ["segment"], currency="USD")
    overall = rows[-1]
    assert overall.segment == {}
    assert overall.customers == 4
    assert overall.active_customers == pytest.approx(1.85)
    assert overall.clv_total == pytest.approx(18)
    assert overall.clv_mean == pytest.approx(4.5)
    assert overall.value_lost_per_churner == pytest.approx(18 / 1.85)
    assert overall.cost_of_one_point_more_churn == pytest.approx(0.18)
    assert overall.value_of_one_point_less_churn == pytest.approx(0.18)
    assert overall.customers_at_risk == 2
    assert overall.share_at_risk == pytest.approx(0.5)
    assert overall.revenue_at_risk == pytest.approx(22)
    assert overall.cost_of_one_point_more_churn_per_period is None
    # Segment b: P(alive) 0.25 in the band, 0.1 below it -> 4 x 3 = 12 at risk; 3 / 0.35 lost.
    b = rows[1]
    assert b.segment == {"segment": "b"}
    assert b.revenue_at_risk == pytest.approx(12)
    assert b.value_lost_per_churner == pytest.approx(3 / 0.35)
    assert b.currency == "USD"


class _Exponential:
    """One customer alive for sure, purchase rate 1 per step, survival halving every step:
    E[X(t)] = (1 - 2^-t) / ln 2 (a stand-in for a fitted purchase model)."""

    def _theta(self) -> np.ndarray:
        return np.array([1.0])

    def _conditional_expected_purchases(self, theta, t, x, t_x, T):  # type: ignore[no-untyped-def]
        return (1.0 - 2.0 ** -np.asarray(t)) / np.log(2.0)


def test_step_factors_by_hand_with_the_survival_cap() -> None:
    # Steps of 1, no discounting, 3 steps: e_i = 2^-i / ln 2. delta = 0.5:
    # more = sum 2^-i 2^-i / sum 2^-i = (1/4 + 1/16 + 1/64) / (7/8) = 0.375.
    # less: e_i 2^i = 1 / ln 2 = 1.4427 per step, above the current rate (1 purchase a step), so
    # each step is capped at 1: less = 3 / (7 / (8 ln 2)) = 2.3765 (3.4286 without the cap).
    horizon = clv.Horizon(n_steps=3, step_length=1.0, rate_per_step=0.0)
    one = np.zeros(1)
    more, less = step_churn_factors(_Exponential(), one, one, one, horizon, 0.5)  # type: ignore[arg-type]
    assert more[0] == pytest.approx(0.375, rel=1e-12)
    assert less[0] == pytest.approx(3 / (7 / (8 * np.log(2))), rel=1e-6)


def test_engine_figures_equal_the_customer_level_sums(summary, fitted: FittedModels) -> None:  # type: ignore[no-untyped-def]
    rows = cost_of_churn(summary, fitted, VALUATION, by=["nps_group"], band=(0.3, 0.8))
    scored = score_customers(summary, fitted, VALUATION).to_pandas()
    for row in rows[:-1]:
        group = scored[scored["nps_group"] == row.segment["nps_group"]]
        p = group["p_alive"]
        in_band = (p >= 0.3) & (p < 0.8)
        assert row.customers == len(group)
        assert row.active_customers == pytest.approx(p.sum(), rel=1e-9)
        assert row.clv_total == pytest.approx(group["clv"].sum(), rel=1e-9)
        assert row.value_lost_per_churner == pytest.approx(group["clv"].sum() / p.sum(), rel=1e-9)
        assert row.cost_of_one_point_more_churn == pytest.approx(
            0.01 * group["clv"].sum(), rel=1e-9
        )
        assert row.customers_at_risk == int(in_band.sum())
        revenue = (group["expected_revenue"] * (1 - p) / p)[in_band].sum()
        assert row.revenue_at_risk == pytest.approx(revenue, rel=1e-9)
    assert [r.segment.get("nps_group") for r in rows] == ["detractor", "passive", "promoter", None]
    assert rows[-1].customers == len(scored)
    assert rows[-1].currency == "RUB"


def test_extra_churn_per_step_equals_a_higher_discount_rate(summary, fitted: FittedModels) -> None:  # type: ignore[no-untyped-def]
    # Scaling step i by (1 - delta)^i is discounting at d' with 1 / (1 + d') = (1 - delta) / (1 + d),
    # so the per-period cost is sum CLTV(d) - sum CLTV(d'), computed here customer by customer.
    rows = cost_of_churn(summary, fitted, VALUATION, by=[])
    scored = score_customers(summary, fitted, VALUATION).to_pandas()
    fit = fitted.fits[0]
    base = clv.Horizon.from_units(12, "months", "weeks", 0.1)

    def total(rate: float) -> float:
        horizon = clv.Horizon(base.n_steps, base.step_length, rate)
        values = clv.customer_lifetime_value(
            fit.purchase,  # type: ignore[arg-type]
            fit.spend,  # type: ignore[arg-type]
            scored["frequency"],
            scored["recency"],
            scored["T"],
            scored["monetary_value"],
            horizon,
            margin=0.3,
        )
        return float(values.sum())

    d = base.rate_per_step
    overall = rows[-1]
    expected_more = total(d) - total((1 + d) / 0.99 - 1)
    assert overall.cost_of_one_point_more_churn_per_period == pytest.approx(expected_more, rel=1e-9)
    # One point less, uncapped, would be discounting at (1 + d) 0.99 - 1; the cap can only lower it.
    uncapped = total((1 + d) * 0.99 - 1) - total(d)
    less = overall.value_of_one_point_less_churn_per_period
    assert less is not None and 0 < less <= uncapped * (1 + 1e-12)


def test_invalid_settings_name_the_field() -> None:
    scored = ibis.memtable({"p_alive": [0.5], "clv": [1.0], "expected_revenue": [1.0]})
    with pytest.raises(InvalidInput) as info:
        churn_cost_table(scored, band=(0.8, 0.2), points=0.0)
    assert {e.field for e in info.value.errors} == {"band.low", "points"}
    with pytest.raises(InvalidInput) as info:
        churn_cost_table(scored, band=(0.0, 0.5))
    assert info.value.errors[0].field == "band.low"
