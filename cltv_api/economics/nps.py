"""Net Promoter Score economics: what a promoter, a passive and a detractor are worth.

NPS (Reichheld 2003, "The One Number You Need to Grow", Harvard Business Review 81(12)):
respondents answer "How likely is it that you would recommend [company] to a friend or
colleague?" on a 0-10 scale; 9-10 are *promoters*, 7-8 *passives*, 0-6 *detractors*, and

    NPS = 100 * (promoters - detractors) / respondents      (points, from -100 to +100).

Value per group. Each group g has its own retention per period r_g, margin per active customer
per period m_g and referrals per period f_g (new customers a member brings while active). A
group member's value is the simple-retention CLTV of the quick calculator (Gupta & Lehmann 2003,
"Customers as Assets", J. Interactive Marketing 17(1); see :mod:`.calculator`) applied to

    v_g = m_g + f_g * V_new,

i.e. CLTV_g = sum_t v_g r_g^(t-1) / (1+d)^(t-1) (``timing="start"``; ``"end"`` discounts one
more period), where ``V_new`` is the value of a new customer. Referral value is counted ONE
level deep: the referred customers' own referrals are not counted (that would be a branching
process whose total can diverge). By default ``V_new`` is the group-share-weighted own value
(without referrals) of the current respondents, i.e. a referred customer is assumed to look
like an average current customer.

Moving customers. Moving one customer from detractor to passive is worth
CLTV_passive - CLTV_detractor (and likewise to promoter). An NPS shift of ``s`` points among
``N`` respondents moves customers as follows (the assumption is stated in every answer):

- default (``to_promoter_share=None``): detractors move to passives first (each raises NPS by
  100/N points); once no detractors are left, passives move to promoters (100/N each);
- ``to_promoter_share = q``: each moved detractor becomes a promoter with share q and a passive
  with share 1 - q, so each raises NPS by (1 + q) 100/N points; the shift must then be
  reachable with the detractors available.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike

from ..errors import FieldError, InvalidInput
from .calculator import MAX_HORIZON, CalculatorInput, calculate
from .cashflows import FieldChecks, FloatArray, Timing, check_discounting, per_period_rate

PROMOTER_MIN_SCORE = 9
PASSIVE_MIN_SCORE = 7
GROUPS = ("promoters", "passives", "detractors")


@dataclass(frozen=True)
class NpsCounts:
    """Respondents (or customers) per NPS group; fractional counts (shares) are allowed."""

    promoters: float
    passives: float
    detractors: float

    @property
    def total(self) -> float:
        return float(self.promoters + self.passives + self.detractors)

    def share(self, group: str) -> float:
        """Share of the total in ``group`` (0 when there is nobody)."""
        total = self.total
        return float(getattr(self, group)) / total if total > 0 else 0.0

    @property
    def nps(self) -> float:
        """NPS in points: 100 (promoters - detractors) / total (Reichheld 2003)."""
        total = self.total
        return 100.0 * (self.promoters - self.detractors) / total if total > 0 else 0.0


def counts_from_scores(scores: ArrayLike, field: str = "scores") -> NpsCounts:
    """Classify raw 0-10 answers into promoters (9-10), passives (7-8) and detractors (0-6).

    Raises InvalidInput naming ``field`` (and the first bad row) for answers that are missing,
    not whole numbers or outside 0-10.
    """
    arr = np.asarray(scores, dtype=np.float64).ravel()
    bad = ~np.isfinite(arr) | (arr != np.round(arr)) | (arr < 0) | (arr > 10)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise InvalidInput(
            f"{rows.size} answer(s) are not whole numbers between 0 and 10",
            errors=[
                FieldError(
                    field, "must be a whole number from 0 to 10", row=int(i), value=str(arr[i])
                )
                for i in rows[:20]
            ],
        )
    return NpsCounts(
        promoters=float(np.sum(arr >= PROMOTER_MIN_SCORE)),
        passives=float(np.sum((arr >= PASSIVE_MIN_SCORE) & (arr < PROMOTER_MIN_SCORE))),
        detractors=float(np.sum(arr < PASSIVE_MIN_SCORE)),
    )


@dataclass(frozen=True)
class GroupEconomics:
    """Behaviour of one NPS group, per period: retention (share), margin per active customer
    (currency) and referrals (new customers brought per active customer)."""

    retention: float
    margin_per_period: float
    referrals_per_period: float = 0.0


@dataclass(frozen=True)
class NpsProfile:
    """NPS counts of a segment and the economics of each group.

    ``new_customer_value``: value of one referred customer (currency); None = the share-weighted
    own value (without referrals) of the current groups.
    """

    counts: NpsCounts
    promoters: GroupEconomics
    passives: GroupEconomics
    detractors: GroupEconomics
    new_customer_value: float | None = None

    def economics(self, group: str) -> GroupEconomics:
        value: GroupEconomics = getattr(self, group)
        return value


def check_profile(checks: FieldChecks, profile: NpsProfile, prefix: str = "") -> None:
    """Validate a profile into ``checks``; field names start with ``prefix``."""
    counts_ok = True
    for group in GROUPS:
        counts_ok &= checks.number(
            f"{prefix}counts.{group}", getattr(profile.counts, group), low=0.0
        )
        econ = profile.economics(group)
        checks.number(
            f"{prefix}{group}.retention",
            econ.retention,
            low=0.0,
            high=1.0,
            message="must be between 0 and 1 (a share, not a percent)",
        )
        checks.number(f"{prefix}{group}.margin_per_period", econ.margin_per_period, low=0.0)
        checks.number(f"{prefix}{group}.referrals_per_period", econ.referrals_per_period, low=0.0)
    if profile.new_customer_value is not None:
        checks.number(f"{prefix}new_customer_value", profile.new_customer_value, low=0.0)
    if counts_ok and profile.counts.total <= 0:
        checks.add(f"{prefix}counts", "needs at least one respondent")


@dataclass(frozen=True)
class GroupValue:
    """Value of one member of a group: own margin CLTV, referral value and their sum."""

    group: str
    share: float
    retention: float
    margin_per_period: float
    referrals_per_period: float
    own_value: float
    referral_value: float
    total_value: float


@dataclass(frozen=True)
class NpsResult:
    """Group values, the NPS and the value of moving one customer between groups."""

    currency: str
    nps: float
    respondents: float
    new_customer_value: float
    groups: list[GroupValue]
    value_detractor_to_passive: float
    value_detractor_to_promoter: float
    value_passive_to_promoter: float
    discount_rate_per_period: float
    timing: str
    horizon_periods: int | None
    assumptions: list[str] = field(default_factory=list)

    def group(self, name: str) -> GroupValue:
        return next(g for g in self.groups if g.group == name)


def value_groups(
    profile: NpsProfile,
    *,
    annual_discount_rate: float = 0.10,
    period: str = "month",
    horizon_periods: int | None = None,
    timing: Timing = "start",
    currency: str = "",
) -> NpsResult:
    """Value of a promoter, a passive and a detractor, and of moving one between groups.

    Each group's CLTV is :func:`cltv_api.economics.calculator.calculate` with margin
    v_g = m_g + f_g V_new per period (see the module docstring), retention r_g, the per-period
    rate from ``annual_discount_rate`` and the same timing and horizon (None = unlimited).
    """
    checks = FieldChecks()
    check_profile(checks, profile)
    check_discounting(checks, annual_discount_rate, period, timing)
    if horizon_periods is not None:
        checks.whole("horizon_periods", horizon_periods, low=1, high=MAX_HORIZON)
    checks.raise_if_any("the NPS inputs are not valid")
    d = per_period_rate(annual_discount_rate, period)
    if horizon_periods is None and d <= 0:
        full = [g for g in GROUPS if profile.economics(g).retention >= 1]
        if full:
            raise InvalidInput(
                "an unlimited horizon needs retention below 1 or a positive discount rate",
                errors=[FieldError(f"{g}.retention", "is 1 with no discounting") for g in full],
            )

    def clv(margin: float, retention: float) -> float:
        return calculate(
            CalculatorInput(
                average_order_value=margin,
                purchases_per_period=1.0,
                gross_margin=1.0,
                retention_rate=retention,
                annual_discount_rate=annual_discount_rate,
                horizon_periods=horizon_periods,
                acquisition_cost=0.0,
                period=period,  # type: ignore[arg-type]
                timing=timing,
                currency=currency,
            )
        ).clv

    own = {
        g: clv(profile.economics(g).margin_per_period, profile.economics(g).retention)
        for g in GROUPS
    }
    counts = profile.counts
    v_new = (
        profile.new_customer_value
        if profile.new_customer_value is not None
        else sum(counts.share(g) * own[g] for g in GROUPS)
    )
    groups = []
    for g in GROUPS:
        econ = profile.economics(g)
        referral = clv(econ.referrals_per_period * v_new, econ.retention)
        groups.append(
            GroupValue(
                group=g,
                share=counts.share(g),
                retention=econ.retention,
                margin_per_period=econ.margin_per_period,
                referrals_per_period=econ.referrals_per_period,
                own_value=own[g],
                referral_value=referral,
                total_value=own[g] + referral,
            )
        )
    total = {gv.group: gv.total_value for gv in groups}
    return NpsResult(
        currency=currency,
        nps=counts.nps,
        respondents=counts.total,
        new_customer_value=float(v_new),
        groups=groups,
        value_detractor_to_passive=total["passives"] - total["detractors"],
        value_detractor_to_promoter=total["promoters"] - total["detractors"],
        value_passive_to_promoter=total["promoters"] - total["passives"],
        discount_rate_per_period=d,
        timing=timing,
        horizon_periods=horizon_periods,
        assumptions=[
            "value per group = CLTV of margin + referrals x value of a new customer (one level)",
            "value of a new customer: "
            + (
                "as given"
                if profile.new_customer_value is not None
                else "share-weighted own value of the current groups"
            ),
        ],
    )


def group_stream(
    economics: GroupEconomics, new_customer_value: float | FloatArray, n_periods: int
) -> FloatArray:
    """Expected value in each of the ``n_periods`` periods after joining a group (k = 1..n).

    (m + f V_new) r^(k-1): the customer is active in period 1 for sure and retained with
    probability r from one period to the next. Discounting this stream with the calculator's
    factors gives the group's CLTV. ``new_customer_value`` may be an array of shape (n, 1).
    """
    k = np.arange(n_periods, dtype=np.float64)
    per_period = economics.margin_per_period + economics.referrals_per_period * np.asarray(
        new_customer_value, dtype=np.float64
    )
    return np.asarray(per_period * economics.retention**k, dtype=np.float64)


@dataclass(frozen=True)
class NpsMoves:
    """Customers moved between groups by an NPS shift, and the value gained."""

    points: float
    detractor_to_passive: float
    detractor_to_promoter: float
    passive_to_promoter: float
    counts_after: NpsCounts
    nps_before: float
    nps_after: float
    value_gained: float
    currency: str
    assumption: str


def moves_for_shift(
    counts: NpsCounts, points: float, *, to_promoter_share: float | None = None
) -> tuple[float, float, float, str]:
    """Customers moved (detractor->passive, detractor->promoter, passive->promoter) by a shift.

    See the module docstring for the two rules. Raises InvalidInput naming ``points`` when the
    shift cannot be reached with the customers available, or is negative.
    """
    checks = FieldChecks()
    checks.number("points", points, low=0.0, high=200.0)
    if to_promoter_share is not None:
        checks.number("to_promoter_share", to_promoter_share, low=0.0, high=1.0)
    checks.raise_if_any("the NPS shift is not valid")
    n = counts.total
    per_point = n / 100.0  # customers moved one group up per point
    if to_promoter_share is None:
        to_passive = min(points * per_point, counts.detractors)
        rest = points * per_point - to_passive
        if rest > counts.passives + to_passive + 1e-9 * max(n, 1.0):
            _unreachable(points, counts)
        return (
            to_passive,
            0.0,
            rest,
            "detractors move to passives first; then passives move to promoters",
        )
    q = to_promoter_share
    moved = points * per_point / (1.0 + q)
    if moved > counts.detractors + 1e-9 * max(n, 1.0):
        _unreachable(points, counts)
    return (
        moved * (1.0 - q),
        moved * q,
        0.0,
        f"each moved detractor becomes a promoter with share {q:g}, else a passive",
    )


def _unreachable(points: float, counts: NpsCounts) -> None:
    raise InvalidInput(
        f"an NPS shift of {points:g} points cannot be reached from NPS {counts.nps:.1f}",
        errors=[
            FieldError(
                "points",
                "is larger than the customers available can move",
                value=str(points),
            )
        ],
    )


def value_of_shift(
    profile: NpsProfile,
    points: float,
    *,
    to_promoter_share: float | None = None,
    annual_discount_rate: float = 0.10,
    period: str = "month",
    horizon_periods: int | None = None,
    timing: Timing = "start",
    currency: str = "",
) -> NpsMoves:
    """Customers moved by an NPS shift of ``points`` and the value gained (currency).

    value = moved_DP (V_P - V_D) + moved_DPr (V_Pr - V_D) + moved_PPr (V_Pr - V_P), with the
    group values of :func:`value_groups`; counts are the profile's (respondents or customers).
    """
    result = value_groups(
        profile,
        annual_discount_rate=annual_discount_rate,
        period=period,
        horizon_periods=horizon_periods,
        timing=timing,
        currency=currency,
    )
    d_to_p, d_to_pr, p_to_pr, rule = moves_for_shift(
        profile.counts, points, to_promoter_share=to_promoter_share
    )
    c = profile.counts
    after = NpsCounts(
        promoters=c.promoters + d_to_pr + p_to_pr,
        passives=c.passives + d_to_p - p_to_pr,
        detractors=c.detractors - d_to_p - d_to_pr,
    )
    gained = (
        d_to_p * result.value_detractor_to_passive
        + d_to_pr * result.value_detractor_to_promoter
        + p_to_pr * result.value_passive_to_promoter
    )
    return NpsMoves(
        points=points,
        detractor_to_passive=d_to_p,
        detractor_to_promoter=d_to_pr,
        passive_to_promoter=p_to_pr,
        counts_after=after,
        nps_before=c.nps,
        nps_after=after.nps,
        value_gained=float(gained),
        currency=currency,
        assumption=rule,
    )
