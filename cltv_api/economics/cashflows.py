"""Per-period cash-flow arithmetic shared by the business case, sensitivity and simulation.

A cash-flow series is an array indexed by period ``t = 0, 1, ..., H``:

- period 0 is *today*: one-off costs (and anything else paid up front) sit there and are never
  discounted;
- periods 1..H are the periods of the plan, each one ``period`` long (week, month, quarter or
  year). With ``timing="end"`` (the default) period t's cash arrives at the END of the period,
  t periods from today, and is discounted by ``(1 + d) ** -t``; with ``timing="start"`` it
  arrives at the start, ``t - 1`` periods from today, discounted by ``(1 + d) ** -(t - 1)``.
- ``d`` is the effective discount rate per period equivalent to an effective annual rate:
  ``(1 + annual) ** period_in_years - 1`` (:func:`cltv_api.economics.calculator.per_period_discount_rate`).

Formulas (standard capital-budgeting definitions, e.g. Brealey, Myers & Allen, *Principles of
Corporate Finance*, ch. 5-6):

- NPV = sum_t DF_t c_t, with DF_t the discount factor of period t;
- ROI = (PV benefits - PV costs) / PV costs;
- payback = the first time the cumulative net cash flow reaches zero (undiscounted, or of the
  discounted flows for the discounted payback), in periods from today;
- IRR = the rate r per period with sum_t c_t (1 + r) ** -tau_t = 0, tau_t the time of period t's
  cash in periods (t for ``"end"``, as in Excel's ``IRR`` and ``numpy_financial.irr``).

Every function here works on plain numbers and numpy arrays; money is in the caller's currency.
Arrays with a leading axis (draws, scenarios) are supported by :func:`discount_factors` and
:func:`npv` so that the simulator can evaluate many scenarios at once.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from ..errors import FieldError, InvalidInput
from .calculator import PERIOD_YEARS, per_period_discount_rate

FloatArray = NDArray[np.float64]
Timing = Literal["end", "start"]
TIMINGS: tuple[str, ...] = ("end", "start")

IRR_RATE_BOUNDS = (-0.99, 10.0)
"""Per-period rates searched for an IRR: from -99% to +1000% per period."""
_IRR_GRID_POINTS = 2000


class FieldChecks:
    """Collects every problem with a set of inputs so that one error names them all."""

    def __init__(self) -> None:
        self.errors: list[FieldError] = []

    def add(self, field: str, message: str, value: object = None) -> None:
        self.errors.append(FieldError(field, message, value=None if value is None else str(value)))

    def number(
        self,
        field: str,
        value: object,
        *,
        low: float | None = None,
        high: float | None = None,
        low_open: bool = False,
        high_open: bool = False,
        message: str | None = None,
    ) -> bool:
        """Check that ``value`` is a finite number within [low, high] (open ends if asked).

        Returns True when the value is fine, so callers can skip checks that depend on it.
        """
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Real):
            self.add(field, "must be a number", value)
            return False
        value = float(value)
        if not math.isfinite(value):
            self.add(field, "must be a finite number", value)
            return False
        too_low = low is not None and (value <= low if low_open else value < low)
        too_high = high is not None and (value >= high if high_open else value > high)
        if too_low or too_high:
            self.add(field, message or _range_message(low, high, low_open, high_open), value)
            return False
        return True

    def whole(self, field: str, value: object, *, low: int, high: int) -> bool:
        """Check that ``value`` is an integer in [low, high]."""
        if isinstance(value, bool | np.bool_) or not isinstance(value, numbers.Integral):
            self.add(field, "must be a whole number", value)
            return False
        if not low <= int(value) <= high:
            self.add(field, f"must be between {low} and {high}", value)
            return False
        return True

    def choice(self, field: str, value: object, options: Sequence[str]) -> bool:
        if value not in options:
            self.add(field, f"must be one of {list(options)}", value)
            return False
        return True

    def raise_if_any(self, detail: str) -> None:
        if self.errors:
            raise InvalidInput(detail, errors=list(self.errors))


def _range_message(low: float | None, high: float | None, low_open: bool, high_open: bool) -> str:
    parts = []
    if low is not None:
        parts.append(f"{'>' if low_open else '>='} {low:g}")
    if high is not None:
        parts.append(f"{'<' if high_open else '<='} {high:g}")
    return "must be " + " and ".join(parts)


# ----------------------------------------------------------------------------- discounting
def check_discounting(
    checks: FieldChecks, annual_discount_rate: object, period: object, timing: object = "end"
) -> None:
    """Validate an annual rate, a period unit and a timing convention into ``checks``."""
    checks.number(
        "annual_discount_rate",
        annual_discount_rate,
        low=-1.0,
        high=10.0,
        low_open=True,
        message="must be greater than -1 and at most 10 (1000%)",
    )
    checks.choice("period", period, sorted(PERIOD_YEARS))
    checks.choice("timing", timing, TIMINGS)


def per_period_rate(annual_discount_rate: float, period: str) -> float:
    """Effective discount rate per ``period`` from an effective annual rate.

    ``(1 + annual) ** years_per_period - 1``; e.g. 10% a year is 0.7974% a month. Raises
    InvalidInput naming ``annual_discount_rate`` or ``period`` when they are impossible.
    """
    checks = FieldChecks()
    check_discounting(checks, annual_discount_rate, period)
    checks.raise_if_any("the discount rate is not valid")
    return per_period_discount_rate(annual_discount_rate, period)


def cash_flow_times(n_periods: int, timing: Timing = "end") -> FloatArray:
    """Time from today, in periods, of the cash of periods 0..n_periods.

    Period 0 is today (time 0); period t >= 1 is at time t (``"end"``) or t - 1 (``"start"``).
    """
    if n_periods < 0:
        raise InvalidInput(
            "the number of periods must be >= 0",
            errors=[FieldError("horizon_periods", "must be >= 0", value=str(n_periods))],
        )
    t = np.arange(n_periods + 1, dtype=np.float64)
    if timing == "start":
        t[1:] -= 1.0
    return t


def discount_factors(
    rate_per_period: float | ArrayLike, n_periods: int, timing: Timing = "end"
) -> FloatArray:
    """Discount factor of each period 0..n_periods: ``(1 + d) ** -time``.

    ``rate_per_period`` may be an array of shape (n,) (one rate per scenario); the result then
    has shape (n, n_periods + 1). Period 0 always has factor 1.
    """
    times = cash_flow_times(n_periods, timing)
    rate = np.asarray(rate_per_period, dtype=np.float64)
    if rate.ndim == 0:
        return np.asarray((1.0 + rate) ** -times, dtype=np.float64)
    return np.asarray((1.0 + rate[:, None]) ** -times[None, :], dtype=np.float64)


def present_values(cash_flows: ArrayLike, factors: ArrayLike) -> FloatArray:
    """Each period's cash flow times its discount factor (broadcast over leading axes)."""
    return np.asarray(np.asarray(cash_flows, dtype=np.float64) * np.asarray(factors), np.float64)


def npv(cash_flows: ArrayLike, rate_per_period: float, timing: Timing = "end") -> float:
    """Net present value of cash flows for periods 0..H at a per-period rate.

    NPV = sum_t c_t (1 + d) ** -tau_t, tau_t = t (``"end"``) or t - 1 (``"start"``), c_0 today.
    With ``timing="end"`` and c_0 = 0 this is Excel's ``NPV(rate, c_1, ..., c_H)``.
    """
    flows = np.asarray(cash_flows, dtype=np.float64)
    factors = discount_factors(rate_per_period, flows.shape[-1] - 1, timing)
    return float(np.sum(flows * factors))


def roi(pv_benefits: float, pv_costs: float) -> float | None:
    """Return on investment = (PV benefits - PV costs) / PV costs; None when there are no costs."""
    if pv_costs <= 0:
        return None
    return float((pv_benefits - pv_costs) / pv_costs)


def payback_period(net_cash_flows: ArrayLike, factors: ArrayLike | None = None) -> float | None:
    """Periods from today until the cumulative net cash flow first reaches zero.

    ``net_cash_flows`` are c_0 (today), c_1, ..., c_H; with ``factors`` (the discount factors)
    the discounted flows are accumulated instead (discounted payback). Let C_t be the cumulative
    sum. If C_0 >= 0 the payback is 0. Otherwise, with t the first period where C_t >= 0, the
    payback is interpolated linearly within period t, as if its cash came in evenly:

        payback = (t - 1) + (-C_{t-1}) / c_t,   a number in (t - 1, t].

    Returns None when the cumulative flow never reaches zero within the horizon. (If it turns
    negative again later, as when costs outlast the benefits, the first crossing is reported.)
    """
    flows = np.asarray(net_cash_flows, dtype=np.float64)
    if factors is not None:
        flows = flows * np.asarray(factors, dtype=np.float64)
    cumulative = np.cumsum(flows)
    scale = max(1.0, float(np.max(np.abs(flows)))) if flows.size else 1.0
    reached = np.flatnonzero(cumulative >= -1e-12 * scale)
    if reached.size == 0:
        return None
    t = int(reached[0])
    if t == 0:
        return 0.0
    return float(t - 1 + min(1.0, -cumulative[t - 1] / flows[t]))


def irr(cash_flows: ArrayLike, timing: Timing = "end") -> float | None:
    """Internal rate of return per period: the rate r with NPV(r) = 0 (scipy ``brentq``).

    NPV(r) = sum_t c_t (1 + r) ** -tau_t with the times of :func:`cash_flow_times`. Returns None
    when the cash flows never change sign (no IRR exists) or NPV has no root for rates between
    -99% and +1000% per period. With several sign changes there may be several roots; the one
    closest to zero is returned (as ``numpy.irr`` did). The search works in x = ln(1 + r) and
    scales NPV by a positive factor so that no power overflows.
    """
    flows = np.asarray(cash_flows, dtype=np.float64)
    nonzero = flows[flows != 0]
    if nonzero.size == 0 or np.all(nonzero > 0) or np.all(nonzero < 0):
        return None
    times = cash_flow_times(flows.shape[0] - 1, timing)
    t_max = float(times[-1])

    def scaled_npv(x: float | FloatArray) -> FloatArray:
        x_arr = np.asarray(x, dtype=np.float64)[..., None]
        shift = np.where(x_arr < 0, x_arr * t_max, 0.0)  # exp(x t_max) > 0 keeps the sign
        return np.asarray(np.sum(flows * np.exp(shift - x_arr * times), axis=-1), np.float64)

    grid = np.linspace(np.log1p(IRR_RATE_BOUNDS[0]), np.log1p(IRR_RATE_BOUNDS[1]), _IRR_GRID_POINTS)
    values = scaled_npv(grid)
    roots = [float(grid[i]) for i in np.flatnonzero(values == 0)]
    for i in np.flatnonzero(np.sign(values[:-1]) * np.sign(values[1:]) < 0):
        roots.append(
            optimize.brentq(lambda x: float(scaled_npv(x)), grid[i], grid[i + 1], xtol=1e-14)
        )
    if not roots:
        return None
    rates = np.expm1(np.asarray(roots))
    return float(rates[np.argmin(np.abs(rates))])


def annual_rate(rate_per_period: float, period: str) -> float:
    """Effective annual rate equivalent to a per-period rate: (1 + r) ** (1 / years) - 1."""
    return float((1.0 + rate_per_period) ** (1.0 / PERIOD_YEARS[period]) - 1.0)
