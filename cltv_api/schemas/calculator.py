"""Quick-calculator bodies: the inputs (JSON body or query parameters) and the answer.

The model behind them is the constant-retention model of Gupta & Lehmann (2003, "Customers as
Assets", J. Interactive Marketing 17(1); 2005, *Managing Customers as Investments*, ch. 2), as
implemented in :mod:`cltv_api.economics.calculator`. Money is in ``currency`` (a label: nothing is
converted), rates are fractions (0.8, not 80), time is counted in periods of ``period``.

Ranges that depend on the maths (shares in [0, 1], a finite value for an unlimited horizon...)
are checked by the calculator itself, which names every offending field at once; this module
checks only types, finiteness and the choices offered.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

PeriodName = Literal["week", "month", "quarter", "year"]
TimingName = Literal["start", "end"]

REQUEST_EXAMPLE: dict[str, Any] = {
    "average_order_value": 1000.0,
    "purchases_per_period": 2.0,
    "gross_margin": 0.5,
    "retention_rate": 0.8,
    "annual_discount_rate": 0.0,
    "horizon_periods": None,
    "acquisition_cost": 2500.0,
    "period": "month",
    "timing": "start",
    "currency": "RUB",
}


class CalculatorRequest(BaseModel):
    """Inputs of the quick calculator. Give exactly one of ``retention_rate`` and
    ``churn_rate`` (churn = 1 - retention)."""

    model_config = ConfigDict(
        extra="forbid",
        allow_inf_nan=False,
        str_strip_whitespace=True,
        json_schema_extra={"examples": [REQUEST_EXAMPLE]},
    )

    average_order_value: float = Field(
        description="Average order value (check), in `currency` per purchase; >= 0.",
        examples=[1000.0],
    )
    purchases_per_period: float = Field(
        description="Purchases per period of `period` of an active customer; >= 0.",
        examples=[2.0],
    )
    gross_margin: float = Field(
        description="Share of revenue kept as margin, 0..1; 1 values revenue instead of margin.",
        examples=[0.5],
    )
    retention_rate: float | None = Field(
        default=None,
        description="Probability that an active customer is still active one period later, 0..1.",
        examples=[0.8],
    )
    churn_rate: float | None = Field(
        default=None,
        description="Probability that an active customer leaves within a period, 0..1 "
        "(instead of retention_rate).",
        examples=[0.2],
    )
    annual_discount_rate: float = Field(
        default=0.10,
        description="Effective annual discount rate, > -1 and <= 10; converted per period.",
        examples=[0.1],
    )
    horizon_periods: int | None = Field(
        default=None,
        description="Periods counted, 1..10000; null or absent for an unlimited horizon.",
        examples=[36],
    )
    acquisition_cost: float = Field(
        default=0.0,
        description="Cost of acquiring one customer (CAC), in `currency`; >= 0 (0: none given).",
        examples=[2500.0],
    )
    period: PeriodName = Field(default="month", description="Length of one period.")
    timing: TimingName = Field(
        default="start",
        description="Whether each period's margin arrives at its start (period 1 undiscounted) "
        "or at its end.",
    )
    currency: str = Field(
        default="RUB",
        min_length=1,
        max_length=12,
        description="Currency label carried through every figure (never converted).",
    )


class CalculatorInputs(BaseModel):
    """The inputs the answer was computed from (defaults filled in, both rates given)."""

    average_order_value: float
    purchases_per_period: float
    gross_margin: float
    retention_rate: float
    churn_rate: float
    annual_discount_rate: float
    horizon_periods: int | None
    acquisition_cost: float
    period: PeriodName
    timing: TimingName
    currency: str


class CalculatorCurve(BaseModel):
    """Expected state of one acquired customer at each period (at most the first 600)."""

    period: list[int] = Field(description="Period number t = 1, 2, ...")
    survival: list[float] = Field(
        description="Probability of being active in period t: retention^(t-1)."
    )
    cumulative_value: list[float] = Field(
        description="Expected discounted margin of periods 1..t, in `currency`."
    )
    truncated: bool = Field(
        description="True when the horizon is longer than the curve (or unlimited)."
    )


class CalculatorConventions(BaseModel):
    """How to read the numbers: units, timing, horizon, what is counted and where from."""

    period: PeriodName = Field(description="Unit of every duration and per-period figure.")
    currency: str = Field(description="Unit of every amount (a label, never converted).")
    timing: TimingName
    timing_description: str
    first_period_included: bool = Field(
        description="The first period's margin is part of CLTV (the customer is active in it)."
    )
    horizon_periods: int | None = Field(description="Null: unlimited.")
    horizon_description: str
    value_basis: Literal["margin", "revenue"] = Field(
        description="`revenue` when gross_margin = 1, otherwise `margin`."
    )
    annual_discount_rate: float
    discount_rate_per_period: float = Field(
        description="(1 + annual) ^ (period length in years) - 1."
    )
    formula: str
    lifetime_definition: str
    payback_definition: str
    source: str


class CalculatorResponse(BaseModel):
    """CLTV of one newly acquired customer and the figures around it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "clv": 5000.0,
                    "ltv_to_cac": 2.0,
                    "cac_payback_periods": 3,
                    "simple_payback_periods": 2.5,
                    "expected_lifetime_periods": 5.0,
                    "margin_per_period": 1000.0,
                    "discount_rate_per_period": 0.0,
                    "curve": {
                        "period": [1, 2, 3],
                        "survival": [1.0, 0.8, 0.64],
                        "cumulative_value": [1000.0, 1800.0, 2440.0],
                        "truncated": True,
                    },
                    "inputs": {**REQUEST_EXAMPLE, "churn_rate": 0.2},
                    "conventions": {
                        "period": "month",
                        "currency": "RUB",
                        "timing": "start",
                        "timing_description": "margin arrives at the start of each period: "
                        "period 1 is not discounted",
                        "first_period_included": True,
                        "horizon_periods": None,
                        "horizon_description": "unlimited (summed in closed form)",
                        "value_basis": "margin",
                        "annual_discount_rate": 0.0,
                        "discount_rate_per_period": 0.0,
                        "formula": "CLTV = v (1+d) / (1+d-r), v = AOV x purchases x margin",
                        "lifetime_definition": "undiscounted expected active periods",
                        "payback_definition": "first period whose cumulative expected "
                        "discounted margin reaches the acquisition cost",
                        "source": "Gupta & Lehmann (2003), Customers as Assets, J. Interactive "
                        "Marketing 17(1); Gupta & Lehmann (2005), Managing Customers as "
                        "Investments, ch. 2",
                    },
                }
            ]
        }
    )

    clv: float = Field(description="Expected discounted margin of one new customer, `currency`.")
    ltv_to_cac: float | None = Field(description="CLTV / acquisition cost; null without a cost.")
    cac_payback_periods: int | None = Field(
        description="First period whose cumulative expected discounted margin reaches the "
        "acquisition cost (0 without a cost); null when not reached within the horizon or, "
        "for a longer or unlimited horizon, within the curve's periods."
    )
    simple_payback_periods: float | None = Field(
        description="Acquisition cost / margin per period, ignoring churn and discounting; "
        "null when the margin per period is 0."
    )
    expected_lifetime_periods: float | None = Field(
        description="Expected active periods within the horizon, undiscounted; null when "
        "infinite (retention 1 with an unlimited horizon)."
    )
    margin_per_period: float = Field(
        description="v = average_order_value x purchases_per_period x gross_margin, `currency`."
    )
    discount_rate_per_period: float = Field(description="d, effective rate per period.")
    curve: CalculatorCurve
    inputs: CalculatorInputs
    conventions: CalculatorConventions
