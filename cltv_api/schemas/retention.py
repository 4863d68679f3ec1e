"""Retention (contractual) bodies: the sBG fit request, the fitted model with forecasts, and the
value of retention by tenure.

The model is the shifted-beta-geometric (sBG) of Fader & Hardie (2007, "How to Project Customer
Retention", J. Interactive Marketing 21(1)); values follow Fader & Hardie (2010, "Customer-Base
Valuation in a Contractual Setting: The Perils of Ignoring Heterogeneity", Marketing Science
29(1)): one payment of ``value_per_period`` at the START of each period, the first at
acquisition. Money is in ``currency`` (a label, never converted); rates are fractions per
period of ``period``.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from cltv_api.schemas.datasets import Page
from cltv_api.schemas.fits import ModelOut
from cltv_api.storage.tables import ID_LENGTH

PeriodName = Literal["week", "month", "quarter", "year"]
SourceKind = Literal["cohorts", "customers", "dataset"]

MAX_COHORTS = 1000
MAX_PERIODS = 1200
MAX_CUSTOMERS = 200_000

# Fader & Hardie (2007), Table 1, "Regular" segment: a cohort of 1,000 followed for 7 years.
REGULAR_COHORT = [1000, 631, 468, 382, 326, 289, 262, 241]

FIT_EXAMPLE: dict[str, Any] = {
    "name": "Regular customers (Fader & Hardie 2007)",
    "cohorts": [{"name": "year 0", "survivors": REGULAR_COHORT}],
    "period": "year",
    "value_per_period": 100.0,
    "discount_rate": 0.10,
    "currency": "USD",
    "forecast_periods": 5,
    "max_renewals": 4,
}


class CohortIn(BaseModel):
    """One cohort: its size at acquisition, then the customers still active after each period."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str = Field(min_length=1, max_length=200, examples=["2021"])
    survivors: list[float] = Field(
        min_length=2,
        max_length=MAX_PERIODS + 1,
        description="[cohort size, active after period 1, after period 2, ...]; non-increasing "
        "counts >= 0 (fractions allowed, e.g. percentages of a cohort of 100).",
        examples=[REGULAR_COHORT],
    )


class CustomerSpellIn(BaseModel):
    """One customer's contract: start date and end date (null while still active)."""

    model_config = ConfigDict(extra="forbid")

    start: date
    end: date | None = None


class RetentionFitCreate(BaseModel):
    """Survivor data (exactly one of ``cohorts``, ``customers`` and ``dataset_id``) and the
    economics used to value retention."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        str_strip_whitespace=True,
        json_schema_extra={"examples": [FIT_EXAMPLE]},
    )

    name: str = Field(default="", max_length=200, description="A label for the fit.")
    cohorts: list[CohortIn] | None = Field(
        default=None, max_length=MAX_COHORTS, description="Survivor counts per cohort."
    )
    customers: list[CustomerSpellIn] | None = Field(
        default=None,
        max_length=MAX_CUSTOMERS,
        description="Per-customer start and end dates; grouped into cohorts by the calendar "
        "`period` in which each customer started.",
    )
    dataset_id: str | None = Field(
        default=None,
        max_length=ID_LENGTH,
        description="A stored contractual data set (cohort or customer layout).",
    )
    observation_end: date | None = Field(
        default=None,
        description="For customer dates: the last day observed (default: the latest start or "
        "end date in the data). Customers ending after it count as active.",
    )
    period: PeriodName = Field(
        default="year",
        description="Length of one contract period (the sBG's time unit): every per-period "
        "figure, the discount rate and the horizon are per period of this length.",
    )
    value_per_period: float = Field(
        ge=0,
        description="Margin (or revenue) per active customer per period, in `currency`, paid at "
        "the start of each period.",
        examples=[100.0],
    )
    discount_rate: float = Field(
        gt=0, le=10, description="Discount rate PER PERIOD (not annual), e.g. 0.10.", examples=[0.1]
    )
    currency: str = Field(
        min_length=1, max_length=12, description="Currency label (never converted)."
    )
    forecast_periods: int = Field(
        default=12, ge=1, le=MAX_PERIODS, description="Periods of the survival forecast."
    )
    level: float = Field(default=0.95, gt=0, lt=1, description="Level of forecast intervals.")
    max_renewals: int = Field(
        default=10, ge=0, le=1000, description="The value table covers renewals 0..max_renewals."
    )
    customers_by_renewals: dict[int, float] | None = Field(
        default=None,
        description="Active customers by renewals made (tenure), for the value lost per churner "
        "and the +-1 point totals. Default: the customers active at the end of the data.",
        examples=[{"7": 241}],
    )


class CohortOut(BaseModel):
    """A cohort as fitted: observed and fitted survivors."""

    name: str
    periods_observed: int = Field(description="Periods after acquisition the cohort was seen.")
    survivors: list[float] = Field(description="Observed: size, then active after each period.")
    expected_survivors: list[float] = Field(description="size x S(t) under the fitted model.")


class DroppedCohort(BaseModel):
    name: str
    reason: str


class RetentionSource(BaseModel):
    kind: SourceKind
    dataset_id: str | None
    observation_end: date | None = Field(description="For customer dates; null for counts.")
    customers: int = Field(description="Customers in the fitted cohorts (sum of cohort sizes).")
    cohorts: list[CohortOut]
    dropped_cohorts: list[DroppedCohort] = Field(
        description="Cohorts left out: observed for less than one full period."
    )


class RetentionConventions(BaseModel):
    """How to read the numbers."""

    period: PeriodName = Field(description="Unit of every per-period figure and of tenure.")
    currency: str = Field(description="Unit of every amount (a label, never converted).")
    value_per_period: float = Field(description="Margin per active customer per period.")
    discount_rate_per_period: float
    timing: str
    tenure: str
    model: str
    source: str


class RetentionForecastOut(BaseModel):
    """Survival S(t) and retention r(t) of a new cohort for t = 1..forecast_periods."""

    periods: list[int]
    survival: list[float]
    survival_lower: list[float] | None
    survival_upper: list[float] | None
    retention: list[float]
    retention_lower: list[float] | None
    retention_upper: list[float] | None
    method: str = Field(description="Interval method (delta method on the logit scale).")
    level: float


class TenureValueOut(BaseModel):
    """An active customer who has made ``renewals`` renewals; money in `currency`."""

    renewals: int
    customers: float = Field(description="Active customers with this tenure (0: table row only).")
    next_retention: float = Field(description="r(renewals + 1): chance of the next renewal.")
    derl: float = Field(description="Discounted expected residual lifetime, periods (FH 2010).")
    residual_value: float = Field(description="value_per_period x DERL.")
    residual_value_plus_point: float = Field(description="With every future r(t) + 1 point.")
    residual_value_minus_point: float = Field(description="With every future r(t) - 1 point.")


class RetentionValueOut(BaseModel):
    """What retention is worth (FH 2010 conventions); money in `currency`."""

    currency: str
    value_per_period: float
    discount_rate_per_period: float
    points: float = Field(description="Retention change of the +- figures (0.01 = 1 point).")
    new_customer_value: float = Field(description="value x DEL: a just-acquired customer.")
    new_customer_value_plus_point: float
    new_customer_value_minus_point: float
    active_customers: float
    residual_value_total: float = Field(description="Sum of the active customers' values.")
    value_lost_per_churner: float = Field(
        description="Customer-weighted mean residual value of the active base."
    )
    value_of_one_point_more_retention: float = Field(description="Over the active base.")
    cost_of_one_point_less_retention: float = Field(description="Over the active base.")
    by_tenure: list[TenureValueOut]
    sum_periods: int = Field(description="Periods summed for the +- figures (tail < 1e-10).")


class RetentionFitOut(BaseModel):
    """A stored sBG fit: data, parameters with standard errors, forecast and values."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "rfit_0a1b2c3d4e5f6g7h8i9j",
                    "url": "/v1/retention/fits/rfit_0a1b2c3d4e5f6g7h8i9j",
                    "name": "Regular customers (Fader & Hardie 2007)",
                    "model": {
                        "model": "sbg",
                        "parameters": [
                            {
                                "name": "alpha",
                                "estimate": 0.704,
                                "std_error": 0.066,
                                "lower_95": 0.587,
                                "upper_95": 0.845,
                            },
                            {
                                "name": "beta",
                                "estimate": 1.182,
                                "std_error": 0.152,
                                "lower_95": 0.918,
                                "upper_95": 1.522,
                            },
                        ],
                        "log_likelihood": -1680.27,
                        "aic": 3364.53,
                        "bic": 3374.35,
                        "n_obs": 1000.0,
                        "converged": True,
                        "message": "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL",
                        "n_iter": 43,
                    },
                }
            ]
        }
    )

    id: str
    url: str
    name: str
    created_at: datetime
    source: RetentionSource
    model: ModelOut
    conventions: RetentionConventions
    forecast: RetentionForecastOut
    value: RetentionValueOut
    links: dict[str, str]


class RetentionFitList(Page):
    items: list[RetentionFitOut]


class RetentionChurnCostOut(BaseModel):
    """The cost of churn of a contractual base, recomputed with the query's economics."""

    retention_fit_id: str
    conventions: RetentionConventions
    value: RetentionValueOut
