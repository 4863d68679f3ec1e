"""Discounted customer lifetime value (CLTV) from fitted models, with explicit units.

Non-contractual customers (purchase model + spend model), following the approach of Fader,
Hardie & Lee (2005), "RFM and CLV: Using Iso-Value Curves for Customer Base Analysis", JMR
42(4): the horizon is cut into steps; in each step a customer is expected to make
``E[X(t_i) | history] - E[X(t_{i-1}) | history]`` purchases (the purchase model's conditional
expectation), each worth the expected spend per purchase (the Gamma-Gamma conditional mean)
times the margin; each step's value is discounted to today as a cash flow at the END of the step.
This is the same construction as ``lifetimes.utils._customer_lifetime_value`` (which uses
monthly steps), so the two agree when their conventions are set equal.

Contractual customers: the expected residual value of a customer who has made ``renewals``
renewals is ``value_per_period * DERL`` (Fader & Hardie 2010, "Customer-Base Valuation in a
Contractual Setting: The Perils of Ignoring Heterogeneity", Marketing Science 29(1)), with the
next payment made at the start of the coming period, i.e. undiscounted.

Units, everywhere:
- ``time_unit``: the unit of recency and T in the data (``"days"``, ``"weeks"``, ``"months"``).
- ``horizon`` in ``horizon_unit`` (same choices); the step is one ``horizon_unit``.
- ``annual_discount_rate``: effective annual rate, converted to the step by
  ``(1 + annual) ** (step_in_years) - 1``.
- ``margin``: share of spend kept as contribution; CLTV is margin, not revenue, unless margin=1.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

import numpy as np
from numpy.typing import ArrayLike

from ._compress import compress
from ._validation import FloatArray, as_float_array

TimeUnit = Literal["days", "weeks", "months"]

DAYS_PER_UNIT: dict[str, float] = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12.0}
"""Length of each time unit in days (a month is a twelfth of a Julian year)."""

DAYS_PER_YEAR = 365.25


class PurchaseModel(Protocol):
    """What CLTV needs from a fitted purchase model (BGNBD, MBGNBD, ParetoNBD)."""

    covariance_: FloatArray

    def _prob_alive(
        self, theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray: ...

    def _conditional_expected_purchases(
        self, theta: FloatArray, t: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
    ) -> FloatArray: ...

    def _theta(self) -> FloatArray: ...

    def sample_params(
        self, size: int, rng: np.random.Generator | int | None = None
    ) -> FloatArray: ...


class SpendModel(Protocol):
    """What CLTV needs from a fitted spend model (GammaGamma)."""

    covariance_: FloatArray

    def _conditional_expected_average_value(
        self, theta: FloatArray, x: FloatArray, m: FloatArray
    ) -> FloatArray: ...

    def _theta(self) -> FloatArray: ...

    def sample_params(
        self, size: int, rng: np.random.Generator | int | None = None
    ) -> FloatArray: ...


def convert_time(value: float, from_unit: str, to_unit: str) -> float:
    """Convert a duration between days, weeks and months (month = 365.25/12 days)."""
    for unit in (from_unit, to_unit):
        if unit not in DAYS_PER_UNIT:
            raise ValueError(f"unknown time unit {unit!r}; use one of {sorted(DAYS_PER_UNIT)}")
    return value * DAYS_PER_UNIT[from_unit] / DAYS_PER_UNIT[to_unit]


def per_period_rate(annual_rate: float, unit: str) -> float:
    """Effective discount rate per ``unit`` equivalent to an effective annual rate."""
    if not np.isfinite(annual_rate) or annual_rate <= -1:
        raise ValueError(f"annual discount rate must be > -1 and finite, got {annual_rate}")
    years = DAYS_PER_UNIT[unit] / DAYS_PER_YEAR
    return float((1.0 + annual_rate) ** years - 1.0)


@dataclass(frozen=True)
class Horizon:
    """A CLTV horizon cut into equal steps, with the discount rate per step.

    ``step_length`` is in the data's time unit; ``rate_per_step`` is the effective rate per step.
    """

    n_steps: int
    step_length: float
    rate_per_step: float

    @classmethod
    def from_units(
        cls,
        horizon: float,
        horizon_unit: str = "months",
        time_unit: str = "weeks",
        annual_discount_rate: float = 0.10,
    ) -> Horizon:
        if not np.isfinite(horizon) or horizon <= 0:
            raise ValueError(f"horizon must be a positive number, got {horizon}")
        n_steps = round(horizon)
        if abs(n_steps - horizon) > 1e-9:
            raise ValueError(f"horizon must be a whole number of {horizon_unit}, got {horizon}")
        if n_steps > 100_000:
            raise ValueError(f"horizon of {n_steps} {horizon_unit} is too long (max 100000 steps)")
        return cls(
            n_steps=n_steps,
            step_length=convert_time(1.0, horizon_unit, time_unit),
            rate_per_step=per_period_rate(annual_discount_rate, horizon_unit),
        )

    def discount_factors(self) -> FloatArray:
        """Discount factor of each step's cash flow, paid at the end of the step."""
        steps = np.arange(1, self.n_steps + 1, dtype=np.float64)
        return np.asarray((1.0 + self.rate_per_step) ** -steps, dtype=np.float64)


_CHUNK_CELLS = 2_000_000
"""Customers x steps evaluated at once; bounds memory for long horizons on many histories."""


def _discounted_purchases(
    model: PurchaseModel,
    theta: FloatArray,
    horizon: Horizon,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> FloatArray:
    """Discounted expected purchases per customer, evaluated in memory-bounded chunks.

    For models whose conditional expectation factorises as P(alive | x, t_x, T) times an
    expectation that depends on (x, T) only (BG/NBD, MBG/NBD, Pareto/NBD, BG/BB: see
    ``expectation_factorises``), the per-step sums are computed once per distinct (x, T) on a
    representative history and scaled by each customer's P(alive): far fewer evaluations of the
    hypergeometric expectation than one per history and step.
    """
    if getattr(model, "expectation_factorises", False):
        pairs = compress(x, T)
        ux, uT = pairs.columns
        rep_tx = np.where(ux > 0, uT, 0.0)
        rep = _discounted_purchases_direct(model, theta, horizon, ux, rep_tx, uT)
        per_alive = rep / model._prob_alive(theta, ux, rep_tx, uT)
        return np.asarray(
            model._prob_alive(theta, x, t_x, T) * per_alive[pairs.inverse], dtype=np.float64
        )
    return _discounted_purchases_direct(model, theta, horizon, x, t_x, T)


def _discounted_purchases_direct(
    model: PurchaseModel,
    theta: FloatArray,
    horizon: Horizon,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> FloatArray:
    weights = horizon.discount_factors()
    chunk = max(1, _CHUNK_CELLS // (horizon.n_steps + 1))
    out = np.empty(x.shape[0])
    for start in range(0, x.shape[0], chunk):
        part = slice(start, start + chunk)
        out[part] = (
            _purchases_per_step(model, theta, horizon, x[part], t_x[part], T[part]) @ weights
        )
    return out


def _purchases_per_step(
    model: PurchaseModel,
    theta: FloatArray,
    horizon: Horizon,
    x: FloatArray,
    t_x: FloatArray,
    T: FloatArray,
) -> FloatArray:
    """Expected purchases in each step, shape (n_customers, n_steps)."""
    ends = horizon.step_length * np.arange(0, horizon.n_steps + 1, dtype=np.float64)
    grid = np.broadcast_arrays(ends[None, :], x[:, None], t_x[:, None], T[:, None])
    flat = [np.ascontiguousarray(a).ravel() for a in grid]
    cumulative = np.asarray(
        model._conditional_expected_purchases(theta, *flat), dtype=np.float64
    ).reshape(grid[0].shape)
    return np.asarray(np.diff(cumulative, axis=1), dtype=np.float64)


def discounted_expected_purchases(
    model: PurchaseModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    horizon: Horizon,
    *,
    theta: FloatArray | None = None,
) -> FloatArray:
    """Sum over steps of expected purchases times the step's discount factor (per customer)."""
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    age = as_float_array(T, "T")
    params = model._theta() if theta is None else theta
    return _discounted_purchases(model, params, horizon, x, t_x, age)


def customer_lifetime_value(
    purchase_model: PurchaseModel,
    spend_model: SpendModel | None,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon: Horizon,
    *,
    margin: float = 1.0,
) -> FloatArray:
    """Discounted CLTV per customer over ``horizon`` (margin x spend x discounted purchases).

    ``monetary_value`` is the customer's observed mean spend per repeat purchase. With a
    ``spend_model`` the Gamma-Gamma conditional expected spend is used; without one, the
    observed mean spend is taken at face value (zero for customers without repeat purchases).
    """
    _check_margin(margin)
    x = as_float_array(frequency, "frequency")
    m = as_float_array(monetary_value, "monetary_value")
    spend = (
        m
        if spend_model is None
        else spend_model._conditional_expected_average_value(spend_model._theta(), x, m)
    )
    purchases = discounted_expected_purchases(purchase_model, x, recency, T, horizon)
    return np.asarray(margin * spend * purchases, dtype=np.float64)


def clv_draws(
    purchase_model: PurchaseModel,
    spend_model: SpendModel | None,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    monetary_value: ArrayLike,
    horizon: Horizon,
    *,
    margin: float = 1.0,
    n_draws: int = 200,
    rng: np.random.Generator | int | None = None,
) -> FloatArray:
    """CLTV per customer under parameter uncertainty: shape (n_draws, n_customers).

    Parametric bootstrap: each draw takes the purchase and spend models' parameters from their
    asymptotic (log-normal) sampling distributions and recomputes every customer's CLTV, so sums
    over customers of one draw give the uncertainty of segment totals with correlations intact.
    Call it on unique histories and weight by counts: the cost is n_draws x unique rows x steps.
    """
    _check_margin(margin)
    if not 1 <= n_draws <= 100_000:
        raise ValueError(f"n_draws must be between 1 and 100000, got {n_draws}")
    generator = np.random.default_rng(rng)
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    age = as_float_array(T, "T")
    m = as_float_array(monetary_value, "monetary_value")
    purchase_thetas = purchase_model.sample_params(n_draws, generator)
    spend_thetas = None if spend_model is None else spend_model.sample_params(n_draws, generator)
    out = np.empty((n_draws, x.shape[0]))
    for i in range(n_draws):
        purchases = _discounted_purchases(purchase_model, purchase_thetas[i], horizon, x, t_x, age)
        if spend_model is None or spend_thetas is None:
            spend = m
        else:
            spend = spend_model._conditional_expected_average_value(spend_thetas[i], x, m)
        out[i] = margin * spend * purchases
    return out


def interval_from_draws(
    draws: FloatArray, level: float = 0.95, axis: int = 0
) -> tuple[FloatArray, FloatArray]:
    """Equal-tailed percentile interval from simulation draws."""
    if not 0 < level < 1:
        raise ValueError("level must be between 0 and 1")
    lower, upper = np.quantile(draws, [(1 - level) / 2, (1 + level) / 2], axis=axis)
    return np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)


class RetentionModel(Protocol):
    """What contractual value needs from a fitted retention model (SBG)."""

    def derl(self, discount_rate: float, renewals: ArrayLike) -> FloatArray: ...


def contractual_residual_value(
    model: RetentionModel,
    value_per_period: float,
    discount_rate_per_period: float,
    renewals: ArrayLike | Sequence[int],
) -> FloatArray:
    """Expected discounted residual value of a customer who has made ``renewals`` renewals.

    ``value_per_period`` is the margin of one period's payment; payments are made at the start
    of each period, the next one undiscounted (Fader & Hardie 2010, DERL).
    """
    if not np.isfinite(value_per_period):
        raise ValueError("value_per_period must be finite")
    return np.asarray(
        value_per_period * model.derl(discount_rate_per_period, renewals), dtype=np.float64
    )


def _check_margin(margin: float) -> None:
    if not np.isfinite(margin) or not 0 <= margin <= 1:
        raise ValueError(f"margin must be between 0 and 1, got {margin}")


# --------------------------------------------------------------------------------------------
# Scalable valuation: per-history and per-frequency pieces that combine into any customer's or
# segment's CLTV and its delta-method variance without touching individual customers in Python.
#
# The Gamma-Gamma conditional mean spend is linear in the observed mean spend m:
#   E[M | x, m] = a(x) + b(x) m   (Fader & Hardie 2013, eq. 5),
# and the purchase part depends only on the history h = (x, t_x, T), so
#   CLTV_i = margin * (a(x_i) + b(x_i) m_i) * DEP(h_i),
# where DEP is the discounted expected number of purchases over the horizon. A segment's total is
#   margin * sum_h DEP_h * (a(x_h) n_h + b(x_h) M_h),
# with n_h customers and M_h the sum of their m in the segment. Derivatives with respect to the
# log-parameters of both models give delta-method variances (the models are fitted separately,
# so their estimates are treated as independent).
# --------------------------------------------------------------------------------------------


def _log_covariance(model: PurchaseModel | SpendModel) -> FloatArray:
    theta = model._theta()
    return np.asarray(model.covariance_ / np.outer(theta, theta), dtype=np.float64)


def _log_gradient(
    func: Callable[[FloatArray], FloatArray],
    theta: FloatArray,
    step: float = 1e-5,
    base: FloatArray | None = None,
) -> FloatArray:
    """Gradient of a vector function wrt log(theta) by finite differences: shape (n, k).

    Central differences by default; forward differences from ``base`` = func(theta) when it is
    given (half the evaluations, relative error ~ step, ample for standard errors).
    """
    cols = []
    for j in range(theta.shape[0]):
        up = theta.copy()
        up[j] *= np.exp(step)
        if base is not None:
            cols.append((func(up) - base) / step)
            continue
        down = theta.copy()
        down[j] *= np.exp(-step)
        cols.append((func(up) - func(down)) / (2 * step))
    return np.stack(cols, axis=-1)


@dataclass(frozen=True)
class HistoryValues:
    """Purchase-model quantities per unique history (x, t_x, T).

    ``discounted_purchases`` (DEP) and its gradient wrt the log-parameters, the delta-method
    variance of DEP, expected (undiscounted) purchases over the horizon and P(alive).
    """

    discounted_purchases: FloatArray
    gradient: FloatArray
    variance: FloatArray
    expected_purchases: FloatArray
    prob_alive: FloatArray


HISTORY_CHUNK = 65_536
"""Histories evaluated at a time by :func:`history_values` (bounds its temporary memory)."""


def history_values(
    model: PurchaseModel,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    horizon: Horizon,
) -> HistoryValues:
    """Evaluate a fitted purchase model on unique histories for CLTV over ``horizon``.

    Histories are evaluated in chunks of :data:`HISTORY_CHUNK`, so the temporaries of the
    finite-difference gradient stay a few tens of MB however many histories there are.
    """
    x = as_float_array(frequency, "frequency")
    t_x = as_float_array(recency, "recency")
    age = as_float_array(T, "T")
    theta = model._theta()
    cov = _log_covariance(model)
    chunks = [
        _history_values_chunk(model, theta, cov, horizon, x[s], t_x[s], age[s])
        for s in _chunks(x.shape[0], HISTORY_CHUNK)
    ]
    if len(chunks) == 1:
        return chunks[0]
    return HistoryValues(
        *(
            np.concatenate([getattr(c, name) for c in chunks])
            for name in HistoryValues.__dataclass_fields__
        )
    )


def _chunks(n: int, size: int) -> list[slice]:
    """Slices covering ``range(n)`` in pieces of at most ``size`` (one empty slice for n = 0)."""
    return [slice(start, start + size) for start in range(0, max(n, 1), size)]


def _history_values_chunk(
    model: PurchaseModel,
    theta: FloatArray,
    cov: FloatArray,
    horizon: Horizon,
    x: FloatArray,
    t_x: FloatArray,
    age: FloatArray,
) -> HistoryValues:
    dep = _discounted_purchases(model, theta, horizon, x, t_x, age)
    grad = _log_gradient(
        lambda th: _discounted_purchases(model, th, horizon, x, t_x, age), theta, 1e-6, base=dep
    )
    variance = np.einsum("ni,ij,nj->n", grad, np.nan_to_num(cov), grad)
    if not np.all(np.isfinite(cov)):
        variance = np.full_like(dep, np.nan)
    total_time = np.full_like(x, horizon.n_steps * horizon.step_length)
    expected = model._conditional_expected_purchases(theta, total_time, x, t_x, age)
    alive = model._prob_alive(theta, x, t_x, age)
    return HistoryValues(
        discounted_purchases=dep,
        gradient=grad,
        variance=np.maximum(variance, 0.0),
        expected_purchases=np.asarray(expected, dtype=np.float64),
        prob_alive=np.asarray(alive, dtype=np.float64),
    )


@dataclass(frozen=True)
class SpendCoefficients:
    """Expected spend per purchase as a(x) + b(x) m, per unique frequency x.

    Gradients wrt the spend model's log-parameters and the pieces of the delta-method variance
    of a(x) + b(x) m: var = var_a + 2 m cov_ab + m^2 var_b. Without a spend model the observed
    mean spend is used at face value: a = 0, b = 1, no variance.
    """

    intercept: FloatArray
    slope: FloatArray
    grad_intercept: FloatArray
    grad_slope: FloatArray
    var_intercept: FloatArray
    cov_intercept_slope: FloatArray
    var_slope: FloatArray


def spend_coefficients(model: SpendModel | None, frequency: ArrayLike) -> SpendCoefficients:
    """Intercept and slope of the conditional expected spend for each frequency."""
    x = as_float_array(frequency, "frequency")
    zeros = np.zeros_like(x)
    if model is None:
        empty = np.zeros((x.shape[0], 0))
        return SpendCoefficients(zeros, np.ones_like(x), empty, empty, zeros, zeros, zeros)
    theta = model._theta()

    def intercept(th: FloatArray) -> FloatArray:
        return np.asarray(model._conditional_expected_average_value(th, x, zeros), dtype=np.float64)

    def slope(th: FloatArray) -> FloatArray:
        ones = np.ones_like(x)
        return np.asarray(
            model._conditional_expected_average_value(th, x, ones) - intercept(th),
            dtype=np.float64,
        )

    ga = _log_gradient(intercept, theta)
    gb = _log_gradient(slope, theta)
    cov = _log_covariance(model)
    if not np.all(np.isfinite(cov)):
        nan = np.full_like(x, np.nan)
        return SpendCoefficients(intercept(theta), slope(theta), ga, gb, nan, nan, nan)
    return SpendCoefficients(
        intercept=intercept(theta),
        slope=slope(theta),
        grad_intercept=ga,
        grad_slope=gb,
        var_intercept=np.einsum("ni,ij,nj->n", ga, cov, ga),
        cov_intercept_slope=np.einsum("ni,ij,nj->n", ga, cov, gb),
        var_slope=np.einsum("ni,ij,nj->n", gb, cov, gb),
    )


def customer_clv_and_variance(
    dep: FloatArray,
    dep_variance: FloatArray,
    intercept: FloatArray,
    slope: FloatArray,
    var_intercept: FloatArray,
    cov_intercept_slope: FloatArray,
    var_slope: FloatArray,
    monetary_value: FloatArray,
    margin: float,
) -> tuple[FloatArray, FloatArray]:
    """CLTV and its delta-method variance per customer from the joined per-history pieces.

    The same expression is written in the engine for millions of customers; this numpy version
    defines it and is what the tests check.
    """
    spend = intercept + slope * monetary_value
    spend_var = (
        var_intercept + 2 * monetary_value * cov_intercept_slope + monetary_value**2 * var_slope
    )
    clv = margin * spend * dep
    variance = margin**2 * (spend**2 * dep_variance + dep**2 * spend_var)
    return clv, variance


@dataclass(frozen=True)
class GroupTotal:
    """Totals over a group of customers, with the gradient of the CLTV total wrt the
    log-parameters of the purchase and spend models (to combine groups that share a model)
    and the delta-method standard error of the total."""

    customers: float
    clv_total: float
    clv_total_se: float
    revenue_total: float
    purchases_total: float
    grad_purchase: FloatArray
    grad_spend: FloatArray


def total_variance(
    grad_purchase: FloatArray,
    grad_spend: FloatArray,
    purchase_log_cov: FloatArray,
    spend_log_cov: FloatArray | None,
) -> float:
    """Delta-method variance of a total from its gradients (models fitted independently)."""
    variance = float(grad_purchase @ purchase_log_cov @ grad_purchase)
    if spend_log_cov is not None and grad_spend.size:
        variance += float(grad_spend @ spend_log_cov @ grad_spend)
    return variance


def group_total(
    hv: HistoryValues,
    coefficients: SpendCoefficients,
    counts: FloatArray,
    spend_sums: FloatArray,
    margin: float,
    purchase_log_cov: FloatArray,
    spend_log_cov: FloatArray | None,
) -> GroupTotal:
    """Total CLTV of a group from its histories: ``counts`` customers and ``spend_sums`` (sum of m)
    per history row; ``hv`` and ``coefficients`` are aligned with those rows.
    """
    spend_total = coefficients.intercept * counts + coefficients.slope * spend_sums
    total = margin * float(np.dot(hv.discounted_purchases, spend_total))
    grad_p = margin * (hv.gradient.T @ spend_total)
    grad_s = margin * (
        coefficients.grad_intercept.T @ (hv.discounted_purchases * counts)
        + coefficients.grad_slope.T @ (hv.discounted_purchases * spend_sums)
    )
    variance = total_variance(grad_p, grad_s, purchase_log_cov, spend_log_cov)
    return GroupTotal(
        customers=float(counts.sum()),
        clv_total=total,
        clv_total_se=float(np.sqrt(max(variance, 0.0))) if np.isfinite(variance) else float("nan"),
        revenue_total=float(np.dot(hv.expected_purchases, spend_total)),
        purchases_total=float(np.dot(hv.expected_purchases, counts)),
        grad_purchase=np.asarray(grad_p, dtype=np.float64),
        grad_spend=np.asarray(grad_s, dtype=np.float64),
    )
