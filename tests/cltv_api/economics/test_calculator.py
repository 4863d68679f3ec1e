"""Quick calculator: hand-worked examples and the Gupta & Lehmann margin multiple."""

from __future__ import annotations

import math

import pytest

from cltv_api.economics.calculator import CalculatorInput, calculate, per_period_discount_rate
from cltv_api.errors import InvalidInput


def _inp(**kw: object) -> CalculatorInput:
    base: dict[str, object] = {
        "average_order_value": 1000.0,
        "purchases_per_period": 2.0,
        "gross_margin": 0.5,
        "retention_rate": 0.8,
        "annual_discount_rate": 0.0,
        "horizon_periods": None,
        "period": "month",
        "timing": "start",
    }
    base.update(kw)
    return CalculatorInput(**base)  # type: ignore[arg-type]


def test_infinite_horizon_without_discounting_is_margin_over_churn() -> None:
    # v = 1000 * 2 * 0.5 = 1000 per month; lifetime 1 / (1 - 0.8) = 5 months -> 5000.
    res = calculate(_inp())
    assert res.margin_per_period == pytest.approx(1000.0)
    assert res.clv == pytest.approx(5000.0)
    assert res.expected_lifetime_periods == pytest.approx(5.0)


def test_end_of_period_matches_gupta_lehmann_margin_multiple() -> None:
    # Gupta & Lehmann (2005), Managing Customers as Investments, Table 2.2: margin multiple
    # r / (1 + i - r) = 2.5 for retention 80% and discount rate 12% per year. Our end-of-period
    # CLTV counts period 1 for sure, so CLTV * r equals the multiple times the margin.
    res = calculate(_inp(period="year", annual_discount_rate=0.12, timing="end"))
    assert res.clv * 0.8 == pytest.approx(2.5 * 1000.0)


def test_finite_horizon_equals_explicit_sum_for_both_timings() -> None:
    annual = 0.10
    d = (1 + annual) ** (1 / 12) - 1
    for timing, shift in (("start", 0), ("end", 1)):
        res = calculate(_inp(annual_discount_rate=annual, horizon_periods=24, timing=timing))
        expected = sum(1000 * 0.8 ** (t - 1) / (1 + d) ** (t - 1 + shift) for t in range(1, 25))
        assert res.clv == pytest.approx(expected, rel=1e-12)
        assert res.curve_cumulative_value[-1] == pytest.approx(expected, rel=1e-12)
        assert len(res.curve_period) == 24


def test_payback_is_first_period_cumulative_value_covers_cac() -> None:
    # v = 100, r = 0.9, no discounting, start of period: cumulative 100, 190, 271 -> period 3.
    res = calculate(
        _inp(
            average_order_value=100,
            purchases_per_period=1,
            gross_margin=1,
            retention_rate=0.9,
            acquisition_cost=250,
        )
    )
    assert res.cac_payback_periods == 3
    assert res.simple_payback_periods == pytest.approx(2.5)
    assert res.ltv_to_cac == pytest.approx(1000 / 250)


def test_payback_never_reached_is_none() -> None:
    res = calculate(_inp(horizon_periods=3, acquisition_cost=1e9))
    assert res.cac_payback_periods is None


def test_full_retention_finite_horizon_is_linear() -> None:
    res = calculate(_inp(retention_rate=1.0, horizon_periods=10))
    assert res.clv == pytest.approx(10_000.0)
    assert res.expected_lifetime_periods == 10


def test_monthly_rate_from_annual_rate() -> None:
    assert per_period_discount_rate(0.12682503013196977, "month") == pytest.approx(0.01)
    assert per_period_discount_rate(0.1, "year") == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("retention_rate", 1.5),
        ("gross_margin", 30.0),
        ("average_order_value", -1.0),
        ("annual_discount_rate", -1.0),
        ("horizon_periods", -5),
        ("purchases_per_period", math.nan),
    ],
)
def test_impossible_inputs_name_the_field(field: str, value: float) -> None:
    with pytest.raises(InvalidInput) as info:
        calculate(_inp(**{field: value}))
    assert [e.field for e in info.value.errors] == [field]


def test_unlimited_horizon_with_full_retention_and_no_discount_is_rejected() -> None:
    with pytest.raises(InvalidInput) as info:
        calculate(_inp(retention_rate=1.0))
    assert info.value.errors[0].field == "horizon_periods"


def test_unlimited_horizon_needs_retention_below_one_plus_the_rate() -> None:
    # Retention 0.99 with -50% a year: the discounted series r/(1+d) > 1 diverges.
    with pytest.raises(InvalidInput) as info:
        calculate(_inp(retention_rate=0.99, annual_discount_rate=-0.5))
    assert info.value.errors[0].field == "horizon_periods"


def test_overflowing_values_are_a_clear_error_not_inf() -> None:
    with pytest.raises(InvalidInput) as info:
        calculate(_inp(retention_rate=1.0, annual_discount_rate=-0.9, horizon_periods=10_000))
    assert info.value.errors[0].field == "annual_discount_rate"
