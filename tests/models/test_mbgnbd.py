"""Tests for the MBG/NBD model (Batislam, Denizel & Filiztekin 2007; Wagner & Hoppe 2008).

Batislam et al. fitted MBG/NBD to a Turkish grocery panel that is not public, so their table
cannot be reproduced. We found no peer-reviewed MBG/NBD fit on the CDNOW sample; the closest
published figures are the CDNOW estimates of the R package BTYDplus (M. Platzer,
https://github.com/mplatzer/BTYDplus) that lifetimes' own test suite quotes in
``test_params_out_is_close_to_BTYDplus``: r = 0.525, alpha = 6.183, a = 0.891, b = 1.614
(three decimals). We test against those and, more tightly, against lifetimes'
ModifiedBetaGeoFitter.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

from models import NotFittedError
from models._nbd_common import prepare_data
from models.bgnbd import BGNBD, bgnbd_neg_log_likelihood
from models.mbgnbd import MBGNBD, mbgnbd_neg_log_likelihood, simulate
from tests.conftest import quiet_reference

# BTYDplus MBG/NBD estimates on CDNOW (weeks), as quoted by lifetimes' test suite.
BTYDPLUS_PARAMS = {"r": 0.525, "alpha": 6.183, "a": 0.891, "b": 1.614}


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW calibration summary shipped with lifetimes: 2357 customers, weeks."""
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
def fitted(columns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> MBGNBD:
    return MBGNBD().fit(*columns)


@pytest.fixture(scope="module")
def reference(columns: tuple[np.ndarray, np.ndarray, np.ndarray]) -> Any:
    from lifetimes import ModifiedBetaGeoFitter

    with quiet_reference():
        return ModifiedBetaGeoFitter().fit(*columns)


# ------------------------------------------------------------------ published values
def test_cdnow_fit_matches_the_btydplus_estimates(fitted: MBGNBD) -> None:
    # BTYDplus via lifetimes' test suite: r=0.525, alpha=6.183, a=0.891, b=1.614.
    for name, published in BTYDPLUS_PARAMS.items():
        assert round(fitted.params_[name], 3) == published, name
    assert fitted.converged_
    assert fitted.n_obs_ == 2357


def test_prob_alive_matches_hand_computation(fitted: MBGNBD) -> None:
    # BDF 2007 P(alive) = 1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x)) at the BTYDplus
    # parameters, worked by hand:
    #   x=0, T=38.86: a/b = 0.55204, ((6.183+38.86)/6.183)^0.525 = 7.28497^0.525 = 2.83645
    #                 -> 1 / (1 + 0.55204 * 2.83645) = 0.389735
    #   x=2, t_x=30.43, T=38.86: a/(b+2) = 0.246541, (45.043/36.613)^2.525 = 1.687446
    #                 -> 1 / (1 + 0.246541 * 1.687446) = 0.706202
    model = MBGNBD.from_params(BTYDPLUS_PARAMS)
    alive = model.prob_alive([0, 2], [0.0, 30.43], [38.86, 38.86])
    np.testing.assert_allclose(alive, [0.389735, 0.706202], atol=1e-6)
    # Unlike BG/NBD, a customer without repeat purchases may be gone.
    assert fitted.prob_alive(0, 0.0, 38.86)[0] < 1.0


# --------------------------------------------------------------- agreement with lifetimes
def test_fit_agrees_with_lifetimes_on_cdnow(
    fitted: MBGNBD, reference: Any, columns: tuple[np.ndarray, ...]
) -> None:
    ref_params = reference.params_
    for name in ("r", "alpha", "a", "b"):
        assert fitted.params_[name] == pytest.approx(float(ref_params[name]), rel=1e-3), name
    # lifetimes' mean NLL is on time rescaled to max(T) = 10; re-evaluate it in weeks, x n.
    x, t_x, age = columns
    log_params = np.log(ref_params[["r", "alpha", "a", "b"]].to_numpy(float))
    with quiet_reference():
        mean_nll = reference._negative_log_likelihood(log_params, x, t_x, age, np.ones_like(x), 0.0)
    assert fitted.log_likelihood_ >= -float(mean_nll) * x.shape[0] - 1e-9


def test_predictions_equal_lifetimes_at_the_same_parameters(
    reference: Any, columns: tuple[np.ndarray, ...]
) -> None:
    ref = reference
    ours = MBGNBD.from_params({k: float(v) for k, v in ref.params_.items()})
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
THETAS = [
    np.array([0.6, 5.0, 1.2, 1.3]),
    np.array([1.5, 0.3, 3.0, 0.4]),
    np.array([0.01, 200.0, 0.05, 50.0]),
    np.array([20.0, 8.0, 1.0, 1.0]),
]


@pytest.mark.parametrize("theta", THETAS)
def test_gradient_equals_central_differences(
    theta: np.ndarray, columns: tuple[np.ndarray, ...]
) -> None:
    data = MBGNBD().prepare(*columns)
    _, grad = mbgnbd_neg_log_likelihood(theta, data)
    for j in range(4):
        h = 1e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        numeric = (
            mbgnbd_neg_log_likelihood(up, data)[0] - mbgnbd_neg_log_likelihood(down, data)[0]
        ) / (2 * h)
        assert grad[j] == pytest.approx(numeric, rel=1e-5), j


def test_likelihood_has_the_dropout_term_for_customers_without_repeat_purchases(
    columns: tuple[np.ndarray, ...],
) -> None:
    # BDF 2007 likelihood written out directly: the second term is there for x = 0 too.
    x, t_x, age = (c[:50] for c in columns)
    assert (x == 0).any()
    r, alpha, a, b = THETAS[0]
    direct = (
        special.gamma(r + x)
        * alpha**r
        / special.gamma(r)
        * (
            special.beta(a, b + x + 1) / special.beta(a, b) / (alpha + age) ** (r + x)
            + special.beta(a + 1, b + x) / special.beta(a, b) / (alpha + t_x) ** (r + x)
        )
    )
    data = prepare_data(x, np.where(x == 0, 0.0, t_x), age, np.ones_like(x), shift=1)
    value, _ = mbgnbd_neg_log_likelihood(THETAS[0], data)
    assert -value == pytest.approx(np.log(direct).sum(), rel=1e-12)


def test_likelihood_functions_refuse_data_prepared_for_the_other_model(
    columns: tuple[np.ndarray, ...],
) -> None:
    with pytest.raises(ValueError, match="shift=1"):
        mbgnbd_neg_log_likelihood(THETAS[0], BGNBD().prepare(*columns))
    with pytest.raises(ValueError, match="shift=0"):
        bgnbd_neg_log_likelihood(THETAS[0], MBGNBD().prepare(*columns))


def test_compressed_and_expanded_data_give_the_same_fit(cdnow: pd.DataFrame) -> None:
    counts = cdnow.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    compressed = MBGNBD().fit(counts["frequency"], counts["recency"], counts["T"], counts["n"])
    expanded = MBGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    for name in ("r", "alpha", "a", "b"):
        assert compressed.params_[name] == pytest.approx(expanded.params_[name], rel=1e-10)
    assert compressed.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-12)


def test_recency_of_customers_without_repeat_purchases_is_treated_as_zero(
    columns: tuple[np.ndarray, ...], fitted: MBGNBD
) -> None:
    # By definition t_x = 0 when x = 0; exports that store another value must not matter.
    x, t_x, age = columns
    noisy = np.where(x == 0, 0.5 * age, t_x)
    assert MBGNBD().fit(x, noisy, age).params_["r"] == pytest.approx(fitted.params_["r"], rel=1e-10)
    assert fitted.prob_alive(0, 5.0, 38.86)[0] == fitted.prob_alive(0, 0.0, 38.86)[0]


# ------------------------------------------------------------------- invalid inputs
@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([1, 2], [5.0, 3.0], [4.0, 10.0], "recency exceeds T"),
        ([-1, 2], [0.0, 3.0], [4.0, 10.0], "frequency must be >= 0"),
        ([1, 2], [1.0, np.inf], [4.0, 10.0], "non-finite"),
        ([0, 0, 0], [0.0, 0.0, 0.0], [4.0, 10.0, 3.0], "no customer made a repeat purchase"),
        ([1], [1.0], [4.0], "at least two customers"),
        ([1, 2], [0.0, 0.0], [0.0, 0.0], "T = 0"),
    ],
)
def test_invalid_data_is_rejected_with_a_message_naming_the_problem(
    frequency: list[float], recency: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        MBGNBD().fit(frequency, recency, T)


def test_predictions_before_fit_raise_not_fitted() -> None:
    model = MBGNBD()
    with pytest.raises(NotFittedError):
        model.prob_alive([1], [1.0], [2.0])
    with pytest.raises(NotFittedError):
        model.conditional_expected_purchases(1.0, [1], [1.0], [2.0])
    with pytest.raises(NotFittedError):
        model.expected_purchases(1.0)
    with pytest.raises(NotFittedError):
        model.prob_purchases(0, 1.0)


# ----------------------------------------------------------------------- extremes
EXTREME_VALUES = (1e-4, 1.0, 1e4)


@pytest.mark.parametrize("theta", list(itertools.product(EXTREME_VALUES, repeat=4)))
def test_extreme_parameters_and_inputs_give_finite_outputs(theta: tuple[float, ...]) -> None:
    model = MBGNBD.from_params(dict(zip(("r", "alpha", "a", "b"), theta, strict=True)))
    x = np.array([0, 0, 1, 10, 1e4, 1e4, 1e4, 3])
    age = np.array([0.0, 1e6, 1e6, 1e6, 1e6, 1e6, 1.0, 52.0])
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
    data = prepare_data(x, t_x, age, np.ones_like(x), shift=1)
    value, grad = mbgnbd_neg_log_likelihood(np.array(theta), data)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


# ------------------------------------------------------------- internal consistency
def test_purchase_distribution_sums_to_one_and_has_the_expected_mean(fitted: MBGNBD) -> None:
    n = np.arange(0, 400)
    for horizon in (1.0, 39.0, 78.0):
        pmf = fitted.prob_purchases(n, horizon)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * pmf).sum() == pytest.approx(fitted.expected_purchases(horizon)[0], rel=1e-7)
    # At t = 0 nobody has bought yet, whether dropped at the first flip or not.
    assert fitted.prob_purchases(0, 0.0)[0] == pytest.approx(1.0, abs=1e-15)


def test_new_customer_expectation_discounts_the_first_dropout_flip(fitted: MBGNBD) -> None:
    # A brand-new customer (x = 0, T = 0) is alive with probability b / (a + b) (the first
    # flip), and the conditional expectation then equals the population mean E[X(t)].
    p = fitted.params_
    assert fitted.prob_alive(0, 0.0, 0.0)[0] == pytest.approx(p["b"] / (p["a"] + p["b"]), rel=1e-12)
    for horizon in (1.0, 39.0, 500.0):
        assert fitted.conditional_expected_purchases(horizon, 0, 0.0, 0.0)[0] == pytest.approx(
            fitted.expected_purchases(horizon)[0], rel=1e-12
        )


def test_simulation_reproduces_model_moments() -> None:
    model = MBGNBD.from_params(BTYDPLUS_PARAMS)
    x, t_x = simulate(BTYDPLUS_PARAMS, np.full(20_000, 52.0), np.random.default_rng(12))
    assert np.all((t_x >= 0) & (t_x <= 52.0)) and np.all(t_x[x == 0] == 0)
    mean = model.expected_purchases(52.0)[0]
    assert abs(x.mean() - mean) < 4 * x.std() / np.sqrt(x.shape[0])
    p0 = model.prob_purchases(0, 52.0)[0]
    assert abs((x == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / x.shape[0])


def test_mbgnbd_has_more_zero_buyers_than_bgnbd_at_equal_parameters() -> None:
    # The extra flip after the first purchase only removes purchases (BDF 2007, Sec. 2).
    params = BTYDPLUS_PARAMS
    mbg, bg = MBGNBD.from_params(params), BGNBD.from_params(params)
    assert mbg.prob_purchases(0, 52.0)[0] > bg.prob_purchases(0, 52.0)[0]
    assert mbg.expected_purchases(52.0)[0] < bg.expected_purchases(52.0)[0]


def test_delta_method_intervals_stay_in_range_and_bracket_the_estimate(fitted: MBGNBD) -> None:
    x, t_x, age = np.array([0, 2, 10]), np.array([0.0, 30.43, 38.0]), np.array([38.86] * 3)
    est, low, high = fitted.predict_interval("prob_alive", x, t_x, age)
    assert np.all((low > 0) & (low < est) & (est < high) & (high < 1))


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
    model = MBGNBD().fit(x, t_x, age)
    assert model.converged_, model.convergence_message_
    for name, value in truth.items():
        # Wald z-score on the log scale; |z| < 3.29 is the two-sided 99.9% interval.
        se_log = model.standard_errors_[name] / model.params_[name]
        z = (np.log(model.params_[name]) - np.log(value)) / se_log
        assert abs(z) < 3.29, (name, model.params_, truth)


@pytest.mark.slow
def test_wald_and_delta_method_intervals_cover_the_truth() -> None:
    # 30 simulated cohorts of 2000 customers at the BTYDplus CDNOW parameters: 95% intervals
    # for each parameter and for P(alive) of a fixed history cover the truth 80-100% of times.
    truth = BTYDPLUS_PARAMS
    history = (np.array([2]), np.array([30.43]), np.array([38.86]))
    true_alive = MBGNBD.from_params(truth).prob_alive(*history)[0]
    rng = np.random.default_rng(2007)
    covered = {name: 0 for name in (*truth, "prob_alive")}
    runs = 30
    for _ in range(runs):
        age = rng.uniform(26.0, 78.0, size=2000)
        x, t_x = simulate(truth, age, rng)
        model = MBGNBD().fit(x, t_x, age)
        for name, row in model.summary()["params"].items():
            covered[name] += row["lower_95"] <= truth[name] <= row["upper_95"]
        _, low, high = model.predict_interval("prob_alive", *history)
        covered["prob_alive"] += bool(low[0] <= true_alive <= high[0])
    for name, hits in covered.items():
        assert 0.8 <= hits / runs <= 1.0, (name, hits)
