"""CLTV from fitted models: agreement with lifetimes, units, the per-history decomposition and
the delta-method variances (checked against parametric bootstrap and by coverage)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models import clv
from models.bgnbd import BGNBD
from models.bgnbd import simulate as simulate_bgnbd
from models.gammagamma import GammaGamma
from models.gammagamma import simulate as simulate_spend
from tests.conftest import quiet_reference


@pytest.fixture(scope="module")
def cdnow() -> pd.DataFrame:
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    with quiet_reference():
        return load_cdnow_summary_data_with_monetary_value()


@pytest.fixture(scope="module")
def fitted(cdnow: pd.DataFrame) -> tuple[BGNBD, GammaGamma]:
    purchases = BGNBD().fit(cdnow["frequency"], cdnow["recency"], cdnow["T"])
    repeat = cdnow[cdnow["frequency"] > 0]
    spend = GammaGamma().fit(repeat["frequency"], repeat["monetary_value"])
    return purchases, spend


def test_clv_equals_lifetimes_with_the_same_conventions(
    cdnow: pd.DataFrame, fitted: tuple[BGNBD, GammaGamma]
) -> None:
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    purchases, spend = fitted
    # lifetimes: 12 monthly steps of 4.345 weeks, discount rate 1% per month, cash at step end.
    horizon = clv.Horizon(n_steps=12, step_length=4.345, rate_per_step=0.01)
    ours = clv.customer_lifetime_value(
        purchases,
        spend,
        cdnow["frequency"],
        cdnow["recency"],
        cdnow["T"],
        cdnow["monetary_value"],
        horizon,
    )
    with quiet_reference():
        bg = BetaGeoFitter()
        bg.params_ = pd.Series(purchases.params_)
        bg.predict = bg.conditional_expected_number_of_purchases_up_to_time
        gg = GammaGammaFitter()
        gg.params_ = pd.Series(
            {"p": spend.params_["p"], "q": spend.params_["q"], "v": spend.params_["gamma"]}
        )
        theirs = gg.customer_lifetime_value(
            bg,
            cdnow["frequency"],
            cdnow["recency"],
            cdnow["T"],
            cdnow["monetary_value"],
            time=12,
            discount_rate=0.01,
            freq="W",
        ).to_numpy()
    np.testing.assert_allclose(ours, theirs, rtol=1e-9)


def test_horizon_from_units_converts_steps_and_rates() -> None:
    h = clv.Horizon.from_units(12, "months", "days", annual_discount_rate=0.1)
    assert h.n_steps == 12
    assert h.step_length == pytest.approx(365.25 / 12)
    assert (1 + h.rate_per_step) ** 12 == pytest.approx(1.1)
    weekly = clv.Horizon.from_units(52, "weeks", "weeks", annual_discount_rate=0.0)
    assert weekly.step_length == 1.0
    np.testing.assert_allclose(weekly.discount_factors(), 1.0)
    assert clv.convert_time(1, "months", "weeks") == pytest.approx(365.25 / 12 / 7)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"horizon": 0}, "positive"),
        ({"horizon": 2.5}, "whole number"),
        ({"horizon": 12, "horizon_unit": "fortnights"}, "unknown time unit"),
        ({"horizon": 12, "annual_discount_rate": -1.5}, "discount rate"),
        ({"horizon": 10**9}, "too long"),
    ],
)
def test_horizon_rejects_bad_units(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        clv.Horizon.from_units(**kwargs)  # type: ignore[arg-type]


def test_margin_must_be_a_share(cdnow: pd.DataFrame, fitted: tuple[BGNBD, GammaGamma]) -> None:
    purchases, spend = fitted
    h = clv.Horizon.from_units(12, "months", "weeks")
    with pytest.raises(ValueError, match="margin"):
        clv.customer_lifetime_value(purchases, spend, [1], [1.0], [2.0], [10.0], h, margin=30)


def test_long_horizons_are_chunked_without_changing_results(
    cdnow: pd.DataFrame, fitted: tuple[BGNBD, GammaGamma], monkeypatch: pytest.MonkeyPatch
) -> None:
    purchases, _ = fitted
    h = clv.Horizon.from_units(104, "weeks", "weeks", 0.1)
    args = (purchases, cdnow["frequency"], cdnow["recency"], cdnow["T"], h)
    whole = clv.discounted_expected_purchases(*args)
    monkeypatch.setattr(clv, "_CHUNK_CELLS", 1000)
    np.testing.assert_allclose(clv.discounted_expected_purchases(*args), whole, rtol=1e-12)


def test_history_values_in_chunks_equal_one_pass(
    cdnow: pd.DataFrame, fitted: tuple[BGNBD, GammaGamma], monkeypatch: pytest.MonkeyPatch
) -> None:
    purchases, _ = fitted
    h = clv.Horizon.from_units(12, "months", "weeks", 0.1)
    args = (purchases, cdnow["frequency"], cdnow["recency"], cdnow["T"], h)
    whole = clv.history_values(*args)
    monkeypatch.setattr(clv, "HISTORY_CHUNK", 100)  # 2,357 customers -> 24 chunks
    chunked = clv.history_values(*args)
    for name in ("discounted_purchases", "expected_purchases", "prob_alive"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-12)
    # The gradient is a forward difference (step 1e-6): summing the horizon's steps in other
    # chunks changes DEP in its last bits, which the difference magnifies to about 1e-8.
    for name in ("gradient", "variance"):
        np.testing.assert_allclose(getattr(chunked, name), getattr(whole, name), rtol=1e-6)


def test_decomposition_reproduces_direct_clv(
    cdnow: pd.DataFrame, fitted: tuple[BGNBD, GammaGamma]
) -> None:
    purchases, spend = fitted
    h = clv.Horizon.from_units(24, "months", "weeks", 0.1)
    direct = clv.customer_lifetime_value(
        purchases,
        spend,
        cdnow["frequency"],
        cdnow["recency"],
        cdnow["T"],
        cdnow["monetary_value"],
        h,
        margin=0.3,
    )
    hv = clv.history_values(purchases, cdnow["frequency"], cdnow["recency"], cdnow["T"], h)
    sc = clv.spend_coefficients(spend, cdnow["frequency"])
    value, variance = clv.customer_clv_and_variance(
        hv.discounted_purchases,
        hv.variance,
        sc.intercept,
        sc.slope,
        sc.var_intercept,
        sc.cov_intercept_slope,
        sc.var_slope,
        cdnow["monetary_value"].to_numpy(),
        0.3,
    )
    np.testing.assert_allclose(value, direct, rtol=1e-10)
    assert np.all(np.isfinite(variance)) and np.all(variance >= 0)
    total = clv.group_total(
        hv,
        sc,
        np.ones(len(cdnow)),
        cdnow["monetary_value"].to_numpy(),
        0.3,
        clv._log_covariance(purchases),
        clv._log_covariance(spend),
    )
    assert total.clv_total == pytest.approx(direct.sum(), rel=1e-10)
    assert total.customers == len(cdnow)


def test_delta_method_standard_errors_match_parametric_bootstrap(
    cdnow: pd.DataFrame, fitted: tuple[BGNBD, GammaGamma]
) -> None:
    purchases, spend = fitted
    h = clv.Horizon.from_units(12, "months", "weeks", 0.1)
    sample = cdnow.iloc[:200]
    args = (sample["frequency"], sample["recency"], sample["T"], sample["monetary_value"])
    draws = clv.clv_draws(purchases, spend, *args, h, n_draws=4000, rng=7)
    hv = clv.history_values(purchases, sample["frequency"], sample["recency"], sample["T"], h)
    sc = clv.spend_coefficients(spend, sample["frequency"])
    _, variance = clv.customer_clv_and_variance(
        hv.discounted_purchases,
        hv.variance,
        sc.intercept,
        sc.slope,
        sc.var_intercept,
        sc.cov_intercept_slope,
        sc.var_slope,
        sample["monetary_value"].to_numpy(),
        1.0,
    )
    # Relative standard errors are ~5-15%, where the linearisation is accurate to a few percent.
    np.testing.assert_allclose(np.sqrt(variance), draws.std(axis=0), rtol=0.1)
    total = clv.group_total(
        hv,
        sc,
        np.ones(len(sample)),
        sample["monetary_value"].to_numpy(),
        1.0,
        clv._log_covariance(purchases),
        clv._log_covariance(spend),
    )
    assert total.clv_total_se == pytest.approx(draws.sum(axis=1).std(), rel=0.1)
    lower, upper = clv.interval_from_draws(draws)
    assert np.all(lower <= draws.mean(axis=0)) and np.all(draws.mean(axis=0) <= upper)


@pytest.mark.slow
def test_interval_for_mean_clv_covers_the_truth_on_simulated_data() -> None:
    # Simulate customers from known BG/NBD (CDNOW weekly fit, FHL 2005) and Gamma-Gamma
    # (Fader & Hardie 2013) parameters; the 95% delta-method interval for the mean CLTV of the
    # observed customers, computed with fitted parameters, should cover the mean computed with the
    # true parameters about 95% of the time (binomial noise over 40 replications: accept 0.8-1.0).
    true_p = {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
    true_s = {"p": 6.25, "q": 3.74, "gamma": 15.44}
    h = clv.Horizon.from_units(12, "months", "weeks", 0.1)
    rng = np.random.default_rng(2024)
    covered = 0
    reps = 40
    for _ in range(reps):
        T = rng.uniform(27, 39, size=3000).round(2)
        x, t_x = simulate_bgnbd(true_p, T, rng)
        m = simulate_spend(true_s, x, rng)
        purchases = BGNBD().fit(x, t_x, T)
        spend = GammaGamma().fit(x[x > 0], m[x > 0])
        truth = clv.customer_lifetime_value(
            BGNBD.from_params(true_p), GammaGamma.from_params(true_s), x, t_x, T, m, h
        ).mean()
        hv = clv.history_values(purchases, x, t_x, T, h)
        sc = clv.spend_coefficients(spend, x)
        total = clv.group_total(
            hv,
            sc,
            np.ones_like(x),
            m,
            1.0,
            clv._log_covariance(purchases),
            clv._log_covariance(spend),
        )
        est, se = total.clv_total / len(x), total.clv_total_se / len(x)
        covered += abs(est - truth) <= 1.96 * se
    assert 0.8 <= covered / reps <= 1.0


@pytest.mark.parametrize("name", ["BGNBD", "MBGNBD", "ParetoNBD"])
def test_expectation_factorises_into_p_alive_times_an_x_t_part(name: str) -> None:
    # The fast path of models.clv relies on E[X(t)|x,t_x,T] / P(alive|x,t_x,T) not depending on
    # t_x (FHL 2005 eq. 10; Fader & Hardie 2005 note eq. 41): check it on several recencies.
    import models

    model = getattr(models, name).from_params(
        {"r": 0.243, "alpha": 4.414, "a": 0.793, "b": 2.426}
        if name != "ParetoNBD"
        else {"r": 0.553, "alpha": 10.58, "s": 0.606, "beta": 11.67}
    )
    assert model.expectation_factorises
    x = np.full(5, 3.0)
    t_x = np.array([1.0, 5.0, 12.5, 30.0, 38.86])
    T = np.full(5, 38.86)
    ratio = model.conditional_expected_purchases(20.0, x, t_x, T) / model.prob_alive(x, t_x, T)
    np.testing.assert_allclose(ratio, ratio[0], rtol=1e-10)


def test_fast_path_equals_direct_evaluation(
    cdnow: pd.DataFrame, fitted: tuple[BGNBD, GammaGamma]
) -> None:
    purchases, _ = fitted
    h = clv.Horizon.from_units(12, "months", "weeks", 0.1)
    args = [cdnow[c].to_numpy(dtype=float) for c in ("frequency", "recency", "T")]
    theta = purchases._theta()
    fast = clv._discounted_purchases(purchases, theta, h, *args)
    direct = clv._discounted_purchases_direct(purchases, theta, h, *args)
    np.testing.assert_allclose(fast, direct, rtol=1e-10)
