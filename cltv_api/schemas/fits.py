"""Fit bodies: the fit request, the fitted models with their diagnostics, segment tables and
scored customers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cltv_api.schemas.datasets import Page, TimeUnitName
from cltv_api.schemas.problem import Problem
from cltv_api.storage.tables import ID_LENGTH

PurchaseModelName = Literal["bgnbd", "pnbd", "mbgnbd", "bgbb", "auto"]
SpendModelName = Literal["gamma_gamma", "none"]
FitStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]
CustomerSort = Literal["clv", "-clv", "p_alive", "-p_alive"]
DistributionMetric = Literal["p_alive", "clv", "expected_purchases"]

MAX_SEGMENT_COLUMNS = 5


class HoldoutIn(BaseModel):
    """Split the observation window: purchases from ``start`` on are the holdout."""

    model_config = ConfigDict(extra="forbid")

    start: date = Field(
        description="First day of the holdout period. The models are fitted on the days before "
        "it, their predictions compared with the purchases made from it to the observation end, "
        "and then refitted on the whole window."
    )


FIT_REQUEST_EXAMPLE: dict[str, Any] = {
    "dataset_id": "ds_5b1n8q4w6e7d2k9x0c3v",
    "purchase_model": "auto",
    "spend_model": "gamma_gamma",
    "segment_by": ["channel"],
    "per_segment": False,
    "time_unit": "weeks",
    "holdout": {"start": "1997-10-01"},
    "observation_end": None,
}


class FitCreate(BaseModel):
    """What to fit, on which data set."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [FIT_REQUEST_EXAMPLE]})

    dataset_id: str = Field(max_length=ID_LENGTH, description="A transactions data set.")
    purchase_model: PurchaseModelName = Field(
        default="auto",
        description="`bgnbd` BG/NBD (Fader, Hardie & Lee 2005), `pnbd` Pareto/NBD (Schmittlein, "
        "Morrison & Colombo 1987), `mbgnbd` MBG/NBD (Batislam, Denizel & Filiztekin 2007), "
        "`bgbb` BG/BB for discrete opportunities, one per `time_unit` period (Fader, Hardie & "
        "Shang 2010), or `auto`: fit BG/NBD, Pareto/NBD and MBG/NBD and keep the lowest "
        "holdout error (with a holdout) or BIC.",
    )
    spend_model: SpendModelName = Field(
        default="gamma_gamma",
        description="Gamma-Gamma spend model (Fader, Hardie & Lee 2005), or none.",
    )
    segment_by: list[str] = Field(
        default_factory=list,
        max_length=MAX_SEGMENT_COLUMNS,
        description="Segment columns of the data set to report by (and fit by, with per_segment).",
    )
    per_segment: bool = Field(
        default=False, description="Fit one model per segment of segment_by instead of one pooled."
    )
    time_unit: TimeUnitName = Field(
        default="weeks",
        description="Length of a purchase period (recency and T are counted in it).",
    )
    holdout: HoldoutIn | None = Field(
        default=None, description="Score the models on a holdout period before the final fit."
    )
    observation_end: date | None = Field(
        default=None,
        description="Last day observed (default: the latest transaction). Purchases are counted "
        "in whole periods of time_unit, so the whole week or month containing it is observed "
        "(the convention of lifetimes' summary_data_from_transaction_data).",
    )

    @field_validator("segment_by", mode="after")
    @classmethod
    def _unique_columns(cls, values: list[str]) -> list[str]:
        names = list(dict.fromkeys(v.strip() for v in values))
        if any(not name for name in names):
            raise ValueError("column names must not be empty")
        return names

    @field_validator("per_segment", mode="after")
    @classmethod
    def _needs_segments(cls, value: bool, info: ValidationInfo) -> bool:
        if value and not info.data.get("segment_by"):
            raise ValueError("per_segment needs at least one segment_by column")
        return value


class ParameterOut(BaseModel):
    """One parameter: estimate, standard error and 95% Wald interval on the log scale."""

    name: str
    estimate: float
    std_error: float | None
    lower_95: float | None
    upper_95: float | None


class ModelOut(BaseModel):
    """A fitted model with its fit statistics and optimiser diagnostics."""

    model: str = Field(description="`bgnbd`, `pnbd`, `mbgnbd`, `bgbb` or `gamma_gamma`.")
    parameters: list[ParameterOut]
    log_likelihood: float | None
    aic: float | None
    bic: float | None
    n_obs: float = Field(description="Customers the likelihood was summed over.")
    converged: bool
    message: str = Field(description="What the optimiser said.")
    n_iter: int


class CandidateOut(BaseModel):
    """A purchase model tried by `auto`."""

    model: str
    converged: bool
    log_likelihood: float | None
    aic: float | None
    bic: float | None
    holdout_mae: float | None = Field(description="Holdout mean absolute error per customer.")
    holdout_rmse: float | None = Field(
        default=None,
        description="Holdout root-mean-square error per customer (what `auto` minimises).",
    )
    error: str | None


class FrequencyRow(BaseModel):
    """Mean holdout purchases by calibration-period repeat purchases (Fader, Hardie & Lee 2005,
    Fig. 3)."""

    frequency_cal: str = Field(description="Repeat purchases in calibration: 0..6 or 7+.")
    customers: int
    predicted_mean: float | None
    actual_mean: float | None


class HoldoutOut(BaseModel):
    """Predicted vs actual purchases in the holdout period, by the calibration-period fit."""

    start: date
    model: str
    calibration_parameters: dict[str, float] = Field(
        description="The model's parameters fitted on the calibration period only."
    )
    customers: int
    predicted_total: float | None
    actual_total: float | None
    mae_per_customer: float | None
    rmse_per_customer: float | None
    by_frequency: list[FrequencyRow]


class SegmentFitOut(BaseModel):
    """The models of one segment (``segment`` is empty for a pooled fit)."""

    segment: dict[str, str]
    purchase_model: str
    purchase: ModelOut
    spend: ModelOut | None
    n_customers: int
    n_repeat_customers: int
    n_histories: int = Field(description="Distinct (frequency, recency, T) histories fitted.")
    candidates: list[CandidateOut]
    selection_reason: str
    holdout: HoldoutOut | None


class FitResultOut(BaseModel):
    observation_end: date
    holdout_start: date | None
    customers: int
    segment_columns: list[str] = Field(description="Segment columns available for reports.")
    fits: list[SegmentFitOut]


class JobRef(BaseModel):
    id: str
    url: str


FIT_EXAMPLE: dict[str, Any] = {
    "id": "fit_2k9x0c3v5b1n8q4w6e7d",
    "url": "/v1/fits/fit_2k9x0c3v5b1n8q4w6e7d",
    "status": "succeeded",
    "dataset_id": "ds_5b1n8q4w6e7d2k9x0c3v",
    "request": {**FIT_REQUEST_EXAMPLE, "purchase_model": "bgnbd", "holdout": None},
    "created_at": "2026-01-05T09:31:00Z",
    "finished_at": "2026-01-05T09:31:02Z",
    "job": None,
    "error": None,
    "result": {
        "observation_end": "1998-06-30",
        "holdout_start": None,
        "customers": 23570,
        "segment_columns": ["channel"],
        "fits": [
            {
                "segment": {},
                "purchase_model": "bgnbd",
                "purchase": {
                    "model": "bgnbd",
                    "parameters": [
                        {
                            "name": "r",
                            "estimate": 0.243,
                            "std_error": 0.013,
                            "lower_95": 0.219,
                            "upper_95": 0.270,
                        }
                    ],
                    "log_likelihood": -9582.4,
                    "aic": 19172.9,
                    "bic": 19197.2,
                    "n_obs": 2357,
                    "converged": True,
                    "message": "converged",
                    "n_iter": 31,
                },
                "spend": None,
                "n_customers": 23570,
                "n_repeat_customers": 10620,
                "n_histories": 4811,
                "candidates": [],
                "selection_reason": "bgnbd was requested",
                "holdout": None,
            }
        ],
    },
    "links": {
        "segments": "/v1/fits/fit_2k9x0c3v5b1n8q4w6e7d/segments",
        "customers": "/v1/fits/fit_2k9x0c3v5b1n8q4w6e7d/customers",
    },
}


class FitOut(BaseModel):
    """A fit: its request, its state and, once it succeeded, the fitted models."""

    model_config = ConfigDict(json_schema_extra={"examples": [FIT_EXAMPLE]})

    id: str
    url: str
    status: FitStatus
    dataset_id: str
    request: FitCreate = Field(description="The request, as given (with defaults filled in).")
    created_at: datetime
    finished_at: datetime | None
    job: JobRef | None = Field(description="The background job, for fits run as one.")
    error: Problem | None = Field(description="Why the fit failed, as problem details.")
    result: FitResultOut | None
    links: dict[str, str]


class FitList(Page):
    items: list[FitOut]


class Conventions(BaseModel):
    """Units and conventions of the values in a segment or customer report."""

    time_unit: TimeUnitName = Field(description="Unit of frequency, recency and T.")
    horizon: int
    horizon_unit: TimeUnitName
    horizon_in_time_units: float
    discount_rate_annual_effective: float
    discount_rate_per_step: float = Field(description="Effective rate per horizon step.")
    cash_flow_timing: str
    margin: float = Field(description="Share of revenue counted as value (1 = revenue).")
    currency: str | None
    interval_level: float
    interval_method: str
    observation_end: date


CONVENTIONS_EXAMPLE: dict[str, Any] = {
    "time_unit": "weeks",
    "horizon": 12,
    "horizon_unit": "months",
    "horizon_in_time_units": 52.18,
    "discount_rate_annual_effective": 0.1,
    "discount_rate_per_step": 0.00797,
    "cash_flow_timing": "end of each horizon step (1 months)",
    "margin": 0.3,
    "currency": "USD",
    "interval_level": 0.95,
    "interval_method": "delta method on the log scale",
    "observation_end": "1998-06-30",
}


class SegmentRowOut(BaseModel):
    """CLTV of one segment over the horizon; money in the data's currency."""

    segment: dict[str, str] = Field(description="The segment's values (empty: all customers).")
    customers: int
    share_active: float = Field(description="Mean P(alive) at the observation end.")
    expected_purchases: float = Field(description="Over the horizon, undiscounted.")
    expected_purchases_per_customer: float
    expected_revenue: float = Field(description="Over the horizon, undiscounted.")
    clv_mean: float
    clv_mean_lower: float | None
    clv_mean_upper: float | None
    clv_median: float | None
    clv_total: float
    clv_total_lower: float | None
    clv_total_upper: float | None
    share_of_value: float = Field(description="This segment's share of the total CLTV.")


class SegmentTableOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fit_id": "fit_2k9x0c3v5b1n8q4w6e7d",
                    "by": ["channel"],
                    "conventions": CONVENTIONS_EXAMPLE,
                    "segments": [
                        {
                            "segment": {"channel": "Online"},
                            "customers": 12964,
                            "share_active": 0.41,
                            "expected_purchases": 9312.4,
                            "expected_purchases_per_customer": 0.718,
                            "expected_revenue": 335120.6,
                            "clv_mean": 7.43,
                            "clv_mean_lower": 6.98,
                            "clv_mean_upper": 7.91,
                            "clv_median": 2.11,
                            "clv_total": 96321.5,
                            "clv_total_lower": 90488.2,
                            "clv_total_upper": 102530.1,
                            "share_of_value": 0.57,
                        }
                    ],
                    "total": {
                        "segment": {},
                        "customers": 23570,
                        "share_active": 0.40,
                        "expected_purchases": 16320.0,
                        "expected_purchases_per_customer": 0.692,
                        "expected_revenue": 589100.0,
                        "clv_mean": 7.17,
                        "clv_mean_lower": 6.80,
                        "clv_mean_upper": 7.56,
                        "clv_median": 2.05,
                        "clv_total": 169000.0,
                        "clv_total_lower": 160300.0,
                        "clv_total_upper": 178200.0,
                        "share_of_value": 1.0,
                    },
                }
            ]
        }
    )

    fit_id: str
    by: list[str]
    conventions: Conventions
    segments: list[SegmentRowOut] = Field(description="One row per segment (empty without by).")
    total: SegmentRowOut = Field(description="All customers.")


class CustomerOut(BaseModel):
    """One customer's history and predictions over the horizon."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "customer_id": "C0000000727",
                    "segments": {"channel": "Online", "region": "North"},
                    "frequency": 30.0,
                    "recency": 70.0,
                    "T": 72.0,
                    "monetary_value": 121.39,
                    "p_alive": 0.955,
                    "expected_purchases": 16.31,
                    "expected_spend": 120.31,
                    "expected_revenue": 1962.64,
                    "clv": 560.82,
                    "clv_lower": 526.50,
                    "clv_upper": 597.39,
                }
            ]
        }
    )

    customer_id: str
    segments: dict[str, str | None]
    frequency: float = Field(description="Repeat purchase periods (x).")
    recency: float = Field(description="Periods from the first to the last purchase (t_x).")
    T: float = Field(description="Periods from the first purchase to the observation end.")
    monetary_value: float = Field(description="Mean spend per repeat period.")
    p_alive: float = Field(description="Probability of being active at the observation end.")
    expected_purchases: float = Field(description="Over the horizon, undiscounted.")
    expected_spend: float = Field(description="Expected spend per purchase (Gamma-Gamma).")
    expected_revenue: float
    clv: float = Field(description="Discounted margin over the horizon.")
    clv_lower: float | None
    clv_upper: float | None


class CustomerDetail(CustomerOut):
    conventions: Conventions


class CustomerPage(Page):
    conventions: Conventions
    items: list[CustomerOut]


class DistributionOut(BaseModel):
    """Histogram of one per-customer value: ``counts[i]`` customers have a value in
    [``edges[i]``, ``edges[i+1]``) (the last bin includes its right edge)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "fit_id": "fit_2k9x0c3v5b1n8q4w6e7d",
                    "metric": "p_alive",
                    "description": "probability that the customer is active at the "
                    "observation end (0..1)",
                    "segment": {"channel": "Online"},
                    "bins": 4,
                    "edges": [0.0, 0.25, 0.5, 0.75, 1.0],
                    "counts": [3120, 1410, 2230, 6204],
                    "customers": 12964,
                    "missing": 0,
                    "mean": 0.61,
                    "min": 0.004,
                    "max": 0.998,
                    "conventions": CONVENTIONS_EXAMPLE,
                }
            ]
        }
    )

    fit_id: str
    metric: DistributionMetric
    description: str = Field(description="What the metric is, with its unit.")
    segment: dict[str, str] = Field(description="The segment's values (empty: all customers).")
    bins: int
    edges: list[float] = Field(
        description="bins + 1 increasing edges: [0, 1] for p_alive, else the values' range."
    )
    counts: list[int] = Field(description="Customers per bin.")
    customers: int = Field(description="Customers in the segment (binned + missing).")
    missing: int = Field(description="Customers without a finite value (in no bin).")
    mean: float | None
    min: float | None
    max: float | None
    conventions: Conventions
