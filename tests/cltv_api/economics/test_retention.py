"""Contractual cost of churn from an sBG fit: residual values, +-1 point, forecast intervals."""

from __future__ import annotations

import functools
import math

import numpy as np
import pytest

from cltv_api.economics.retention import contractual_churn_cost, forecast_curves
from cltv_api.errors import InvalidInput
from models import SBG

# Fader & Hardie (2007), Table 1, "Regular" segment: % surviving years 0..7 (cohort of 1,000).
REGULAR = np.round(np.array([100, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1]) * 10)


@functools.cache
def _regular() -> SBG:
    return SBG().fit(REGULAR)


def test_uniform_churn_model_by_hand() -> None:
    # alpha = beta = 1: S(t) = 1 / (t + 1). With d = 10%, z = 1/1.1:
    # DEL = sum_t z^t / (t + 1) = -ln(1 - z) / z = 1.1 ln 11 = 2.637685;
    # DERL(0) = sum_k z^k / (k + 2) = (-ln(1 - z) - z) / z^2 = 1.801453.
    model = SBG.from_params({"alpha": 1.0, "beta": 1.0})
    res = contractual_churn_cost(model, 10.0, annual_discount_rate=0.10, period="year")
    assert res.discount_rate_per_period == pytest.approx(0.10)
    assert res.new_customer_value == pytest.approx(10 * 1.1 * math.log(11), rel=1e-9)
    z = 1 / 1.1
    derl = (-math.log(1 - z) - z) / z**2
    assert res.by_tenure[0].residual_value == pytest.approx(10 * derl, rel=1e-9)
    assert res.by_tenure[0].next_retention == pytest.approx(0.5)


def test_one_point_more_retention_matches_an_explicit_loop() -> None:
    # r(t) = t / (t + 1) + 0.01, capped at 1 (from t = 99 on); residual value after 0 renewals
    # = sum_k prod_{i<=k+1} r'(i) z^k, summed term by term.
    model = SBG.from_params({"alpha": 1.0, "beta": 1.0})
    res = contractual_churn_cost(model, 1.0, annual_discount_rate=0.10, period="year")
    z, total, survival = 1 / 1.1, 0.0, 1.0
    for k in range(600):
        survival *= min((k + 1) / (k + 2) + 0.01, 1.0)
        total += survival * z**k
    assert res.by_tenure[0].residual_value_plus_point == pytest.approx(total, rel=1e-9)


def test_numeric_sums_without_shift_equal_the_closed_forms() -> None:
    model = _regular()
    d = 1.1 ** (1 / 12) - 1  # 10% a year, monthly periods
    res = contractual_churn_cost(
        model,
        25.0,
        annual_discount_rate=0.10,
        period="month",
        customers_by_renewals={0: 1, 3: 1, 40: 1},
    )
    assert res.discount_rate_per_period == pytest.approx(d)
    assert res.new_customer_value == pytest.approx(25.0 * model.del_(d)[0], rel=1e-9)
    for row in res.by_tenure:
        assert row.derl == pytest.approx(model.derl(d, row.renewals)[0], rel=1e-12)


def test_value_by_tenure_and_per_churner() -> None:
    # FH 2010: DERL rises with tenure (survivors are the loyal ones). Value lost per churner is
    # the customer-weighted mean residual value.
    base = {0: 369.0, 1: 163.0, 2: 86.0}
    res = contractual_churn_cost(
        _regular(), 100.0, annual_discount_rate=0.10, customers_by_renewals=base
    )
    values = [t.residual_value for t in res.by_tenure]
    assert values == sorted(values)
    expected = (
        sum(n * t.residual_value for n, t in zip(base.values(), res.by_tenure, strict=True)) / 618
    )
    assert res.value_lost_per_churner == pytest.approx(expected)
    assert res.active_customers == 618
    assert res.residual_value_total == pytest.approx(618 * expected)


def test_plus_and_minus_one_point_move_value_the_right_way() -> None:
    res = contractual_churn_cost(_regular(), 100.0, customers_by_renewals={0: 10, 5: 10})
    assert res.value_of_one_point_more_retention > 0
    assert res.cost_of_one_point_less_retention > 0
    assert (
        res.new_customer_value_minus_point
        < res.new_customer_value
        < res.new_customer_value_plus_point
    )
    for row in res.by_tenure:
        assert row.residual_value_minus_point < row.residual_value < row.residual_value_plus_point


def test_delta_forecast_intervals_contain_the_estimates() -> None:
    f = forecast_curves(_regular(), 12, level=0.9)
    # Point survival is the model's S(t); the first period's retention is beta / (alpha + beta).
    np.testing.assert_allclose(f.survival, _regular().survival(np.arange(1, 13)))
    assert f.retention[0] == pytest.approx(_regular().retention_rate(1)[0])
    for lo, est, hi in zip(f.survival_lower, f.survival, f.survival_upper, strict=True):
        assert 0 < lo < est < hi < 1
    assert f.method == "delta"


def test_simulated_intervals_agree_with_the_delta_method() -> None:
    delta = forecast_curves(_regular(), 6)
    sim = forecast_curves(_regular(), 6, method="simulation", n_draws=4000, seed=1)
    np.testing.assert_allclose(sim.survival, delta.survival, rtol=1e-12)
    width_delta = np.subtract(delta.survival_upper, delta.survival_lower)
    width_sim = np.subtract(sim.survival_upper, sim.survival_lower)
    np.testing.assert_allclose(width_sim, width_delta, rtol=0.15)


def test_conditional_forecast_for_tenured_customers() -> None:
    # After 4 renewals the next retention is r(5) and survival S(4 + t) / S(4).
    model = _regular()
    f = forecast_curves(model, 3, renewals=4, method="simulation", n_draws=500)
    expected = model.survival(np.array([5, 6, 7])) / model.survival(4)[0]
    np.testing.assert_allclose(f.survival, expected, rtol=1e-12)
    assert f.retention[0] == pytest.approx(model.retention_rate(5)[0])
    with pytest.raises(InvalidInput) as info:
        forecast_curves(model, 3, renewals=4)
    assert info.value.errors[0].field == "method"


def test_invalid_inputs_name_the_fields() -> None:
    with pytest.raises(InvalidInput) as info:
        contractual_churn_cost(SBG(), -1.0, points=2.0, customers_by_renewals={-1: 5.0})
    assert {e.field for e in info.value.errors} == {
        "model",
        "value_per_period",
        "points",
        "customers_by_renewals[-1]",
    }
    with pytest.raises(InvalidInput) as info:
        contractual_churn_cost(_regular(), 1.0, annual_discount_rate=0.0)
    assert info.value.errors[0].field == "annual_discount_rate"
