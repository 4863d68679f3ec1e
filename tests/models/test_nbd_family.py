"""Checks shared by the NBD-family models: BG/NBD (Fader, Hardie & Lee 2005), MBG/NBD
(Batislam, Denizel & Filiztekin 2007) and, where the same check applies, Pareto/NBD
(Schmittlein, Morrison & Colombo 1987; Fader & Hardie 2005 note).

Each test is parametrized over the cases of ``tests/models/nbd_cases.py``; what is specific
to one model (published estimates, model-specific formulas) stays in that model's test file.
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models import NotFittedError
from models._nbd_common import BetaGeometricNBD, prepare_data
from tests.conftest import quiet_reference
from tests.models.nbd_cases import (
    ALL_CASES,
    BG_FAMILY,
    BGNBD_CASE,
    MBGNBD_CASE,
    PARETONBD_CASE,
    NbdCase,
    cdnow_columns,
    cdnow_fit,
    cdnow_summary,
    lifetimes_fit,
    reference_log_likelihood,
)


def _gradient_cases() -> list[Any]:
    return [
        pytest.param(case, theta, id=f"{case.id}-theta{i}")
        for case in (BGNBD_CASE, MBGNBD_CASE)
        for i, theta in enumerate(case.thetas)
    ]


EXTREME_VALUES = (1e-4, 1.0, 1e4)


def _extreme_cases() -> list[Any]:
    return [
        pytest.param(case, theta, id=f"{case.id}-theta{i}")
        for case in (BGNBD_CASE, MBGNBD_CASE)
        for i, theta in enumerate(itertools.product(EXTREME_VALUES, repeat=4))
    ]


# Rows each BG/NBD-family fit must reject, with the message naming the problem.
INVALID_ROWS = [
    ([1, 2], [5.0, 3.0], [4.0, 10.0], "recency exceeds T"),
    ([-1, 2], [0.0, 3.0], [4.0, 10.0], "frequency must be >= 0"),
    ([1.5, 2], [1.0, 3.0], [4.0, 10.0], "whole number"),
    ([1, 2], [-1.0, 3.0], [4.0, 10.0], "recency must be >= 0"),
    ([1, 2], [1.0, np.nan], [4.0, 10.0], "non-finite"),
    ([1, 2], [1.0, np.inf], [4.0, 10.0], "non-finite"),
    ([0, 0, 0], [0.0, 0.0, 0.0], [4.0, 10.0, 3.0], "no customer made a repeat purchase"),
    ([1], [1.0], [4.0], "at least two customers"),
    ([1, 2], [0.0, 0.0], [0.0, 0.0], "T = 0"),
]


# --------------------------------------------------------------- agreement with lifetimes
@pytest.mark.parametrize("case", BG_FAMILY)
def test_fit_agrees_with_lifetimes_on_cdnow(case: NbdCase) -> None:
    reference, fitted = lifetimes_fit(case), cdnow_fit(case)
    for name in case.names:
        assert fitted.params_[name] == pytest.approx(float(reference.params_[name]), rel=1e-3)
    # Ours is the maximum: never below lifetimes' likelihood at lifetimes' estimates.
    assert fitted.log_likelihood_ >= reference_log_likelihood(reference, cdnow_columns()) - 1e-9


@pytest.mark.parametrize("case", BG_FAMILY)
def test_predictions_equal_lifetimes_at_the_same_parameters(case: NbdCase) -> None:
    ref = lifetimes_fit(case)
    ours = case.model.from_params({k: float(v) for k, v in ref.params_.items()})
    x, t_x, age = cdnow_columns()
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
@pytest.mark.parametrize(("case", "theta"), _gradient_cases())
def test_gradient_equals_central_differences(case: NbdCase, theta: np.ndarray) -> None:
    assert case.neg_log_likelihood is not None
    nll = case.neg_log_likelihood
    model = case.model()
    assert isinstance(model, BetaGeometricNBD)
    data = model.prepare(*cdnow_columns())
    _, grad = nll(theta, data)
    for j in range(4):
        h = 1e-6 * theta[j]
        up, down = theta.copy(), theta.copy()
        up[j] += h
        down[j] -= h
        numeric = (nll(up, data)[0] - nll(down, data)[0]) / (2 * h)
        assert grad[j] == pytest.approx(numeric, rel=1e-5), j


@pytest.mark.parametrize("case", BG_FAMILY)
def test_compressed_and_expanded_data_give_the_same_fit(case: NbdCase) -> None:
    cdnow = cdnow_summary()
    counts = cdnow.groupby(["frequency", "recency", "T"]).size().reset_index(name="n")
    compressed = case.model().fit(counts["frequency"], counts["recency"], counts["T"], counts["n"])
    expanded = case.model().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    assert len(counts) < len(cdnow)
    for name in case.names:
        assert compressed.params_[name] == pytest.approx(expanded.params_[name], rel=1e-10)
    assert compressed.log_likelihood_ == pytest.approx(expanded.log_likelihood_, rel=1e-12)
    assert compressed.n_obs_ == expanded.n_obs_ == 2357


# ------------------------------------------------------------------- invalid inputs
@pytest.mark.parametrize("case", BG_FAMILY)
@pytest.mark.parametrize(("frequency", "recency", "T", "message"), INVALID_ROWS)
def test_invalid_data_is_rejected_with_a_message_naming_the_problem(
    case: NbdCase, frequency: list[float], recency: list[float], T: list[float], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        case.model().fit(frequency, recency, T)


@pytest.mark.parametrize("case", ALL_CASES)
def test_predictions_before_fit_raise_not_fitted(case: NbdCase) -> None:
    model = case.model()
    for call in (
        lambda: model.prob_alive([1], [1.0], [2.0]),
        lambda: model.conditional_expected_purchases(1.0, [1], [1.0], [2.0]),
        lambda: model.expected_purchases(1.0),
        lambda: model.prob_purchases(0, 1.0),
        lambda: model.prob_purchases(1, 1.0),
        model.summary,
    ):
        with pytest.raises(NotFittedError, match="not fitted"):
            call()


@pytest.mark.parametrize("case", ALL_CASES)
def test_prediction_inputs_are_validated(case: NbdCase) -> None:
    fitted = cdnow_fit(case)
    with pytest.raises(ValueError, match="recency exceeds T"):
        fitted.prob_alive([1], [3.0], [2.0])
    with pytest.raises(ValueError, match="t must be >= 0"):
        fitted.expected_purchases(-1.0)
    with pytest.raises(ValueError, match="t must be >= 0"):
        fitted.conditional_expected_purchases(-1.0, [1], [1.0], [2.0])
    with pytest.raises(ValueError, match=r"n must (be|contain) whole"):
        fitted.prob_purchases(0.5, 1.0)
    with pytest.raises(ValueError, match="incompatible lengths"):
        fitted.conditional_expected_purchases([1.0, 2.0, 3.0], [1, 2], [1.0, 1.0], [2.0, 2.0])
    bad = dict.fromkeys(case.names, 1.0) | {"alpha": -1.0}
    with pytest.raises(ValueError, match="parameters must be finite and > 0"):
        case.model.from_params(bad)


# ----------------------------------------------------------------------- extremes
@pytest.mark.parametrize(("case", "theta"), _extreme_cases())
def test_extreme_parameters_and_inputs_give_finite_outputs(
    case: NbdCase, theta: tuple[float, ...]
) -> None:
    assert case.extreme_rows is not None and case.neg_log_likelihood is not None
    model = case.model.from_params(dict(zip(case.names, theta, strict=True)))
    x, t_x, age = case.extreme_rows
    for horizon in (0.0, 1.0, 1e6):
        expected = model.conditional_expected_purchases(horizon, x, t_x, age)
        assert np.all(np.isfinite(expected)) and np.all(expected >= 0)
    alive = model.prob_alive(x, t_x, age)
    assert np.all((alive >= 0) & (alive <= 1))
    population = model.expected_purchases([0.0, 1.0, 1e6])
    assert np.all(np.isfinite(population)) and np.all(population >= 0)
    pmf = model.prob_purchases([0, 1, 100, 10_000], 1e6)
    assert np.all((pmf >= 0) & (pmf <= 1))
    data = prepare_data(x, t_x, age, np.ones_like(x), shift=case.shift)
    value, grad = case.neg_log_likelihood(np.array(theta), data)
    assert np.isfinite(value) and np.all(np.isfinite(grad))


# ------------------------------------------------------------- internal consistency
@pytest.mark.parametrize("case", BG_FAMILY)
def test_purchase_distribution_sums_to_one_and_has_the_expected_mean(case: NbdCase) -> None:
    # P(X(t) = n) (FHL 2005 eq. 8 and its MBG/NBD analogue) summed over n is 1 and its mean is
    # E[X(t)] (eq. 9).
    fitted = cdnow_fit(case)
    n = np.arange(0, 400)
    for horizon in (1.0, 39.0, 78.0):
        pmf = fitted.prob_purchases(n, horizon)
        assert pmf.sum() == pytest.approx(1.0, abs=1e-9)
        assert (n * pmf).sum() == pytest.approx(fitted.expected_purchases(horizon)[0], rel=1e-7)
    # At t = 0 nobody has bought yet, whether dropped at the first flip or not.
    assert fitted.prob_purchases(0, 0.0)[0] == pytest.approx(1.0, abs=1e-15)


@pytest.mark.parametrize("case", BG_FAMILY)
def test_new_customer_conditional_expectation_is_the_population_mean(case: NbdCase) -> None:
    # A customer with x = 0 and T = 0 is a brand-new customer: eq. (10) reduces to eq. (9).
    fitted = cdnow_fit(case)
    for horizon in (1.0, 39.0, 500.0):
        assert fitted.conditional_expected_purchases(horizon, 0, 0.0, 0.0)[0] == pytest.approx(
            fitted.expected_purchases(horizon)[0], rel=1e-12
        )


@pytest.mark.parametrize("case", BG_FAMILY)
def test_simulation_reproduces_model_moments(case: NbdCase) -> None:
    # Simulated counts over T = 52 vs the model's mean (eq. 9) and P(X = 0) (eq. 8).
    model = case.model.from_params(case.published)
    x, t_x = case.simulate(
        case.published, np.full(20_000, 52.0), np.random.default_rng(case.simulation_seed)
    )
    assert np.all((t_x >= 0) & (t_x <= 52.0)) and np.all(t_x[x == 0] == 0)
    mean = model.expected_purchases(52.0)[0]
    assert abs(x.mean() - mean) < 4 * x.std() / np.sqrt(x.shape[0])
    p0 = model.prob_purchases(0, 52.0)[0]
    assert abs((x == 0).mean() - p0) < 4 * np.sqrt(p0 * (1 - p0) / x.shape[0])


@pytest.mark.parametrize("case", ALL_CASES)
def test_simulate_rejects_bad_parameters_and_ages(case: NbdCase) -> None:
    ones = dict.fromkeys(case.names, 1.0)
    with pytest.raises(ValueError, match="missing"):
        case.simulate({name: ones[name] for name in case.names[:-1]}, [1.0], 0)
    with pytest.raises(ValueError, match="> 0"):
        case.simulate(ones | {"alpha": -1.0}, [1.0], 0)
    with pytest.raises(ValueError, match="finite and > 0"):
        case.simulate(ones | {"r": 0.0}, [1.0], 0)
    with pytest.raises(ValueError, match="T must be >= 0"):
        case.simulate(case.published, [-1.0], 0)


@pytest.mark.parametrize("case", ALL_CASES)
def test_serialisation_round_trip_keeps_predictions(case: NbdCase) -> None:
    fitted = cdnow_fit(case)
    restored = case.model.from_dict(fitted.to_dict())
    assert restored.params_ == fitted.params_
    np.testing.assert_array_equal(
        restored.conditional_expected_purchases(39, [0, 2, 5], [0, 30.43, 20], [38.86] * 3),
        fitted.conditional_expected_purchases(39, [0, 2, 5], [0, 30.43, 20], [38.86] * 3),
    )
    np.testing.assert_array_equal(
        restored.prob_alive([1, 4], [20.0, 35.0], [39.0, 39.0]),
        fitted.prob_alive([1, 4], [20.0, 35.0], [39.0, 39.0]),
    )


@pytest.mark.parametrize("case", ALL_CASES)
def test_delta_method_intervals_stay_in_range_and_bracket_the_estimate(case: NbdCase) -> None:
    fitted = cdnow_fit(case)
    x, t_x, age = case.interval_history
    est, low, high = fitted.predict_interval("prob_alive", x, t_x, age)
    assert np.all((low > 0) & (low < est) & (est < high) & (high < 1))
    est, low, high = fitted.predict_interval("conditional_expected_purchases", 39.0, x, t_x, age)
    assert np.all((low > 0) & (low < est) & (est < high))


# ------------------------------------------------------------------ simulation studies
def _recovery_cases() -> list[Any]:
    # Pareto/NBD: 4 fits of 3000 customers, about 4-8 s.
    return [
        *BG_FAMILY,
        pytest.param(PARETONBD_CASE, id=PARETONBD_CASE.id, marks=pytest.mark.slow),
    ]


@pytest.mark.parametrize("case", _recovery_cases())
def test_fit_recovers_simulated_parameters_within_their_99_9_percent_intervals(
    case: NbdCase,
) -> None:
    study = case.recovery
    truths = st.fixed_dictionaries(
        {name: st.floats(low, high) for name, (low, high) in study.bounds.items()}
    )

    @settings(max_examples=study.examples, deadline=None, derandomize=True)
    @given(truth=truths, seed=st.integers(0, 2**32 - 1))
    def check(truth: dict[str, float], seed: int) -> None:
        rng = np.random.default_rng(seed)
        age = rng.uniform(*study.age_range, size=study.customers)
        x, t_x = case.simulate(truth, age, rng)
        model = case.model().fit(x, t_x, age)
        assert model.converged_, model.convergence_message_
        for name, value in truth.items():
            # Wald z-score on the log scale; |z| < 3.29 is the two-sided 99.9% interval.
            se_log = model.standard_errors_[name] / model.params_[name]
            z = (np.log(model.params_[name]) - np.log(value)) / se_log
            assert abs(z) < 3.29, (name, model.params_, truth)

    check()


@pytest.mark.slow
@pytest.mark.parametrize("case", ALL_CASES)
def test_wald_and_delta_method_intervals_cover_the_truth(case: NbdCase) -> None:
    # 30 simulated cohorts of 2000 customers at the published CDNOW parameters (see
    # nbd_cases.py): 95% intervals for each parameter and for the case's prediction should
    # cover the truth in 80-100% of the cohorts.
    truth, study = case.published, case.coverage
    true_value = getattr(case.model.from_params(truth), study.prediction)(*study.args)[0]
    rng = np.random.default_rng(study.seed)
    covered = dict.fromkeys((*case.names, study.prediction), 0)
    runs = 30
    for _ in range(runs):
        age = rng.uniform(26.0, 78.0, size=2000)
        x, t_x = case.simulate(truth, age, rng)
        model = case.model().fit(x, t_x, age)
        for name, row in model.summary()["params"].items():
            covered[name] += row["lower_95"] <= truth[name] <= row["upper_95"]
        _, low, high = model.predict_interval(study.prediction, *study.args)
        covered[study.prediction] += bool(low[0] <= true_value <= high[0])
    for name, hits in covered.items():
        assert 0.8 <= hits / runs <= 1.0, (name, hits)
