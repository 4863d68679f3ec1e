"""Tests for the BG/NBD model (Fader, Hardie & Lee 2005, Marketing Science 24(2), 275-284).

Only what is specific to BG/NBD is here; the checks it shares with MBG/NBD and Pareto/NBD
(agreement with lifetimes, gradient, compression, extremes, simulation studies) are in
``test_nbd_family.py``, with the FHL 2005 CDNOW parameters in ``nbd_cases.py``.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import integrate, special

from models import ModelFitError
from models._nbd_common import (
    _closed_forms,
    _group_rows,
    _quadrature,
    _series,
    expected_alive_purchases,
    prepare_data,
)
from models.bgnbd import BGNBD, bgnbd_neg_log_likelihood, simulate
from tests.models.nbd_cases import BGNBD_CASE, FHL_PARAMS, cdnow_columns, cdnow_fit

FHL_LOG_LIKELIHOOD = -9582.4  # FHL 2005, Sec. 6 (CDNOW, weeks); parameters in nbd_cases.py
THETA = BGNBD_CASE.thetas[0]


def _sig3(value: float) -> float:
    return float(f"{value:.3g}")


@pytest.fixture(scope="module")
def fitted() -> BGNBD:
    model = cdnow_fit(BGNBD_CASE)
    assert isinstance(model, BGNBD)
    return model


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


# --------------------------------------------------------------------- likelihood checks
def test_likelihood_of_each_customer_matches_fhl_equation_6() -> None:
    columns = cdnow_columns()
    # FHL 2005 eq. (6) written out directly (no log-space tricks) for a few customers.
    x, t_x, age = (c[:50] for c in columns)
    r, alpha, a, b = THETA
    common = special.gamma(r + x) * alpha**r / special.gamma(r)
    direct = common * (
        special.beta(a, b + x) / special.beta(a, b) / (alpha + age) ** (r + x)
        + (x > 0)
        * special.beta(a + 1, np.maximum(b + x - 1, 1e-9))
        / special.beta(a, b)
        / (alpha + t_x) ** (r + x)
    )
    data = prepare_data(x, np.where(x == 0, 0.0, t_x), age, np.ones_like(x), shift=0)
    value, _ = bgnbd_neg_log_likelihood(THETA, data)
    assert -value == pytest.approx(np.log(direct).sum(), rel=1e-12)


def test_zero_weight_rows_are_ignored(fitted: BGNBD) -> None:
    x, t_x, age = cdnow_columns()
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
def test_unidentifiable_data_raises_model_fit_error() -> None:
    with pytest.raises(ModelFitError, match="repeat purchase"):
        BGNBD().fit([0, 0], [0.0, 0.0], [5.0, 6.0])


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


# ------------------------------------------------------------------------ simulation
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
