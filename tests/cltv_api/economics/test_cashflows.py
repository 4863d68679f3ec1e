"""Cash-flow arithmetic: discounting conventions, NPV, ROI, payback and IRR."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cltv_api.economics.cashflows import (
    annual_rate,
    cash_flow_times,
    discount_factors,
    irr,
    npv,
    payback_period,
    per_period_rate,
    roi,
)
from cltv_api.errors import InvalidInput


def test_per_period_rate_is_the_equivalent_effective_rate() -> None:
    # 10% a year = 1.1 ** (1/12) - 1 = 0.797414% a month; 1.1 ** 0.25 - 1 = 2.41137% a quarter.
    assert per_period_rate(0.10, "month") == pytest.approx(0.00797414042890376, rel=1e-12)
    assert per_period_rate(0.10, "quarter") == pytest.approx(0.0241136890844451, rel=1e-12)
    assert per_period_rate(0.10, "year") == pytest.approx(0.10)
    assert annual_rate(per_period_rate(0.10, "month"), "month") == pytest.approx(0.10, rel=1e-12)


def test_invalid_rate_and_period_are_both_named() -> None:
    with pytest.raises(InvalidInput) as info:
        per_period_rate(float("nan"), "fortnight")
    assert {e.field for e in info.value.errors} == {"annual_discount_rate", "period"}


def test_end_timing_discounts_period_t_by_t_periods_and_start_by_t_minus_one() -> None:
    # d = 10%: end -> 1, 1/1.1, 1/1.21; start -> 1 (today), 1 (start of period 1), 1/1.1.
    np.testing.assert_allclose(discount_factors(0.1, 2, "end"), [1, 1 / 1.1, 1 / 1.21])
    np.testing.assert_allclose(discount_factors(0.1, 2, "start"), [1, 1, 1 / 1.1])
    np.testing.assert_array_equal(cash_flow_times(3, "start"), [0, 0, 1, 2])


def test_discount_factors_vectorise_over_rates() -> None:
    factors = discount_factors(np.array([0.0, 0.1]), 2)
    assert factors.shape == (2, 3)
    np.testing.assert_allclose(factors[0], [1, 1, 1])
    np.testing.assert_allclose(factors[1], [1, 1 / 1.1, 1 / 1.21])


def test_npv_matches_published_end_of_period_examples() -> None:
    # Adobe LiveCycle Designer FormCalc reference, NPV: NPV(0.10, 500, 1500, 4000, 10000)
    # = 11529.60863329007 (cash at the end of each of four years; nothing today).
    assert npv([0, 500, 1500, 4000, 10000], 0.10) == pytest.approx(11529.60863329007, rel=1e-12)
    # Microsoft Excel NPV help: NPV(10%, -10000, 3000, 4200, 6800) = 1,188.44; by hand
    # -10000/1.1 + 3000/1.21 + 4200/1.331 + 6800/1.4641 = -9090.91 + 2479.34 + 3155.52 + 4644.49.
    assert npv([0, -10_000, 3000, 4200, 6800], 0.10) == pytest.approx(1188.44, abs=0.005)


def test_npv_with_start_timing_leaves_period_one_undiscounted() -> None:
    # -100 today, 50 at the start of periods 1, 2, 3 (times 0, 1, 2) at 10%:
    # -100 + 50 + 50/1.1 + 50/1.21 = 36.7769.
    assert npv([-100, 50, 50, 50], 0.10, "start") == pytest.approx(36.776859504132, rel=1e-12)


def test_roi_is_net_benefit_over_cost_and_undefined_without_cost() -> None:
    assert roi(150.0, 100.0) == pytest.approx(0.5)
    assert roi(50.0, 100.0) == pytest.approx(-0.5)
    assert roi(10.0, 0.0) is None


def test_payback_interpolates_within_the_period() -> None:
    # Cumulative -100, -70, -40, -10, +20: reached in period 4, 10 of its 30 -> 3 + 10/30.
    assert payback_period([-100, 30, 30, 30, 30]) == pytest.approx(3 + 1 / 3)


def test_discounted_payback_is_later_or_never() -> None:
    flows = [-100, 30, 30, 30, 30, 30]
    # Discounted at 10%: 27.2727, 24.7934, 22.5394, 20.4904, 18.6276; cumulative after period 4
    # is -4.9040, so the payback is 4 + 4.9040 / 18.6276 = 4.26327.
    assert payback_period(flows, discount_factors(0.1, 5)) == pytest.approx(4.263267, rel=1e-6)
    assert payback_period(flows[:5], discount_factors(0.1, 4)) is None


def test_payback_is_zero_without_upfront_cost_and_first_crossing_otherwise() -> None:
    assert payback_period([0, 10, 10]) == 0.0
    # Crosses in period 1 (-10 + 20), then falls negative again: the first crossing counts.
    assert payback_period([-10, 20, -50]) == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("flows", "expected", "tol"),
    [
        # numpy.irr documentation (Gitman, Principles of Managerial Finance, 2003, p. 348).
        ([-100, 39, 59, 55, 20], 0.28095, 5e-6),
        ([-100, 0, 0, 74], -0.0955, 5e-5),
        ([-100, 100, 0, -7], -0.0833, 5e-5),
        ([-100, 100, 0, 7], 0.06206, 5e-6),
        # Microsoft Excel IRR help: 8.7% after five years, -2.1% after four, -44.4% after two.
        ([-70_000, 12_000, 15_000, 18_000, 21_000, 26_000], 0.087, 5e-4),
        ([-70_000, 12_000, 15_000, 18_000, 21_000], -0.021, 5e-4),
        ([-70_000, 12_000, 15_000], -0.444, 5e-4),
    ],
)
def test_irr_matches_published_examples(flows: list[float], expected: float, tol: float) -> None:
    rate = irr(flows)
    assert rate is not None
    assert rate == pytest.approx(expected, abs=tol)
    assert npv(flows, rate) == pytest.approx(0.0, abs=1e-8 * max(abs(f) for f in flows))


def test_irr_picks_the_root_closest_to_zero() -> None:
    # -100 + 100/(1+r) - 7/(1+r)^3 has roots near -0.66 and -0.0833; numpy.irr reported -0.0833.
    rate = irr([-100, 100, 0, -7])
    assert rate == pytest.approx(-0.0833, abs=5e-5)


def test_irr_is_none_without_a_sign_change() -> None:
    assert irr([-100, -5, 0]) is None
    assert irr([100, 5]) is None
    assert irr([0, 0]) is None


def test_irr_with_start_timing_uses_start_of_period_times() -> None:
    # -100 today, +110 at the start of period 2 (time 1): IRR 10%.
    rate = irr([-100, 0, 110], "start")
    assert rate == pytest.approx(0.10, rel=1e-10)


@settings(max_examples=40, deadline=None)
@given(
    cost=st.floats(0, 1e6),
    extra=st.floats(1e-3, 1e5),
    rate=st.floats(-0.5, 1.0),
    benefits=st.lists(st.floats(0, 1e5), min_size=1, max_size=12),
)
def test_npv_decreases_when_the_cost_rises(
    cost: float, extra: float, rate: float, benefits: list[float]
) -> None:
    low = npv([-cost, *benefits], rate)
    high = npv([-(cost + extra), *benefits], rate)
    assert high < low
    scale = max(1.0, cost + extra + sum(benefits))
    assert low - high == pytest.approx(extra, abs=1e-12 * scale / min(1.0, 1.0 + rate) ** 12)
