"""Tornado sensitivity: ranges, clipping, ordering and symmetry for linear inputs."""

from __future__ import annotations

import pytest

from cltv_api.economics.business_case import (
    BusinessCaseInput,
    CurveBaseline,
    Effects,
    ManualBaseline,
    SegmentCase,
    npv_of,
    replace_input,
)
from cltv_api.economics.sensitivity import tornado
from cltv_api.errors import InvalidInput


def _case(**kw: object) -> BusinessCaseInput:
    base: dict[str, object] = {
        "name": "loyalty app",
        "currency": "USD",
        "one_off_cost": 1000.0,
        "running_cost_per_period": 50.0,
        "horizon_periods": 12,
        "segments": (
            SegmentCase(
                "retail",
                ManualBaseline(500, 4.0, 0.9),
                Effects(churn_reduction_points=0.02, spend_uplift=0.05),
            ),
        ),
        "annual_discount_rate": 0.0,
    }
    base.update(kw)
    return BusinessCaseInput(**base)  # type: ignore[arg-type]


def _bar(result, name: str):  # type: ignore[no-untyped-def]
    return next(b for b in result.bars if b.input == name)


def test_linear_inputs_give_symmetric_bars() -> None:
    # NPV is linear in the one-off cost (slope -1) and in the spend uplift: +-20% moves the NPV
    # by the same amount either way. One-off cost 1000 +-200 -> NPV +-200 (no discounting).
    res = tornado(_case())
    cost = _bar(res, "one_off_cost")
    assert (cost.low_value, cost.high_value) == (800.0, 1200.0)
    assert cost.npv_low - res.base_npv == pytest.approx(200.0)
    assert res.base_npv - cost.npv_high == pytest.approx(200.0)
    assert cost.swing == pytest.approx(400.0)
    for name in ("running_cost_per_period", "segments[0].effects.spend_uplift"):
        bar = _bar(res, name)
        assert bar.npv_high - res.base_npv == pytest.approx(res.base_npv - bar.npv_low, rel=1e-9)


def test_bars_are_sorted_by_swing() -> None:
    swings = [b.swing for b in tornado(_case()).bars]
    assert swings == sorted(swings, reverse=True)
    assert swings[0] > 0


def test_each_bar_is_the_npv_with_only_that_input_moved() -> None:
    res = tornado(_case())
    bar = _bar(res, "segments[0].baseline.margin_per_customer")
    assert (bar.low_value, bar.high_value) == pytest.approx((3.2, 4.8))
    low = replace_input(_case(), "segments[0].baseline.margin_per_customer", 3.2)
    assert bar.npv_low == pytest.approx(npv_of(low), rel=1e-12)


def test_ends_are_clipped_to_what_the_other_inputs_allow() -> None:
    # Retention 0.9 + 20% = 1.08 > 1; with a 2-point churn reduction it can rise to 0.98 only.
    bar = _bar(tornado(_case()), "segments[0].baseline.retention")
    assert bar.clipped
    assert bar.low_value == pytest.approx(0.72)
    assert bar.high_value == pytest.approx(0.98, abs=1e-9)
    assert not _bar(tornado(_case()), "one_off_cost").clipped


def test_user_ranges_override_the_default() -> None:
    res = tornado(_case(), ranges={"segments[0].effects.churn_reduction_points": (0.0, 0.05)})
    bar = _bar(res, "segments[0].effects.churn_reduction_points")
    assert (bar.low_value, bar.high_value) == (0.0, 0.05)
    no_effect = replace_input(_case(), "segments[0].effects.churn_reduction_points", 0.0)
    assert bar.npv_low == pytest.approx(npv_of(no_effect))


def test_whole_number_inputs_are_rounded() -> None:
    bar = _bar(tornado(_case()), "horizon_periods")
    assert (bar.low_value, bar.high_value) == (10.0, 14.0)  # 12 -+ 2.4, rounded


def test_curve_is_one_multiplier_input() -> None:
    # Incremental value is proportional to the curve when effects are relative (spend uplift):
    # the bar is symmetric around the base NPV.
    case = _case(
        segments=(
            SegmentCase(
                "fit",
                CurveBaseline(100, tuple(1000 * 0.9**t for t in range(13))),
                Effects(spend_uplift=0.1),
            ),
        )
    )
    bar = _bar(tornado(case), "segments[0].baseline.value_per_period")
    assert (bar.base_value, bar.low_value, bar.high_value) == pytest.approx((1.0, 0.8, 1.2))
    base = npv_of(case)
    assert bar.npv_high - base == pytest.approx(base - bar.npv_low, rel=1e-9)


def test_bad_settings_name_the_field() -> None:
    with pytest.raises(InvalidInput) as info:
        tornado(_case(), relative_range=0.0, ranges={"magic": (0, 1), "one_off_cost": (5, 1)})
    assert {e.field for e in info.value.errors} == {
        "relative_range",
        "ranges[magic]",
        "ranges[one_off_cost]",
    }
