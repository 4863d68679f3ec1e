"""Economics bodies: cost of churn per segment of a fit, NPS economics and complaint economics.

Money is in ``currency`` (a label, never converted); shares and rates are fractions (0.8, not
80); every per-period figure is per period of ``period``. Ranges that depend on the maths are
checked by :mod:`cltv_api.economics`, which names every offending field at once; these schemas
check types, finiteness and the choices offered.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cltv_api.economics.complaints import (
    DEFAULT_COMPLAIN_SHARE,
    DEFAULT_TOLD_BAD,
    DEFAULT_TOLD_GOOD,
    DEFAULT_VALUE_YEARS,
)

PeriodName = Literal["week", "month", "quarter", "year"]
TimingName = Literal["start", "end"]


# ------------------------------------------------------------------------------ cost of churn
class ChurnConventions(BaseModel):
    """Units and conventions of a fit's cost-of-churn table."""

    time_unit: str = Field(description="Unit of frequency, recency and T in the fit.")
    horizon: int
    horizon_unit: str
    discount_rate_annual_effective: float
    discount_rate_per_step: float
    cash_flow_timing: str
    margin: float = Field(description="Share of revenue counted as value (1 = revenue).")
    currency: str | None
    observation_end: date
    points: float = Field(description="Churn change valued (0.01 = one percentage point).")
    at_risk_low: float = Field(description="Customers with P(alive) in [low, high) are at risk.")
    at_risk_high: float
    definitions: dict[str, str] = Field(description="What each figure means and where from.")


class ChurnCostRowOut(BaseModel):
    """Cost of churn in one segment (``segment == {}``: all customers); money in `currency`."""

    segment: dict[str, str]
    currency: str | None
    customers: int
    active_customers: float = Field(description="Sum of P(alive) at the observation end.")
    clv_total: float = Field(description="Expected residual CLTV over the horizon, summed.")
    clv_mean: float = Field(description="Expected residual CLTV per customer.")
    value_lost_per_churner: float = Field(
        description="sum(CLTV) / sum(P(alive)): E[CLTV | alive], lost if an active customer "
        "churns now."
    )
    cost_of_one_point_more_churn: float = Field(
        description="One-off: 1% of the active customers churn now (= 0.01 x clv_total)."
    )
    value_of_one_point_less_churn: float = Field(
        description="One-off, first order: the same amount as the cost of one point more."
    )
    cost_of_one_point_more_churn_per_period: float | None = Field(
        description="Per period: an extra 1-point dropout hazard in every horizon step."
    )
    value_of_one_point_less_churn_per_period: float | None = Field(
        description="Per period: 1 point less dropout in every step (survival capped at 1)."
    )
    customers_at_risk: int = Field(description="Customers with P(alive) in the at-risk band.")
    share_at_risk: float
    revenue_at_risk: float = Field(
        description="Their expected revenue over the horizon if still active x P(gone), "
        "sum of expected_revenue (1 - p) / p."
    )


class ChurnCostOut(BaseModel):
    """Cost of churn per segment of a stored fit, and for all customers."""

    fit_id: str
    by: list[str]
    conventions: ChurnConventions
    segments: list[ChurnCostRowOut]
    total: ChurnCostRowOut


# ------------------------------------------------------------------------------ NPS
class NpsCountsIn(BaseModel):
    """Respondents (or customers) per NPS group."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    promoters: float = Field(description="Answers 9-10.", examples=[300])
    passives: float = Field(description="Answers 7-8.", examples=[400])
    detractors: float = Field(description="Answers 0-6.", examples=[300])


class NpsGroupIn(BaseModel):
    """One group's behaviour per period."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    retention: float = Field(description="Share still a customer one period later, 0..1.")
    margin_per_period: float = Field(description="Margin per active customer per period.")
    referrals_per_period: float = Field(
        default=0.0, description="New customers an active member brings per period."
    )


class NpsShiftIn(BaseModel):
    """An NPS improvement to value."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    points: float = Field(description="NPS points gained (0..200).", examples=[10])
    to_promoter_share: float | None = Field(
        default=None,
        description="Share of moved detractors who become promoters (rest: passives); null: "
        "detractors move to passives first, then passives to promoters.",
    )


NPS_EXAMPLE: dict[str, Any] = {
    "counts": {"promoters": 300, "passives": 400, "detractors": 300},
    "promoters": {"retention": 0.9, "margin_per_period": 100.0, "referrals_per_period": 0.02},
    "passives": {"retention": 0.8, "margin_per_period": 80.0},
    "detractors": {"retention": 0.6, "margin_per_period": 60.0},
    "annual_discount_rate": 0.0,
    "period": "year",
    "horizon_periods": None,
    "timing": "start",
    "currency": "EUR",
    "shift": {"points": 10},
}


class NpsRequest(BaseModel):
    """NPS groups (counts, or raw 0-10 answers) and each group's economics."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [NPS_EXAMPLE]}
    )

    counts: NpsCountsIn | None = Field(default=None, description="Or give `scores`.")
    scores: list[float] | None = Field(
        default=None, max_length=1_000_000, description="Raw answers 0-10 (instead of counts)."
    )
    promoters: NpsGroupIn
    passives: NpsGroupIn
    detractors: NpsGroupIn
    new_customer_value: float | None = Field(
        default=None,
        description="Value of one referred customer, `currency`; null: the share-weighted own "
        "value of the current groups.",
    )
    annual_discount_rate: float = Field(default=0.10, description="Effective annual rate.")
    period: PeriodName = Field(default="month", description="Length of one period.")
    horizon_periods: int | None = Field(
        default=None, description="Periods counted; null for an unlimited horizon."
    )
    timing: TimingName = Field(
        default="start", description="Margin at the start (period 1 undiscounted) or end."
    )
    currency: str = Field(min_length=1, max_length=12, description="Currency label.")
    shift: NpsShiftIn | None = Field(default=None, description="Value an NPS improvement.")


class NpsGroupOut(BaseModel):
    """Value of one member of a group (`currency`)."""

    group: str
    share: float
    retention: float
    margin_per_period: float
    referrals_per_period: float
    own_value: float = Field(description="CLTV of the member's own margin.")
    referral_value: float = Field(description="CLTV of her referrals x value of a new customer.")
    total_value: float


class NpsCountsOut(BaseModel):
    promoters: float
    passives: float
    detractors: float


class NpsMovesOut(BaseModel):
    """Customers moved by the NPS shift and the value gained (`currency`)."""

    points: float
    detractor_to_passive: float
    detractor_to_promoter: float
    passive_to_promoter: float
    counts_after: NpsCountsOut
    nps_before: float
    nps_after: float
    value_gained: float
    assumption: str


class NpsConventions(BaseModel):
    period: PeriodName
    currency: str
    timing: TimingName
    annual_discount_rate: float
    discount_rate_per_period: float
    horizon_periods: int | None = Field(description="Null: unlimited.")
    formula: str
    source: str


class NpsResponse(BaseModel):
    """Value per NPS group and of moving a customer up; money in `currency`."""

    nps: float = Field(description="Points, -100..100: %promoters - %detractors.")
    respondents: float
    counts: NpsCountsOut
    new_customer_value: float
    groups: list[NpsGroupOut]
    value_detractor_to_passive: float
    value_detractor_to_promoter: float
    value_passive_to_promoter: float
    shift: NpsMovesOut | None
    assumptions: list[str]
    conventions: NpsConventions


# ------------------------------------------------------------------------------ complaints
class RetentionRatesIn(BaseModel):
    """Share of each group that stays / buys again, 0..1."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    non_complainer: float
    unsatisfied_complainer: float
    satisfied_complainer: float
    no_problem: float | None = None


class ComplaintImprovementIn(BaseModel):
    """Better complaint handling: the new shares (null: unchanged)."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    complain_share: float | None = None
    satisfied_share: float | None = None


COMPLAINTS_EXAMPLE: dict[str, Any] = {
    "customers": 100000,
    "problem_share": 0.2,
    "satisfied_share": 0.6,
    "retention": "small_ticket",
    "annual_revenue_per_customer": 1200.0,
    "margin": 0.3,
    "currency": "RUB",
    "improvement": {"satisfied_share": 0.8},
}


class ComplaintsRequest(BaseModel):
    """Inputs of the TARP complaint model (Goodman); defaults are cited in the response."""

    model_config = ConfigDict(
        extra="forbid", allow_inf_nan=False, json_schema_extra={"examples": [COMPLAINTS_EXAMPLE]}
    )

    customers: float = Field(description="Customers in the period.")
    problem_share: float = Field(description="Share with a problem, 0..1.")
    satisfied_share: float = Field(description="Share of complainers satisfied, 0..1.")
    complain_share: float = Field(
        default=DEFAULT_COMPLAIN_SHARE,
        description="Share of customers with a problem who complain (default 1/27, TARP).",
    )
    retention: Literal["small_ticket", "large_ticket"] | RetentionRatesIn = Field(
        default="small_ticket",
        description="TARP repurchase intentions (under $5 / over $100 problems) or your own.",
    )
    customer_value: float | None = Field(
        default=None, description="Value of a customer, `currency` (or give annual revenue)."
    )
    annual_revenue_per_customer: float | None = Field(
        default=None, description="Then value = value_years of revenue x margin, discounted."
    )
    margin: float = Field(default=1.0, description="Share of revenue kept, 0..1.")
    value_years: int = Field(default=DEFAULT_VALUE_YEARS)
    annual_discount_rate: float = Field(default=0.10)
    told_bad: float = Field(default=DEFAULT_TOLD_BAD, description="People told of a bad case.")
    told_good: float = Field(default=DEFAULT_TOLD_GOOD, description="People told of a good one.")
    wom_loss_per_person_told: float = Field(default=0.0, description="Share lost as prospects.")
    wom_gain_per_person_told: float = Field(default=0.0, description="Share won as customers.")
    currency: str = Field(min_length=1, max_length=12)
    improvement: ComplaintImprovementIn | None = None


class ComplaintGroupOut(BaseModel):
    group: str
    customers: float
    retention: float | None
    customers_lost: float | None
    value_at_risk: float | None
    customers_lost_due_to_problem: float | None
    value_lost_due_to_problem: float | None


class SourceOut(BaseModel):
    figure: str
    value: str
    citation: str
    verified: bool


class ComplaintResultOut(BaseModel):
    """Customers and value lost per group (`currency`)."""

    currency: str
    customer_value: float
    groups: list[ComplaintGroupOut]
    people_told_bad: float
    people_told_good: float
    wom_customers_lost: float
    wom_customers_won: float
    wom_value_lost: float
    wom_value_won: float
    customers_lost_with_problem: float
    value_at_risk_with_problem: float
    total_value_at_risk: float
    sources: list[SourceOut]


class ComplaintImprovementOut(BaseModel):
    after: ComplaintResultOut
    customers_kept: float
    value_gained: float = Field(description="Fall in value at risk, word of mouth included.")


class ComplaintInputsOut(BaseModel):
    """The inputs used, defaults filled in."""

    customers: float
    problem_share: float
    satisfied_share: float
    complain_share: float
    retention: RetentionRatesIn
    retention_source: str
    customer_value: float | None
    annual_revenue_per_customer: float | None
    margin: float
    value_years: int
    annual_discount_rate: float
    told_bad: float
    told_good: float
    wom_loss_per_person_told: float
    wom_gain_per_person_told: float


class ComplaintsResponse(BaseModel):
    """TARP complaint economics, with the sources of every default used."""

    currency: str
    inputs: ComplaintInputsOut
    result: ComplaintResultOut
    improvement: ComplaintImprovementOut | None
    model: str
