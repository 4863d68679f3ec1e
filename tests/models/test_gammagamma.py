"""Tests for the Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie 2013 note)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats

from models import ModelFitError, NotFittedError
from models.gammagamma import (
    GammaGamma,
    log_likelihood_gradient,
    log_likelihood_terms,
    simulate,
    spend_frequency_correlation,
)
from tests.conftest import quiet_reference

# Parameters published in the note (Fader & Hardie 2013, Sec. 3) for the 946 CDNOW customers
# with at least one repeat purchase in the 39-week calibration period.
NOTE_PARAMS = {"p": 6.25, "q": 3.74, "gamma": 15.44}


def _sig3(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    """CDNOW calibration summary (lifetimes copy): 2357 customers, 946 with frequency > 0."""
    import lifetimes.datasets

    with quiet_reference():
        return lifetimes.datasets.load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def repeaters(cdnow: pd.DataFrame) -> pd.DataFrame:
    return cdnow[cdnow["frequency"] > 0]


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> GammaGamma:
    return GammaGamma().fit(cdnow["frequency"], cdnow["monetary_value"])


@pytest.fixture(scope="module")
def reference(repeaters: pd.DataFrame) -> object:
    from lifetimes import GammaGammaFitter

    with quiet_reference():
        return GammaGammaFitter().fit(repeaters["frequency"], repeaters["monetary_value"])


# ------------------------------------------------------------------------------ CDNOW
def test_cdnow_fit_uses_only_the_946_repeat_buyers(fitted: GammaGamma) -> None:
    # FHL 2005 Sec. 2.2: 946 of the 2357 CDNOW customers made a repeat purchase.
    assert fitted.n_obs_ == 946
    assert fitted.converged_, fitted.convergence_message_


def test_cdnow_parameters_match_the_note_to_three_significant_figures(
    fitted: GammaGamma,
) -> None:
    for name, published in NOTE_PARAMS.items():
        assert _sig3(fitted.params_[name]) == _sig3(published), name


def test_cdnow_log_likelihood_matches_fhl_2005(fitted: GammaGamma, repeaters: pd.DataFrame) -> None:
    # FHL 2005 (Sec. 4) report a maximised 39-week log-likelihood of -4659 (quoted from a
    # public summary of the paper; we could not read the paper itself). That number is the
    # density of the TOTAL repeat spend x*m_x; ours (the note, eq. 1a) is the density of the
    # mean m_x, and the two differ by the Jacobian: log f_total = log f_mean - log x.
    jacobian = float(np.log(repeaters["frequency"]).sum())  # 603.37
    assert round(fitted.log_likelihood_ - jacobian) == -4659


def test_cdnow_fit_matches_lifetimes(fitted: GammaGamma, reference: object) -> None:
    ref_params = reference.params_  # type: ignore[attr-defined]
    ours = [fitted.params_["p"], fitted.params_["q"], fitted.params_["gamma"]]
    theirs = [ref_params["p"], ref_params["q"], ref_params["v"]]
    np.testing.assert_allclose(ours, theirs, rtol=1e-3)
    # lifetimes stores the MEAN negative log-likelihood over the 946 customers.
    ref_ll = -reference._negative_log_likelihood_ * 946  # type: ignore[attr-defined]
    assert fitted.log_likelihood_ >= ref_ll - 1e-6
    assert fitted.log_likelihood_ == pytest.approx(-4055.923, abs=1e-3)


def test_conditional_expected_average_value_equals_lifetimes_at_same_params(
    fitted: GammaGamma, cdnow: pd.DataFrame
) -> None:
    from lifetimes import GammaGammaFitter

    reference = GammaGammaFitter()
    reference.params_ = pd.Series(
        {"p": fitted.params_["p"], "q": fitted.params_["q"], "v": fitted.params_["gamma"]}
    )
    with quiet_reference():
        expected = reference.conditional_expected_average_profit(
            cdnow["frequency"], cdnow["monetary_value"]
        )
    ours = fitted.conditional_expected_average_value(cdnow["frequency"], cdnow["monetary_value"])
    np.testing.assert_allclose(ours, expected.to_numpy(), rtol=1e-12)


def test_population_mean_spend_matches_the_note(fitted: GammaGamma) -> None:
    # The note (Sec. 3): p gamma / (q - 1) = 6.25 * 15.44 / 2.74 = $35.2.
    assert _sig3(fitted.expected_average_value()) == 35.2


def test_spend_frequency_correlation_on_cdnow_matches_fhl_2005(repeaters: pd.DataFrame) -> None:
    # FHL 2005 Sec. 2.2: correlation between average transaction value and number of
    # transactions is 0.11 for the 946 repeat buyers.
    corr = spend_frequency_correlation(repeaters["frequency"], repeaters["monetary_value"])
    assert round(corr, 2) == 0.11
    # Customers with x = 0 are ignored, and the class exposes the same function.
    cdnow_corr = GammaGamma.spend_frequency_correlation(
        np.r_[repeaters["frequency"], 0, 0], np.r_[repeaters["monetary_value"], 0, 0]
    )
    assert cdnow_corr == pytest.approx(corr, rel=1e-12)


def test_weighted_correlation_equals_expanded_correlation() -> None:
    x = np.array([1.0, 2.0, 3.0, 5.0])
    m = np.array([10.0, 30.0, 20.0, 50.0])
    counts = np.array([3, 1, 2, 4])
    weighted = spend_frequency_correlation(x, m, weights=counts)
    expanded = np.corrcoef(np.repeat(x, counts), np.repeat(m, counts))[0, 1]
    assert weighted == pytest.approx(expanded, rel=1e-12)


# ------------------------------------------------------------------------- predictions
def test_conditional_expectation_hand_worked_example() -> None:
    model = GammaGamma.from_params(NOTE_PARAMS)
    # Hand-worked from the note's eq. 5 with p=6.25, q=3.74, gamma=15.44:
    # population mean 6.25*15.44/2.74 = 35.2190; x=1, m=100: (2.74*35.2190 + 6.25*100)/8.99
    # = (96.5 + 625)/8.99 = 80.2558; x=2, m=20: (96.5 + 12.5*20)/15.24 = 22.7362.
    values = model.conditional_expected_average_value([0, 1, 2], [0.0, 100.0, 20.0])
    np.testing.assert_allclose(values, [35.2190, 80.2558, 22.7362], atol=1e-4)


def test_conditional_expectation_shrinks_less_as_frequency_grows() -> None:
    model = GammaGamma.from_params(NOTE_PARAMS)
    x = np.array([1.0, 2.0, 5.0, 20.0, 1e6])
    values = model.conditional_expected_average_value(x, np.full(5, 100.0))
    assert np.all(np.diff(values) > 0)
    assert values[-1] == pytest.approx(100.0, rel=1e-4)


def test_population_mean_requires_q_above_one() -> None:
    model = GammaGamma.from_params({"p": 2.0, "q": 0.8, "gamma": 10.0})
    with pytest.raises(ModelFitError, match="does not exist"):
        model.expected_average_value()
    with pytest.raises(ModelFitError, match="row 1"):
        model.conditional_expected_average_value([3, 0], [20.0, 0.0])
    # A repeat buyer's posterior mean p(gamma + x m)/(px + q - 1) exists whenever px + q > 1.
    value = model.conditional_expected_average_value([3], [20.0])
    assert value[0] == pytest.approx(2.0 * (10.0 + 60.0) / (6.0 + 0.8 - 1.0))


def test_delta_method_interval_brackets_population_mean(fitted: GammaGamma) -> None:
    estimate, lower, upper = fitted.predict_interval("expected_average_value", level=0.95)
    assert 0 < lower[0] < estimate[0] < upper[0]
    est_x, lo_x, hi_x = fitted.predict_interval(
        "conditional_expected_average_value", np.array([1.0, 10.0]), np.array([50.0, 50.0])
    )
    assert np.all((lo_x < est_x) & (est_x < hi_x))
    # More transactions -> less weight on the uncertain population mean -> narrower interval.
    assert hi_x[1] - lo_x[1] < hi_x[0] - lo_x[0]


# -------------------------------------------------------------------- likelihood numerics
@pytest.mark.parametrize(
    "theta",
    [np.array([6.25, 3.74, 15.44]), np.array([0.3, 1.5, 200.0]), np.array([40.0, 25.0, 0.7])],
)
def test_gradient_matches_central_finite_differences(theta: np.ndarray) -> None:
    x = np.array([1.0, 2.0, 7.0, 30.0, 1.0])
    m = np.array([12.0, 35.5, 80.0, 3.2, 500.0])
    analytic = log_likelihood_gradient(theta, x, m)
    for j in range(3):
        h = 1e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        numeric = (log_likelihood_terms(up, x, m) - log_likelihood_terms(down, x, m)) / (2 * h)
        np.testing.assert_allclose(analytic[:, j], numeric, rtol=1e-6, atol=1e-8)


def test_log_density_matches_direct_formula_and_integrates_to_one() -> None:
    theta = np.array([6.25, 3.74, 15.44])
    p, q, g = theta
    x, m = 3.0, 27.0
    from scipy.special import gammaln

    # Direct evaluation of the note's eq. 1a in its first form.
    direct = (
        gammaln(p * x + q)
        - gammaln(p * x)
        - gammaln(q)
        + q * np.log(g)
        + (p * x - 1) * np.log(m)
        + p * x * np.log(x)
        - (p * x + q) * np.log(g + x * m)
    )
    assert log_likelihood_terms(theta, np.array([x]), np.array([m]))[0] == pytest.approx(direct)
    from scipy import integrate

    total, _ = integrate.quad(
        lambda z: float(np.exp(log_likelihood_terms(theta, np.array([x]), np.array([z]))[0])),
        0,
        np.inf,
    )
    assert total == pytest.approx(1.0, abs=1e-8)


def test_extreme_inputs_give_finite_likelihood_gradient_and_predictions() -> None:
    x = np.array([1.0, 1.0, 1e6, 1e6, 50.0])
    m = np.array([1e-8, 1e9, 1e-8, 1e9, 35.0])
    for theta in (
        np.array([1e-5, 1e-5, 1e-5]),
        np.array([1e5, 1e5, 1e5]),
        np.array([1e-5, 1e5, 1e-5]),
        np.array([1e5, 1e-5, 1e5]),
    ):
        assert np.all(np.isfinite(log_likelihood_terms(theta, x, m)))
        assert np.all(np.isfinite(log_likelihood_gradient(theta, x, m)))
    model = GammaGamma.from_params({"p": 1e5, "q": 1e5, "gamma": 1e-5})
    assert np.all(np.isfinite(model.conditional_expected_average_value(x, m)))
    assert np.all(model.conditional_expected_average_value(x, m) > 0)


# -------------------------------------------------------------------------------- fit
def test_compressed_fit_equals_expanded_fit(repeaters: pd.DataFrame) -> None:
    subset = repeaters.iloc[:300]
    counts = np.arange(300) % 4 + 1
    weighted = GammaGamma().fit(subset["frequency"], subset["monetary_value"], weights=counts)
    expanded = GammaGamma().fit(
        np.repeat(subset["frequency"].to_numpy(), counts),
        np.repeat(subset["monetary_value"].to_numpy(), counts),
    )
    assert weighted.n_obs_ == expanded.n_obs_ == counts.sum()
    for name in GammaGamma.param_names:
        assert weighted.params_[name] == pytest.approx(expanded.params_[name], rel=1e-10)
    assert weighted.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-12)


def test_rows_without_repeat_purchases_do_not_change_the_fit(
    repeaters: pd.DataFrame, fitted: GammaGamma
) -> None:
    only = GammaGamma().fit(repeaters["frequency"], repeaters["monetary_value"])
    assert only.params_ == pytest.approx(fitted.params_, rel=1e-12)
    assert only.n_obs_ == fitted.n_obs_


@pytest.mark.parametrize(
    ("frequency", "monetary_value", "message"),
    [
        ([1, -1, 2], [10.0, 10.0, 5.0], r"frequency must be a whole number >= 0 \(row 1"),
        ([1, 1.5, 2], [10.0, 10.0, 5.0], r"frequency must be a whole number >= 0 \(row 1"),
        ([1, 2, 2], [10.0, 0.0, 5.0], r"monetary_value must be > 0 .*row 1"),
        ([1, 0, 2], [10.0, -3.0, 5.0], r"monetary_value must be > 0 .*row 1"),
        ([1, 2, 2], [10.0, np.nan, 5.0], r"non-finite value .* position 1"),
        ([1, 2, 2], [10.0, np.inf, 5.0], r"non-finite value .* position 1"),
        ([1, 2], [10.0, 5.0, 3.0], r"different lengths"),
    ],
)
def test_invalid_inputs_are_rejected_naming_the_row(
    frequency: list[float], monetary_value: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        GammaGamma().fit(frequency, monetary_value)
    model = GammaGamma.from_params(NOTE_PARAMS)
    with pytest.raises(ValueError, match=message):
        model.conditional_expected_average_value(frequency, monetary_value)


def test_fit_needs_two_repeat_buyers() -> None:
    with pytest.raises(ModelFitError, match="at least two customers with repeat purchases"):
        GammaGamma().fit([0, 0, 3, 0], [0.0, 0.0, 25.0, 0.0])
    with pytest.raises(ModelFitError, match="at least two customers with repeat purchases"):
        GammaGamma().fit([1, 4], [10.0, 25.0], weights=[0.5, 0.5])


def test_fit_rejects_identical_repeat_buyers() -> None:
    with pytest.raises(ModelFitError, match="same frequency and monetary_value"):
        GammaGamma().fit([2, 2, 2, 0], [30.0, 30.0, 30.0, 0.0])


def test_predictions_before_fit_raise_not_fitted() -> None:
    model = GammaGamma()
    with pytest.raises(NotFittedError):
        model.conditional_expected_average_value([1], [10.0])
    with pytest.raises(NotFittedError):
        model.expected_average_value()
    with pytest.raises(NotFittedError):
        model.log_likelihood([1], [10.0])


def test_serialisation_round_trip(fitted: GammaGamma) -> None:
    restored = GammaGamma.from_dict(fitted.to_dict())
    x, m = np.array([0.0, 3.0]), np.array([0.0, 41.0])
    np.testing.assert_array_equal(
        restored.conditional_expected_average_value(x, m),
        fitted.conditional_expected_average_value(x, m),
    )


def test_flat_ridge_line_search_stop_is_accepted_at_the_optimum() -> None:
    # A simulated data set (found by the property test below) where L-BFGS-B's line search
    # stops "ABNORMAL" at the optimum because log L is flat to rounding along the q-gamma ridge.
    rng = np.random.default_rng(88421)
    x = 1 + rng.poisson(2.0, size=1500)
    m = simulate({"p": 2.6644963738548295, "q": 4.0, "gamma": 16.265625}, x, rng)
    model = GammaGamma().fit(x, m)
    assert model.converged_, model.convergence_message_
    from lifetimes import GammaGammaFitter

    with quiet_reference():
        reference = GammaGammaFitter().fit(x, m)
    ref = reference.params_
    np.testing.assert_allclose(
        [model.params_["p"], model.params_["q"], model.params_["gamma"]],
        [ref["p"], ref["q"], ref["v"]],
        rtol=1e-3,
    )
    assert model.log_likelihood_ >= -reference._negative_log_likelihood_ * 1500 - 1e-6


# ---------------------------------------------------------------------------- simulation
def test_simulate_matches_averaging_individual_transactions() -> None:
    # Property of the story: the mean of x gamma(p, nu) spends is gamma(px, nu x). Compare the
    # shortcut used by simulate() with explicit per-transaction draws (two-sample KS test).
    rng = np.random.default_rng(7)
    p, q, g = 6.25, 3.74, 15.44
    n, x = 4000, 3
    shortcut = simulate(NOTE_PARAMS, np.full(n, x), rng)
    nu = rng.gamma(q, 1.0 / g, size=n)
    explicit = rng.gamma(p, 1.0 / nu[:, None], size=(n, x)).mean(axis=1)
    assert stats.ks_2samp(shortcut, explicit).pvalue > 0.001
    assert np.all(simulate(NOTE_PARAMS, [0, 0], rng) == 0.0)


def test_simulated_spend_is_independent_of_frequency() -> None:
    rng = np.random.default_rng(11)
    x = 1 + rng.poisson(2.0, size=5000)
    m = simulate([6.25, 3.74, 15.44], x, rng)
    # Under independence the correlation is approximately N(0, 1/n): |r| < 4/sqrt(5000) = 0.057.
    assert abs(spend_frequency_correlation(x, m)) < 0.057


def test_simulate_rejects_bad_parameters() -> None:
    with pytest.raises(ValueError, match="finite and > 0"):
        simulate({"p": 1.0, "q": -1.0, "gamma": 2.0}, [1, 2])
    with pytest.raises(ValueError, match="missing"):
        simulate({"p": 1.0, "q": 2.0}, [1, 2])


def _wald_covers(model: GammaGamma, truth: dict[str, float], z: float) -> dict[str, bool]:
    """Whether the log-scale Wald interval estimate * exp(+-z se/estimate) contains the truth."""
    out = {}
    for name, true_value in truth.items():
        est = model.params_[name]
        se_log = model.standard_errors_[name] / est
        out[name] = abs(np.log(true_value) - np.log(est)) <= z * se_log
    return out


@settings(max_examples=6, deadline=None, derandomize=True)
@given(
    p=st.floats(1.0, 15.0),
    q=st.floats(2.5, 8.0),
    gamma=st.floats(2.0, 60.0),
    seed=st.integers(0, 2**32 - 1),
)
def test_fit_recovers_simulated_parameters(p: float, q: float, gamma: float, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = 1 + rng.poisson(2.0, size=1500)
    truth = {"p": p, "q": q, "gamma": gamma}
    m = simulate(truth, x, rng)
    model = GammaGamma().fit(x, m)
    assert model.converged_, model.convergence_message_
    # 4.5 standard errors: a true parameter falls outside with probability < 1e-5 each.
    assert all(_wald_covers(model, truth, z=4.5).values())
    # The population mean spend is far better determined than the parameters themselves.
    true_mean = p * gamma / (q - 1)
    assert model.expected_average_value() == pytest.approx(true_mean, rel=0.15)


@pytest.mark.slow
def test_wald_intervals_have_nominal_coverage() -> None:
    rng = np.random.default_rng(2024)
    truth = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    true_mean = 6.25 * 15.44 / 2.74
    reps = 120
    hits = {name: 0 for name in truth}
    mean_hits = 0
    for _ in range(reps):
        x = 1 + rng.poisson(1.5, size=800)
        model = GammaGamma().fit(x, simulate(truth, x, rng))
        for name, covered in _wald_covers(model, truth, z=1.959964).items():
            hits[name] += covered
        _, lo, hi = model.predict_interval("expected_average_value")
        mean_hits += bool(lo[0] <= true_mean <= hi[0])
    # 95% intervals over 120 replications: binomial sd = sqrt(.95*.05/120) = 0.020, so the
    # observed rate must lie within 0.95 +- 3.5 sd = [0.88, 1].
    for name, count in hits.items():
        assert count / reps >= 0.88, (name, count)
    assert mean_hits / reps >= 0.88


def test_grouped_objective_equals_the_per_row_sums() -> None:
    # The fit's objective groups x-only terms; it must equal the documented per-row formulas.
    from models.gammagamma import _grouped_neg_loglik, log_likelihood_gradient, log_likelihood_terms

    rng = np.random.default_rng(3)
    x = rng.integers(1, 9, size=500).astype(float)
    m = rng.gamma(3.0, 10.0, size=500)
    w = rng.integers(1, 4, size=500).astype(float)
    theta = np.array([4.0, 3.5, 12.0])
    value, grad = _grouped_neg_loglik(x, m, w)(theta)
    assert value == pytest.approx(-float(w @ log_likelihood_terms(theta, x, m)), rel=1e-12)
    np.testing.assert_allclose(grad, -(w @ log_likelihood_gradient(theta, x, m)), rtol=1e-10)
