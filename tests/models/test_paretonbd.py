"""Tests for the Pareto/NBD model (Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005 note).

The checks Pareto/NBD shares with BG/NBD and MBG/NBD (predictions before fit, input
validation, serialisation, delta-method intervals, simulation studies) are in
``test_nbd_family.py``.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, special

from models import ModelFitError, paretonbd
from models.paretonbd import (
    ParetoNBD,
    _Evaluation,
    _Histories,
    log_likelihood_gradient,
    log_likelihood_terms,
    simulate,
)
from tests.conftest import quiet_reference
from tests.models.nbd_cases import (
    NOTE_PARAMS,
    PARETONBD_CASE,
    Columns,
    cdnow_columns,
    cdnow_fit,
    lifetimes_fit,
)

# Fader & Hardie (2005 note, Sec. 3), CDNOW sample: LL = -9594.98 (published to two decimals);
# the note's parameters NOTE_PARAMS are in nbd_cases.py.
NOTE_LOG_LIKELIHOOD = -9594.98
NAMES = ("r", "alpha", "s", "beta")


@pytest.fixture(scope="module")
def columns() -> Columns:
    return cdnow_columns()


@pytest.fixture(scope="module")
def fitted() -> ParetoNBD:
    model = cdnow_fit(PARETONBD_CASE)
    assert isinstance(model, ParetoNBD)
    return model


@pytest.fixture(scope="module")
def reference() -> Any:
    return lifetimes_fit(PARETONBD_CASE)


def _reference_at(params: dict[str, float]) -> Any:
    """A lifetimes ParetoNBDFitter that holds ``params`` (as if it had been fitted)."""
    from lifetimes import ParetoNBDFitter

    ref = ParetoNBDFitter()
    ref.params_ = pd.Series(params)[list(NAMES)]
    return ref


def _closed_form_log_likelihood(
    theta: tuple[float, ...], x: np.ndarray, t_x: np.ndarray, age: np.ndarray
) -> np.ndarray:
    """The 2005 note's likelihood (Sec. 3) with scipy's hyp2f1, written independently.

    L = Gamma(r+x) alpha^r beta^s / Gamma(r) [ (alpha+T)^-(r+x) (beta+T)^-s + s/(r+s+x) A0 ],
    A0 = 2F1(a, b; a+1; |alpha-beta|/(m+t_x)) / (m+t_x)^a - (same at T), a = r+s+x, where
    m = max(alpha, beta) and b = s+1 if alpha >= beta else r+x. Evaluated in logs.
    """
    r, alpha, s, beta = theta
    a = r + s + x
    high, b = (alpha, s + 1.0) if alpha >= beta else (beta, r + x)
    gap = abs(alpha - beta)
    log_first = np.log(special.hyp2f1(a, b, a + 1.0, gap / (high + t_x))) - a * np.log(high + t_x)
    log_second = np.log(special.hyp2f1(a, b, a + 1.0, gap / (high + age))) - a * np.log(high + age)
    with np.errstate(divide="ignore"):
        log_a0 = log_first + np.log(-np.expm1(log_second - log_first))
    log_alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    log_bracket = np.logaddexp(log_alive, np.log(s) - np.log(a) + log_a0)
    return np.asarray(
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + log_bracket
    )


# ------------------------------------------------------------------------ the 2005 note
def test_cdnow_fit_reproduces_the_2005_note(fitted: ParetoNBD) -> None:
    # The note's r=0.55, alpha=10.58, s=0.61, beta=11.67: equal at its two decimals (so to
    # three significant figures and better for alpha and beta).
    for name, published in NOTE_PARAMS.items():
        assert round(fitted.params_[name], 2) == published, name
    # LL = -9594.98 in the note; ours (-9594.974) is the same to the unit and not below it.
    assert round(fitted.log_likelihood_) == round(NOTE_LOG_LIKELIHOOD)
    assert fitted.log_likelihood_ >= NOTE_LOG_LIKELIHOOD
    assert fitted.converged_, fitted.convergence_message_
    assert fitted.n_obs_ == 2357


def test_log_likelihood_equals_the_closed_form_on_cdnow(
    columns: tuple[np.ndarray, ...],
) -> None:
    x, t_x, age = columns
    theta = tuple(NOTE_PARAMS.values())
    ours = log_likelihood_terms(np.array(theta), x, t_x, age)
    np.testing.assert_allclose(ours, _closed_form_log_likelihood(theta, x, t_x, age), rtol=1e-10)
    # At the note's rounded parameters the CDNOW total is -9595.0085 (not the optimum -9594.97);
    # a regression value, which lifetimes' closed form reproduces to 1e-11.
    assert ours.sum() == pytest.approx(-9595.0085, abs=5e-5)


# Parameters with alpha >> beta, beta >> alpha, alpha ~ beta, tiny and large shapes; histories
# with x = 0, large x, t_x = 0, t_x = T, T >> alpha and T tiny.
EXTREME_THETAS = [
    (0.55, 10.58, 0.61, 11.67),
    (0.55, 1000.0, 0.61, 1.0),
    (0.55, 1.0, 0.61, 1000.0),
    (2.0, 0.05, 0.3, 40.0),
    (0.2, 40.0, 3.0, 0.05),
    (5.0, 3.0, 5.0, 3.0000001),
]
EXTREME_ROWS = np.array(
    [
        (0, 0, 39),
        (1, 0, 39),
        (1, 39, 39),
        (5, 20, 39),
        (200, 30, 39),
        (3, 1e4, 1e4),
        (0, 0, 1e5),
        (50, 10, 1e5),
        (10, 1e5 - 1, 1e5),
        (1, 0.5, 0.5),
    ],
    dtype=float,
)


@pytest.mark.parametrize("theta", EXTREME_THETAS)
def test_log_likelihood_equals_the_closed_form_at_extreme_inputs(theta: tuple[float, ...]) -> None:
    x, t_x, age = EXTREME_ROWS.T
    ours = log_likelihood_terms(np.array(theta), x, t_x, age)
    # Relative 1e-10 in log L, or 1e-12 absolute in log L (= relative in L) where log L ~ 0.
    np.testing.assert_allclose(
        ours, _closed_form_log_likelihood(theta, x, t_x, age), rtol=1e-10, atol=1e-12
    )


def test_log_likelihood_stays_accurate_where_the_closed_form_overflows() -> None:
    # x = 2000 with alpha < beta: scipy's 2F1(r+s+x, r+x; r+s+x+1; z) overflows (NaN) ...
    theta = (0.55, 1.0, 0.61, 1000.0)
    r, alpha, s, beta = theta
    x, t_x, age = 2000.0, 38.0, 39.0
    with np.errstate(all="ignore"):
        closed = _closed_form_log_likelihood(theta, np.array([x]), np.array([t_x]), np.array([age]))
    assert not np.isfinite(closed[0])
    # ... while the likelihood itself, alive at T or dead at y in (t_x, T) (SMC 1987),
    #   Gamma(r+x) alpha^r beta^s / Gamma(r) [A + s int_{t_x}^T (alpha+y)^-(r+x) (beta+y)^-(s+1) dy],
    # is easy to integrate numerically once the integrand is scaled by its value at t_x.
    log_f_tx = -(r + x) * np.log(alpha + t_x) - (s + 1.0) * np.log(beta + t_x)
    scaled, _ = integrate.quad(
        lambda y: np.exp(
            -(r + x) * np.log((alpha + y) / (alpha + t_x))
            - (s + 1.0) * np.log((beta + y) / (beta + t_x))
        ),
        t_x,
        age,
        epsabs=0.0,
        epsrel=1e-13,
    )
    log_alive = -(r + x) * np.log(alpha + age) - s * np.log(beta + age)
    expected = (
        special.gammaln(r + x)
        - special.gammaln(r)
        + r * np.log(alpha)
        + s * np.log(beta)
        + np.logaddexp(log_alive, np.log(s) + log_f_tx + np.log(scaled))
    )
    ours = log_likelihood_terms(np.array(theta), np.array([x]), np.array([t_x]), np.array([age]))
    assert ours[0] == pytest.approx(expected, abs=1e-9)  # 1e-9 relative in L
    gradient = log_likelihood_gradient(
        np.array(theta), np.array([x]), np.array([t_x]), np.array([age])
    )
    assert np.all(np.isfinite(gradient))


# ------------------------------------------------------------------------ the gradient
GRADIENT_THETAS = [
    np.array([0.55, 10.58, 0.61, 11.67]),
    np.array([0.55, 500.0, 0.61, 1.0]),  # alpha >> beta
    np.array([2.0, 0.05, 0.3, 40.0]),  # beta >> alpha: many rows take the split integral
    np.array([3.0, 7.0, 1.0, 7.0]),  # alpha == beta, s == 1
]


@pytest.mark.parametrize("theta", GRADIENT_THETAS)
def test_gradient_equals_central_finite_differences(theta: np.ndarray) -> None:
    x = np.array([0.0, 0.0, 1.0, 2.0, 7.0, 30.0, 1.0, 120.0])
    t_x = np.array([0.0, 0.0, 0.3, 30.43, 20.0, 38.0, 39.0, 35.0])
    age = np.array([39.0, 0.5, 39.0, 38.86, 39.0, 39.0, 39.0, 400.0])
    analytic = log_likelihood_gradient(theta, x, t_x, age)
    for j in range(4):
        h = 1e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        numeric = (
            log_likelihood_terms(up, x, t_x, age) - log_likelihood_terms(down, x, t_x, age)
        ) / (2 * h)
        np.testing.assert_allclose(analytic[:, j], numeric, rtol=1e-6, atol=1e-6 / theta[j])


def test_weighted_gradient_of_the_fit_equals_the_sum_of_row_gradients(
    columns: tuple[np.ndarray, ...],
) -> None:
    # The fit sums the gradient per (x, T) and (x, y) pair before the dot products; it must
    # equal the plain weighted sum of per-row gradients.
    x, t_x, age = columns
    weights = np.arange(1.0, x.shape[0] + 1.0) % 7.0 + 0.5
    theta = np.array([0.7, 9.0, 0.5, 14.0])
    evaluation = _Evaluation.at(theta, _Histories.build(x, t_x, age, weights))
    np.testing.assert_allclose(
        evaluation.weighted_gradient(), weights @ evaluation.row_gradient(), rtol=1e-10
    )


# --------------------------------------------------------------- agreement with lifetimes
def test_fit_agrees_with_lifetimes_on_cdnow(
    fitted: ParetoNBD, reference: Any, columns: tuple[np.ndarray, ...]
) -> None:
    for name in NAMES:
        assert fitted.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-3)
    # lifetimes stores the total NLL on time rescaled to max(T) = 1: L_scaled = L / scale^x,
    # so log L in weeks = -NLL + sum(x) log(scale). Ours must be at least as high.
    x, _, age = columns
    theirs = -reference._negative_log_likelihood_ + x.sum() * np.log(1.0 / age.max())
    assert fitted.log_likelihood_ >= theirs - 1e-9
    # Cross-check the conversion against lifetimes' own likelihood at its estimates.
    from lifetimes import ParetoNBDFitter

    ref_theta = reference.params_[list(NAMES)].to_numpy(float)
    direct = ParetoNBDFitter._conditional_log_likelihood(ref_theta, *columns).sum()
    assert theirs == pytest.approx(direct, abs=1e-6)


def test_predictions_equal_lifetimes_at_the_same_parameters(
    columns: tuple[np.ndarray, ...],
) -> None:
    model = ParetoNBD.from_params(NOTE_PARAMS)
    ref = _reference_at(NOTE_PARAMS)
    x, t_x, age = columns
    with quiet_reference():
        alive = ref.conditional_probability_alive(x, t_x, age)
        expected = ref.conditional_expected_number_of_purchases_up_to_time(39.0, x, t_x, age)
        population = ref.expected_number_of_purchases_up_to_time(np.array([1.0, 39.0, 78.0]))
    np.testing.assert_allclose(model.prob_alive(x, t_x, age), alive, rtol=1e-6)
    np.testing.assert_allclose(
        model.conditional_expected_purchases(39.0, x, t_x, age), expected, rtol=1e-6
    )
    np.testing.assert_allclose(model.expected_purchases([1.0, 39.0, 78.0]), population, rtol=1e-6)


def test_purchase_distribution_equals_the_2006_note_closed_form() -> None:
    # Fader & Hardie (2006 note), eq. for P(X(t)=x): a first term plus
    # alpha^r beta^s B(r+x, s+1)/B(r, s) [B1 - sum_{i<=x} Gamma(r+s+i)/(Gamma(r+s) i!) t^i B2_i].
    r, alpha, s, beta = NOTE_PARAMS.values()
    high, gap = max(alpha, beta), abs(alpha - beta)

    def note(n: int, t: float) -> float:
        b = s + 1.0 if alpha >= beta else r + n
        c = r + s + n + 1.0
        first = np.exp(
            special.gammaln(r + n)
            - special.gammaln(r)
            - special.gammaln(n + 1.0)
            + r * np.log(alpha / (alpha + t))
            + n * np.log(t / (alpha + t))
            + s * np.log(beta / (beta + t))
        )
        b1 = special.hyp2f1(r + s, b, c, gap / high) / high ** (r + s)
        b2 = sum(
            np.exp(special.gammaln(r + s + i) - special.gammaln(r + s) - special.gammaln(i + 1.0))
            * t**i
            * special.hyp2f1(r + s + i, b, c, gap / (high + t))
            / (high + t) ** (r + s + i)
            for i in range(n + 1)
        )
        scale = np.exp(
            r * np.log(alpha)
            + s * np.log(beta)
            + special.betaln(r + n, s + 1.0)
            - special.betaln(r, s)
        )
        return float(first + scale * (b1 - b2))

    model = ParetoNBD.from_params(NOTE_PARAMS)
    for t in (39.0, 78.0):
        expected = [note(n, t) for n in range(8)]
        np.testing.assert_allclose(model.prob_purchases(np.arange(8), t), expected, rtol=1e-9)


def test_purchase_distribution_sums_to_one_and_has_the_expected_mean() -> None:
    model = ParetoNBD.from_params(NOTE_PARAMS)
    n = np.arange(3000)
    for t in (1.0, 39.0, 520.0):
        pmf = model.prob_purchases(n, t)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
        assert n @ pmf == pytest.approx(model.expected_purchases(t)[0], rel=1e-9)
    # No time, no purchases.
    np.testing.assert_array_equal(model.prob_purchases([0, 1, 5], 0.0), [1.0, 0.0, 0.0])


# ----------------------------------------------------------------- predictions in detail
def test_expectations_are_continuous_through_s_equal_one() -> None:
    # (1 - (beta/(beta+t))^(s-1))/(s-1) tends to log(1 + t/beta) as s -> 1 (2005 note eq. 27).
    at_one = ParetoNBD.from_params({"r": 0.5, "alpha": 10.0, "s": 1.0, "beta": 12.0})
    near = ParetoNBD.from_params({"r": 0.5, "alpha": 10.0, "s": 1.0 + 1e-9, "beta": 12.0})
    t = np.array([1.0, 39.0, 1e4])
    expected = 0.5 * 12.0 / 10.0 * np.log1p(t / 12.0)
    np.testing.assert_allclose(at_one.expected_purchases(t), expected, rtol=1e-14)
    np.testing.assert_allclose(near.expected_purchases(t), expected, rtol=1e-8)
    history = (np.full(3, 3.0), np.full(3, 20.0), np.full(3, 39.0))
    np.testing.assert_allclose(
        near.conditional_expected_purchases(t, *history),
        at_one.conditional_expected_purchases(t, *history),
        rtol=1e-8,
    )


def test_prob_alive_behaves_as_the_model_implies() -> None:
    model = ParetoNBD.from_params(NOTE_PARAMS)
    # A customer observed for no time is certainly alive.
    assert model.prob_alive(0, 0, 0)[0] == pytest.approx(1.0, abs=1e-15)
    # A customer who just bought is alive for sure; the longer the silence, the less likely.
    alive = model.prob_alive([3, 3, 3, 3], [39.0, 30.0, 10.0, 0.0], [39.0, 39.0, 39.0, 39.0])
    assert alive[0] == pytest.approx(1.0, abs=1e-15)
    assert np.all(np.diff(alive) < 0)
    # Same silence, more purchases before it: more surprising, so less likely alive.
    by_frequency = model.prob_alive([1, 5, 20], [10.0, 10.0, 10.0], [39.0, 39.0, 39.0])
    assert np.all(np.diff(by_frequency) < 0)


def test_predictions_broadcast_and_map_back_to_every_row() -> None:
    model = ParetoNBD.from_params(NOTE_PARAMS)
    x = np.array([2.0, 0.0, 2.0, 0.0])
    t_x = np.array([30.43, 0.0, 30.43, 0.0])
    age = np.array([38.86, 38.86, 38.86, 20.0])
    alive = model.prob_alive(x, t_x, age)
    assert alive.shape == (4,)
    assert alive[0] == alive[2]
    horizons = model.conditional_expected_purchases([10.0, 20.0, 10.0, 10.0], x, t_x, age)
    assert (
        horizons[0] == horizons[2] < model.conditional_expected_purchases(20.0, 2, 30.43, 38.86)[0]
    )
    assert model.prob_purchases(1, [1.0, 39.0]).shape == (2,)


EXTREME_PARAMETER_VALUES = (1e-5, 1.0, 1e5)


@pytest.mark.parametrize("theta", list(itertools.product(EXTREME_PARAMETER_VALUES, repeat=4))[::4])
def test_extreme_parameters_and_inputs_give_finite_outputs(theta: tuple[float, ...]) -> None:
    x = np.array([0.0, 0.0, 1.0, 5.0, 5000.0, 3.0, 200.0, 1.0, 0.0])
    t_x = np.array([0.0, 0.0, 0.0, 1e7, 1e7 - 1.0, 5.0, 1e-9, 1e-12, 0.0])
    age = np.array([0.0, 1e-9, 1e-6, 1e7, 1e7, 5.0, 1e7, 1e-12, 1e7])
    vector = np.array(theta)
    assert np.all(np.isfinite(log_likelihood_terms(vector, x, t_x, age)))
    assert np.all(np.isfinite(log_likelihood_gradient(vector, x, t_x, age)))
    model = ParetoNBD.from_params(dict(zip(NAMES, theta, strict=True)))
    alive = model.prob_alive(x, t_x, age)
    assert np.all((alive >= 0) & (alive <= 1))
    expected = model.conditional_expected_purchases(
        np.array([0, 1, 1e6, 1e300, 5, 1, 1, 1, 1.0]), x, t_x, age
    )
    assert np.all(np.isfinite(expected) & (expected >= 0))
    population = model.expected_purchases([0.0, 1.0, 1e8, 1e300])
    assert np.all(np.isfinite(population) & (population >= 0))
    pmf = model.prob_purchases([0, 1, 10, 1000], [0.0, 1e-6, 1e3, 1e8])
    assert np.all((pmf >= 0) & (pmf <= 1))


def test_population_delta_method_intervals_stay_in_range_and_bracket_the_estimate(
    fitted: ParetoNBD,
) -> None:
    # prob_alive and conditional_expected_purchases intervals: see test_nbd_family.py.
    est, low, high = fitted.predict_interval("prob_purchases", np.array([0.0, 3.0]), 39.0)
    assert np.all((low > 0) & (low < est) & (est < high) & (high < 1))
    est, low, high = fitted.predict_interval("expected_purchases", 52.0)
    assert 0 < low[0] < est[0] < high[0]


# ------------------------------------------------------------------------- fitting
def test_compressed_and_expanded_data_give_the_same_fit(columns: tuple[np.ndarray, ...]) -> None:
    x, t_x, age = columns
    frame = pd.DataFrame({"x": x, "t_x": t_x, "T": age})
    counts = frame.value_counts().reset_index(name="n")
    compressed = ParetoNBD().fit(counts["x"], counts["t_x"], counts["T"], weights=counts["n"])
    expanded = ParetoNBD().fit(x, t_x, age)
    assert counts.shape[0] < x.shape[0]
    np.testing.assert_array_equal(
        [compressed.params_[k] for k in NAMES], [expanded.params_[k] for k in NAMES]
    )
    assert compressed.log_likelihood_ == expanded.log_likelihood_


def test_large_data_fit_is_the_same_optimum_as_a_direct_fit(
    monkeypatch: pytest.MonkeyPatch, columns: tuple[np.ndarray, ...]
) -> None:
    # Above COARSE_MIN_ROWS distinct histories the starts are first refined on a coarsened copy
    # of the data; the final fit runs on the data itself, so it finds the same maximum.
    direct = ParetoNBD().fit(*columns)
    monkeypatch.setattr(paretonbd, "COARSE_MIN_ROWS", 100)
    staged = ParetoNBD().fit(*columns)
    assert staged.converged_, staged.convergence_message_
    for name in NAMES:
        assert staged.params_[name] == pytest.approx(direct.params_[name], rel=1e-5)
    assert staged.log_likelihood_ == pytest.approx(direct.log_likelihood_, abs=1e-6)


def test_zero_weight_rows_are_ignored(columns: tuple[np.ndarray, ...], fitted: ParetoNBD) -> None:
    x, t_x, age = columns
    weights = np.r_[np.ones_like(x), 0.0]
    model = ParetoNBD().fit(np.r_[x, 50.0], np.r_[t_x, 1.0], np.r_[age, 2.0], weights=weights)
    assert model.params_ == pytest.approx(fitted.params_, rel=1e-6)
    assert model.n_obs_ == 2357


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "weights", "message"),
    [
        ([1, -1], [1.0, 0.0], [2.0, 2.0], None, "frequency must be >= 0"),
        ([1, 1.5], [1.0, 1.0], [2.0, 2.0], None, "whole number"),
        ([1, 2], [1.0, 3.0], [2.0, 2.0], None, "recency exceeds T at row 1"),
        ([1, 2], [1.0, np.nan], [2.0, 2.0], None, "recency contains a non-finite value"),
        ([1, 2], [1.0, 1.0], [2.0, -2.0], None, "T must be >= 0"),
        ([1, 2, 3], [1.0, 1.0], [2.0, 2.0], None, "incompatible lengths"),
        ([1, 2], [1.0, 1.0], [2.0, 2.0], [1.0], "weights has length 1"),
        ([1, 2], [1.0, 1.0], [2.0, 2.0], [1.0, -1.0], "weights must be non-negative"),
    ],
)
def test_invalid_data_is_rejected_with_a_message_naming_the_problem(
    frequency: list[float],
    recency: list[float],
    T: list[float],
    weights: list[float] | None,
    message: str,
) -> None:
    with pytest.raises(ValueError, match=message):
        ParetoNBD().fit(frequency, recency, T, weights=weights)


@pytest.mark.parametrize(
    ("frequency", "recency", "T", "message"),
    [
        ([0, 0, 0], [0.0, 0.0, 0.0], [5.0, 8.0, 9.0], "no customer made a repeat purchase"),
        ([2], [1.0], [5.0], "at least two customers"),
        ([1, 2], [0.0, 0.0], [0.0, 0.0], "every customer has T = 0"),
    ],
)
def test_unidentifiable_data_raises_model_fit_error(
    frequency: list[float], recency: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(ModelFitError, match=message):
        ParetoNBD().fit(frequency, recency, T)


# ------------------------------------------------------------------------ simulation
def test_simulation_reproduces_the_model_distribution() -> None:
    # 200k customers observed for 39 weeks at the note's CDNOW parameters: the share with n
    # repeat purchases matches P(X(39) = n) and the mean matches E[X(39)] (2005 note eq. 27),
    # within 4.5 standard errors.
    model = ParetoNBD.from_params(NOTE_PARAMS)
    n_customers = 200_000
    x, t_x = simulate(NOTE_PARAMS, np.full(n_customers, 39.0), np.random.default_rng(7))
    counts = np.bincount(x.astype(int), minlength=6)[:6] / n_customers
    pmf = model.prob_purchases(np.arange(6), 39.0)
    assert np.all(np.abs(counts - pmf) < 4.5 * np.sqrt(pmf * (1 - pmf) / n_customers))
    mean = model.expected_purchases(39.0)[0]
    assert abs(x.mean() - mean) < 4.5 * x.std() / np.sqrt(n_customers)
    # Recency lies in [0, T] and is 0 exactly for customers without repeat purchases.
    assert np.all((t_x >= 0) & (t_x <= 39.0))
    np.testing.assert_array_equal(t_x == 0, x == 0)
