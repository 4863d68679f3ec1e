"""Business-case bodies: a CX initiative, the baseline of the customers it affects, its effects,
sensitivity and Monte Carlo settings, and the evaluated case.

The maths is :mod:`cltv_api.economics.business_case` (cash flows at the end of each period by
default, period 0 = today; NPV, ROI, payback, IRR, break-even), :mod:`.sensitivity` (tornado)
and :mod:`.montecarlo`. Money is in ``initiative.currency`` (a label, never converted); shares
and rates are fractions (0.02, not 2); every per-period figure is per period of
``initiative.period``. Ranges that depend on the rest of the case (a churn reduction larger than
the churn, a start after the horizon) are checked by the economics, which names every offending
field (``body.effects.<segment>.churn_reduction_points``) at once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cltv_api.economics.montecarlo import MAX_DRAWS
from cltv_api.schemas.datasets import Page
from cltv_api.schemas.economics import NpsCountsIn, NpsGroupIn
from cltv_api.storage.tables import ID_LENGTH

PeriodName = Literal["week", "month", "quarter", "year"]
TimingName = Literal["start", "end"]
ALL_SEGMENTS = "*"
MAX_SEGMENTS = 100

_STRICT = ConfigDict(extra="forbid", allow_inf_nan=False, str_strip_whitespace=True)


class InitiativeIn(BaseModel):
    """What the initiative costs and over which plan it is judged."""

    model_config = _STRICT

    name: str = Field(default="", max_length=200, description="The initiative's name.")
    currency: str = Field(min_length=1, max_length=12, description="Currency label of all money.")
    one_off_cost: float = Field(description="Paid today (period 0), `currency`; >= 0.")
    running_cost_per_period: float = Field(
        default=0.0, description="Paid in every period 1..horizon, `currency`; >= 0."
    )
    start_period: int = Field(
        default=0,
        description="Effects act from period start_period + 1 (0: from the first period).",
    )
    horizon_periods: int = Field(
        ge=1, le=600, description="Periods of the plan (600 months = 50 years at most)."
    )
    annual_discount_rate: float = Field(
        default=0.10, description="Effective annual rate, converted per period."
    )
    period: PeriodName = Field(default="month", description="Length of one period.")
    timing: TimingName = Field(
        default="end", description="Cash of each period at its end (default) or start."
    )


class ManualSegmentIn(BaseModel):
    """A segment described by hand (constant retention, Gupta & Lehmann 2003)."""

    model_config = _STRICT

    name: str = Field(min_length=1, max_length=200)
    customers: float = Field(description="Active customers now.")
    margin_per_customer: float = Field(description="Margin per active customer per period.")
    retention: float = Field(description="Share of active customers still active next period.")
    value_relative_se: float = Field(
        default=0.0,
        description="Relative standard error of the segment's value (Monte Carlo only).",
    )


class ManualBaselineIn(BaseModel):
    """Per-segment customers, margin and retention, given by hand."""

    model_config = _STRICT

    kind: Literal["manual"]
    segments: list[ManualSegmentIn] = Field(min_length=1, max_length=MAX_SEGMENTS)


class FitBaselineIn(BaseModel):
    """The expected margin per period of a stored fit's segments (BG/NBD, Pareto/NBD or
    MBG/NBD with Gamma-Gamma spend), over the initiative's horizon."""

    model_config = _STRICT

    kind: Literal["fit"]
    fit_id: str = Field(max_length=ID_LENGTH, description="A fit that succeeded, `fit_...`.")
    by: list[str] | None = Field(
        default=None, max_length=5, description="Segment columns (default: the fit's)."
    )
    segments: list[str] | None = Field(
        default=None,
        max_length=MAX_SEGMENTS,
        description="Segments to include, named `column=value` (several columns joined with "
        "`, `), or `all customers` without columns; default: every segment.",
    )
    margin: float = Field(default=1.0, description="Share of revenue counted as value, 0..1.")


class RetentionBaselineIn(BaseModel):
    """A contractual base valued with a stored sBG retention fit."""

    model_config = _STRICT

    kind: Literal["retention_fit"]
    retention_fit_id: str = Field(max_length=ID_LENGTH, description="`rfit_...`.")
    segment: str = Field(default="contractual base", min_length=1, max_length=200)
    customers: float | None = Field(
        default=None, description="Active customers (default: the fit's active base)."
    )
    margin_per_customer: float | None = Field(
        default=None, description="Margin per customer per period (default: the fit's value)."
    )
    renewals: int | None = Field(
        default=None,
        description="Renewals the customers have made (default: the active base's "
        "customer-weighted mean, rounded).",
    )


Baseline = Annotated[
    ManualBaselineIn | FitBaselineIn | RetentionBaselineIn, Field(discriminator="kind")
]


class NpsShiftIn(BaseModel):
    """Detractors the initiative turns into passives / promoters, with the groups' economics."""

    model_config = _STRICT

    counts: NpsCountsIn
    promoters: NpsGroupIn
    passives: NpsGroupIn
    detractors: NpsGroupIn
    new_customer_value: float | None = Field(
        default=None, description="Value of a referred customer (default: from the groups)."
    )
    detractors_to_passive: float = Field(default=0.0, description="Share of detractors moved.")
    detractors_to_promoter: float = Field(default=0.0, description="Share of detractors moved.")


class ReferralsIn(BaseModel):
    model_config = _STRICT

    new_customers_per_period: float
    value_per_new_customer: float | None = Field(
        default=None, description="`currency`; default: the segment's baseline value."
    )


class EffectsIn(BaseModel):
    """What the initiative changes in a segment, from period start_period + 1 on."""

    model_config = _STRICT

    churn_reduction_points: float = Field(
        default=0.0, description="Churn per period falls by this many points (0.02 = 2 points)."
    )
    churn_reduction_share: float = Field(
        default=0.0, description="Churn per period falls by this share (0.10 = 10% less churn)."
    )
    spend_uplift: float = Field(default=0.0, description="Spend per purchase +share (0.05 = 5%).")
    frequency_uplift: float = Field(default=0.0, description="Purchases per period +share.")
    nps_shift: NpsShiftIn | None = None
    referrals: ReferralsIn | None = None


class RangeIn(BaseModel):
    model_config = _STRICT

    input: str = Field(description="An input path, e.g. `one_off_cost` (see result.inputs).")
    low: float
    high: float


class SensitivityIn(BaseModel):
    """One-at-a-time (tornado) ranges: +-relative_range by default, or explicit ranges."""

    model_config = _STRICT

    relative_range: float = Field(default=0.2, description="0.2: every input x (1 +- 20%).")
    ranges: list[RangeIn] = Field(default_factory=list, max_length=200)


class DistributionIn(BaseModel):
    """Uncertainty about one input."""

    model_config = _STRICT

    input: str = Field(description="An input path (see result.inputs).")
    kind: Literal["uniform", "triangular", "normal"]
    low: float | None = None
    high: float | None = None
    mode: float | None = None
    mean: float | None = None
    sd: float | None = None


class MonteCarloIn(BaseModel):
    """Monte Carlo simulation of the NPV (seeded: the same seed gives the same answer)."""

    model_config = _STRICT

    draws: int = Field(default=10_000, description=f"1..{MAX_DRAWS:,} draws.")
    seed: int = Field(default=0, description="Seed of the random generator (>= 0).")
    parameter_uncertainty: bool = Field(
        default=True, description="Also draw the baseline models' parameters."
    )
    distributions: list[DistributionIn] = Field(default_factory=list, max_length=200)
    bins: int = Field(default=40, description="Histogram bins.")


CASE_EXAMPLE: dict[str, Any] = {
    "name": "Call-back within one hour",
    "initiative": {
        "name": "Call-back",
        "currency": "RUB",
        "one_off_cost": 1_000_000.0,
        "running_cost_per_period": 50_000.0,
        "horizon_periods": 24,
        "annual_discount_rate": 0.12,
        "period": "month",
    },
    "baseline": {
        "kind": "manual",
        "segments": [
            {"name": "mass", "customers": 10000, "margin_per_customer": 400, "retention": 0.95}
        ],
    },
    "effects": {"mass": {"churn_reduction_points": 0.01}},
    "monte_carlo": {
        "draws": 10000,
        "seed": 1,
        "distributions": [
            {
                "input": "segments[0].effects.churn_reduction_points",
                "kind": "triangular",
                "low": 0.0,
                "mode": 0.01,
                "high": 0.02,
            }
        ],
    },
}


class BusinessCaseCreate(BaseModel):
    """A business case; a new POST with the same name stores the next version."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        str_strip_whitespace=True,
        json_schema_extra={"examples": [CASE_EXAMPLE]},
    )

    name: str = Field(min_length=1, max_length=200, description="Versions share a name.")
    initiative: InitiativeIn
    baseline: Baseline
    effects: dict[str, EffectsIn] = Field(
        default_factory=dict,
        description=f"Effects by segment name; `{ALL_SEGMENTS}` applies to every segment without "
        "an entry of its own.",
    )
    sensitivity: SensitivityIn = Field(
        default_factory=SensitivityIn, description="Tornado settings (always computed)."
    )
    monte_carlo: MonteCarloIn | None = Field(default=None, description="Null: no simulation.")


# ------------------------------------------------------------------------------ results
class PeriodRowOut(BaseModel):
    """One period (0 = today); money in `currency`, customers in customers."""

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


class SegmentResultOut(BaseModel):
    name: str
    baseline_kind: str
    pv_baseline_value: float
    pv_value_with_initiative: float
    pv_incremental_value: float
    incremental_value: float
    incremental_customers_retained_last_period: float


class BaselineOut(BaseModel):
    """The baseline a segment was valued with (resolved from a fit where fitted)."""

    segment: str
    kind: Literal["manual", "curve", "sbg"]
    source: str
    customers: float
    active_customers: float | None
    margin_per_customer: float | None = Field(description="Per active customer per period.")
    retention: float | None = Field(description="Manual baselines: constant retention.")
    value_per_period: list[float] | None = Field(description="Fitted curves: expected margin.")
    sbg: dict[str, float] | None = Field(description="sBG baselines: alpha, beta, renewals.")


class BreakEvenEffectOut(BaseModel):
    input: str
    value: float
    break_even_value: float
    capped: bool


class BreakEvenOut(BaseModel):
    """The factor k on every effect at once with NPV(k) = 0."""

    scale: float
    effects: list[BreakEvenEffectOut]


class TornadoBarOut(BaseModel):
    input: str
    base_value: float
    low_value: float
    high_value: float
    npv_low: float
    npv_high: float
    swing: float
    clipped: bool


class TornadoOut(BaseModel):
    currency: str
    base_npv: float
    relative_range: float
    bars: list[TornadoBarOut] = Field(description="Widest swing first.")


class MonteCarloOut(BaseModel):
    currency: str
    n_draws: int
    seed: int
    base_npv: float
    mean: float
    sd: float
    percentiles: dict[str, float] = Field(description="NPV percentiles 5, 25, 50, 75, 95.")
    probability_positive: float = Field(description="P(NPV > 0).")
    histogram_edges: list[float]
    histogram_counts: list[int]
    inputs_varied: list[str]
    parameter_uncertainty: list[str]


class CaseConventions(BaseModel):
    currency: str
    period: PeriodName
    timing: TimingName
    annual_discount_rate: float
    discount_rate_per_period: float
    value_basis: str
    payback_unit: str
    source: str


class BusinessCaseResultOut(BaseModel):
    """NPV, ROI, payback, break-even, cash flows, tornado and simulation; `currency`."""

    npv: float
    roi: float | None = Field(description="(PV benefits - PV costs) / PV costs; null: no costs.")
    pv_benefits: float
    pv_costs: float
    payback_periods: float | None = Field(description="Periods from today; null: not reached.")
    discounted_payback_periods: float | None
    irr_per_period: float | None
    irr_annual: float | None
    break_even: BreakEvenOut | None = Field(description="Null: no k in [0, 100] breaks even.")
    total_baseline_value: float
    total_value_with_initiative: float
    total_incremental_value: float
    total_costs: float
    total_net_cash_flow: float
    periods: list[PeriodRowOut]
    segments: list[SegmentResultOut]
    baselines: list[BaselineOut]
    inputs: dict[str, float] = Field(description="Every numeric input by path.")
    tornado: TornadoOut
    monte_carlo: MonteCarloOut | None
    assumptions: list[str]
    conventions: CaseConventions


class BusinessCaseOut(BaseModel):
    """One version of a business case: its inputs and its evaluation."""

    id: str = Field(description="The case's id (shared by all its versions).")
    version_id: str = Field(description="This version's own id.")
    url: str
    name: str
    version: int
    latest_version: int
    created_at: datetime
    input: BusinessCaseCreate
    result: BusinessCaseResultOut
    links: dict[str, str]


class BusinessCaseSummary(BaseModel):
    id: str
    url: str
    name: str
    version: int
    created_at: datetime
    currency: str
    npv: float
    roi: float | None


class BusinessCaseList(Page):
    items: list[BusinessCaseSummary] = Field(description="Latest version of each case.")
