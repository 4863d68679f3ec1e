"""Tests for the BG/BB model (Fader, Hardie & Shang 2010)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import special

import models.bgbb as bgbb_module
from models import ModelFitError, NotFittedError
from models.bgbb import BGBB, individual_log_likelihood, log_likelihood_and_gradient, simulate
from tests.conftest import quiet_reference

# Fader, Hardie & Shang (2010), empirical analysis: the 1995 donor cohort (11,104 people,
# 6 opportunities), fitted parameters and log-likelihood as published.
PUBLISHED = {"alpha": 1.204, "beta": 0.750, "gamma": 0.657, "delta": 2.783}
PUBLISHED_LL = -33225.6


@pytest.fixture(scope="module")
def donations() -> pd.DataFrame:
    with quiet_reference():
        import lifetimes.datasets

        return lifetimes.datasets.load_donations()


@pytest.fixture(scope="module")
def fitted(donations: pd.DataFrame) -> BGBB:
    return BGBB().fit(
        donations["frequency"], donations["recency"], donations["periods"], donations["weights"]
    )


def _sig(value: float, digits: int = 3) -> float:
    return float(f"{value:.{digits}g}")


def _theta(params: dict[str, float]) -> np.ndarray:
    return np.array([params[k] for k in ("alpha", "beta", "gamma", "delta")])


def _total_loglik(theta: np.ndarray, data: pd.DataFrame) -> float:
    loglik = individual_log_likelihood(
        theta,
        data["frequency"].to_numpy(float),
        data["recency"].to_numpy(float),
        data["periods"].to_numpy(float),
    )
    return float(np.dot(data["weights"].to_numpy(float), loglik))


# --------------------------------------------------------------------------- published results
def test_donations_fit_reproduces_published_estimates(fitted: BGBB) -> None:
    assert fitted.converged_
    for name, value in PUBLISHED.items():
        assert _sig(fitted.params_[name]) == _sig(value), name
    assert round(fitted.log_likelihood_, 1) == PUBLISHED_LL
    assert fitted.n_obs_ == 11104


def test_donations_fit_agrees_with_lifetimes(fitted: BGBB, donations: pd.DataFrame) -> None:
    with quiet_reference():
        from lifetimes import BetaGeoBetaBinomFitter

        reference = BetaGeoBetaBinomFitter().fit(
            donations["frequency"],
            donations["recency"],
            donations["periods"],
            donations["weights"],
        )
    theirs = reference.params_.to_dict()
    for name in PUBLISHED:
        assert fitted.params_[name] == pytest.approx(theirs[name], rel=1e-3)
    # Same likelihood, evaluated by us at both optima: ours is at least as high (we measure
    # +1.5e-11; the 1e-8 slack only absorbs rounding in a sum of magnitude 33,000).
    assert fitted.log_likelihood_ >= _total_loglik(_theta(theirs), donations) - 1e-8
    # lifetimes stores the weighted MEAN negative log-likelihood (and adds 1e-15 inside a log).
    their_total = -reference._negative_log_likelihood_ * donations["weights"].sum()
    assert fitted.log_likelihood_ == pytest.approx(their_total, rel=1e-9)


def test_predictions_agree_with_lifetimes_formulas(fitted: BGBB, donations: pd.DataFrame) -> None:
    x, t_x, n = (donations[c] for c in ("frequency", "recency", "periods"))
    with quiet_reference():
        from lifetimes import BetaGeoBetaBinomFitter

        reference = BetaGeoBetaBinomFitter()
        reference.params_ = pd.Series(fitted.params_)
        reference.data = donations.rename(columns={"periods": "n_periods"})
        # lifetimes' m = 1 is P(alive at n + 1), the quantity of FHS 2010 eq. (11).
        their_alive = reference.conditional_probability_alive(1, x, t_x, n).to_numpy()
        their_expected = reference.conditional_expected_number_of_purchases_up_to_time(
            5, x, t_x, n
        ).to_numpy()
        their_pmf = reference.expected_number_of_transactions_in_first_n_periods(6)
    np.testing.assert_allclose(fitted.prob_alive(x, t_x, n), their_alive, rtol=1e-10)
    np.testing.assert_allclose(
        fitted.conditional_expected_purchases(5, x, t_x, n), their_expected, rtol=1e-8
    )
    # lifetimes returns P(X(6) = x) times the number of donors, per observed x.
    pmf = fitted.prob_purchases(their_pmf.index.to_numpy(), 6) * donations["weights"].sum()
    np.testing.assert_allclose(pmf, their_pmf["model"].to_numpy(), rtol=1e-10)


# --------------------------------------------------------------------------- model identities
@pytest.mark.parametrize(
    "params",
    [
        PUBLISHED,
        {"alpha": 0.3, "beta": 4.0, "gamma": 1.0, "delta": 0.8},  # gamma = 1: eq. (9)'s 0/0
        {"alpha": 2.0, "beta": 1.0, "gamma": 1.0 + 3e-6, "delta": 5.0},
        {"alpha": 5.0, "beta": 0.2, "gamma": 3.0, "delta": 20.0},
    ],
)
@pytest.mark.parametrize("n", [1, 6, 25])
def test_purchase_distribution_sums_to_one_with_mean_equal_to_expectation(
    params: dict[str, float], n: int
) -> None:
    # sum_x P(X(n)=x) = 1 (eq. 8) and sum_x x P(X(n)=x) = E[X(n)] (eq. 9).
    model = BGBB.from_params(params)
    x = np.arange(n + 1)
    pmf = model.prob_purchases(x, n)
    assert pmf.sum() == pytest.approx(1.0, rel=1e-12)
    assert np.dot(x, pmf) == pytest.approx(model.expected_purchases(n)[0], rel=1e-9)
    assert model.prob_purchases(n + 1, n)[0] == 0.0


@pytest.mark.parametrize("gamma", [1.0 - 2e-5, 1.0 - 5e-6, 1.0, 1.0 + 5e-6, 1.0 + 2e-5])
def test_expected_purchases_is_continuous_through_gamma_equal_one(gamma: float) -> None:
    # E[X(n)] = alpha/(alpha+beta) * sum_{t=1}^n B(gamma, delta+t)/B(gamma, delta) (FHS 2010,
    # derivation of eq. 9), summed directly here for n = 50.
    alpha, beta, delta = 1.2, 0.75, 2.8
    t = np.arange(1, 51)
    direct = (
        alpha
        / (alpha + beta)
        * np.sum(np.exp(special.betaln(gamma, delta + t) - special.betaln(gamma, delta)))
    )
    model = BGBB.from_params({"alpha": alpha, "beta": beta, "gamma": gamma, "delta": delta})
    assert model.expected_purchases(50)[0] == pytest.approx(direct, rel=1e-9)


def _all_histories(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (x, t_x) for n opportunities and the number of purchase strings giving each."""
    xs, txs, counts = [0], [0], [1.0]
    for t_x in range(1, n + 1):
        for x in range(1, t_x + 1):
            xs.append(x)
            txs.append(t_x)
            counts.append(special.comb(t_x - 1, x - 1))  # the last purchase is at t_x
    return np.array(xs, float), np.array(txs, float), np.array(counts)


@pytest.mark.parametrize("n", [1, 4])
def test_conditional_predictions_average_back_to_unconditional_ones(n: int) -> None:
    # Law of total expectation over all histories (x, t_x) after n opportunities, where
    # P(history) = (number of purchase strings) * L(x, t_x, n) (eq. 5):
    #   sum P(h) = 1,  sum P(h) E[X(n, n+m) | h] = E[X(n+m)] - E[X(n)] (eqs. 13 and 9),
    #   sum P(h) P(alive at n+1 | h) = B(gamma, delta+n+1)/B(gamma, delta) (eq. 11).
    model = BGBB.from_params(PUBLISHED)
    x, t_x, counts = _all_histories(n)
    n_arr = np.full_like(x, n)
    loglik = individual_log_likelihood(_theta(PUBLISHED), x, t_x, n_arr)
    prob = counts * np.exp(loglik)
    assert prob.sum() == pytest.approx(1.0, rel=1e-12)
    m = 7
    conditional = model.conditional_expected_purchases(m, x, t_x, n_arr)
    unconditional = model.expected_purchases(n + m)[0] - model.expected_purchases(n)[0]
    assert np.dot(prob, conditional) == pytest.approx(unconditional, rel=1e-10)
    g, d = PUBLISHED["gamma"], PUBLISHED["delta"]
    alive = np.exp(special.betaln(g, d + n + 1) - special.betaln(g, d))
    assert np.dot(prob, model.prob_alive(x, t_x, n_arr)) == pytest.approx(alive, rel=1e-10)


@pytest.mark.parametrize("discount_rate", [0.5, 0.1, 0.01])
def test_dert_equals_discounted_sum_of_expected_transactions(discount_rate: float) -> None:
    # DERT (eq. 14) = sum_k (1+d)^-k (E[X(n, n+k)] - E[X(n, n+k-1)]), with E from eq. (13).
    model = BGBB.from_params(PUBLISHED)
    x, t_x, n = np.array([0.0, 2.0, 6.0]), np.array([0.0, 3.0, 6.0]), np.array([6.0, 6.0, 6.0])
    horizon = np.arange(0, int(60 / np.log1p(discount_rate)) + 1, dtype=float)
    cumulative = np.stack(
        [
            model.conditional_expected_purchases(horizon, xi, ti, ni)
            for xi, ti, ni in zip(x, t_x, n, strict=True)
        ]
    )
    increments = np.diff(cumulative, axis=1)
    discount = (1 + discount_rate) ** -horizon[1:]
    brute = increments @ discount
    np.testing.assert_allclose(
        model.discounted_expected_residual_transactions(discount_rate, x, t_x, n), brute, rtol=1e-8
    )
    np.testing.assert_array_equal(
        model.derp(discount_rate, x, t_x, n), model.dert(discount_rate, x, t_x, n)
    )


def test_prob_alive_falls_with_longer_silence(fitted: BGBB) -> None:
    # Same frequency, later last purchase -> more likely alive (FHS 2010, Fig. 5 logic).
    alive = fitted.prob_alive(np.full(6, 1.0), np.arange(1, 7), np.full(6, 6.0))
    assert np.all(np.diff(alive) > 0)
    # A purchase at the last opportunity proves she was alive at n, so only the dropout at the
    # start of opportunity n + 1 remains: P = (delta + n) / (gamma + delta + n).
    gamma, delta = fitted.params_["gamma"], fitted.params_["delta"]
    assert fitted.prob_alive(6, 6, 6)[0] == pytest.approx((delta + 6) / (gamma + delta + 6))


# --------------------------------------------------------------------------- fitting mechanics
def test_compressed_and_expanded_data_give_identical_fit(
    fitted: BGBB, donations: pd.DataFrame
) -> None:
    counts = donations["weights"].to_numpy()
    expanded = donations.loc[donations.index.repeat(counts)]
    assert len(expanded) == 11104
    model = BGBB().fit(expanded["frequency"], expanded["recency"], expanded["periods"])
    # Compression turns the 11,104 rows into the same 22 weighted rows, so the optimiser sees
    # the very same objective: the estimates are bit-for-bit identical.
    assert model.params_ == fitted.params_
    assert model.log_likelihood_ == fitted.log_likelihood_


def test_block_wise_sums_equal_single_block(monkeypatch: pytest.MonkeyPatch) -> None:
    # The finite sums of eqs. (5) and (8) are accumulated in blocks of opportunities; tiny
    # blocks must give the same values and gradient as one block.
    theta = np.array([0.9, 1.7, 0.6, 3.1])
    model = BGBB.from_params(dict(zip(PUBLISHED, theta, strict=True)))
    x = np.array([0.0, 1.0, 3.0, 5.0, 2.0])
    t_x = np.array([0.0, 2.0, 9.0, 12.0, 2.0])
    n = np.array([20.0, 7.0, 15.0, 12.0, 31.0])
    whole, whole_grad = log_likelihood_and_gradient(theta, x, t_x, n)
    whole_pmf = model.prob_purchases(np.arange(31), 30)
    monkeypatch.setattr(bgbb_module, "_BLOCK_CELLS", 7)
    pieces, pieces_grad = log_likelihood_and_gradient(theta, x, t_x, n)
    np.testing.assert_allclose(pieces, whole, rtol=1e-13)
    np.testing.assert_allclose(pieces_grad, whole_grad, rtol=1e-11)
    np.testing.assert_allclose(model.prob_purchases(np.arange(31), 30), whole_pmf, rtol=1e-12)


@pytest.mark.parametrize(
    "theta", [(1.204, 0.75, 0.657, 2.783), (0.05, 40.0, 3.0, 0.2), (8.0, 0.3, 0.02, 60.0)]
)
def test_gradient_matches_central_finite_differences(theta: tuple[float, ...]) -> None:
    x = np.array([0.0, 1.0, 3.0, 6.0, 2.0, 4.0])
    t_x = np.array([0.0, 1.0, 5.0, 6.0, 2.0, 9.0])
    n = np.array([6.0, 6.0, 6.0, 6.0, 11.0, 40.0])
    weights = np.array([3.0, 1.0, 2.0, 5.0, 1.0, 0.5])
    point = np.array(theta)
    _, grad = log_likelihood_and_gradient(point, x, t_x, n)
    analytic = weights @ grad
    numeric = np.empty(4)
    for k in range(4):
        h = 1e-6 * point[k]
        up, down = point.copy(), point.copy()
        up[k] += h
        down[k] -= h
        numeric[k] = (
            weights @ individual_log_likelihood(up, x, t_x, n)
            - weights @ individual_log_likelihood(down, x, t_x, n)
        ) / (2 * h)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- simulation
def test_simulated_frequencies_follow_the_model_distribution() -> None:
    # 40,000 simulated customers, 6 opportunities: the share with x repeat transactions vs
    # P(X(6) = x) (eq. 8); binomial standard errors are <= 0.0025, allow 4 of them.
    frequency, recency, n = simulate(PUBLISHED, np.full(40_000, 6.0), np.random.default_rng(5))
    assert np.all((frequency <= recency) & (recency <= n))
    assert np.all((frequency == 0) == (recency == 0))
    share = np.bincount(frequency.astype(int), minlength=7) / frequency.size
    expected = BGBB.from_params(PUBLISHED).prob_purchases(np.arange(7), 6)
    np.testing.assert_allclose(share, expected, atol=0.01)


@settings(max_examples=4, deadline=None, derandomize=True)
@given(
    alpha=st.floats(0.5, 2.5),
    beta=st.floats(0.5, 2.5),
    gamma=st.floats(0.3, 1.5),
    delta=st.floats(1.0, 6.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_simulate_then_fit_recovers_parameters(
    alpha: float, beta: float, gamma: float, delta: float, seed: int
) -> None:
    truth = np.array([alpha, beta, gamma, delta])
    frequency, recency, n = simulate(truth, np.full(6000, 8.0), seed)
    model = BGBB().fit(frequency, recency, n)
    estimate = _theta(model.params_)
    se_log = _theta(model.standard_errors_) / estimate
    # 99.9% Wald intervals on the log scale.
    assert np.all(np.abs(np.log(estimate) - np.log(truth)) < 3.29 * se_log)


# --------------------------------------------------------------------------- robustness
@pytest.mark.parametrize(
    "theta",
    [
        (1e-5, 1e-5, 1e-5, 1e-5),
        (1e5, 1e5, 1e5, 1e5),
        (1e-5, 1e5, 1e5, 1e-5),
        (1e5, 1e-5, 1e-5, 1e5),
    ],
)
def test_extreme_parameters_and_histories_give_finite_results(theta: tuple[float, ...]) -> None:
    x = np.array([0.0, 0.0, 1.0, 50.0, 2.0])
    t_x = np.array([0.0, 0.0, 1.0, 50.0, 20_000.0])
    n = np.array([0.0, 20_000.0, 20_000.0, 50.0, 20_000.0])
    point = np.array(theta)
    loglik, grad = log_likelihood_and_gradient(point, x, t_x, n)
    # A probability: log <= 0 up to the ~1e-10 absolute rounding of ln B at arguments 1e5 apart.
    assert np.all(np.isfinite(loglik)) and np.all(loglik <= 1e-8)
    assert np.all(np.isfinite(grad))
    model = BGBB.from_params(dict(zip(PUBLISHED, theta, strict=True)))
    alive = model.prob_alive(x, t_x, n)
    assert np.all(np.isfinite(alive)) and np.all((alive >= 0) & (alive <= 1))
    for values in (
        model.conditional_expected_purchases(np.array([1.0, 1e6, 1e6, 10.0, 1e6]), x, t_x, n),
        model.expected_purchases(np.array([0.0, 1.0, 1e6])),
        model.prob_purchases(np.array([0.0, 3.0, 2.0]), np.array([1e4, 10.0, 1e4])),
        model.dert(np.array([1e-9, 0.1, 1e3, 0.1, 1e-4]), x, t_x, n),
    ):
        assert np.all(np.isfinite(values)) and np.all(values >= 0)


def test_predict_interval_stays_in_range(fitted: BGBB) -> None:
    x, t_x, n = np.array([0.0, 3.0, 6.0]), np.array([0.0, 5.0, 6.0]), np.array([6.0, 6.0, 6.0])
    estimate, lower, upper = fitted.predict_interval("prob_alive", x, t_x, n)
    assert np.all((lower > 0) & (lower < estimate) & (estimate < upper) & (upper < 1))
    estimate, lower, upper = fitted.predict_interval("derp", 0.1, x, t_x, n)
    assert np.all((lower > 0) & (lower < estimate) & (estimate < upper))
    estimate, lower, upper = fitted.predict_interval("conditional_expected_purchases", 5, x, t_x, n)
    assert np.all((lower > 0) & (lower < estimate) & (estimate < upper))


# --------------------------------------------------------------------------- invalid input
@pytest.mark.parametrize(
    ("frequency", "recency", "n", "message"),
    [
        ([-1, 1], [0, 2], [6, 6], "frequency must be >= 0"),
        ([3, 1], [2, 2], [6, 6], "frequency exceeds recency"),
        ([1, 1], [7, 2], [6, 6], "recency exceeds T"),
        ([1, float("nan")], [1, 2], [6, 6], "non-finite"),
        ([1.5, 1], [2, 2], [6, 6], "whole number"),
        ([1, 1], [1.5, 2], [6, 6], "whole numbers"),
        ([0, 1], [3, 2], [6, 6], "recency must be 0 when frequency is 0"),
    ],
)
def test_malformed_histories_raise_value_error(
    frequency: list[float], recency: list[float], n: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        BGBB().fit(frequency, recency, n)


def test_unidentifiable_or_badly_weighted_data_raise() -> None:
    with pytest.raises(ModelFitError, match="no customer made a repeat purchase"):
        BGBB().fit([0, 0, 0], [0, 0, 0], [6, 6, 6])
    with pytest.raises(ModelFitError, match="at least two customers"):
        BGBB().fit([2], [3], [6])
    with pytest.raises(ValueError, match="non-negative"):
        BGBB().fit([1, 2], [1, 3], [6, 6], weights=[1, -1])


def test_invalid_prediction_inputs_raise(fitted: BGBB) -> None:
    with pytest.raises(ValueError, match="n_star must be whole"):
        fitted.conditional_expected_purchases(1.5, 1, 1, 6)
    with pytest.raises(ValueError, match="discount_rate must be > 0"):
        fitted.dert(0.0, 1, 1, 6)
    with pytest.raises(ValueError, match="frequency exceeds recency"):
        fitted.prob_alive(3, 2, 6)


def test_predictions_before_fit_raise_not_fitted() -> None:
    with pytest.raises(NotFittedError):
        BGBB().prob_alive(1, 1, 6)
    with pytest.raises(NotFittedError):
        BGBB().expected_purchases(6)
