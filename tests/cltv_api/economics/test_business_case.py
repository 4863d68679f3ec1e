"""Business case: hand-worked per-period tables, baselines, effects, break-even and validation."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cltv_api.economics import nps
from cltv_api.economics.business_case import (
    BusinessCaseInput,
    CurveBaseline,
    Effects,
    ManualBaseline,
    NpsShift,
    Referrals,
    SBGBaseline,
    SegmentCase,
    baseline_from_model,
    curve_retention,
    evaluate,
    npv_of,
    numeric_inputs,
    period_horizon,
    replace_input,
)
from cltv_api.errors import InvalidInput
from models import BGNBD, SBG, GammaGamma, clv

FIVE_POINTS = Effects(churn_reduction_points=0.05)
RETAIL = ManualBaseline(100, 5.0, 0.9)


def _case(
    effects: Effects = FIVE_POINTS,
    *,
    baseline: ManualBaseline | CurveBaseline | SBGBaseline = RETAIL,
    **kw: object,
) -> BusinessCaseInput:
    base: dict[str, object] = {
        "name": "retention desk",
        "currency": "RUB",
        "one_off_cost": 20.0,
        "running_cost_per_period": 10.0,
        "horizon_periods": 3,
        "segments": (SegmentCase("all", baseline, effects),),
        "annual_discount_rate": 0.0,
        "period": "year",
    }
    base.update(kw)
    return BusinessCaseInput(**base)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- hand-worked
def test_churn_reduction_table_matches_hand_calculation() -> None:
    # N = 100, m = 5, r = 0.9 -> baseline 500, 450, 405. Churn 10% -> 5%: r' = 0.95 ->
    # with initiative 500, 475, 451.25; incremental 0, 25, 46.25; customers retained
    # 100 (0.95 - 0.9) = 5 and 100 (0.9025 - 0.81) = 9.25. Costs 20 today, 10 a period:
    # net -20, -10, 15, 36.25 -> NPV (no discounting) 21.25; cumulative -20, -30, -15, 21.25
    # -> payback 2 + 15 / 36.25; ROI (71.25 - 50) / 50 = 0.425.
    res = evaluate(_case())
    rows = res.periods
    assert [r.period for r in rows] == [0, 1, 2, 3]
    np.testing.assert_allclose([r.baseline_value for r in rows], [0, 500, 450, 405])
    np.testing.assert_allclose([r.value_with_initiative for r in rows], [0, 500, 475, 451.25])
    np.testing.assert_allclose([r.incremental_value for r in rows], [0, 0, 25, 46.25])
    np.testing.assert_allclose([r.incremental_customers_retained for r in rows], [0, 0, 5, 9.25])
    np.testing.assert_allclose([r.costs for r in rows], [20, 10, 10, 10])
    np.testing.assert_allclose([r.net_cash_flow for r in rows], [-20, -10, 15, 36.25])
    np.testing.assert_allclose([r.cumulative_net_cash_flow for r in rows], [-20, -30, -15, 21.25])
    assert res.npv == pytest.approx(21.25)
    assert res.roi == pytest.approx(0.425)
    assert res.payback_periods == pytest.approx(2 + 15 / 36.25)
    assert res.discounted_payback_periods == pytest.approx(2 + 15 / 36.25)
    assert res.total_incremental_value == pytest.approx(71.25)
    assert res.total_costs == pytest.approx(50)
    assert res.currency == "RUB"


def test_discounting_at_the_end_of_each_year() -> None:
    # Same flows at 10% a year, cash at the end of each year:
    # -20 - 10/1.1 + 15/1.21 + 36.25/1.331 = -20 - 9.0909 + 12.3967 + 27.2351 = 10.5409.
    res = evaluate(_case(annual_discount_rate=0.10))
    assert res.npv == pytest.approx(-20 - 10 / 1.1 + 15 / 1.21 + 36.25 / 1.331, rel=1e-12)
    np.testing.assert_allclose(
        [r.discount_factor for r in res.periods], [1, 1 / 1.1, 1 / 1.21, 1 / 1.331]
    )
    assert res.periods[-1].cumulative_present_value == pytest.approx(res.npv)
    assert res.discount_rate_per_period == pytest.approx(0.10)
    assert res.irr_per_period is not None
    assert res.irr_annual == pytest.approx(res.irr_per_period)  # yearly periods


def test_effects_start_after_start_period() -> None:
    # start_period 1: spend +10% and churn -5 points act from period 2. Period 2 value
    # 100 x 5.5 x 0.9 = 495 (the retention out of period 1 is unchanged); period 3:
    # 100 x 5.5 x 0.9 x 0.95 = 470.25. Incremental 0, 45, 65.25.
    res = evaluate(_case(Effects(churn_reduction_points=0.05, spend_uplift=0.10), start_period=1))
    np.testing.assert_allclose([r.incremental_value for r in res.periods], [0, 0, 45, 65.25])


def test_churn_share_reduction_equals_points_on_constant_retention() -> None:
    # Churn 10% cut by half = 5 points.
    share = npv_of(_case(Effects(churn_reduction_share=0.5)))
    points = npv_of(_case(Effects(churn_reduction_points=0.05)))
    assert share == pytest.approx(points, rel=1e-12)


def test_spend_and_frequency_uplifts_multiply_the_margin() -> None:
    # (1.1)(1.2) = 1.32 -> incremental 0.32 x (500 + 450 + 405) = 433.6.
    res = evaluate(_case(Effects(spend_uplift=0.1, frequency_uplift=0.2)))
    assert res.total_incremental_value == pytest.approx(0.32 * 1355)


def test_curve_baseline_with_geometric_decline_equals_manual_baseline() -> None:
    # v = 1000, 800, 640, 512 implies r = 0.8 and m = 1000 / 100 = 10 per active customer.
    curve = CurveBaseline(customers=100, value_per_period=(1000, 800, 640, 512))
    manual = ManualBaseline(100, 10.0, 0.8)
    effects = Effects(churn_reduction_points=0.1, spend_uplift=0.05)
    assert npv_of(_case(effects, baseline=curve, horizon_periods=4)) == pytest.approx(
        npv_of(_case(effects, baseline=manual, horizon_periods=4)), rel=1e-12
    )
    np.testing.assert_allclose(curve_retention([1000, 800, 640, 512], 4), [0.8, 0.8, 0.8, 1.0])


def test_curve_retention_is_zero_after_the_value_runs_out() -> None:
    np.testing.assert_allclose(curve_retention([10, 5, 0, 0], 3), [0.5, 0.0, 0.0])


def test_sbg_baseline_uses_retention_at_the_customers_tenure() -> None:
    # alpha = beta = 1: r(t) = t / (t + 1). New customers (0 renewals): S = 1, 1/2, 1/3 ->
    # baseline 10, 5, 3.3333. After 2 renewals: r(3) = 3/4, r(4) = 4/5 -> 10, 7.5, 6.
    model = SBG.from_params({"alpha": 1.0, "beta": 1.0})
    for renewals, expected in ((0, [10, 5, 10 / 3]), (2, [10, 7.5, 6])):
        res = evaluate(
            _case(Effects(spend_uplift=0.1), baseline=SBGBaseline(model, 10, 1.0, renewals))
        )
        np.testing.assert_allclose([r.baseline_value for r in res.periods[1:]], expected)


def _profile(new_customer_value: float | None = 0.0) -> nps.NpsProfile:
    return nps.NpsProfile(
        counts=nps.NpsCounts(promoters=50, passives=30, detractors=20),
        promoters=nps.GroupEconomics(retention=0.9, margin_per_period=10),
        passives=nps.GroupEconomics(retention=0.8, margin_per_period=8),
        detractors=nps.GroupEconomics(retention=0.5, margin_per_period=5),
        new_customer_value=new_customer_value,
    )


def test_nps_shift_moves_detractors_and_values_the_stream_difference() -> None:
    # 100 customers, 20% detractors, half of them become passives at once: 10 moved. Period 1:
    # 10 (8 - 5) = 30; period 2: 10 (8 x 0.8 - 5 x 0.5) = 39. Extra active customers in period 2:
    # 10 (0.8 - 0.5) = 3.
    shift = NpsShift(_profile(), detractors_to_passive=0.5)
    res = evaluate(_case(Effects(nps_shift=shift), horizon_periods=2))
    np.testing.assert_allclose([r.incremental_value for r in res.periods], [0, 30, 39])
    np.testing.assert_allclose([r.incremental_customers_retained for r in res.periods], [0, 0, 3])


def test_nps_shift_after_a_delay_moves_the_surviving_detractors() -> None:
    # start_period 1: detractors still active then = 20 x 0.5 = 10, half moved = 5; period 2
    # is their first period after the move: 5 (8 - 5) = 15; to promoters: 5 (10 - 5) = 25.
    to_passive = evaluate(
        _case(Effects(nps_shift=NpsShift(_profile(), 0.5)), horizon_periods=2, start_period=1)
    )
    to_promoter = evaluate(
        _case(Effects(nps_shift=NpsShift(_profile(), 0.0, 0.5)), horizon_periods=2, start_period=1)
    )
    assert to_passive.periods[2].incremental_value == pytest.approx(15)
    assert to_promoter.periods[2].incremental_value == pytest.approx(25)


def test_referrals_book_the_value_of_each_new_customer() -> None:
    # Given value: 2 new customers a period x 100 = 200 a period.
    given_value = evaluate(_case(Effects(referrals=Referrals(2, 100.0))))
    np.testing.assert_allclose(
        [r.incremental_value for r in given_value.periods], [0, 200, 200, 200]
    )
    np.testing.assert_allclose([r.referred_customers for r in given_value.periods], [0, 2, 2, 2])
    # From the baseline (m = 10, r = 0.5, 3 periods, no discounting): 10 (1 + 0.5 + 0.25) = 17.5
    # per new customer -> 35 a period.
    from_baseline = evaluate(
        _case(Effects(referrals=Referrals(2)), baseline=ManualBaseline(100, 10.0, 0.5))
    )
    np.testing.assert_allclose(
        [r.incremental_value for r in from_baseline.periods], [0, 35, 35, 35]
    )


# ----------------------------------------------------------------------------- break-even
def test_break_even_scale_of_a_linear_effect_is_cost_over_benefit() -> None:
    # Spend +10% adds 0.1 x 1355 = 135.5; costs 100 today, nothing else -> k = 100 / 135.5.
    case = _case(Effects(spend_uplift=0.1), one_off_cost=100.0, running_cost_per_period=0.0)
    be = evaluate(case).break_even
    assert be is not None
    assert be.scale == pytest.approx(100 / 135.5, rel=1e-9)
    assert be.effects[0].input == "segments[0].effects.spend_uplift"
    assert be.effects[0].break_even_value == pytest.approx(0.1 * 100 / 135.5, rel=1e-9)
    assert not be.effects[0].capped


def test_break_even_scale_gives_zero_npv_with_several_effects() -> None:
    case = _case(
        Effects(churn_reduction_points=0.02, spend_uplift=0.03, referrals=Referrals(0.5)),
        one_off_cost=300.0,
        horizon_periods=12,
        annual_discount_rate=0.1,
    )
    be = evaluate(case).break_even
    assert be is not None and 0 < be.scale < 100
    scaled = case
    for effect in be.effects:
        scaled = replace_input(scaled, effect.input, effect.break_even_value)
    assert npv_of(scaled) == pytest.approx(0.0, abs=1e-6)


def test_break_even_is_none_when_unreachable_and_zero_without_costs() -> None:
    assert evaluate(_case(one_off_cost=1e9)).break_even is None
    free = evaluate(_case(one_off_cost=0.0, running_cost_per_period=0.0)).break_even
    assert free is not None and free.scale == 0.0


@settings(max_examples=25, deadline=None)
@given(
    cost=st.floats(0, 1e4),
    extra=st.floats(1.0, 1e4),
    running=st.floats(0, 100),
    points=st.floats(0, 0.1),
)
def test_npv_decreases_in_every_cost(
    cost: float, extra: float, running: float, points: float
) -> None:
    case = _case(
        Effects(churn_reduction_points=points),
        one_off_cost=cost,
        running_cost_per_period=running,
        annual_discount_rate=0.1,
    )
    base = npv_of(case)
    assert npv_of(replace(case, one_off_cost=cost + extra)) < base
    assert npv_of(replace(case, running_cost_per_period=running + extra)) < base


# ----------------------------------------------------------------------------- fitted baseline
def test_baseline_from_model_discounts_to_the_segment_cltv() -> None:
    # CDNOW BG/NBD (Fader, Hardie & Lee 2005, weekly: r=0.243, alpha=4.414, a=0.793, b=2.426)
    # and Gamma-Gamma (p=6.25, q=3.74, gamma=15.44) with illustrative covariances.
    purchase = BGNBD.from_params(
        {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426},
        np.diag([0.013, 0.38, 0.19, 0.7]) ** 2,
    )
    spend = GammaGamma.from_params(
        {"p": 6.25, "q": 3.74, "gamma": 15.44}, np.diag([0.5, 0.3, 2.0]) ** 2
    )
    x = np.array([0.0, 1, 2, 5, 10])
    t_x = np.array([0.0, 20, 30, 60, 70])
    age = np.array([70.0, 70, 75, 70, 77])
    counts = np.array([40.0, 10, 8, 5, 2])
    spend_sums = counts * np.array([0.0, 30, 25, 40, 60])
    horizon = period_horizon("month", 12, "weeks", 0.10)
    curve = baseline_from_model(purchase, spend, x, t_x, age, counts, spend_sums, horizon, 0.3)
    total = clv.group_total(
        clv.history_values(purchase, x, t_x, age, horizon),
        clv.spend_coefficients(spend, x),
        counts,
        spend_sums,
        0.3,
        clv._log_covariance(purchase),
        clv._log_covariance(spend),
    )
    discounted = np.dot(curve.value_per_period, horizon.discount_factors())
    assert discounted == pytest.approx(total.clv_total, rel=1e-10)
    assert curve.value_relative_se == pytest.approx(total.clv_total_se / total.clv_total)
    assert curve.customers == 65
    alive = purchase.prob_alive(x, t_x, age)
    assert curve.active_customers == pytest.approx(float(np.dot(counts, alive)))
    values = np.asarray(curve.value_per_period)
    assert np.all(np.diff(values) <= 0)  # survival only falls
    res = evaluate(_case(Effects(churn_reduction_points=0.01), baseline=curve, horizon_periods=12))
    assert res.periods[1].baseline_value == pytest.approx(values[0])


def test_period_horizon_steps_are_plan_periods_in_the_data_unit() -> None:
    h = period_horizon("quarter", 8, "weeks", 0.10)
    assert h.n_steps == 8
    assert h.step_length == pytest.approx(365.25 / 4 / 7)
    assert h.rate_per_step == pytest.approx(1.1**0.25 - 1)


# ----------------------------------------------------------------------------- inputs
def test_numeric_inputs_and_replace_cover_nested_fields() -> None:
    case = _case(Effects(nps_shift=NpsShift(_profile(), 0.5), referrals=Referrals(1.0)))
    inputs = numeric_inputs(case)
    assert inputs["segments[0].baseline.retention"] == 0.9
    assert inputs["segments[0].effects.nps_shift.profile.passives.retention"] == 0.8
    assert "segments[0].effects.referrals.value_per_new_customer" not in inputs  # None
    changed = replace_input(case, "segments[0].effects.nps_shift.profile.passives.retention", 0.7)
    shift = changed.segments[0].effects.nps_shift
    assert shift is not None and shift.profile.passives.retention == 0.7
    assert replace_input(case, "horizon_periods", 2.4).horizon_periods == 2
    curve = _case(baseline=CurveBaseline(10, (10.0, 5.0, 2.0)))
    scaled = replace_input(curve, "segments[0].baseline.value_per_period", 2.0)
    assert scaled.segments[0].baseline.value_per_period == (20.0, 10.0, 4.0)  # type: ignore[union-attr]
    with pytest.raises(InvalidInput) as info:
        replace_input(case, "segments[0].effects.magic", 1.0)
    assert info.value.errors[0].field == "segments[0].effects.magic"


# ----------------------------------------------------------------------------- validation
def test_every_impossible_field_is_named_at_once() -> None:
    case = _case(
        Effects(churn_reduction_points=0.2, spend_uplift=-1.5, churn_reduction_share=1.5),
        baseline=ManualBaseline(100, 5.0, 1.2),
        one_off_cost=float("nan"),
        horizon_periods=-1,
        annual_discount_rate=-2.0,
    )
    with pytest.raises(InvalidInput) as info:
        evaluate(case)
    fields = {e.field for e in info.value.errors}
    assert fields >= {
        "one_off_cost",
        "horizon_periods",
        "annual_discount_rate",
        "segments[0].baseline.retention",
        "segments[0].effects.spend_uplift",
        "segments[0].effects.churn_reduction_share",
    }


def test_numpy_numbers_are_accepted() -> None:
    case = _case(
        baseline=ManualBaseline(np.int64(100), np.float64(5.0), np.float64(0.9)),  # type: ignore[arg-type]
        horizon_periods=np.int64(3),
    )
    assert npv_of(case) == pytest.approx(21.25)


def test_churn_reduction_above_current_churn_is_rejected() -> None:
    # Churn is 10% a period: a 12-point reduction is larger than its base.
    with pytest.raises(InvalidInput) as info:
        evaluate(_case(Effects(churn_reduction_points=0.12)))
    assert [e.field for e in info.value.errors] == ["segments[0].effects.churn_reduction_points"]
    assert "current churn" in info.value.errors[0].message
    # Exactly the current churn is allowed (no churn left).
    assert evaluate(_case(Effects(churn_reduction_points=0.1))).npv > 0


@pytest.mark.parametrize(
    ("case", "field"),
    [
        (_case(start_period=3), "start_period"),
        (
            _case(baseline=CurveBaseline(10, (5.0, 6.0, 4.0))),
            "segments[0].baseline.value_per_period",
        ),
        (_case(baseline=CurveBaseline(10, (5.0, 4.0))), "segments[0].baseline.value_per_period"),
        (
            _case(Effects(nps_shift=NpsShift(_profile(), 0.7, 0.5))),
            "segments[0].effects.nps_shift.detractors_to_passive",
        ),
        (
            _case(Effects(referrals=Referrals(-1.0))),
            "segments[0].effects.referrals.new_customers_per_period",
        ),
        (
            _case(segments=(SegmentCase("a", ManualBaseline(1, 1, 0.5)),) * 2),
            "segments[1].name",
        ),
        (_case(segments=()), "segments"),
        (
            _case(baseline=SBGBaseline(SBG(), 10, 1.0)),
            "segments[0].baseline.model",
        ),
    ],
)
def test_invalid_case_names_the_field(case: BusinessCaseInput, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        evaluate(case)
    assert field in {e.field for e in info.value.errors}
