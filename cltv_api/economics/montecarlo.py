"""Monte Carlo simulation of a business case's NPV: effect-size ranges x model uncertainty.

Each draw takes

- every input given a :class:`Distribution` (effect sizes, costs, discount rate, baseline
  numbers; the paths of :func:`cltv_api.economics.business_case.vectorised_inputs`) from a
  uniform, triangular or normal distribution. Normal draws are truncated to the input's valid
  range (and to [low, high] if given) by inverse-CDF sampling (``scipy.stats.truncnorm``);
  uniform and triangular ranges must lie inside the valid range;
- parameter uncertainty of each segment's baseline:
  * manual and curve baselines with ``value_relative_se`` = s > 0: a log-normal multiplier
    exp(s Z), Z ~ N(0, 1), on the segment's margin per active customer. Its median is 1 and it
    matches the delta-method interval of :func:`cltv_api.analysis.scoring.segment_table`, which
    is value x exp(+-z s) on the log scale (see :func:`relative_se_from_interval`);
  * sBG baselines: (alpha, beta) drawn from the fit's asymptotic distribution
    (:meth:`models.sbg.SBG.sample_params`, normal on the log scale), giving each draw its own
    retention curve r(renewals + t).

All draws come from one ``numpy.random.Generator`` seeded with ``seed`` in a fixed order
(distributions in the order given, then segments in order), so a rerun with the same seed gives
identical results. The NPV of all draws is computed at once with numpy arrays of shape
(draws, periods) (:func:`cltv_api.economics.business_case.simulate_npv`); there is no Python
loop over draws.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import numpy as np
from scipy import stats

from ..errors import FieldError, InvalidInput
from .business_case import (
    BusinessCaseInput,
    CurveBaseline,
    ManualBaseline,
    SBGBaseline,
    Scenarios,
    input_bounds,
    npv_of,
    sbg_retention,
    simulate_npv,
    validate,
    vectorised_inputs,
)
from .cashflows import FieldChecks, FloatArray

if TYPE_CHECKING:
    from ..analysis.scoring import SegmentRow

MAX_DRAWS = 100_000
PERCENTILES = (5, 25, 50, 75, 95)
DistributionKind = Literal["uniform", "triangular", "normal"]
KINDS: tuple[str, ...] = ("uniform", "triangular", "normal")


@dataclass(frozen=True)
class Distribution:
    """Uncertainty about one input: ``uniform(low, high)``, ``triangular(low, mode, high)`` or
    ``normal(mean, sd)`` truncated to the valid range and, if given, to [low, high]."""

    input: str
    kind: DistributionKind
    low: float | None = None
    high: float | None = None
    mode: float | None = None
    mean: float | None = None
    sd: float | None = None


@dataclass(frozen=True)
class SimulationResult:
    """Distribution of the NPV over the draws (money in ``currency``)."""

    currency: str
    n_draws: int
    seed: int
    base_npv: float
    mean: float
    sd: float
    percentiles: dict[int, float]
    probability_positive: float
    histogram_edges: list[float]
    histogram_counts: list[int]
    inputs_varied: list[str]
    parameter_uncertainty: list[str] = field(default_factory=list)


def relative_se_from_interval(value: float, upper: float, level: float = 0.95) -> float:
    """Relative standard error s from a log-scale interval value x exp(+-z s) (the form of
    :class:`cltv_api.analysis.scoring.SegmentRow`'s ``clv_total_upper``): s = ln(upper/value)/z.
    """
    if not (value > 0 and upper >= value and 0 < level < 1):
        raise InvalidInput(
            "need value > 0, upper >= value and a level between 0 and 1",
            errors=[FieldError("upper", "must be >= value > 0", value=str(upper))],
        )
    return float(math.log(upper / value) / stats.norm.ppf(0.5 + level / 2))


def relative_se_of_segment(row: SegmentRow, level: float = 0.95) -> float:
    """Relative standard error of a segment's total CLTV from its delta-method interval
    (``level`` must be the :class:`~cltv_api.analysis.scoring.Valuation` level it was built with):
    clv_total_se / clv_total. Use it as a baseline's ``value_relative_se``."""
    if row.clv_total <= 0:
        return 0.0
    return relative_se_from_interval(row.clv_total, row.clv_total_upper, level)


def simulate(
    case: BusinessCaseInput,
    distributions: Sequence[Distribution] = (),
    *,
    n_draws: int = 10_000,
    seed: int = 0,
    parameter_uncertainty: bool = True,
    bins: int = 40,
) -> SimulationResult:
    """Simulate the NPV of ``case`` (see the module docstring).

    Returns the mean, standard deviation, percentiles 5/25/50/75/95, P(NPV > 0) and a histogram
    (``bins`` equal-width bins). Raises InvalidInput naming ``n_draws`` (at most 100,000),
    ``seed``, ``bins`` or ``distributions[j].<field>`` for impossible settings.
    """
    validate(case)
    _check_settings(case, distributions, n_draws, seed, bins)
    rng = np.random.default_rng(seed)
    values = {d.input: _sample(case, d, rng, n_draws) for d in distributions}
    retention: dict[int, FloatArray] = {}
    multiplier: dict[int, FloatArray] = {}
    notes: list[str] = []
    if parameter_uncertainty:
        for i, seg in enumerate(case.segments):
            note = _parameter_draws(case, i, rng, n_draws, retention, multiplier)
            notes.append(f"{seg.name}: {note}")
    scenarios = Scenarios(n_draws, values, retention, multiplier)
    npv = simulate_npv(case, scenarios)
    counts, edges = np.histogram(npv, bins=bins)
    return SimulationResult(
        currency=case.currency,
        n_draws=n_draws,
        seed=seed,
        base_npv=npv_of(case),
        mean=float(npv.mean()),
        sd=float(npv.std(ddof=1)) if n_draws > 1 else 0.0,
        percentiles={
            p: float(v) for p, v in zip(PERCENTILES, np.percentile(npv, PERCENTILES), strict=True)
        },
        probability_positive=float(np.mean(npv > 0)),
        histogram_edges=[float(e) for e in edges],
        histogram_counts=[int(c) for c in counts],
        inputs_varied=[d.input for d in distributions],
        parameter_uncertainty=notes,
    )


def _parameter_draws(
    case: BusinessCaseInput,
    i: int,
    rng: np.random.Generator,
    n: int,
    retention: dict[int, FloatArray],
    multiplier: dict[int, FloatArray],
) -> str:
    b = case.segments[i].baseline
    if isinstance(b, ManualBaseline | CurveBaseline):
        if b.value_relative_se > 0:
            multiplier[i] = np.exp(b.value_relative_se * rng.standard_normal(n))
            return f"log-normal value multiplier, relative SE {b.value_relative_se:.4g}"
        return "no parameter uncertainty (relative SE 0)"
    assert isinstance(b, SBGBaseline)
    if not bool(np.all(np.isfinite(b.model.covariance_))):
        return "no parameter uncertainty (the sBG fit has no covariance)"
    thetas = b.model.sample_params(n, rng)
    retention[i] = sbg_retention(thetas, b.renewals, case.horizon_periods)
    return "sBG (alpha, beta) drawn from the fit's asymptotic distribution"


def _check_settings(
    case: BusinessCaseInput,
    distributions: Sequence[Distribution],
    n_draws: int,
    seed: int,
    bins: int,
) -> None:
    checks = FieldChecks()
    if isinstance(n_draws, int) and not isinstance(n_draws, bool) and n_draws > MAX_DRAWS:
        checks.add(
            "n_draws",
            f"at most {MAX_DRAWS:,} draws are allowed (percentiles are stable to well under "
            "1% of the spread with 10,000)",
            n_draws,
        )
    else:
        checks.whole("n_draws", n_draws, low=1, high=MAX_DRAWS)
    checks.whole("seed", seed, low=0, high=2**63 - 1)
    checks.whole("bins", bins, low=1, high=1000)
    allowed = vectorised_inputs(case)
    seen: set[str] = set()
    for j, dist in enumerate(distributions):
        p = f"distributions[{j}]."
        if dist.input not in allowed:
            checks.add(
                f"{p}input",
                "cannot be simulated: choose a cost, the discount rate, a baseline number or an "
                "effect of the business case",
                dist.input,
            )
            continue
        if dist.input in seen:
            checks.add(f"{p}input", "has two distributions", dist.input)
        seen.add(dist.input)
        if checks.choice(f"{p}kind", dist.kind, KINDS):
            _check_distribution(checks, p, dist, input_bounds(case, dist.input))
    checks.raise_if_any("the simulation settings are not valid")


def _check_distribution(
    checks: FieldChecks, p: str, dist: Distribution, valid: tuple[float, float]
) -> None:
    lo, hi = valid
    message = f"must lie in the input's valid range [{lo:g}, {hi:g}]"
    if dist.kind in ("uniform", "triangular"):
        low_ok = checks.number(f"{p}low", dist.low, low=lo, high=hi, message=message)
        high_ok = checks.number(f"{p}high", dist.high, low=lo, high=hi, message=message)
        if low_ok and high_ok:
            assert dist.low is not None and dist.high is not None
            if dist.low > dist.high:
                checks.add(f"{p}low", "must not be above high", dist.low)
            elif dist.kind == "triangular" and checks.number(
                f"{p}mode",
                dist.mode,
                low=dist.low,
                high=dist.high,
                message="must lie between low and high",
            ):
                pass
        return
    checks.number(f"{p}mean", dist.mean)
    checks.number(f"{p}sd", dist.sd, low=0.0, low_open=True)
    for name in ("low", "high"):
        if getattr(dist, name) is not None:
            checks.number(f"{p}{name}", getattr(dist, name))
    a, b = _normal_limits(dist, valid)
    if a >= b:
        checks.add(f"{p}low", "the truncation range is empty")


def _normal_limits(dist: Distribution, valid: tuple[float, float]) -> tuple[float, float]:
    low = valid[0] if dist.low is None else max(valid[0], dist.low)
    high = valid[1] if dist.high is None else min(valid[1], dist.high)
    return low, high


def _sample(
    case: BusinessCaseInput, dist: Distribution, rng: np.random.Generator, n: int
) -> FloatArray:
    if dist.kind == "uniform":
        assert dist.low is not None and dist.high is not None
        return rng.uniform(dist.low, dist.high, n)
    if dist.kind == "triangular":
        assert dist.low is not None and dist.high is not None and dist.mode is not None
        if dist.low == dist.high:
            rng.random(n)  # keep the stream aligned with the non-degenerate case
            return np.full(n, float(dist.low))
        return rng.triangular(dist.low, dist.mode, dist.high, n)
    assert dist.mean is not None and dist.sd is not None
    low, high = _normal_limits(dist, input_bounds(case, dist.input))
    a, b = (low - dist.mean) / dist.sd, (high - dist.mean) / dist.sd
    u = rng.random(n)
    draws = stats.truncnorm.ppf(u, a, b, loc=dist.mean, scale=dist.sd)
    return np.clip(np.asarray(draws, dtype=np.float64), low, high)
