"""Tests for the MBG/NBD model (Batislam, Denizel & Filiztekin 2007; Wagner & Hoppe 2008).

Batislam et al. fitted MBG/NBD to a Turkish grocery panel that is not public, so their table
cannot be reproduced. We found no peer-reviewed MBG/NBD fit on the CDNOW sample; the closest
published figures are the CDNOW estimates of the R package BTYDplus (M. Platzer,
https://github.com/mplatzer/BTYDplus) that lifetimes' own test suite quotes in
``test_params_out_is_close_to_BTYDplus``: r = 0.525, alpha = 6.183, a = 0.891, b = 1.614
(three decimals). We test against those and, more tightly, against lifetimes'
ModifiedBetaGeoFitter (the checks MBG/NBD shares with BG/NBD and Pareto/NBD are in
``test_nbd_family.py``; the BTYDplus parameters are in ``nbd_cases.py``).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special

from models._nbd_common import prepare_data
from models.bgnbd import BGNBD, bgnbd_neg_log_likelihood
from models.mbgnbd import MBGNBD, mbgnbd_neg_log_likelihood
from tests.models.nbd_cases import BTYDPLUS_PARAMS, MBGNBD_CASE, cdnow_columns, cdnow_fit

THETA = MBGNBD_CASE.thetas[0]


@pytest.fixture(scope="module")
def fitted() -> MBGNBD:
    model = cdnow_fit(MBGNBD_CASE)
    assert isinstance(model, MBGNBD)
    return model


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


# --------------------------------------------------------------------- likelihood checks
def test_likelihood_has_the_dropout_term_for_customers_without_repeat_purchases() -> None:
    columns = cdnow_columns()
    # BDF 2007 likelihood written out directly: the second term is there for x = 0 too.
    x, t_x, age = (c[:50] for c in columns)
    assert (x == 0).any()
    r, alpha, a, b = THETA
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
    value, _ = mbgnbd_neg_log_likelihood(THETA, data)
    assert -value == pytest.approx(np.log(direct).sum(), rel=1e-12)


def test_likelihood_functions_refuse_data_prepared_for_the_other_model() -> None:
    columns = cdnow_columns()
    with pytest.raises(ValueError, match="shift=1"):
        mbgnbd_neg_log_likelihood(THETA, BGNBD().prepare(*columns))
    with pytest.raises(ValueError, match="shift=0"):
        bgnbd_neg_log_likelihood(THETA, MBGNBD().prepare(*columns))


def test_recency_of_customers_without_repeat_purchases_is_treated_as_zero(fitted: MBGNBD) -> None:
    # By definition t_x = 0 when x = 0; exports that store another value must not matter.
    x, t_x, age = cdnow_columns()
    noisy = np.where(x == 0, 0.5 * age, t_x)
    assert MBGNBD().fit(x, noisy, age).params_["r"] == pytest.approx(fitted.params_["r"], rel=1e-10)
    assert fitted.prob_alive(0, 5.0, 38.86)[0] == fitted.prob_alive(0, 0.0, 38.86)[0]


# ------------------------------------------------------------- internal consistency
def test_new_customer_is_alive_with_the_probability_of_surviving_the_first_flip(
    fitted: MBGNBD,
) -> None:
    # A brand-new customer (x = 0, T = 0) is alive with probability b / (a + b) (the first
    # flip); that the conditional expectation then equals the population mean E[X(t)] is
    # checked for BG/NBD and MBG/NBD in test_nbd_family.py.
    p = fitted.params_
    assert fitted.prob_alive(0, 0.0, 0.0)[0] == pytest.approx(p["b"] / (p["a"] + p["b"]), rel=1e-12)


def test_mbgnbd_has_more_zero_buyers_than_bgnbd_at_equal_parameters() -> None:
    # The extra flip after the first purchase only removes purchases (BDF 2007, Sec. 2).
    params = BTYDPLUS_PARAMS
    mbg, bg = MBGNBD.from_params(params), BGNBD.from_params(params)
    assert mbg.prob_purchases(0, 52.0)[0] > bg.prob_purchases(0, 52.0)[0]
    assert mbg.expected_purchases(52.0)[0] < bg.expected_purchases(52.0)[0]
