"""Monte Carlo NPV: reproducibility, distributions, parameter uncertainty, limits and speed."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from cltv_api.analysis.scoring import SegmentRow
from cltv_api.economics.business_case import (
    BusinessCaseInput,
    Effects,
    ManualBaseline,
    SBGBaseline,
    SegmentCase,
    npv_of,
    replace_input,
)
from cltv_api.economics.montecarlo import (
    Distribution,
    relative_se_from_interval,
    relative_se_of_segment,
    simulate,
)
from cltv_api.errors import InvalidInput
from models import SBG

COST = "one_off_cost"
SPEND = "segments[0].effects.spend_uplift"
SHARE = "segments[0].effects.churn_reduction_share"


SPEND_FIVE = Effects(spend_uplift=0.05)


def _case(effects: Effects = SPEND_FIVE, se: float = 0.0, **kw: object) -> BusinessCaseInput:
    base: dict[str, object] = {
        "name": "onboarding",
        "currency": "EUR",
        "one_off_cost": 1000.0,
        "running_cost_per_period": 0.0,
        "horizon_periods": 12,
        "segments": (
            SegmentCase("web", ManualBaseline(400, 5.0, 0.9, value_relative_se=se), effects),
        ),
        "annual_discount_rate": 0.1,
    }
    base.update(kw)
    return BusinessCaseInput(**base)  # type: ignore[arg-type]


def test_reruns_with_the_same_seed_are_identical() -> None:
    dists = [
        Distribution(SPEND, "triangular", low=0.0, mode=0.05, high=0.1),
        Distribution(SHARE, "normal", mean=0.1, sd=0.1),
    ]
    first = simulate(_case(se=0.1), dists, n_draws=2000, seed=7)
    again = simulate(_case(se=0.1), dists, n_draws=2000, seed=7)
    other = simulate(_case(se=0.1), dists, n_draws=2000, seed=8)
    assert first == again
    assert first.percentiles != other.percentiles


def test_without_uncertainty_every_draw_is_the_base_npv() -> None:
    res = simulate(_case(), n_draws=100, seed=1)
    base = npv_of(_case())
    assert res.base_npv == pytest.approx(base)
    assert all(v == pytest.approx(base) for v in res.percentiles.values())
    assert res.probability_positive == (1.0 if base > 0 else 0.0)
    assert sum(res.histogram_counts) == 100


def test_uniform_cost_shifts_the_npv_one_for_one() -> None:
    # NPV = A - cost with cost ~ U(800, 1200): percentile p of NPV = A - (800 + (1 - p) 400),
    # and P(NPV > 0) = (A - 800) / 400 clipped to [0, 1]. Sampling error of a percentile with
    # 20,000 draws is about sqrt(p (1 - p) / n) x 400 < 0.7.
    case = _case(Effects(spend_uplift=0.10))
    a = npv_of(case) + 1000.0
    res = simulate(
        case, [Distribution(COST, "uniform", low=800.0, high=1200.0)], n_draws=20_000, seed=3
    )
    for p, value in res.percentiles.items():
        assert value == pytest.approx(a - (800 + (1 - p / 100) * 400), abs=3.0)
    assert res.probability_positive == pytest.approx(min(1.0, max(0.0, (a - 800) / 400)), abs=0.015)


def test_triangular_effect_has_the_npv_of_its_mean() -> None:
    # NPV is linear in the spend uplift: E[NPV] = NPV at the triangular mean (0 + 0.02 + 0.1) / 3.
    case = _case()
    res = simulate(
        case,
        [Distribution(SPEND, "triangular", low=0.0, mode=0.02, high=0.1)],
        n_draws=20_000,
        seed=5,
    )
    expected = npv_of(replace_input(case, SPEND, 0.04))
    assert res.mean == pytest.approx(expected, abs=4 * res.sd / math.sqrt(20_000))


def test_normal_draws_stay_in_the_valid_range() -> None:
    # Churn share ~ N(0.9, 0.5) truncated to [0, 1]: NPV between share = 0 and share = 1.
    case = _case(Effects(churn_reduction_share=0.9))
    res = simulate(case, [Distribution(SHARE, "normal", mean=0.9, sd=0.5)], n_draws=5000, seed=2)
    low = npv_of(replace_input(case, SHARE, 0.0))
    high = npv_of(replace_input(case, SHARE, 1.0))
    assert low - 1e-9 <= res.histogram_edges[0] and res.histogram_edges[-1] <= high + 1e-9
    assert res.percentiles[95] > res.percentiles[5]


def test_value_uncertainty_is_a_median_one_lognormal_multiplier() -> None:
    # Spend uplift only: NPV = B M - C with M = exp(0.2 Z), so the median NPV is the base NPV
    # and the 95th percentile is B exp(0.2 x 1.645) - C.
    case = _case(se=0.2)
    cost = 1000.0
    b = npv_of(case) + cost
    res = simulate(case, n_draws=20_000, seed=11)
    assert res.percentiles[50] == pytest.approx(npv_of(case), abs=0.02 * b)
    assert res.percentiles[95] == pytest.approx(b * math.exp(0.2 * 1.6449) - cost, abs=0.02 * b)
    assert "log-normal" in res.parameter_uncertainty[0]


def test_sbg_baseline_draws_parameters_from_the_fit() -> None:
    # Fader & Hardie (2007) "Regular" segment, years 1-7 (cohort of 1,000).
    counts = np.round(np.array([100, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1]) * 10)
    model = SBG().fit(counts)
    case = _case(
        Effects(churn_reduction_points=0.02),
        segments=(
            SegmentCase(
                "contracts",
                SBGBaseline(model, 1000, 10.0, renewals=2),
                Effects(churn_reduction_points=0.02),
            ),
        ),
        period="year",
        horizon_periods=5,
    )
    res = simulate(case, n_draws=3000, seed=4)
    assert res.sd > 0
    assert res.percentiles[5] < npv_of(case) < res.percentiles[95]
    assert "sBG" in res.parameter_uncertainty[0]
    assert simulate(case, n_draws=3000, seed=4) == res
    fixed = simulate(case, n_draws=3000, seed=4, parameter_uncertainty=False)
    assert fixed.sd == pytest.approx(0.0, abs=1e-9)


def test_draws_are_capped_with_a_clear_error() -> None:
    with pytest.raises(InvalidInput) as info:
        simulate(_case(), n_draws=100_001)
    assert info.value.errors[0].field == "n_draws"
    assert "100,000" in info.value.errors[0].message


@pytest.mark.parametrize(
    ("dist", "field"),
    [
        (
            Distribution("segments[0].baseline.name", "uniform", low=0, high=1),
            "distributions[0].input",
        ),
        (Distribution(SHARE, "uniform", low=0.2, high=1.5), "distributions[0].high"),
        (Distribution(SHARE, "triangular", low=0.2, mode=0.9, high=0.5), "distributions[0].mode"),
        (Distribution(SHARE, "normal", mean=0.2, sd=0.0), "distributions[0].sd"),
        (Distribution(SHARE, "normal", mean=0.2, sd=0.1, low=2.0), "distributions[0].low"),
        (Distribution(SHARE, "poisson", low=0, high=1), "distributions[0].kind"),  # type: ignore[arg-type]
    ],
)
def test_bad_distribution_names_the_field(dist: Distribution, field: str) -> None:
    with pytest.raises(InvalidInput) as info:
        simulate(_case(), [dist], n_draws=10)
    assert field in {e.field for e in info.value.errors}


def test_relative_se_from_a_log_scale_interval() -> None:
    # SegmentRow intervals are value x exp(+-z s): upper = 100 exp(1.96 x 0.1) -> s = 0.1.
    z = float(stats.norm.ppf(0.975))
    assert relative_se_from_interval(100.0, 100.0 * math.exp(z * 0.1)) == pytest.approx(0.1)
    factor = math.exp(z * 0.25)
    row = SegmentRow(
        segment={"channel": "Online"},
        customers=10,
        share_active=0.5,
        expected_purchases=5.0,
        expected_purchases_per_customer=0.5,
        expected_revenue=100.0,
        clv_mean=8.0,
        clv_mean_lower=8.0 / factor,
        clv_mean_upper=8.0 * factor,
        clv_median=7.0,
        clv_total=80.0,
        clv_total_lower=80.0 / factor,
        clv_total_upper=80.0 * factor,
    )
    assert relative_se_of_segment(row) == pytest.approx(0.25)
