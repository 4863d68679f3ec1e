"""Tests for the shifted-beta-geometric model (Fader & Hardie 2007, 2010)."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from models import ModelFitError, NotFittedError
from models.sbg import (
    SBG,
    _hyp2f1_continued_fraction,
    _hyp2f1_quadrature,
    hyp2f1_discounted,
    log_likelihood,
    log_likelihood_gradient,
    simulate,
    sufficient_statistics,
)

# Fader & Hardie (2007), Table 1: % of customers surviving years 0..12 (cohorts of 1,000).
REGULAR_PCT = np.array(
    [100, 63.1, 46.8, 38.2, 32.6, 28.9, 26.2, 24.1, 22.3, 20.7, 19.4, 18.3, 17.3]
)
HIGH_END_PCT = np.array(
    [100, 86.9, 74.3, 65.3, 59.3, 55.1, 51.7, 49.1, 46.8, 44.5, 42.7, 40.9, 39.4]
)
# FH 2007 fit years 1-7 and report these estimates.
PUBLISHED = {"regular": (0.704, 1.182), "high_end": (0.668, 3.806)}
SEGMENTS = {"regular": REGULAR_PCT, "high_end": HIGH_END_PCT}


def _counts(segment: str) -> np.ndarray:
    return np.round(SEGMENTS[segment] * 10)  # percentages of a cohort of 1,000 -> counts


@functools.cache
def _fit_years_1_to_7(segment: str) -> SBG:
    return SBG().fit(_counts(segment)[:8])


def _sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


# --------------------------------------------------------------------------- published results
@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_fit_to_years_1_to_7_reproduces_published_estimates(segment: str) -> None:
    model = _fit_years_1_to_7(segment)
    alpha, beta = PUBLISHED[segment]
    assert model.converged_
    assert _sig(model.params_["alpha"]) == _sig(alpha)
    assert _sig(model.params_["beta"]) == _sig(beta)


def test_high_end_log_likelihood_matches_published_value() -> None:
    # FH 2007, Appendix B (the Excel implementation of the High End fit) reports LL = -1611.2;
    # public replications of that example print the same value (-1611.16).
    assert round(_fit_years_1_to_7("high_end").log_likelihood_, 1) == -1611.2


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_optimum_is_at_least_as_good_as_the_published_parameters(segment: str) -> None:
    model = _fit_years_1_to_7(segment)
    cohorts = [_counts(segment)[:8]]
    t, churned, censored = sufficient_statistics(cohorts, np.ones(1))
    at_published = log_likelihood(np.array(PUBLISHED[segment]), t, churned, censored)
    assert model.log_likelihood_ >= at_published
    # The published values are rounded to 3 decimals, so the two likelihoods are very close.
    assert model.log_likelihood_ - at_published < 0.05


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_projection_of_years_8_to_12_is_close_to_actual(segment: str) -> None:
    # FH 2007 show that the sBG fitted to years 1-7 tracks the actual survival of
    # years 8-12 closely. Our tolerance: within 2 percentage points every year (we measure
    # at most 0.31 points for Regular and 1.6 points for High End).
    model = _fit_years_1_to_7(segment)
    projected = 100 * model.survival(np.arange(8, 13))
    np.testing.assert_allclose(projected, SEGMENTS[segment][8:], atol=2.0)


@pytest.mark.parametrize("segment", ["regular", "high_end"])
def test_projection_beats_constant_retention_projection(segment: str) -> None:
    # FH 2007's point: retention rates rise over time (heterogeneity), so a projection that holds
    # the retention rate constant at its calibration value under-predicts survival. Constant
    # rate = the maximum-likelihood geometric retention on years 1-7 (churners / customer-years
    # at risk), i.e. the exponential survival curve the paper argues against.
    pct = SEGMENTS[segment]
    model = _fit_years_1_to_7(segment)
    counts = _counts(segment)[:8]
    constant = 1 - (counts[0] - counts[-1]) / counts[:-1].sum()
    naive_survival = pct[7] * constant ** np.arange(1, 6)
    model_survival = 100 * model.survival(np.arange(8, 13))
    actual = pct[8:]
    assert np.mean(np.abs(model_survival - actual)) < np.mean(np.abs(naive_survival - actual))
    actual_retention = pct[8:] / pct[7:12]
    model_retention = model.retention_rate(np.arange(8, 13))
    assert np.mean(np.abs(model_retention - actual_retention)) < np.mean(
        np.abs(constant - actual_retention)
    )


def test_percentages_and_counts_give_the_same_estimates() -> None:
    # The likelihood scales with the counts, so the maximiser is unchanged; standard errors
    # scale with 1/sqrt(cohort size) (100 vs 1,000 customers: a factor sqrt(10)).
    from_counts = _fit_years_1_to_7("regular")
    from_pct = SBG().fit(REGULAR_PCT[:8])
    for name in ("alpha", "beta"):
        assert from_pct.params_[name] == pytest.approx(from_counts.params_[name], rel=1e-6)
        assert from_pct.standard_errors_[name] == pytest.approx(
            from_counts.standard_errors_[name] * np.sqrt(10), rel=1e-3
        )


# --------------------------------------------------------------------------- model quantities
def test_survival_retention_and_churn_are_consistent() -> None:
    model = SBG.from_params({"alpha": 0.704, "beta": 1.182})
    t = np.arange(1, 30)
    survival = model.survival(np.arange(0, 30))
    assert survival[0] == 1.0
    # r(t) = S(t)/S(t-1) (FH 2007, eq. 9) and P(T=t) = S(t-1) - S(t) (eqs. 7-8).
    np.testing.assert_allclose(model.retention_rate(t), survival[1:] / survival[:-1], rtol=1e-12)
    np.testing.assert_allclose(model.churn_probability(t), survival[:-1] - survival[1:], rtol=1e-10)
    # Hand-worked: P(T=1) = alpha/(alpha+beta), r(1) = beta/(alpha+beta).
    assert model.churn_probability(1)[0] == pytest.approx(0.704 / 1.886, rel=1e-12)
    assert model.retention_rate(1)[0] == pytest.approx(1.182 / 1.886, rel=1e-12)


def _brute_force_derl(alpha: float, beta: float, d: float, renewals: int) -> float:
    """sum_{k>=0} S(n+k)/S(n-1) (1+d)^-k with n - 1 = renewals, by a long finite sum."""
    n = renewals + 1
    k = np.arange(0, int(60 / np.log1p(d)) + 1, dtype=float)
    log_s = special.betaln(alpha, beta + n + k) - special.betaln(alpha, beta + n - 1)
    return float(np.sum(np.exp(log_s - k * np.log1p(d))))


@pytest.mark.parametrize("discount_rate", [0.5, 0.1, 0.01, 0.001])
@pytest.mark.parametrize("renewals", [0, 3, 50])
def test_derl_equals_discounted_sum_of_survival_probabilities(
    discount_rate: float, renewals: int
) -> None:
    # FH 2010: DERL = sum_k S(n+k)/S(n-1)/(1+d)^k, the next payment undiscounted.
    alpha, beta = 0.704, 1.182
    model = SBG.from_params({"alpha": alpha, "beta": beta})
    expected = _brute_force_derl(alpha, beta, discount_rate, renewals)
    assert model.derl(discount_rate, renewals)[0] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize("discount_rate", [0.2, 0.05, 0.002])
def test_del_equals_discounted_sum_and_one_plus_discounted_derl(discount_rate: float) -> None:
    alpha, beta = 0.668, 3.806
    model = SBG.from_params({"alpha": alpha, "beta": beta})
    k = np.arange(0, int(60 / np.log1p(discount_rate)) + 1, dtype=float)
    brute = np.sum(
        np.exp(
            special.betaln(alpha, beta + k)
            - special.betaln(alpha, beta)
            - k * np.log1p(discount_rate)
        )
    )
    value = model.discounted_expected_lifetime(discount_rate)[0]
    assert value == pytest.approx(brute, rel=1e-9)
    # DEL = first payment + DERL(renewals=0) discounted one period.
    assert value == pytest.approx(1 + model.derl(discount_rate, 0)[0] / (1 + discount_rate))
    assert model.del_(discount_rate)[0] == value


def test_derl_grows_with_tenure_and_falls_with_discount_rate() -> None:
    # Survivors are increasingly the low-churn customers (FH 2010), so DERL rises with renewals.
    model = SBG.from_params({"alpha": 0.704, "beta": 1.182})
    derl = model.derl(0.1, np.arange(0, 20))
    assert np.all(np.diff(derl) > 0)
    assert np.all(np.diff(model.derl(np.array([0.01, 0.05, 0.1, 0.5]), 5)) < 0)


def _series(b: float, excess: float, d: float) -> float:
    k = np.arange(0, int(60 / np.log1p(d)) + 1, dtype=float)
    log_terms = (
        special.gammaln(b + k)
        - special.gammaln(b)
        - special.gammaln(b + excess + k)
        + special.gammaln(b + excess)
        - k * np.log1p(d)
    )
    return float(np.sum(np.exp(np.sort(log_terms))))


@pytest.mark.parametrize("b", [0.001, 0.7, 50.0, 1e3])
@pytest.mark.parametrize("excess", [0.01, 0.668, 3.0, 1e3])
@pytest.mark.parametrize("d", [1e-3, 0.1, 10.0])
def test_hyp2f1_matches_its_power_series(b: float, excess: float, d: float) -> None:
    # scipy.special.hyp2f1 returns NaN for several of these (b or c around 1e3); ours does not.
    assert hyp2f1_discounted(b, excess, d) == pytest.approx(_series(b, excess, d), rel=1e-10)


@pytest.mark.parametrize(("b", "excess"), [(0.7, 0.668), (3.8, 0.1), (1e3, 2.0), (0.1, 1.0)])
def test_hyp2f1_fallback_agrees_with_continued_fraction_near_z_equal_1(
    b: float, excess: float
) -> None:
    # d = 1e-5: the continued fraction needs more terms than the default cap (the fallback's
    # regime); given enough terms it converges, and the quadrature agrees with it.
    args = (np.array([b]), np.array([excess]), np.array([1e-5]))
    reference, converged = _hyp2f1_continued_fraction(*args, 200_000)
    assert converged[0]
    assert _hyp2f1_quadrature(*args)[0] == pytest.approx(reference[0], rel=1e-9)
    assert hyp2f1_discounted(b, excess, 1e-5) == pytest.approx(reference[0], rel=1e-9)


# --------------------------------------------------------------------------- multi-cohort data
def test_sufficient_statistics_of_two_cohorts_by_hand() -> None:
    # Cohort A: 10 -> 8 -> 5 (2 churn in period 1, 3 in period 2, 5 still active after 2).
    # Cohort B: 6 -> 6, observed one period, weight 2: 0 churn, 12 still active after 1.
    t, churned, censored = sufficient_statistics(
        [np.array([10.0, 8.0, 5.0]), np.array([6.0, 6.0])], np.array([1.0, 2.0])
    )
    np.testing.assert_array_equal(t, [1, 2])
    np.testing.assert_array_equal(churned, [2, 3])
    np.testing.assert_array_equal(censored, [12, 5])


def test_one_cohort_in_a_list_gives_the_single_cohort_fit() -> None:
    counts = _counts("regular")[:8]
    single = SBG().fit(counts)
    listed = SBG().fit([list(counts)])
    assert listed.params_ == single.params_
    assert listed.log_likelihood_ == single.log_likelihood_


def test_cohort_weights_act_as_repeated_cohorts() -> None:
    first = _counts("regular")[:8]
    second = _counts("high_end")[:5]
    weighted = SBG().fit([first, second], weights=[2, 1])
    repeated = SBG().fit([first, first, second])
    for name in ("alpha", "beta"):
        assert weighted.params_[name] == pytest.approx(repeated.params_[name], rel=1e-9)
    assert weighted.log_likelihood_ == pytest.approx(repeated.log_likelihood_, rel=1e-12)


def test_two_dimensional_array_is_read_as_cohorts() -> None:
    cohorts = np.vstack([_counts("regular")[:8], _counts("high_end")[:8]])
    as_array = SBG().fit(cohorts)
    as_list = SBG().fit([cohorts[0], cohorts[1]])
    assert as_array.params_ == as_list.params_


def test_fitting_several_ragged_cohorts_recovers_the_generating_parameters() -> None:
    # Five cohorts acquired in successive years from the same process, so the later ones are
    # observed for fewer periods (8, 7, 6, 5, 4), 2,000 customers each.
    truth = np.array([0.8, 2.5])
    rng = np.random.default_rng(20070101)
    cohorts = [simulate(truth, 2000, periods, rng) for periods in (8, 7, 6, 5, 4)]
    model = SBG().fit(cohorts)
    assert model.converged_
    estimate = np.array([model.params_["alpha"], model.params_["beta"]])
    se_log = np.array([model.standard_errors_["alpha"], model.standard_errors_["beta"]]) / estimate
    # 99.9% Wald interval on the log scale.
    assert np.all(np.abs(np.log(estimate) - np.log(truth)) < 3.29 * se_log)


@settings(max_examples=5, deadline=None, derandomize=True)
@given(
    alpha=st.floats(0.3, 3.0),
    beta=st.floats(0.5, 6.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_simulated_cohort_fit_recovers_parameters(alpha: float, beta: float, seed: int) -> None:
    survivors = simulate((alpha, beta), 5000, 10, seed)
    model = SBG().fit(survivors)
    estimate = np.array([model.params_["alpha"], model.params_["beta"]])
    se_log = np.array([model.standard_errors_["alpha"], model.standard_errors_["beta"]]) / estimate
    assert np.all(np.abs(np.log(estimate) - np.log([alpha, beta])) < 3.29 * se_log)


def test_simulated_survival_matches_model_survival() -> None:
    truth = (0.704, 1.182)
    survivors = simulate(truth, 200_000, 6, np.random.default_rng(7))
    expected = SBG.from_params(dict(zip(("alpha", "beta"), truth, strict=True))).survival(
        np.arange(7)
    )
    share = survivors / survivors[0]
    # Binomial standard error of a share out of 200,000 is below 0.0012; allow 4 of them.
    np.testing.assert_allclose(share, expected, atol=0.005)


# --------------------------------------------------------------------------- numerics
@pytest.mark.parametrize("theta", [(0.704, 1.182), (0.05, 30.0), (12.0, 0.3)])
def test_gradient_matches_central_finite_differences(theta: tuple[float, float]) -> None:
    cohorts = [_counts("regular")[:8], _counts("high_end")[:5]]
    t, churned, censored = sufficient_statistics(cohorts, np.array([1.0, 0.5]))
    point = np.array(theta)
    analytic = log_likelihood_gradient(point, t, churned, censored)
    numeric = np.empty(2)
    for k in range(2):
        h = 1e-6 * point[k]
        up, down = point.copy(), point.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (
            log_likelihood(up, t, churned, censored) - log_likelihood(down, t, churned, censored)
        ) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6)


@pytest.mark.parametrize("theta", [(1e-5, 1e-5), (1e-5, 1e5), (1e5, 1e-5), (1e5, 1e5)])
def test_extreme_parameters_and_inputs_give_finite_predictions(
    theta: tuple[float, float],
) -> None:
    model = SBG.from_params({"alpha": theta[0], "beta": theta[1]})
    t = np.array([0, 1, 10, 1e6, 1e9])
    survival = model.survival(t)
    assert np.all(np.isfinite(survival)) and np.all((survival >= 0) & (survival <= 1))
    for values in (model.retention_rate(t[1:]), model.churn_probability(t[1:])):
        assert np.all(np.isfinite(values)) and np.all((values >= 0) & (values <= 1))
    derl = model.derl(
        np.array([1e-9, 1e-3, 1e3, 1e-9, 1e-3, 1e3]), np.array([0, 0, 0, 1e6, 1e6, 1e6])
    )
    assert np.all(np.isfinite(derl)) and np.all(derl >= 0)
    assert np.all(np.isfinite(model.del_(np.array([1e-9, 1e3]))))
    t_stats, churned, censored = sufficient_statistics([_counts("regular")[:8]], np.ones(1))
    point = np.array(theta)
    assert np.isfinite(log_likelihood(point, t_stats, churned, censored))
    assert np.all(np.isfinite(log_likelihood_gradient(point, t_stats, churned, censored)))


def test_long_tenure_derl_stays_below_the_undiscounted_bound() -> None:
    # 2F1 terms are <= z^k, so DERL <= (1 + d)/d, whatever the parameters.
    model = SBG.from_params({"alpha": 0.1, "beta": 1e4})
    d = np.array([1e-6, 1e-4, 0.01])
    assert np.all(model.derl(d, 10_000) <= (1 + d) / d)


# --------------------------------------------------------------------------- intervals
def test_predict_interval_covers_estimate_and_stays_in_range() -> None:
    model = _fit_years_1_to_7("high_end")
    for method, args in (
        ("survival", (np.array([1, 5, 12]),)),
        ("retention_rate", (np.array([1, 12]),)),
        ("churn_probability", (np.array([1, 4]),)),
    ):
        estimate, lower, upper = model.predict_interval(method, *args)
        assert np.all((lower > 0) & (lower < estimate) & (estimate < upper) & (upper < 1))
    estimate, lower, upper = model.predict_interval("derl", 0.1, np.array([0, 3]))
    assert np.all((lower > 0) & (lower < estimate) & (estimate < upper))
    estimate, lower, upper = model.predict_interval("del_", np.array([0.1]))
    assert lower[0] < estimate[0] < upper[0]


def test_delta_method_interval_agrees_with_parameter_simulation() -> None:
    model = _fit_years_1_to_7("regular")
    _, lower, upper = model.predict_interval("derl", 0.1, 2)
    alpha, beta = model.sample_params(2000, np.random.default_rng(3)).T
    # DERL after 2 renewals (FH 2010), evaluated for all parameter draws at once.
    values = (beta + 2) / (alpha + beta + 2) * hyp2f1_discounted(beta + 3, alpha, 0.1)
    mc_lower, mc_upper = np.quantile(values, [0.025, 0.975])
    # 2,000 draws pin the 2.5% / 97.5% quantiles to about 2%; allow 5%.
    assert lower[()] == pytest.approx(mc_lower, rel=0.05)
    assert upper[()] == pytest.approx(mc_upper, rel=0.05)


def test_round_trip_through_dict_keeps_predictions() -> None:
    model = _fit_years_1_to_7("regular")
    restored = SBG.from_dict(model.to_dict())
    assert restored.derl(0.1, 3)[0] == model.derl(0.1, 3)[0]
    np.testing.assert_array_equal(restored.covariance_, model.covariance_)


# --------------------------------------------------------------------------- invalid input
@pytest.mark.parametrize(
    ("survivors", "message"),
    [
        ([1000, 800, 850], "increase at period 2"),
        ([1000, 800, -5], "must be >= 0"),
        ([0, 0, 0], "has size 0"),
        ([1000, float("nan"), 500], "non-finite"),
        ([1000], "fewer than 2"),
        ([[1000, 800, 600], [500, 600]], "cohort 1 increase"),
    ],
)
def test_malformed_survivors_raise_value_error(survivors: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SBG().fit(survivors)


@pytest.mark.parametrize(
    ("survivors", "message"),
    [
        ([1000, 600], "2 or more periods"),
        ([[1000, 600], [800, 500]], "2 or more periods"),
        ([1000, 1000, 1000], "no customer churned"),
        ([1000, 0, 0], "first period"),
    ],
)
def test_unidentifiable_data_raise_model_fit_error(survivors: object, message: str) -> None:
    with pytest.raises(ModelFitError, match=message):
        SBG().fit(survivors)


def test_bad_weights_raise() -> None:
    cohorts = [_counts("regular")[:8], _counts("high_end")[:8]]
    with pytest.raises(ValueError, match="weights has length"):
        SBG().fit(cohorts, weights=[1.0])
    with pytest.raises(ValueError, match="non-negative"):
        SBG().fit(cohorts, weights=[1.0, -1.0])


def test_invalid_prediction_inputs_raise() -> None:
    model = SBG.from_params({"alpha": 0.7, "beta": 1.2})
    with pytest.raises(ValueError, match="t must be"):
        model.survival(-1)
    with pytest.raises(ValueError, match="whole numbers >= 1"):
        model.retention_rate(0)
    with pytest.raises(ValueError, match="whole numbers"):
        model.churn_probability(1.5)
    with pytest.raises(ValueError, match="discount_rate must be > 0"):
        model.derl(0.0, 1)
    with pytest.raises(ValueError, match="renewals must be whole"):
        model.derl(0.1, 2.5)


def test_predictions_before_fit_raise_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        SBG().survival(1)
    with pytest.raises(NotFittedError):
        SBG().derl(0.1, 0)
