"""Tests for the BG/NBD model (Fader, Hardie & Lee 2005, Marketing Science 24(2), 275-284)."""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import integrate, special

from models import ModelFitError, NotFittedError
from models._nbd_common import (
    _closed_forms,
    _group_rows,
    _quadrature,
    _series,
    expected_alive_purchases,
    prepare_data,
)
from models.bgnbd import BGNBD, bgnbd_neg_log_likelihood, simulate
from tests.conftest import quiet_reference

# FHL 2005, Sec. 6 (CDNOW sample, 2357 customers, 39-week calibration period, weeks):
# r = 0.243, alpha = 4.414, a = 0.793, b = 2.426, LL = -9582.4.
FHL_PARAMS = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
FHL_LOG_LIKELIHOOD = -9582.4


def _sig3(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW calibration summary shipped with lifetimes (FHL's file): frequency, recency, T."""
    import lifetimes.datasets

    with quiet_reference():
        return lifetimes.datasets.load_cdnow_summary(index_col=[0])


@pytest.fixture(scope="module")
def columns(cdnow: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (
        cdnow["frequency"].to_numpy(float),
        cdnow["recency"].to_numpy(float),
        cdnow["T"].to_numpy(float),
    )


@pytest.fixture(scope="module")
def fitted(columns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> BGNBD:
    return BGNBD().fit(*columns)


@pytest.fixture(scope="module")
def reference(columns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    from lifetimes import BetaGeoFitter

    with quiet_reference():
        return BetaGeoFitter().fit(*columns)


def _reference_log_likelihood(ref: Any, columns: tuple[np.ndarray, ...]) -> float:
    """lifetimes' log-likelihood at its own estimates on the ORIGINAL time scale.

    lifetimes stores the mean NLL in ``_negative_log_likelihood_`` but computes it on time
    rescaled to max(T) = 10, which shifts log L by sum(x) log(scale); re-evaluating its
    likelihood function on the data in weeks and multiplying by n gives the comparable value.
    """
    x, t_x, age = columns
    log_params = np.log(ref.params_[["r", "alpha", "a", "b"]].to_numpy(float))
    with quiet_reference():
        mean_nll = ref._negative_log_likelihood(log_params, x, t_x, age, np.ones_like(x), 0.0)
    return -float(mean_nll) * float(x.shape[0])


# ------------------------------------------------------------------------ the paper
def test_cdnow_fit_reproduces_fhl_2005_estimates(fitted: BGNBD) -> None:
    # FHL 2005 report r=0.243, alpha=4.414, a=0.793, b=2.426: equal to 3 significant figures.
    for name, published in FHL_PARAMS.items():
        assert _sig3(fitted.params_[name]) == _sig3(published), name
    # FHL 2005: LL = -9582.4 (one decimal).
    assert fitted.log_likelihood_ == pytest.approx(FHL_LOG_LIKELIHOOD, abs=0.05)
    assert fitted.converged_
    assert fitted.n_obs_ == 2357


def test_conditional_expectation_matches_fhl_2005_worked_example(fitted: BGNBD) -> None:
    # FHL 2005, Sec. 6: a customer with x=2, t_x=30.43, T=38.86 (weeks) is expected to make
    # 1.226 purchases in the next 39 weeks.
    value = fitted.conditional_expected_purchases(39, 2, 30.43, 38.86)
    assert value.shape == (1,)
    assert round(float(value[0]), 3) == 1.226


def test_prob_alive_is_one_without_repeat_purchases(fitted: BGNBD) -> None:
    # BG/NBD: dropout happens only after a repeat purchase (FHL 2005, Sec. 3, assumption iii).
    assert np.all(fitted.prob_alive([0, 0, 0], [0, 0, 0], [1.0, 38.86, 1e6]) == 1.0)


# --------------------------------------------------------------- agreement with lifetimes
def test_fit_agrees_with_lifetimes_on_cdnow(
    fitted: BGNBD, reference: Any, columns: tuple[np.ndarray, ...]
) -> None:
    ref_params = reference.params_
    for name in ("r", "alpha", "a", "b"):
        assert fitted.params_[name] == pytest.approx(float(ref_params[name]), rel=1e-3), name
    # Ours is the maximum: never below lifetimes' likelihood at lifetimes' estimates.
    assert fitted.log_likelihood_ >= _reference_log_likelihood(reference, columns) - 1e-9


def test_predictions_equal_lifetimes_at_the_same_parameters(
    reference: Any, columns: tuple[np.ndarray, ...]
) -> None:
    ref = reference
    ours = BGNBD.from_params({k: float(v) for k, v in ref.params_.items()})
    x, t_x, age = columns
    with quiet_reference():
        for horizon in (1.0, 39.0, 78.0):
            expected = ref.conditional_expected_number_of_purchases_up_to_time(horizon, x, t_x, age)
            np.testing.assert_allclose(
                ours.conditional_expected_purchases(horizon, x, t_x, age), expected, rtol=1e-6
            )
        np.testing.assert_allclose(
            ours.prob_alive(x, t_x, age),
            ref.conditional_probability_alive(x, t_x, age),
            rtol=1e-6,
        )
        horizons = np.array([0.5, 1.0, 10.0, 39.0, 78.0, 200.0])
        np.testing.assert_allclose(
            ours.expected_purchases(horizons),
            ref.expected_number_of_purchases_up_to_time(horizons),
            rtol=1e-6,
        )
        for n, horizon in itertools.product((0, 1, 2, 5, 10), (1.0, 39.0, 78.0)):
            expected = ref.probability_of_n_purchases_up_to_time(horizon, n)
            assert ours.prob_purchases(n, horizon)[0] == pytest.approx(expected, rel=1e-6)


# --------------------------------------------------------------------- likelihood checks
# Away from the optimum (where the gradient is ~0 and only an absolute check makes sense).
THETAS = [
    np.array([0.3, 5.0, 0.6, 3.0]),
    np.array([1.5, 0.3, 3.0, 0.4]),
    np.array([0.01, 200.0, 0.05, 50.0]),
    np.array([20.0, 8.0, 1.0, 1.0]),
]


@pytest.mark.parametrize("theta", THETAS)
def test_gradient_equals_central_differences(
    theta: np.ndarray, columns: tuple[np.ndarray, ...]
) -> None:
    data = BGNBD().prepare(*columns)
    _, grad = bgnbd_neg_log_likelihood(theta, data)
    for j in range(4):
        h = 1e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        numeric = (
            bgnbd_neg_log_likelihood(up, data)[0] - bgnbd_neg_log_likelihood(down, data)[0]
        ) / (2 * h)
        assert grad[j] == pytest.approx(numeric, rel=1e-5), j


def test_likelihood_of_each_customer_matches_fhl_equation_6(
    columns: tuple[np.ndarray, ...],
) -> None:
    # FHL 2005 eq. (6) written out directly (no log-space tricks) for a few customers.
    x, t_x, age = (c[:50] for c in columns)
    r, alpha, a, b = THETAS[0]
    common = special.gamma(r + x) * alpha**r / special.gamma(r)
    direct = common * (
        special.beta(a, b + x) / special.beta(a, b) / (alpha + age) ** (r + x)
        + (x > 0)
        * special.beta(a + 1, np.maximum(b + x - 1, 1e-9))
        / special.beta(a, b)
        / (alpha + t_x) ** (r + x)
    )
    data = prepare_data(x, np.where(x == 0, 0.0, t_x), age, np.ones_like(x), shift=0)
    value, _ = bgnbd_neg_log_likelihood(THETAS[0], data)
    assert -value == pytest.approx(np.log(direct).sum(), rel=1e-12)


def test_compressed_and_expanded_data_give_the_same_fit(cdnow: pd.DataFrame) -> None:
    counts = cdnow.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    compressed = BGNBD().fit(counts["frequency"], counts["recency"], counts["T"], counts["n"])
    expanded = BGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert len(counts) < len(cdnow)
    for name in ("r", "alpha", "a", "b"):
        assert compressed.params_[name] == pytest.approx(expanded.params_[name], rel=1e-10)
    assert compressed.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-12)
    assert compressed.n_obs_ == expanded.n_obs_ == 2357


def test_zero_weight_rows_are_ignored(columns: tuple[np.ndarray, ...], fitted: BGNBD) -> None:
    x, t_x, age = columns
    # A junk row with weight 0 must change nothing.
    model = BGNBD().fit(
        np.append(x, 50), np.append(t_x, 1.0), np.append(age, 2.0), np.append(np.ones_like(x), 0)
    )
    assert model.params_["r"] == pytest.approx(fitted.params_["r"], rel=1e-10)


def test_row_grouping_falls_back_to_shared_compression_for_huge_codes() -> None:
    # Codes whose combined integer key would overflow int64 go through models._compress;
    # both paths must merge the same rows: (0, 0, 1.0) twice and two singletons.
    t_x = np.array([1.0, 1.0, 2.0, 1.0])
    weights = np.array([1.0, 2.0, 1.0, 1.0])
    for scale in (1, 2**40):
        ix = np.array([0, 0, 1, 1]) * scale
        iage = np.array([0, 0, 0, 1]) * scale
        row_ix, row_iage, row_it, ut, w = _group_rows(ix, iage, t_x, weights)
        rows = sorted(
            zip(row_ix.tolist(), row_iage.tolist(), ut[row_it].tolist(), w.tolist(), strict=True)
        )
        assert rows == [(0, 0, 1.0, 3.0), (scale, 0, 2.0, 1.0), (scale, scale, 1.0, 1.0)]


# ------------------------------------------------------------------- invalid inputs
@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, 2], [5.0, 3.0], [4.0, 10.0], "recency exceeds T"),
        ([-1, 2], [0.0, 3.0], [4.0, 10.0], "frequency must be >= 0"),
        ([1.5, 2], [1.0, 3.0], [4.0, 10.0], "whole number"),
        ([1, 2], [-1.0, 3.0], [4.0, 10.0], "recency must be >= 0"),
        ([1, 2], [1.0, np.nan], [4.0, 10.0], "non-finite"),
        ([0, 0, 0], [0.0, 0.0, 0.0], [4.0, 10.0, 3.0], "no customer made a repeat purchase"),
        ([1], [1.0], [4.0], "at least two customers"),
        ([1, 2], [0.0, 0.0], [0.0, 0.0], "T = 0"),
    ],
)
def test_invalid_data_is_rejected_with_a_message_naming_the_problem(
    frequency: list[float], recency: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BGNBD().fit(frequency, recency, T)


def test_unidentifiable_data_raises_model_fit_error() -> None:
    with pytest.raises(ModelFitError, match="repeat purchase"):
        BGNBD().fit([0, 0], [0.0, 0.0], [5.0, 6.0])


def test_predictions_before_fit_raise_not_fitted() -> None:
    model = BGNBD()
    with pytest.raises(NotFittedError):
        model.prob_alive([1], [1.0], [2.0])
    with pytest.raises(NotFittedError):
        model.conditional_expected_purchases(1.0, [1], [1.0], [2.0])
    with pytest.raises(NotFittedError):
        model.expected_purchases(1.0)
    with pytest.raises(NotFittedError):
        model.prob_purchases(0, 1.0)


def test_prediction_inputs_are_validated(fitted: BGNBD) -> None:
    with pytest.raises(ValueError, match="recency exceeds T"):
        fitted.prob_alive([1], [3.0], [2.0])
    with pytest.raises(ValueError, match="t must be >= 0"):
        fitted.conditional_expected_purchases(-1.0, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match="n must be whole"):
        fitted.prob_purchases(0.5, 1.0)
    with pytest.raises(ValueError, match="incompatible lengths"):
        fitted.conditional_expected_purchases([1.0, 2.0, 3.0], [1, 2], [1.0, 1.0], [2.0, 2.0])


# ----------------------------------------------------------------------- extremes
EXTREME_VALUES = (1e-4, 1.0, 1e4)


@pytest.mark.parametrize("theta", list(itertools.product(EXTREME_VALUES, repeat=4)))
def test_extreme_parameters_and_inputs_give_finite_outputs(theta: tuple[float, ...]) -> None:
    model = BGNBD.from_params(dict(zip(("r", "alpha", "a", "b"), theta, strict=True)))
    x = np.array([0, 1, 1, 10, 1e4, 1e4, 1e4, 3])
    age = np.array([0.0, 1e-3, 1e6, 1e6, 1e6, 1e6, 1.0, 52.0])
    t_x = np.array([0.0, 0.0, 1e6, 1.0, 0.0, 1e6, 0.5, 52.0])
    for horizon in (0.0, 1.0, 1e6):
        expected = model.conditional_expected_purchases(horizon, x, t_x, age)
        assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    alive = model.prob_alive(x, t_x, age)
    assert np.all((alive >= 0) & (alive <= 1))
    population = model.expected_purchases([0.0, 1.0, 1e6])
    assert np.all(np.isfinite(population)) and np.all(population >= 0)
    pmf = model.prob_purchases([0, 1, 100, 10_000], 1e6)
    assert np.all((pmf >= 0) & (pmf <= 1))
    data = prepare_data(x, t_x, age, np.ones_like(x), shift=0)
    value, grad = bgnbd_neg_log_likelihood(np.array(theta), data)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


# --------------------------------------------- expected purchases of an alive customer
def _beta_integral(a: float, B: float, s: float, u: float) -> float:
    """E[(1 - (1 + p u)^-s) / p], p ~ beta(a, B), by adaptive quadrature (QUADPACK QAWS)."""

    def g(p: float) -> float:
        return float(-np.expm1(-s * np.log1p(p * u)) / p) if p > 0 else s * u

    value, _ = integrate.quad(g, 0, 1, weight="alg", wvar=(a - 1, B - 1), epsrel=1e-12, limit=500)
    return float(value * np.exp(-special.betaln(a, B)))


@pytest.mark.parametrize(
    ("a", "B", "s", "u"),
    [
        (0.793, 2.426, 0.243, 39 / 4.414),  # FHL 2005 CDNOW parameters, a new customer, 39 weeks
        (0.793, 4.426, 2.243, 39 / 43.274),  # the worked example: x=2, T=38.86
        (2.5, 1.2, 5.0, 3.0),
        (0.3, 40.0, 30.0, 0.2),
        (5.0, 0.7, 0.5, 50.0),
    ],
)
def test_alive_expectation_methods_agree_with_independent_quadrature(
    a: float, B: float, s: float, u: float
) -> None:
    reference = _beta_integral(a, B, s, u)
    arr = (np.array([B]), np.array([s]), np.array([u]))
    assert _quadrature(np.array([a]), *arr)[0] == pytest.approx(reference, rel=1e-9)
    assert expected_alive_purchases(a, *arr)[0] == pytest.approx(reference, rel=1e-9)
    if u <= 0.5 and s * u <= 0.5:
        assert _series(a, *arr)[0] == pytest.approx(reference, rel=1e-9)
    else:
        assert _closed_forms(a, *arr)[0] == pytest.approx(reference, rel=1e-9)


def test_alive_expectation_of_repeated_histories_is_evaluated_once_and_spread_back() -> None:
    # 3000 customers drawn from 7 distinct (B, s, u) triples: same values as one by one.
    rng = np.random.default_rng(3)
    B, s, u = np.array([2.4, 3.4, 12.4, 2.4, 3.4, 50.0, 1.2]), np.arange(1.0, 8.0), np.full(7, 0.9)
    pick = rng.integers(0, 7, size=3000)
    many = expected_alive_purchases(0.79, B[pick], s[pick], u[pick])
    one_by_one = np.array([expected_alive_purchases(0.79, B[i], s[i], u[i])[0] for i in range(7)])
    np.testing.assert_array_equal(many, one_by_one[pick])


def test_alive_expectation_is_continuous_through_the_singularity_at_a_equal_one() -> None:
    # The closed form divides by a - 1 (FHL 2005 eq. 10); the limit a -> 1 is finite.
    B, s, u = np.array([2.4, 10.0]), np.array([0.3, 3.0]), np.array([1.0, 20.0])
    at_one = expected_alive_purchases(1.0, B, s, u)
    np.testing.assert_allclose(at_one, _quadrature(np.ones(2), B, s, u), rtol=1e-8)
    np.testing.assert_allclose(expected_alive_purchases(1.0 + 1e-3, B, s, u), at_one, rtol=1e-2)


def test_alive_expectation_falls_back_where_hyp2f1_overflows() -> None:
    # Large x and a horizon far beyond T: scipy's hyp2f1 overflows in both closed forms, and
    # the expectation tends to E[1/p] = (a + B - 1) / (a - 1) for a > 1.
    a, B, s, u = 10.0, np.array([100.0]), np.array([100.0]), np.array([1e6])
    assert not np.isfinite(_closed_forms(a, B, s, u)[0])
    assert expected_alive_purchases(a, B, s, u)[0] == pytest.approx(109 / 9, rel=1e-6)


# ------------------------------------------------------------- internal consistency
def test_purchase_distribution_sums_to_one_and_has_the_expected_mean(fitted: BGNBD) -> None:
    # eq. (8) summed over n is 1 and its mean is eq. (9).
    n = np.arange(0, 400)
    for horizon in (1.0, 39.0, 78.0):
        pmf = fitted.prob_purchases(n, horizon)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * pmf).sum() == pytest.approx(fitted.expected_purchases(horizon)[0], rel=1e-7)


def test_new_customer_conditional_expectation_is_the_population_mean(fitted: BGNBD) -> None:
    # A customer with x = 0 and T = 0 is a brand-new customer: eq. (10) reduces to eq. (9).
    for horizon in (1.0, 39.0, 500.0):
        assert fitted.conditional_expected_purchases(horizon, 0, 0.0, 0.0)[0] == pytest.approx(
            fitted.expected_purchases(horizon)[0], rel=1e-12
        )


def test_simulation_reproduces_model_moments() -> None:
    # Simulated counts over T = 52 vs the model's mean (eq. 9) and P(X = 0) (eq. 8).
    model = BGNBD.from_params(FHL_PARAMS)
    x, t_x = simulate(FHL_PARAMS, np.full(20_000, 52.0), np.random.default_rng(11))
    assert np.all((t_x >= 0) & (t_x <= 52.0)) and np.all(t_x[x == 0] == 0)
    mean = model.expected_purchases(52.0)[0]
    assert abs(x.mean() - mean) < 4 * x.std() / np.sqrt(x.shape[0])
    p0 = model.prob_purchases(0, 52.0)[0]
    assert abs((x == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / x.shape[0])


def test_simulation_handles_customers_who_almost_never_drop_out() -> None:
    # a = 0.01, b = 1000: dropout probabilities underflow towards 0; no warning, no NaN, and
    # recency never exceeds T.
    params = {"r": 1.0, "alpha": 5.0, "a": 0.01, "b": 1000.0}
    age = np.linspace(0.0, 100.0, 5000)
    x, t_x = simulate(params, age, np.random.default_rng(5))
    assert np.all(np.isfinite(x)) and np.all((t_x >= 0) & (t_x <= age))
    assert x.mean() == pytest.approx(
        BGNBD.from_params(params).expected_purchases(age).mean(), rel=0.05
    )


def test_simulate_rejects_bad_parameters_and_ages() -> None:
    with pytest.raises(ValueError, match="missing"):
        simulate({"r": 1.0, "alpha": 1.0, "a": 1.0}, [1.0], 0)
    with pytest.raises(ValueError, match="> 0"):
        simulate({"r": 1.0, "alpha": -1.0, "a": 1.0, "b": 1.0}, [1.0], 0)
    with pytest.raises(ValueError, match="T must be >= 0"):
        simulate(FHL_PARAMS, [-1.0], 0)


def test_serialisation_round_trip_keeps_predictions(fitted: BGNBD) -> None:
    restored = BGNBD.from_dict(fitted.to_dict())
    np.testing.assert_array_equal(
        restored.conditional_expected_purchases(39, [0, 2, 5], [0, 30.43, 20], [38.86] * 3),
        fitted.conditional_expected_purchases(39, [0, 2, 5], [0, 30.43, 20], [38.86] * 3),
    )


def test_delta_method_intervals_stay_in_range_and_bracket_the_estimate(fitted: BGNBD) -> None:
    x, t_x, age = np.array([1, 2, 10]), np.array([2.0, 30.43, 38.0]), np.array([38.86] * 3)
    est, low, high = fitted.predict_interval("prob_alive", x, t_x, age)
    assert np.all((low > 0) & (low < est) & (est < high) & (high < 1))
    est, low, high = fitted.predict_interval("conditional_expected_purchases", 39.0, x, t_x, age)
    assert np.all((low > 0) & (low < est) & (est < high))


# ------------------------------------------------------------------ simulation studies
@settings(max_examples=5, deadline=None, derandomize=True)
@given(
    r=st.floats(0.2, 2.0),
    alpha=st.floats(2.0, 20.0),
    a=st.floats(0.4, 2.0),
    b=st.floats(1.0, 6.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_fit_recovers_simulated_parameters_within_their_99_9_percent_intervals(
    r: float, alpha: float, a: float, b: float, seed: int
) -> None:
    truth = {"r": r, "alpha": alpha, "a": a, "b": b}
    rng = np.random.default_rng(seed)
    age = rng.uniform(20.0, 80.0, size=4000)
    x, t_x = simulate(truth, age, rng)
    model = BGNBD().fit(x, t_x, age)
    assert model.converged_, model.convergence_message_
    for name, value in truth.items():
        # Wald z-score on the log scale; |z| < 3.29 is the two-sided 99.9% interval.
        se_log = model.standard_errors_[name] / model.params_[name]
        z = (np.log(model.params_[name]) - np.log(value)) / se_log
        assert abs(z) < 3.29, (name, model.params_, truth)


@pytest.mark.slow
def test_wald_and_delta_method_intervals_cover_the_truth() -> None:
    # 30 simulated cohorts of 2000 customers at the FHL CDNOW parameters: 95% intervals for
    # each parameter and for E[X(52)] should cover the truth in 80-100% of the cohorts.
    truth = FHL_PARAMS
    true_mean = BGNBD.from_params(truth).expected_purchases(52.0)[0]
    rng = np.random.default_rng(2005)
    covered = {name: 0 for name in (*truth, "expected_purchases")}
    runs = 30
    for _ in range(runs):
        age = rng.uniform(26.0, 78.0, size=2000)
        x, t_x = simulate(truth, age, rng)
        model = BGNBD().fit(x, t_x, age)
        for name, row in model.summary()["params"].items():
            covered[name] += row["lower_95"] <= truth[name] <= row["upper_95"]
        _, low, high = model.predict_interval("expected_purchases", 52.0)
        covered["expected_purchases"] += bool(low[0] <= true_mean <= high[0])
    for name, hits in covered.items():
        assert 0.8 <= hits / runs <= 1.0, (name, hits)
