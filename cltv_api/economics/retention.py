"""Cost of churn in a contractual setting, from a shifted-beta-geometric (sBG) fit.

The sBG model (Fader & Hardie 2007, "How to Project Customer Retention", J. Interactive
Marketing 21(1)) gives the retention rate r(t) = (beta + t - 1) / (alpha + beta + t - 1) and
survival S(t) = prod_{i<=t} r(i). Value conventions follow Fader & Hardie (2010, "Customer-Base
Valuation in a Contractual Setting: The Perils of Ignoring Heterogeneity", Marketing Science
29(1)): payments of ``value_per_period`` (margin) at the START of each period, ``d`` the
discount rate per period (> 0).

- Residual value of an active customer who has made n renewals: value x DERL(d, n) with
  DERL = sum_{k>=0} S(n+1+k) / S(n) / (1+d)^k (the next payment, made if she renews, is
  undiscounted; :meth:`models.sbg.SBG.derl`, :func:`models.clv.contractual_residual_value`).
  Long-tenured customers are worth more: survivors are increasingly the low-churn ones.
- Value of a new customer: value x DEL(d) = value x sum_{t>=0} S(t) / (1+d)^t.
- Value lost per churner: the residual value an active customer had, averaged over the active
  base (weighted by the customers at each tenure); the contractual counterpart of
  E[CLTV | alive] in :mod:`.churn_cost`.
- +-1 point of retention: every future retention rate r(t) moved by +-0.01 (kept in [0, 1]);
  survival is recomputed as the product of the shifted rates and the discounted value summed
  over a horizon long enough that the remainder is below 1e-10 of a payment
  (sum_{k>N} (1+d)^-k = (1+d)^-N / d). With no shift the sum equals DERL / DEL (tested).
- Forecast survival and retention curves with intervals: the delta method
  (:meth:`models._base.BaseModel.predict_interval`, logit scale) for a new cohort, or
  simulation from the parameters' asymptotic distribution (:meth:`sample_params`), needed for
  survival conditional on tenure, S(n + t) / S(n).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np

from models import clv
from models.sbg import SBG

from ..errors import FieldError, InvalidInput
from .cashflows import FieldChecks, FloatArray, check_discounting, per_period_rate

TAIL_TOLERANCE = 1e-10
MAX_SUM_PERIODS = 200_000
MAX_FORECAST_PERIODS = 1200
DEFAULT_POINTS = 0.01


@dataclass(frozen=True)
class TenureValue:
    """Value of an active customer with ``renewals`` renewals (currency)."""

    renewals: int
    customers: float
    next_retention: float
    derl: float
    residual_value: float
    residual_value_plus_point: float
    residual_value_minus_point: float


@dataclass(frozen=True)
class ContractualChurnCost:
    currency: str
    value_per_period: float
    discount_rate_per_period: float
    points: float
    new_customer_value: float
    new_customer_value_plus_point: float
    new_customer_value_minus_point: float
    active_customers: float
    residual_value_total: float
    value_lost_per_churner: float
    value_of_one_point_more_retention: float
    cost_of_one_point_less_retention: float
    by_tenure: list[TenureValue]
    sum_periods: int


def _check_model(checks: FieldChecks, model: object) -> None:
    if not isinstance(model, SBG) or not hasattr(model, "params_"):
        checks.add("model", "must be a fitted SBG model")


def shifted_residual_values(
    model: SBG, discount_rate: float, renewals: FloatArray, shift: float, n_terms: int
) -> FloatArray:
    """sum_{k=0..N} prod_{i=1..k+1} r'(n+i) / (1+d)^k per tenure n, r' = clip(r + shift, 0, 1).

    With ``shift = 0`` this is DERL(d, n) truncated after N + 1 terms (FH 2010).
    """
    theta = model._theta()
    t = renewals[:, None] + np.arange(1, n_terms + 2, dtype=np.float64)[None, :]
    r = np.clip(model._retention_rate(theta, t) + shift, 0.0, 1.0)
    survival = np.cumprod(r, axis=1)
    factors = (1.0 + discount_rate) ** -np.arange(n_terms + 1, dtype=np.float64)
    return np.asarray(survival @ factors, dtype=np.float64)


def sum_periods_needed(discount_rate: float) -> int:
    """Smallest N with (1+d)^-N / d <= 1e-10: terms beyond N add less than that."""
    return math.ceil(math.log(1.0 / (TAIL_TOLERANCE * discount_rate)) / math.log1p(discount_rate))


def contractual_churn_cost(
    model: SBG,
    value_per_period: float,
    *,
    annual_discount_rate: float = 0.10,
    period: str = "year",
    customers_by_renewals: Mapping[int, float] | None = None,
    points: float = DEFAULT_POINTS,
    currency: str = "",
) -> ContractualChurnCost:
    """Residual value by tenure, value lost per churner and the value of +-``points`` retention.

    ``customers_by_renewals`` maps renewals made (0, 1, ...) to the number of active customers
    with that tenure (default: one customer with 0 renewals). ``period`` is the length of one sBG
    period (the unit the model was fitted in); the discount rate per period comes from
    ``annual_discount_rate`` and must be positive.
    """
    base = {0: 1.0} if customers_by_renewals is None else dict(customers_by_renewals)
    checks = FieldChecks()
    _check_model(checks, model)
    checks.number("value_per_period", value_per_period, low=0.0)
    checks.number("points", points, low=0.0, high=1.0, low_open=True, high_open=True)
    check_discounting(checks, annual_discount_rate, period)
    if not base:
        checks.add("customers_by_renewals", "needs at least one tenure")
    for k, n in base.items():
        checks.whole(f"customers_by_renewals[{k}]", k, low=0, high=100_000)
        checks.number(f"customers_by_renewals[{k}]", n, low=0.0)
    checks.raise_if_any("the contractual churn inputs are not valid")
    d = per_period_rate(annual_discount_rate, period)
    if d <= 0:
        raise InvalidInput(
            "the sBG value needs a positive discount rate",
            errors=[
                FieldError("annual_discount_rate", "must be > 0", value=str(annual_discount_rate))
            ],
        )
    n_terms = sum_periods_needed(d)
    if n_terms > MAX_SUM_PERIODS:
        raise InvalidInput(
            "the discount rate is too small to sum the value numerically",
            errors=[
                FieldError(
                    "annual_discount_rate",
                    f"gives {d:.3g} per period: needs more than {MAX_SUM_PERIODS} periods",
                )
            ],
        )
    tenures = np.array(sorted(base), dtype=np.float64)
    counts = np.array([base[int(k)] for k in tenures], dtype=np.float64)
    derl = clv.contractual_residual_value(model, 1.0, d, tenures)
    plus = shifted_residual_values(model, d, tenures, points, n_terms)
    minus = shifted_residual_values(model, d, tenures, -points, n_terms)
    new = shifted_residual_values(model, d, np.zeros(1), 0.0, n_terms)
    new_plus = shifted_residual_values(model, d, np.zeros(1), points, n_terms)
    new_minus = shifted_residual_values(model, d, np.zeros(1), -points, n_terms)
    v = value_per_period
    active = float(counts.sum())
    residual_total = float(v * np.dot(counts, derl))
    by_tenure = [
        TenureValue(
            renewals=int(k),
            customers=float(n),
            next_retention=float(model.retention_rate(k + 1)[0]),
            derl=float(x),
            residual_value=float(v * x),
            residual_value_plus_point=float(v * p),
            residual_value_minus_point=float(v * m),
        )
        for k, n, x, p, m in zip(tenures, counts, derl, plus, minus, strict=True)
    ]
    return ContractualChurnCost(
        currency=currency,
        value_per_period=v,
        discount_rate_per_period=d,
        points=points,
        # DEL = first payment + DERL(0) discounted one period (FH 2010).
        new_customer_value=float(v * (1.0 + new[0] / (1.0 + d))),
        new_customer_value_plus_point=float(v * (1.0 + new_plus[0] / (1.0 + d))),
        new_customer_value_minus_point=float(v * (1.0 + new_minus[0] / (1.0 + d))),
        active_customers=active,
        residual_value_total=residual_total,
        value_lost_per_churner=residual_total / active if active > 0 else 0.0,
        value_of_one_point_more_retention=float(v * np.dot(counts, plus - derl)),
        cost_of_one_point_less_retention=float(v * np.dot(counts, derl - minus)),
        by_tenure=by_tenure,
        sum_periods=n_terms,
    )


@dataclass(frozen=True)
class RetentionForecast:
    """Forecast survival S(n+t)/S(n) and retention r(n+t), t = 1..periods, with intervals."""

    renewals: int
    periods: list[int]
    survival: list[float]
    survival_lower: list[float]
    survival_upper: list[float]
    retention: list[float]
    retention_lower: list[float]
    retention_upper: list[float]
    method: str
    level: float


def forecast_curves(
    model: SBG,
    periods: int,
    *,
    renewals: int = 0,
    level: float = 0.95,
    method: Literal["delta", "simulation"] = "delta",
    n_draws: int = 2000,
    seed: int = 0,
) -> RetentionForecast:
    """Survival and retention for the next ``periods`` periods with ``level`` intervals.

    ``method="delta"``: delta method on the logit scale (``predict_interval``), for a new cohort
    (``renewals=0``) only. ``"simulation"``: equal-tailed percentiles of the curves over
    ``n_draws`` parameter draws (``sample_params``, seeded), for any tenure.
    """
    checks = FieldChecks()
    _check_model(checks, model)
    checks.whole("periods", periods, low=1, high=MAX_FORECAST_PERIODS)
    checks.whole("renewals", renewals, low=0, high=100_000)
    checks.number("level", level, low=0.0, high=1.0, low_open=True, high_open=True)
    checks.choice("method", method, ("delta", "simulation"))
    checks.whole("n_draws", n_draws, low=10, high=100_000)
    checks.whole("seed", seed, low=0, high=2**63 - 1)
    if method == "delta" and renewals != 0:
        checks.add("method", "the delta method covers a new cohort (renewals=0); use simulation")
    checks.raise_if_any("the forecast settings are not valid")
    if not bool(np.all(np.isfinite(model.covariance_))):
        raise InvalidInput(
            "the sBG fit has no covariance matrix: intervals are undefined",
            errors=[FieldError("model", "has no covariance matrix")],
        )
    t = np.arange(1, periods + 1, dtype=np.float64)
    if method == "delta":
        s, s_lo, s_hi = model.predict_interval("survival", t, level=level)
        r, r_lo, r_hi = model.predict_interval("retention_rate", t, level=level)
    else:
        s, s_lo, s_hi, r, r_lo, r_hi = _simulated_curves(model, t, renewals, level, n_draws, seed)
    return RetentionForecast(
        renewals=renewals,
        periods=[int(x) for x in t],
        survival=_floats(s),
        survival_lower=_floats(s_lo),
        survival_upper=_floats(s_hi),
        retention=_floats(r),
        retention_lower=_floats(r_lo),
        retention_upper=_floats(r_hi),
        method=method,
        level=level,
    )


def _simulated_curves(
    model: SBG, t: FloatArray, renewals: int, level: float, n_draws: int, seed: int
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray, FloatArray, FloatArray]:
    draws = model.sample_params(n_draws, np.random.default_rng(seed))
    alpha, beta = draws[:, 0:1], draws[:, 1:2]
    times = renewals + t[None, :]
    retention = (beta + times - 1) / (alpha + beta + times - 1)
    survival = np.asarray(np.cumprod(retention, axis=1), dtype=np.float64)
    theta = model._theta()
    point_r = model._retention_rate(theta, renewals + t)
    point_s = np.asarray(np.cumprod(point_r), dtype=np.float64)
    s_lo, s_hi = clv.interval_from_draws(survival, level)
    r_lo, r_hi = clv.interval_from_draws(retention, level)
    return point_s, s_lo, s_hi, point_r, r_lo, r_hi


def _floats(values: FloatArray) -> list[float]:
    return [float(v) for v in np.asarray(values).ravel()]
