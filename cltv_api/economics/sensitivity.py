"""One-at-a-time sensitivity (tornado) of a business case's NPV.

Every numeric input (costs, discount rate, horizon, baseline numbers, effect sizes, NPS group
economics; see :func:`cltv_api.economics.business_case.numeric_inputs`) is moved to a low and a
high value while all the others stay at their base values, and the NPV is recomputed at both
ends. Bars are sorted by swing = |NPV(high) - NPV(low)|, the widest first (the usual tornado
diagram, e.g. Clemen & Reilly, *Making Hard Decisions*, ch. 5, "one-way sensitivity analysis").

Ranges: by default base x (1 - 20%) and base x (1 + 20%) (``relative_range``), or the caller's
absolute (low, high) per input. Each end is clipped to the input's valid range (a retention of
0.9 + 20% would be 1.08: it is clipped to 1, and the bar says so), and further if the other
inputs require it (with a churn reduction of 2 points, retention cannot exceed 0.98: the end is
moved towards the base value by bisection until the case is valid); whole-number inputs
(horizon, start period) are rounded. An input whose base value is 0 has a zero-width default range, so
give it a range explicitly if it matters. A curve baseline appears as one input, a multiplier
of the whole value curve (base 1).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..errors import FieldError, InvalidInput
from .business_case import (
    BusinessCaseInput,
    input_bounds,
    npv_of,
    numeric_inputs,
    replace_input,
    validate,
)

DEFAULT_RELATIVE_RANGE = 0.20
_WHOLE_INPUTS = ("horizon_periods", "start_period", "renewals")
_BISECTION_STEPS = 50


@dataclass(frozen=True)
class TornadoBar:
    """NPV at the low and high end of one input's range (money in the case's currency)."""

    input: str
    base_value: float
    low_value: float
    high_value: float
    npv_low: float
    npv_high: float
    swing: float
    clipped: bool


@dataclass(frozen=True)
class TornadoResult:
    currency: str
    base_npv: float
    relative_range: float
    bars: list[TornadoBar]


def tornado(
    case: BusinessCaseInput,
    *,
    relative_range: float = DEFAULT_RELATIVE_RANGE,
    ranges: Mapping[str, tuple[float, float]] | None = None,
) -> TornadoResult:
    """Tornado of ``case``'s NPV over every numeric input, widest swing first.

    ``ranges`` maps input paths to absolute (low, high) values and overrides the default
    +-``relative_range`` for those inputs. Raises InvalidInput naming ``relative_range`` or
    ``ranges[<path>]`` for impossible settings, and the business case's own fields for an
    invalid case.
    """
    validate(case)
    inputs = numeric_inputs(case)
    _check_settings(relative_range, ranges or {}, inputs)
    base_npv = npv_of(case)
    bars = []
    for path, base in inputs.items():
        low, high = (ranges or {}).get(
            path, (base * (1 - relative_range), base * (1 + relative_range))
        )
        bar = _bar(case, path, base, float(low), float(high))
        bars.append(bar)
    bars.sort(key=lambda b: b.swing, reverse=True)
    return TornadoResult(case.currency, base_npv, relative_range, bars)


def _check_settings(
    relative_range: float,
    ranges: Mapping[str, tuple[float, float]],
    inputs: Mapping[str, float],
) -> None:
    errors: list[FieldError] = []
    if not isinstance(relative_range, int | float) or not 0 < relative_range <= 1:
        errors.append(
            FieldError("relative_range", "must be above 0 and at most 1", value=str(relative_range))
        )
    for path, pair in ranges.items():
        name = f"ranges[{path}]"
        if path not in inputs:
            errors.append(FieldError(name, "is not a numeric input of the business case"))
        elif len(pair) != 2 or not all(isinstance(v, int | float) for v in pair):
            errors.append(
                FieldError(name, "must be a (low, high) pair of numbers", value=str(pair))
            )
        elif not pair[0] <= pair[1]:
            errors.append(FieldError(name, "low must not be above high", value=str(pair)))
    if errors:
        raise InvalidInput("the sensitivity settings are not valid", errors=errors)


def _bar(case: BusinessCaseInput, path: str, base: float, low: float, high: float) -> TornadoBar:
    lo_ok, hi_ok = input_bounds(case, path)
    whole = path.rsplit(".", 1)[-1] in _WHOLE_INPUTS
    ends = []
    for target in (low, high):
        value = _valid_towards(case, path, base, min(max(target, lo_ok), hi_ok), whole)
        ends.append(value)
    low_c, high_c = ends
    npv_low = npv_of(replace_input(case, path, low_c))
    npv_high = npv_of(replace_input(case, path, high_c))
    return TornadoBar(
        input=path,
        base_value=base,
        low_value=low_c,
        high_value=high_c,
        npv_low=npv_low,
        npv_high=npv_high,
        swing=abs(npv_high - npv_low),
        clipped=not (_same(low_c, low, whole) and _same(high_c, high, whole)),
    )


def _same(used: float, asked: float, whole: bool) -> bool:
    return used == (round(asked) if whole else asked)


def _valid_towards(
    case: BusinessCaseInput, path: str, base: float, target: float, whole: bool
) -> float:
    """``target`` if the case stays valid with it, else the valid value closest to it on the
    way from ``base`` (bisection): other inputs can limit this one (a retention raised to 1
    leaves no churn for a churn reduction to remove)."""
    if whole:
        target = float(round(target))
    if _is_valid(replace_input(case, path, target)):
        return target
    good, bad = base, target
    for _ in range(_BISECTION_STEPS):
        mid = (good + bad) / 2
        if whole:
            mid = float(round(mid))
            if mid in (good, bad):
                break
        if _is_valid(replace_input(case, path, mid)):
            good = mid
        else:
            bad = mid
    return good


def _is_valid(case: BusinessCaseInput) -> bool:
    try:
        validate(case)
    except InvalidInput:
        return False
    return True
