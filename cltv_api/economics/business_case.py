"""Business case of a customer-experience (CX) initiative: NPV, ROI, payback and break-even.

An initiative costs ``one_off_cost`` today (period 0) and ``running_cost_per_period`` in every
period 1..H of the plan; from period ``start_period + 1`` on it changes the behaviour of one or
more customer segments. Each segment has a *baseline* (what its customers are worth without the
initiative) and *effects*; the incremental value is the difference between the two worlds,
period by period, and is discounted with the conventions of :mod:`.cashflows` (cash at the end
of each period by default; period 0 = today).

Baselines (per period t = 1..H of the plan; r_t is the retention from period t to t+1):

- MANUAL (:class:`ManualBaseline`): N active customers, margin m per active customer per period,
  constant retention r: active customers N S_t, value N m S_t with S_t = r^(t-1) (the simple
  retention model of Gupta & Lehmann 2003, see :mod:`.calculator`).
- FROM A FIT (:class:`CurveBaseline`): the expected total margin v_t of the segment's customers
  per period, e.g. from a BG/NBD or Pareto/NBD fit via :func:`baseline_from_model`. In these
  models an active customer's purchase rate is constant, so the decline of expected purchases
  is survival: the implied retention is r_t = v_{t+1} / v_t and S_t = v_t / v_1 (Fader, Hardie
  & Lee 2005, "Counting Your Customers the Easy Way", Marketing Science 24(2); the per-step
  expectation of :mod:`models.clv`). Value per active customer m = v_1 / N with N the expected
  active customers in period 1.
- CONTRACTUAL (:class:`SBGBaseline`): an sBG fit (Fader & Hardie 2007, "How to Project
  Customer Retention", J. Interactive Marketing 21(1)) for customers who have made ``renewals``
  renewals: r_t = r(renewals + t) = (beta + renewals + t - 1) / (alpha + beta + renewals + t - 1).

Effects (from period s + 1 on, s = ``start_period``; shares are fractions, 0.02 = 2%):

- ``churn_reduction_share`` p: churn c_t = 1 - r_t becomes c_t (1 - p);
- ``churn_reduction_points`` delta: churn falls by delta (after the share), i.e. r_t + delta,
  capped at 1. The survival with the initiative is the product of the modified retentions,
  S'_t = prod_{i<t} r'_i; the retention out of period i changes when period i > s;
- ``spend_uplift`` and ``frequency_uplift``: the margin per active customer is multiplied by
  (1 + spend)(1 + frequency) (survival unchanged: more purchases are assumed not to change the
  dropout process);
- ``nps_shift``: shares of the segment's detractors move to passives / promoters at the start of
  period s + 1. Moved customers = N x detractor share x r_D^s (detractors still active then)
  x share moved; in the k-th period after the move each is worth the difference of the group
  value streams of :func:`cltv_api.economics.nps.group_stream` (margin + referrals x value of a
  new customer, one level), e.g. (m_P + f_P V) r_P^(k-1) - (m_D + f_D V) r_D^(k-1);
- ``referrals``: new customers per period from period s + 1 on, each booked in the period it
  arrives at the value of a new customer: as given, or from the baseline,
  V = sum_{j=1..H} m S_j / (1 + d)^(j-1) (valued at acquisition, first period undiscounted;
  a referred customer behaves like the segment's current customers).

An effect larger than its base is rejected (InvalidInput naming the field): a churn reduction
above the current churn, a share above 100%, a spend fall beyond -100%, NPS shares summing to
more than 1.

Break-even effect size: the factor k applied to every effect at once (churn reductions, uplifts,
NPS shares, referral numbers) for which NPV(k) = 0, found with scipy ``brentq`` on [0, 100]
(the first crossing of a grid, then refined). When k pushes an effect past its valid range it is
capped (churn never below 0, NPS shares normalised to sum 1), so NPV is flat there.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields, is_dataclass, replace
from typing import Any, cast

import numpy as np
from numpy.typing import ArrayLike
from scipy import optimize

from models import clv
from models.sbg import SBG

from ..errors import FieldError, InvalidInput
from . import nps
from .calculator import MAX_CURVE_PERIODS, PERIOD_YEARS, PeriodUnit
from .cashflows import (
    FieldChecks,
    FloatArray,
    Timing,
    annual_rate,
    cash_flow_times,
    check_discounting,
    irr,
    payback_period,
    roi,
)

MAX_PERIODS = MAX_CURVE_PERIODS
MAX_MONEY = 1e15
"""Largest amount of money one input may be (a cost, a margin per customer), in ``currency``."""
MAX_CUSTOMERS = 1e12
"""Largest customer count one input may be (more than the world's population, by far)."""
MAX_UPLIFT = 1000.0
"""Largest spend or frequency uplift (1000 = +100,000%). With :data:`MAX_MONEY`,
:data:`MAX_CUSTOMERS` and :data:`MAX_PERIODS` every cash flow stays below ~1e35: the sums can
never overflow to infinity."""
"""Longest plan, in periods (600 months = 50 years)."""
BREAK_EVEN_MAX_SCALE = 100.0
_BREAK_EVEN_GRID = np.unique(
    np.concatenate([np.linspace(0.0, 2.0, 401), np.geomspace(2.0, 100.0, 400)])
)
_CELLS_PER_CHUNK = 2_000_000
"""Scenarios x periods evaluated at once by :func:`simulate_npv` (bounds memory)."""


# ----------------------------------------------------------------------------- inputs
@dataclass(frozen=True)
class ManualBaseline:
    """N active customers, margin per active customer per period (currency), retention per
    period. ``value_relative_se``: relative standard error of the segment's value, used only by
    the Monte Carlo simulation (0 = known exactly)."""

    customers: float
    margin_per_customer: float
    retention: float
    value_relative_se: float = 0.0


@dataclass(frozen=True)
class CurveBaseline:
    """Expected total margin of the segment's customers in each period 1..K (K >= horizon).

    ``customers``: how many customers the curve is for; ``active_customers``: how many of them
    are expected to be active in period 1 (e.g. the sum of P(alive)); None = ``customers``.
    """

    customers: float
    value_per_period: tuple[float, ...]
    active_customers: float | None = None
    value_relative_se: float = 0.0
    source: str = ""


@dataclass(frozen=True)
class SBGBaseline:
    """Contractual segment: a fitted :class:`models.sbg.SBG`, the customers active now (who have
    each made ``renewals`` renewals) and the margin per customer per period."""

    model: SBG
    customers: float
    margin_per_customer: float
    renewals: int = 0


Baseline = ManualBaseline | CurveBaseline | SBGBaseline


@dataclass(frozen=True)
class NpsShift:
    """Shares of the segment's detractors the initiative turns into passives / promoters."""

    profile: nps.NpsProfile
    detractors_to_passive: float = 0.0
    detractors_to_promoter: float = 0.0


@dataclass(frozen=True)
class Referrals:
    """New customers per period; each worth ``value_per_new_customer`` (None = from baseline)."""

    new_customers_per_period: float
    value_per_new_customer: float | None = None


@dataclass(frozen=True)
class Effects:
    """What the initiative changes in a segment (fractions: 0.02 = 2%, 2 points)."""

    churn_reduction_points: float = 0.0
    churn_reduction_share: float = 0.0
    spend_uplift: float = 0.0
    frequency_uplift: float = 0.0
    nps_shift: NpsShift | None = None
    referrals: Referrals | None = None


@dataclass(frozen=True)
class SegmentCase:
    name: str
    baseline: Baseline
    effects: Effects = field(default_factory=Effects)


@dataclass(frozen=True)
class BusinessCaseInput:
    """The initiative and the segments it affects. Money in ``currency`` (a label only)."""

    name: str
    currency: str
    one_off_cost: float
    running_cost_per_period: float
    horizon_periods: int
    segments: tuple[SegmentCase, ...]
    start_period: int = 0
    annual_discount_rate: float = 0.10
    period: PeriodUnit = "month"
    timing: Timing = "end"


# ----------------------------------------------------------------------------- results
@dataclass(frozen=True)
class PeriodRow:
    """One period of the plan (period 0 = today); money in the case's currency."""

    period: int
    baseline_value: float
    value_with_initiative: float
    incremental_value: float
    incremental_customers_retained: float
    referred_customers: float
    costs: float
    net_cash_flow: float
    discount_factor: float
    present_value: float
    cumulative_net_cash_flow: float
    cumulative_present_value: float


@dataclass(frozen=True)
class SegmentResult:
    name: str
    baseline_kind: str
    pv_baseline_value: float
    pv_value_with_initiative: float
    pv_incremental_value: float
    incremental_value: float
    incremental_customers_retained_last_period: float


@dataclass(frozen=True)
class BreakEvenEffect:
    """One effect at break-even: its value times k (and whether that exceeds its valid range,
    in which case the model used the capped value)."""

    input: str
    value: float
    break_even_value: float
    capped: bool


@dataclass(frozen=True)
class BreakEven:
    scale: float
    effects: list[BreakEvenEffect]


@dataclass(frozen=True)
class BusinessCaseResult:
    name: str
    currency: str
    period: str
    timing: str
    discount_rate_per_period: float
    npv: float
    roi: float | None
    pv_benefits: float
    pv_costs: float
    payback_periods: float | None
    discounted_payback_periods: float | None
    irr_per_period: float | None
    irr_annual: float | None
    break_even: BreakEven | None
    total_baseline_value: float
    total_value_with_initiative: float
    total_incremental_value: float
    total_costs: float
    total_net_cash_flow: float
    periods: list[PeriodRow]
    segments: list[SegmentResult]
    assumptions: list[str]


# ----------------------------------------------------------------------------- validation
def validate(case: BusinessCaseInput) -> None:
    """Raise InvalidInput naming every impossible field of ``case`` at once."""
    checks = FieldChecks()
    checks.number("one_off_cost", case.one_off_cost, low=0.0, high=MAX_MONEY)
    checks.number("running_cost_per_period", case.running_cost_per_period, low=0.0, high=MAX_MONEY)
    horizon_ok = checks.whole("horizon_periods", case.horizon_periods, low=1, high=MAX_PERIODS)
    if horizon_ok:
        checks.whole("start_period", case.start_period, low=0, high=case.horizon_periods - 1)
    check_discounting(checks, case.annual_discount_rate, case.period, case.timing)
    if not case.segments:
        checks.add("segments", "needs at least one segment")
    seen: set[str] = set()
    for i, seg in enumerate(case.segments):
        if seg.name in seen:
            checks.add(f"segments[{i}].name", "is used by another segment", seg.name)
        seen.add(seg.name)
        before = len(checks.errors)
        _check_baseline(checks, f"segments[{i}].baseline.", seg.baseline, case)
        baseline_ok = len(checks.errors) == before and horizon_ok
        _check_effects(checks, i, seg, case, baseline_ok)
    checks.raise_if_any(f"the business case {case.name!r} is not valid")


def _check_baseline(checks: FieldChecks, p: str, b: Baseline, case: BusinessCaseInput) -> None:
    if not isinstance(b, ManualBaseline | CurveBaseline | SBGBaseline):
        checks.add(p.rstrip("."), "must be a manual, curve or sBG baseline", type(b).__name__)
        return
    checks.number(f"{p}customers", b.customers, low=0.0, high=MAX_CUSTOMERS)
    if isinstance(b, ManualBaseline):
        checks.number(f"{p}margin_per_customer", b.margin_per_customer, low=0.0, high=MAX_MONEY)
        checks.number(
            f"{p}retention",
            b.retention,
            low=0.0,
            high=1.0,
            message="must be between 0 and 1 (a share, not a percent)",
        )
        checks.number(f"{p}value_relative_se", b.value_relative_se, low=0.0)
    elif isinstance(b, CurveBaseline):
        _check_curve(checks, p, b, case.horizon_periods)
    else:
        checks.number(f"{p}margin_per_customer", b.margin_per_customer, low=0.0, high=MAX_MONEY)
        checks.whole(f"{p}renewals", b.renewals, low=0, high=100_000)
        if not isinstance(b.model, SBG) or not hasattr(b.model, "params_"):
            checks.add(f"{p}model", "must be a fitted SBG model")


def _check_curve(checks: FieldChecks, p: str, b: CurveBaseline, horizon: object) -> None:
    if b.active_customers is not None:
        checks.number(f"{p}active_customers", b.active_customers, low=0.0, high=MAX_CUSTOMERS)
    checks.number(f"{p}value_relative_se", b.value_relative_se, low=0.0)
    values = np.asarray(b.value_per_period, dtype=np.float64)
    name = f"{p}value_per_period"
    if isinstance(horizon, int) and values.shape[0] < horizon:
        checks.add(name, f"has {values.shape[0]} values; the horizon needs {horizon}")
    elif not np.all(np.isfinite(values)) or np.any(values < 0):
        checks.add(name, "must be finite numbers >= 0")
    elif np.any(values > MAX_MONEY * MAX_CUSTOMERS):
        checks.add(name, f"must be at most {MAX_MONEY * MAX_CUSTOMERS:g} per period")
    elif np.any(values[1:] > values[:-1] * (1 + 1e-9) + 1e-12):
        t = int(np.flatnonzero(values[1:] > values[:-1] * (1 + 1e-9) + 1e-12)[0]) + 1
        checks.add(
            name,
            f"must not increase (period {t + 1} is above period {t}): the value of existing "
            "customers can only fall as they churn",
        )


def _check_effects(
    checks: FieldChecks, i: int, seg: SegmentCase, case: BusinessCaseInput, baseline_ok: bool
) -> None:
    p = f"segments[{i}].effects."
    e = seg.effects
    share_ok = checks.number(
        f"{p}churn_reduction_share",
        e.churn_reduction_share,
        low=0.0,
        high=1.0,
        message="must be between 0 and 1: churn cannot fall by more than 100%",
    )
    points_ok = checks.number(
        f"{p}churn_reduction_points", e.churn_reduction_points, low=0.0, high=1.0
    )
    if points_ok and baseline_ok and share_ok:
        limit = max_churn_reduction_points(case, i)
        if e.churn_reduction_points > limit + 1e-12:
            checks.add(
                f"{p}churn_reduction_points",
                f"is larger than the current churn per period ({limit:.6g}): churn cannot "
                "fall below 0",
                e.churn_reduction_points,
            )
    for name in ("spend_uplift", "frequency_uplift"):
        checks.number(
            f"{p}{name}",
            getattr(e, name),
            low=-1.0,
            high=MAX_UPLIFT,
            message=f"must be between -1 (a fall of 100%) and {MAX_UPLIFT:g}",
        )
    if e.nps_shift is not None:
        q = f"{p}nps_shift."
        nps.check_profile(checks, e.nps_shift.profile, f"{q}profile.")
        a_ok = checks.number(
            f"{q}detractors_to_passive", e.nps_shift.detractors_to_passive, low=0.0, high=1.0
        )
        b_ok = checks.number(
            f"{q}detractors_to_promoter", e.nps_shift.detractors_to_promoter, low=0.0, high=1.0
        )
        if (
            a_ok
            and b_ok
            and e.nps_shift.detractors_to_passive + e.nps_shift.detractors_to_promoter > 1 + 1e-12
        ):
            checks.add(
                f"{q}detractors_to_passive",
                "plus detractors_to_promoter is more than 1: more detractors would move than exist",
            )
    if e.referrals is not None:
        checks.number(
            f"{p}referrals.new_customers_per_period",
            e.referrals.new_customers_per_period,
            low=0.0,
            high=MAX_CUSTOMERS,
        )
        if e.referrals.value_per_new_customer is not None:
            checks.number(
                f"{p}referrals.value_per_new_customer",
                e.referrals.value_per_new_customer,
                low=0.0,
                high=MAX_MONEY,
            )


def max_churn_reduction_points(case: BusinessCaseInput, i: int) -> float:
    """Largest per-period churn (after the share reduction) over the periods the effect can
    change: a churn reduction in points above it would be larger than its base."""
    seg = case.segments[i]
    r = _baseline_retention(seg.baseline, case.horizon_periods)
    s, h = case.start_period, case.horizon_periods
    churn = (1.0 - r[s : h - 1]) * (1.0 - seg.effects.churn_reduction_share)
    return float(churn.max()) if churn.size else 1.0


# ----------------------------------------------------------------------------- baselines
def curve_retention(values: ArrayLike, n_periods: int) -> FloatArray:
    """Implied retention r_t = v_{t+1} / v_t for t = 1..n_periods (0 where v_t = 0, at most 1).

    The retention out of the last period needs v_{n+1}; when the curve has no such value it is
    set to 1 (it never affects values within the horizon).
    """
    v = np.asarray(values, dtype=np.float64)[: n_periods + 1]
    r = np.ones(n_periods)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(v[:-1] > 0, v[1:] / v[:-1], 0.0)
    r[: ratio.shape[0]] = np.minimum(ratio[:n_periods], 1.0)
    return r


def _baseline_retention(b: Baseline, n_periods: int) -> FloatArray:
    if isinstance(b, ManualBaseline):
        return np.full(n_periods, float(b.retention))
    if isinstance(b, CurveBaseline):
        return curve_retention(b.value_per_period, n_periods)
    return sbg_retention(b.model._theta(), b.renewals, n_periods)


def sbg_retention(theta: FloatArray, renewals: int, n_periods: int) -> FloatArray:
    """r(renewals + t), t = 1..n (FH 2007); ``theta`` (2,) or draws (n_draws, 2) -> (n_draws, n)."""
    t = renewals + np.arange(1, n_periods + 1, dtype=np.float64)
    th = np.asarray(theta, dtype=np.float64)
    if th.ndim == 1:
        return np.asarray((th[1] + t - 1) / (th[0] + th[1] + t - 1), dtype=np.float64)
    alpha, beta = th[:, 0:1], th[:, 1:2]
    return np.asarray((beta + t - 1) / (alpha + beta + t - 1), dtype=np.float64)


def period_horizon(
    period: PeriodUnit, n_periods: int, time_unit: str, annual_discount_rate: float = 0.10
) -> clv.Horizon:
    """A :class:`models.clv.Horizon` whose steps are the business case's periods.

    ``time_unit`` is the unit of recency and T in the fitted data (days, weeks, months).
    """
    days = PERIOD_YEARS[period] * clv.DAYS_PER_YEAR
    years = PERIOD_YEARS[period]
    return clv.Horizon(
        n_steps=int(n_periods),
        step_length=days / clv.DAYS_PER_UNIT[time_unit],
        rate_per_step=float((1.0 + annual_discount_rate) ** years - 1.0),
    )


def baseline_from_model(
    purchase_model: clv.PurchaseModel,
    spend_model: clv.SpendModel | None,
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    counts: ArrayLike,
    spend_sums: ArrayLike,
    horizon: clv.Horizon,
    margin: float = 1.0,
    *,
    source: str = "",
) -> CurveBaseline:
    """Curve baseline of a segment from fitted purchase and spend models.

    ``frequency``, ``recency``, ``T``: the segment's unique histories; ``counts``: customers per
    history; ``spend_sums``: the sum of their observed mean spends (as in
    :func:`models.clv.group_total`). Per step t of ``horizon`` (use :func:`period_horizon` for
    steps of one plan period):

        v_t = margin * sum_h E[purchases in step t | h] (a(x_h) n_h + b(x_h) M_h),

    the per-step conditional expected purchases of :mod:`models.clv` times the Gamma-Gamma
    expected spend (a + b m, Fader & Hardie 2013) summed over the histories with their counts.
    Active customers in period 1: sum_h n_h P(alive | h). ``value_relative_se``: the
    delta-method standard error of the segment's discounted CLTV over the horizon divided by it
    (:func:`models.clv.group_total`); 0 when the models have no covariance.
    """
    if not np.isfinite(margin) or not 0 <= margin <= 1:
        raise InvalidInput(
            "margin must be between 0 and 1",
            errors=[FieldError("margin", "must be between 0 and 1 (a share)", value=str(margin))],
        )
    x = np.asarray(frequency, dtype=np.float64)
    t_x = np.asarray(recency, dtype=np.float64)
    age = np.asarray(T, dtype=np.float64)
    n = np.asarray(counts, dtype=np.float64)
    msum = np.asarray(spend_sums, dtype=np.float64)
    theta = purchase_model._theta()
    sc = clv.spend_coefficients(spend_model, x)
    spend_total = sc.intercept * n + sc.slope * msum
    values = np.zeros(horizon.n_steps)
    chunk = max(1, _CELLS_PER_CHUNK // (horizon.n_steps + 1))
    for start in range(0, x.shape[0], chunk):
        part = slice(start, start + chunk)
        steps = clv._purchases_per_step(
            purchase_model, theta, horizon, x[part], t_x[part], age[part]
        )
        values += spend_total[part] @ steps
    active = float(np.dot(n, purchase_model._prob_alive(theta, x, t_x, age)))
    hv = clv.history_values(purchase_model, x, t_x, age, horizon)
    total = clv.group_total(
        hv,
        sc,
        n,
        msum,
        margin,
        clv._log_covariance(purchase_model),
        None if spend_model is None else clv._log_covariance(spend_model),
    )
    rel_se = total.clv_total_se / total.clv_total if total.clv_total > 0 else 0.0
    note = source or "purchase and spend models"
    if not math.isfinite(rel_se):
        rel_se = 0.0
        note += " (no covariance: parameter uncertainty not available)"
    return CurveBaseline(
        customers=float(n.sum()),
        value_per_period=tuple(float(v) for v in margin * values),
        active_customers=active,
        value_relative_se=float(rel_se),
        source=note,
    )


# ----------------------------------------------------------------------------- scenarios
@dataclass(frozen=True)
class Scenarios:
    """Many variants of one case evaluated at once (used by the simulator and break-even).

    ``values``: input path -> one value per scenario (shape (n,)); the paths are those of
    :func:`vectorised_inputs`. ``retention``: segment index -> per-period retention r_1..r_H
    per scenario (n, H), e.g. from sBG parameter draws. ``value_multiplier``: segment index ->
    a factor on the segment's margin per active customer (n,).
    """

    n: int
    values: Mapping[str, FloatArray] = field(default_factory=dict)
    retention: Mapping[int, FloatArray] = field(default_factory=dict)
    value_multiplier: Mapping[int, FloatArray] = field(default_factory=dict)

    def get(self, path: str, default: float) -> FloatArray:
        """The scenarios' values of ``path`` as a column (n, 1), or the case's value (1, 1)."""
        if path in self.values:
            return np.asarray(self.values[path], dtype=np.float64).reshape(-1, 1)
        return np.full((1, 1), float(default))

    def take(self, part: slice) -> Scenarios:
        return Scenarios(
            n=len(range(*part.indices(self.n))),
            values={k: np.asarray(v)[part] for k, v in self.values.items()},
            retention={k: np.asarray(v)[part] for k, v in self.retention.items()},
            value_multiplier={k: np.asarray(v)[part] for k, v in self.value_multiplier.items()},
        )


@dataclass(frozen=True)
class _SegmentFlows:
    baseline: FloatArray  # (n or 1, H)
    with_initiative: FloatArray
    retained: FloatArray
    referred: FloatArray


@dataclass(frozen=True)
class _Flows:
    segments: list[_SegmentFlows]
    incremental: FloatArray  # (n or 1, H + 1), period 0 first
    costs: FloatArray
    factors: FloatArray
    rate: FloatArray

    @property
    def net(self) -> FloatArray:
        return np.asarray(self.incremental - self.costs, dtype=np.float64)

    @property
    def npv(self) -> FloatArray:
        return np.asarray(np.sum(self.net * self.factors, axis=1), dtype=np.float64)


def _survival(r: FloatArray) -> FloatArray:
    """S_t = prod_{i<t} r_i for t = 1..H from retentions r_1..r_H (last axis)."""
    ones = np.ones((*r.shape[:-1], 1))
    return np.concatenate([ones, np.cumprod(r[..., :-1], axis=-1)], axis=-1)


def _flows(case: BusinessCaseInput, sc: Scenarios) -> _Flows:
    h = case.horizon_periods
    annual = sc.get("annual_discount_rate", case.annual_discount_rate)
    rate = (1.0 + annual) ** PERIOD_YEARS[case.period] - 1.0
    factors = (1.0 + rate) ** -cash_flow_times(h, case.timing)[None, :]
    segments = [_segment_flows(i, seg, case, sc, rate) for i, seg in enumerate(case.segments)]
    width = sc.n
    incremental = np.zeros((width, h + 1))
    for f in segments:
        incremental[:, 1:] += f.with_initiative - f.baseline
    costs = np.zeros((width, h + 1))
    costs[:, :1] = sc.get("one_off_cost", case.one_off_cost)
    costs[:, 1:] = sc.get("running_cost_per_period", case.running_cost_per_period)
    return _Flows(segments, incremental, costs, np.broadcast_to(factors, (width, h + 1)), rate)


def _baseline_arrays(
    i: int, b: Baseline, h: int, sc: Scenarios
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Active customers in period 1 N (n,1), margin per active customer m (n,1), retention (n,H)."""
    p = f"segments[{i}].baseline."
    if isinstance(b, ManualBaseline):
        n = sc.get(p + "customers", b.customers)
        m = sc.get(p + "margin_per_customer", b.margin_per_customer)
        r = np.clip(sc.get(p + "retention", b.retention), 0.0, 1.0) * np.ones((1, h))
    elif isinstance(b, CurveBaseline):
        if b.active_customers is not None:
            n = sc.get(p + "active_customers", b.active_customers)
        else:
            n = sc.get(p + "customers", b.customers)
        v1 = float(b.value_per_period[0]) if b.value_per_period else 0.0
        with np.errstate(divide="ignore", invalid="ignore"):
            m = np.where(n > 0, v1 / n, 0.0)
        r = curve_retention(b.value_per_period, h)[None, :]
    else:
        n = sc.get(p + "customers", b.customers)
        m = sc.get(p + "margin_per_customer", b.margin_per_customer)
        r = sbg_retention(b.model._theta(), b.renewals, h)[None, :]
    if i in sc.retention:
        r = np.asarray(sc.retention[i], dtype=np.float64)
    if i in sc.value_multiplier:
        m = m * np.asarray(sc.value_multiplier[i], dtype=np.float64).reshape(-1, 1)
    return n, m, r


def _segment_flows(
    i: int, seg: SegmentCase, case: BusinessCaseInput, sc: Scenarios, rate: FloatArray
) -> _SegmentFlows:
    h, s = case.horizon_periods, case.start_period
    n, m, r = _baseline_arrays(i, seg.baseline, h, sc)
    p = f"segments[{i}].effects."
    e = seg.effects
    live = np.arange(1, h + 1) > s  # periods in which the initiative acts
    share = np.clip(sc.get(p + "churn_reduction_share", e.churn_reduction_share), 0.0, 1.0)
    points = np.clip(sc.get(p + "churn_reduction_points", e.churn_reduction_points), 0.0, 1.0)
    r_new = np.where(live, 1.0 - np.clip((1.0 - r) * (1.0 - share) - points, 0.0, 1.0), r)
    surv, surv_new = _survival(r), _survival(r_new)
    spend = np.maximum(sc.get(p + "spend_uplift", e.spend_uplift), -1.0)
    freq = np.maximum(sc.get(p + "frequency_uplift", e.frequency_uplift), -1.0)
    m_new = np.where(live, m * (1.0 + spend) * (1.0 + freq), m)
    baseline = n * m * surv
    with_initiative = n * m_new * surv_new
    retained = n * (surv_new - surv)
    referred = np.zeros((1, h))
    if e.nps_shift is not None:
        extra_value, extra_customers = _nps_flows(i, e.nps_shift, case, sc, n)
        with_initiative = with_initiative + extra_value
        retained = retained + extra_customers
    if e.referrals is not None:
        per_period = np.maximum(
            sc.get(p + "referrals.new_customers_per_period", e.referrals.new_customers_per_period),
            0.0,
        )
        if e.referrals.value_per_new_customer is not None:
            value = sc.get(
                p + "referrals.value_per_new_customer", e.referrals.value_per_new_customer
            )
        else:
            start_factors = (1.0 + rate) ** -np.arange(h, dtype=np.float64)[None, :]
            value = np.sum(m * surv * start_factors, axis=1, keepdims=True)
        with_initiative = with_initiative + np.where(live, per_period * value, 0.0)
        referred = np.where(live, per_period, 0.0)
    return _SegmentFlows(baseline, with_initiative, retained, referred)


def _nps_flows(
    i: int, shift: NpsShift, case: BusinessCaseInput, sc: Scenarios, n: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Incremental value and active customers of moving detractors up (see module docstring).

    The groups' value of a new customer (for their referrals) is the profile's, or the
    share-weighted own value of the groups over the plan's horizon with the case's discounting
    (:func:`cltv_api.economics.nps.value_groups`).
    """
    h, s = case.horizon_periods, case.start_period
    q = f"segments[{i}].effects.nps_shift."
    a = np.clip(sc.get(q + "detractors_to_passive", shift.detractors_to_passive), 0.0, 1.0)
    b = np.clip(sc.get(q + "detractors_to_promoter", shift.detractors_to_promoter), 0.0, 1.0)
    total = a + b
    scale = np.where(total > 1.0, 1.0 / np.where(total > 0, total, 1.0), 1.0)
    a, b = a * scale, b * scale
    prof = shift.profile
    v_new = nps.value_groups(
        prof,
        annual_discount_rate=case.annual_discount_rate,
        period=case.period,
        horizon_periods=h,
        timing=case.timing,
        currency=case.currency,
    ).new_customer_value
    k = h - s
    det = prof.detractors
    moved = n * prof.counts.share("detractors") * det.retention**s
    streams = {g: nps.group_stream(prof.economics(g), v_new, k) for g in nps.GROUPS}
    kk = np.arange(k, dtype=np.float64)
    alive = {g: prof.economics(g).retention ** kk for g in nps.GROUPS}
    value = np.zeros((max(moved.shape[0], a.shape[0]), h))
    customers = np.zeros_like(value)
    for share, group in ((a, "passives"), (b, "promoters")):
        value[:, s:] += moved * share * (streams[group] - streams["detractors"])
        customers[:, s:] += moved * share * (alive[group] - alive["detractors"])
    return value, customers


# ----------------------------------------------------------------------------- evaluation
def simulate_npv(case: BusinessCaseInput, scenarios: Scenarios) -> FloatArray:
    """NPV of each scenario (shape (n,)); ``case`` must be valid (see :func:`validate`).

    Evaluated in chunks of scenarios so memory stays bounded for long horizons.
    """
    chunk = max(1, _CELLS_PER_CHUNK // (case.horizon_periods + 1) // max(1, len(case.segments)))
    out = np.empty(scenarios.n)
    for start in range(0, scenarios.n, chunk):
        part = slice(start, min(start + chunk, scenarios.n))
        flows = _flows(case, scenarios.take(part))
        out[part] = np.broadcast_to(flows.npv, (part.stop - part.start,))
    return out


def npv_of(case: BusinessCaseInput) -> float:
    """NPV of a case (validated), without the rest of the report."""
    validate(case)
    return float(_flows(case, Scenarios(1)).npv[0])


def evaluate(case: BusinessCaseInput) -> BusinessCaseResult:
    """The full business case: per-period table, NPV, ROI, payback, IRR and break-even.

    NPV = sum_t DF_t (incremental value_t - costs_t) (see :mod:`.cashflows`), ROI =
    (PV incremental value - PV costs) / PV costs, payback (undiscounted and discounted) by
    linear interpolation within the period, IRR per period and annualised (None when the net
    cash flow never changes sign).
    """
    validate(case)
    flows = _flows(case, Scenarios(1))
    factors = flows.factors[0]
    inc, costs, net = flows.incremental[0], flows.costs[0], flows.net[0]
    pv = net * factors
    pv_benefits = float(np.dot(inc, factors))
    pv_costs = float(np.dot(costs, factors))
    rate = float(flows.rate.ravel()[0])
    irr_period = irr(net, case.timing)
    return BusinessCaseResult(
        name=case.name,
        currency=case.currency,
        period=case.period,
        timing=case.timing,
        discount_rate_per_period=rate,
        npv=float(pv.sum()),
        roi=roi(pv_benefits, pv_costs),
        pv_benefits=pv_benefits,
        pv_costs=pv_costs,
        payback_periods=payback_period(net),
        discounted_payback_periods=payback_period(net, factors),
        irr_per_period=irr_period,
        irr_annual=None if irr_period is None else annual_rate(irr_period, case.period),
        break_even=break_even(case),
        total_baseline_value=float(sum(f.baseline.sum() for f in flows.segments)),
        total_value_with_initiative=float(sum(f.with_initiative.sum() for f in flows.segments)),
        total_incremental_value=float(inc.sum()),
        total_costs=float(costs.sum()),
        total_net_cash_flow=float(net.sum()),
        periods=_period_rows(flows, pv),
        segments=[
            _segment_result(seg, f, factors)
            for seg, f in zip(case.segments, flows.segments, strict=True)
        ],
        assumptions=_assumptions(case),
    )


def _period_rows(flows: _Flows, pv: FloatArray) -> list[PeriodRow]:
    h = flows.incremental.shape[1] - 1
    zero = np.zeros(1)
    base = np.concatenate([zero, sum((f.baseline[0] for f in flows.segments), np.zeros(h))])
    with_i = np.concatenate(
        [zero, sum((f.with_initiative[0] for f in flows.segments), np.zeros(h))]
    )
    retained = np.concatenate([zero, sum((f.retained[0] for f in flows.segments), np.zeros(h))])
    referred = np.concatenate(
        [zero, sum((np.broadcast_to(f.referred[0], (h,)) for f in flows.segments), np.zeros(h))]
    )
    net = flows.net[0]
    cum_net, cum_pv = np.cumsum(net), np.cumsum(pv)
    return [
        PeriodRow(
            period=t,
            baseline_value=float(base[t]),
            value_with_initiative=float(with_i[t]),
            incremental_value=float(flows.incremental[0, t]),
            incremental_customers_retained=float(retained[t]),
            referred_customers=float(referred[t]),
            costs=float(flows.costs[0, t]),
            net_cash_flow=float(net[t]),
            discount_factor=float(flows.factors[0, t]),
            present_value=float(pv[t]),
            cumulative_net_cash_flow=float(cum_net[t]),
            cumulative_present_value=float(cum_pv[t]),
        )
        for t in range(h + 1)
    ]


def _segment_result(seg: SegmentCase, f: _SegmentFlows, factors: FloatArray) -> SegmentResult:
    df = factors[1:]
    base, with_i = f.baseline[0], f.with_initiative[0]
    kind = {ManualBaseline: "manual", CurveBaseline: "curve", SBGBaseline: "sbg"}[
        type(seg.baseline)
    ]
    return SegmentResult(
        name=seg.name,
        baseline_kind=kind,
        pv_baseline_value=float(np.dot(base, df)),
        pv_value_with_initiative=float(np.dot(with_i, df)),
        pv_incremental_value=float(np.dot(with_i - base, df)),
        incremental_value=float(np.sum(with_i - base)),
        incremental_customers_retained_last_period=float(f.retained[0, -1]),
    )


def _assumptions(case: BusinessCaseInput) -> list[str]:
    return [
        f"cash flows at the {case.timing} of each {case.period}; one-off cost today (period 0)",
        "running costs are paid in every period 1..H; effects act from period "
        f"{case.start_period + 1}",
        "churn effects change the retention out of each period in which the initiative acts; "
        "survival with the initiative is the product of the modified retentions",
        "payback is interpolated linearly within the period in which it is reached",
        "referral and NPS values count one level of referrals (referred customers' own "
        "referrals are not counted)",
    ]


# ----------------------------------------------------------------------------- break-even
EFFECT_LEAVES = (
    "churn_reduction_points",
    "churn_reduction_share",
    "spend_uplift",
    "frequency_uplift",
    "nps_shift.detractors_to_passive",
    "nps_shift.detractors_to_promoter",
    "referrals.new_customers_per_period",
)


def effect_inputs(case: BusinessCaseInput) -> dict[str, float]:
    """Every non-zero effect size of the case, by input path."""
    out: dict[str, float] = {}
    for path, value in numeric_inputs(case).items():
        if value != 0 and any(path.endswith(f".effects.{leaf}") for leaf in EFFECT_LEAVES):
            out[path] = value
    return out


def break_even(case: BusinessCaseInput) -> BreakEven | None:
    """The factor k on all effects with NPV(k) = 0, or None if none in [0, 100].

    NPV(0) = -PV(costs) <= 0; k = 0 when there are no costs. The first sign change on a grid of
    k is refined with ``brentq`` (xtol 1e-10).
    """
    effects = effect_inputs(case)
    if not effects:
        return BreakEven(0.0, []) if npv_of(case) >= 0 else None

    def npv_at(ks: FloatArray) -> FloatArray:
        values = {p: ks * v for p, v in effects.items()}
        return simulate_npv(case, Scenarios(n=ks.shape[0], values=values))

    grid = _BREAK_EVEN_GRID
    values = npv_at(grid)
    hit = np.flatnonzero(values >= 0)
    if hit.size == 0:
        return None
    j = int(hit[0])
    if j == 0:
        k = 0.0
    else:
        k = float(
            optimize.brentq(
                lambda x: float(npv_at(np.array([x]))[0]), grid[j - 1], grid[j], xtol=1e-10
            )
        )
    return BreakEven(
        scale=k,
        effects=[
            BreakEvenEffect(input=p, value=v, break_even_value=k * v, capped=_capped(case, p, k))
            for p, v in effects.items()
        ],
    )


def _capped(case: BusinessCaseInput, path: str, k: float) -> bool:
    """Whether k times the effect at ``path`` lies outside its valid range (so was capped)."""
    value = numeric_inputs(case)[path]
    if ".nps_shift.detractors_to_" in path:
        shift = case.segments[int(path[9 : path.index("]")])].effects.nps_shift
        assert shift is not None
        return k * (shift.detractors_to_passive + shift.detractors_to_promoter) > 1 + 1e-12
    low, high = input_bounds(case, path)
    return not low - 1e-12 <= k * value <= high + 1e-12


# ----------------------------------------------------------------------------- input paths
_TOKEN = re.compile(r"^(?P<name>\w+)(?:\[(?P<index>\d+)\])?$")
CURVE_SCALE_LEAF = "value_per_period"
"""The curve of a :class:`CurveBaseline` appears as one input: a multiplier (1 = as given)."""
_NOT_VALUE_INPUTS = frozenset({"value_relative_se"})


def numeric_inputs(case: BusinessCaseInput) -> dict[str, float]:
    """Every numeric input of the case by path (``segments[0].effects.spend_uplift``...).

    A curve baseline's values appear as one input, ``...baseline.value_per_period``, a
    multiplier of the whole curve (1.0). Uncertainty settings (``value_relative_se``) and the
    fitted sBG model are not inputs.
    """
    out: dict[str, float] = {}
    for path, value in _walk(case, ""):
        out[path] = value
    return out


def _walk(obj: Any, prefix: str) -> Iterator[tuple[str, float]]:
    for f in fields(obj):
        value = getattr(obj, f.name)
        path = prefix + f.name
        if f.name in _NOT_VALUE_INPUTS or value is None or isinstance(value, bool | str):
            continue
        if isinstance(value, int | float):
            yield path, float(value)
        elif is_dataclass(value) and not isinstance(value, type):
            yield from _walk(value, path + ".")
        elif isinstance(value, tuple | list):
            if f.name == CURVE_SCALE_LEAF:
                yield path, 1.0
            else:
                for j, item in enumerate(value):
                    if is_dataclass(item):
                        yield from _walk(item, f"{path}[{j}].")


def replace_input(case: BusinessCaseInput, path: str, value: float) -> BusinessCaseInput:
    """A copy of ``case`` with the input at ``path`` set to ``value`` (see :func:`numeric_inputs`).

    Whole-number inputs are rounded; a curve's ``value_per_period`` is multiplied by ``value``.
    Raises InvalidInput naming ``path`` when there is no such input.
    """
    if path not in numeric_inputs(case):
        raise InvalidInput(
            f"the business case has no numeric input {path!r}",
            errors=[FieldError(path, "is not a numeric input of the business case")],
        )
    return cast(BusinessCaseInput, _replace(case, path.split("."), value))


def _replace(obj: Any, parts: Sequence[str], value: float) -> Any:
    match = _TOKEN.match(parts[0])
    if match is None:  # pragma: no cover - paths come from numeric_inputs
        raise ValueError(parts[0])
    name, index = match["name"], match["index"]
    current = getattr(obj, name)
    if index is not None:
        items = list(current)
        items[int(index)] = _replace(items[int(index)], parts[1:], value)
        return replace(obj, **{name: type(current)(items)})
    if len(parts) > 1:
        return replace(obj, **{name: _replace(current, parts[1:], value)})
    if name == CURVE_SCALE_LEAF:
        return replace(obj, **{name: tuple(float(v) * value for v in current)})
    if isinstance(current, int) and not isinstance(current, bool):
        return replace(obj, **{name: round(value)})
    return replace(obj, **{name: float(value)})


_VECTORISED = re.compile(
    r"^(one_off_cost|running_cost_per_period|annual_discount_rate"
    r"|segments\[\d+\]\.baseline\.(customers|active_customers|margin_per_customer|retention)"
    r"|segments\[\d+\]\.effects\.("
    + "|".join(re.escape(leaf) for leaf in EFFECT_LEAVES)
    + r"|referrals\.value_per_new_customer))$"
)


def vectorised_inputs(case: BusinessCaseInput) -> dict[str, float]:
    """The inputs that :class:`Scenarios` can vary (costs, discount rate, baseline numbers and
    effects), by path."""
    return {p: v for p, v in numeric_inputs(case).items() if _VECTORISED.match(p)}


_UNIT = (0.0, 1.0)
_NON_NEGATIVE = (0.0, math.inf)
_LEAF_BOUNDS: dict[str, tuple[float, float]] = {
    "retention": _UNIT,
    "churn_reduction_share": _UNIT,
    "spend_uplift": (-1.0, math.inf),
    "frequency_uplift": (-1.0, math.inf),
    "annual_discount_rate": (-1.0 + 1e-9, 10.0),
}


def input_bounds(case: BusinessCaseInput, path: str) -> tuple[float, float]:
    """Valid range [low, high] of an input given the rest of the case."""
    leaf = path.rsplit(".", 1)[-1]
    seg = re.match(r"^segments\[(\d+)\]", path)
    i = int(seg.group(1)) if seg else -1
    if leaf == "churn_reduction_points":
        return 0.0, max_churn_reduction_points(case, i)
    if leaf in ("detractors_to_passive", "detractors_to_promoter"):
        shift = case.segments[i].effects.nps_shift
        other = (
            "detractors_to_promoter" if leaf == "detractors_to_passive" else "detractors_to_passive"
        )
        return 0.0, 1.0 - float(getattr(shift, other))
    if leaf == "horizon_periods":
        longest = [
            len(s.baseline.value_per_period)
            for s in case.segments
            if isinstance(s.baseline, CurveBaseline)
        ]
        return float(case.start_period + 1), float(min([MAX_PERIODS, *longest]))
    if leaf == "start_period":
        return 0.0, float(case.horizon_periods - 1)
    return _LEAF_BOUNDS.get(leaf, _NON_NEGATIVE)
