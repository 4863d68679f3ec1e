"""Quick CLTV calculator: a customer with constant retention, spend and margin per period.

This is the simple retention model behind most CLTV calculators (Gupta & Lehmann 2003,
"Customers as Assets", Journal of Interactive Marketing 17(1); Gupta & Lehmann 2005, *Managing
Customers as Investments*, ch. 2): a newly acquired customer is active in period 1 for sure and
stays active from one period to the next with probability ``retention``; while active they spend
``average_order_value * purchases_per_period`` per period, of which ``gross_margin`` is kept.

Conventions (echoed in every answer):
- ``timing="start"``: each period's margin arrives at the start of the period, so period 1 is
  undiscounted: CLTV = sum_{t=1..H} v r^(t-1) / (1+d)^(t-1); infinite horizon v (1+d) / (1+d-r).
- ``timing="end"``: margin arrives at the end of the period: CLTV = sum_{t=1..H} v r^(t-1) / (1+d)^t;
  infinite horizon v / (1+d-r). (Gupta & Lehmann's "margin multiple" r / (1+d-r) is the end
  convention for a customer who must first survive one renewal: v r / (1+d-r).)
- ``d`` is the effective discount rate per period converted from the annual rate:
  (1 + annual) ^ (period_length_in_years) - 1.
- Expected lifetime is undiscounted: sum r^(t-1) = (1 - r^H) / (1 - r), or 1 / (1 - r).
- CAC payback is the first period whose cumulative expected discounted margin reaches the
  acquisition cost (None when it never does within the horizon); the simple payback
  ``CAC / v`` ignores churn and discounting and is given alongside for comparison.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from ..errors import FieldError, InvalidInput

Timing = Literal["start", "end"]
PeriodUnit = Literal["month", "quarter", "year", "week"]

PERIOD_YEARS: dict[str, float] = {"week": 7 / 365.25, "month": 1 / 12, "quarter": 0.25, "year": 1.0}
MAX_CURVE_PERIODS = 600
"""Longest value curve returned (periods); an infinite horizon is summed in closed form."""
MAX_HORIZON = 10_000


@dataclass(frozen=True)
class CalculatorInput:
    """Inputs of the quick calculator; money in ``currency`` per purchase, rates as fractions."""

    average_order_value: float
    purchases_per_period: float
    gross_margin: float
    retention_rate: float
    annual_discount_rate: float = 0.10
    horizon_periods: int | None = 36
    acquisition_cost: float = 0.0
    period: PeriodUnit = "month"
    timing: Timing = "start"
    currency: str = "RUB"


@dataclass(frozen=True)
class CalculatorResult:
    clv: float
    margin_per_period: float
    discount_rate_per_period: float
    expected_lifetime_periods: float
    ltv_to_cac: float | None
    cac_payback_periods: int | None
    simple_payback_periods: float | None
    curve_period: list[int] = field(default_factory=list)
    curve_survival: list[float] = field(default_factory=list)
    curve_cumulative_value: list[float] = field(default_factory=list)


def validate_input(inp: CalculatorInput) -> None:
    """Raise InvalidInput naming every impossible field at once."""
    errors: list[FieldError] = []

    def check(name: str, value: float, ok: bool, message: str) -> None:
        if not (isinstance(value, int | float) and math.isfinite(value)):
            errors.append(FieldError(name, "must be a finite number", value=str(value)))
        elif not ok:
            errors.append(FieldError(name, message, value=str(value)))

    check(
        "average_order_value", inp.average_order_value, inp.average_order_value >= 0, "must be >= 0"
    )
    check(
        "purchases_per_period",
        inp.purchases_per_period,
        inp.purchases_per_period >= 0,
        "must be >= 0",
    )
    check(
        "gross_margin",
        inp.gross_margin,
        0 <= inp.gross_margin <= 1,
        "must be between 0 and 1 (a share, not a percent)",
    )
    check(
        "retention_rate",
        inp.retention_rate,
        0 <= inp.retention_rate <= 1,
        "must be between 0 and 1 (a share, not a percent)",
    )
    check(
        "annual_discount_rate",
        inp.annual_discount_rate,
        -1 < inp.annual_discount_rate <= 10,
        "must be greater than -1 and at most 10 (1000%)",
    )
    check("acquisition_cost", inp.acquisition_cost, inp.acquisition_cost >= 0, "must be >= 0")
    if inp.horizon_periods is not None and not (1 <= inp.horizon_periods <= MAX_HORIZON):
        errors.append(
            FieldError(
                "horizon_periods",
                f"must be between 1 and {MAX_HORIZON}, or empty for an unlimited horizon",
                value=str(inp.horizon_periods),
            )
        )
    if inp.period not in PERIOD_YEARS:
        errors.append(
            FieldError("period", f"must be one of {sorted(PERIOD_YEARS)}", value=str(inp.period))
        )
    if inp.timing not in ("start", "end"):
        errors.append(FieldError("timing", "must be 'start' or 'end'", value=str(inp.timing)))
    if not errors and inp.horizon_periods is None:
        rate = per_period_discount_rate(inp.annual_discount_rate, inp.period)
        if inp.retention_rate >= 1 + rate:
            message = (
                "an unlimited horizon needs retention below 1 + the discount rate per period "
                f"({1.0 + rate:.6g}): the value would be infinite"
            )
            errors.append(FieldError("horizon_periods", message))
            if rate < 0:  # a negative rate is what makes a retention below 1 diverge
                errors.append(
                    FieldError("annual_discount_rate", message, value=str(inp.annual_discount_rate))
                )
    if errors:
        raise InvalidInput("calculator inputs are not valid", errors=errors)


def per_period_discount_rate(annual_rate: float, period: str) -> float:
    """Effective discount rate per period equivalent to an effective annual rate."""
    return float((1.0 + annual_rate) ** PERIOD_YEARS[period] - 1.0)


def _closed_form_clv(v: float, r: float, d: float, timing: Timing, horizon: int | None) -> float:
    """Sum of v r^(t-1) / (1+d)^(t-1 or t) for t = 1..H (or to infinity) in closed form."""
    q = r / (1.0 + d)
    shift = 1.0 if timing == "start" else 1.0 / (1.0 + d)
    if horizon is None:
        return v * shift / (1.0 - q)
    if abs(1.0 - q) < 1e-12:
        return v * shift * horizon
    return v * shift * (1.0 - q**horizon) / (1.0 - q)


def calculate(inp: CalculatorInput) -> CalculatorResult:
    """CLTV, LTV:CAC, payback and the per-period value curve for the simple retention model."""
    validate_input(inp)
    try:
        with np.errstate(over="raise", invalid="raise"):
            result = _calculate(inp)
    except (OverflowError, FloatingPointError) as exc:
        raise _too_large() from exc
    if not math.isfinite(result.clv) or not all(map(math.isfinite, result.curve_cumulative_value)):
        raise _too_large()
    return result


def _too_large() -> InvalidInput:
    message = (
        "the value overflows: a discount rate this negative over this horizon has no finite value"
    )
    return InvalidInput(message, errors=[FieldError("annual_discount_rate", message)])


def _calculate(inp: CalculatorInput) -> CalculatorResult:
    v = inp.average_order_value * inp.purchases_per_period * inp.gross_margin
    r = inp.retention_rate
    d = per_period_discount_rate(inp.annual_discount_rate, inp.period)
    clv = _closed_form_clv(v, r, d, inp.timing, inp.horizon_periods)
    if inp.horizon_periods is None:
        lifetime = math.inf if r >= 1 else 1.0 / (1.0 - r)
    else:
        lifetime = (
            float(inp.horizon_periods) if r >= 1 else (1.0 - r**inp.horizon_periods) / (1.0 - r)
        )
    n_curve = min(inp.horizon_periods or MAX_CURVE_PERIODS, MAX_CURVE_PERIODS)
    t = np.arange(1, n_curve + 1, dtype=np.float64)
    survival = r ** (t - 1)
    exponent = t - 1 if inp.timing == "start" else t
    cumulative = np.cumsum(v * survival / (1.0 + d) ** exponent)
    payback = _payback(cumulative, inp.acquisition_cost)
    cac = inp.acquisition_cost
    return CalculatorResult(
        clv=float(clv),
        margin_per_period=float(v),
        discount_rate_per_period=d,
        expected_lifetime_periods=float(lifetime),
        ltv_to_cac=None if cac == 0 else float(clv / cac),
        cac_payback_periods=payback,
        simple_payback_periods=None if v == 0 else float(cac / v),
        curve_period=[int(p) for p in t],
        curve_survival=[float(s) for s in survival],
        curve_cumulative_value=[float(c) for c in cumulative],
    )


def _payback(cumulative: np.ndarray, cost: float) -> int | None:
    if cost <= 0:
        return 0
    reached = np.flatnonzero(cumulative >= cost - 1e-9)
    return int(reached[0]) + 1 if reached.size else None
