"""Cost of churn per segment from a scored non-contractual fit (BG/NBD, MBG/NBD, Pareto/NBD).

Everything is an engine aggregation over :func:`cltv_api.analysis.scoring.score_customers`'s
per-customer table (``p_alive``, ``expected_revenue``, ``clv``...), grouped by segment: no
customer is pulled into Python. Figures per segment (money in the valuation's currency):

- expected residual CLTV: sum and mean of ``clv``;
- active customers: A = sum of P(alive);
- value lost per customer who churns now, sum(clv) / sum(P(alive)). In these models a
  customer's CLTV is P(alive) x (value if alive): a dead customer makes no more purchases, and
  the conditional expectations of Fader, Hardie & Lee (2005, "Counting Your Customers the Easy
  Way", Marketing Science 24(2), eq. 10) and Schmittlein, Morrison & Colombo (1987) factor as
  P(alive | history) times the expectation given alive. So the ratio is the average over the
  active customers of E[CLTV | alive], weighted by their probability of being active;
- cost of one more percentage point of churn (first order): 1% of the active customers churning
  now, each losing E[CLTV | alive]: 0.01 sum(P(alive)) x sum(clv) / sum(P(alive)) =
  0.01 sum(clv); one point LESS churn is worth the same amount to first order (it assumes the
  point is a one-off change in who is active now, valued at the average active customer);
- per-period version over the horizon (:func:`cost_of_churn` with a fitted model): an extra
  churn of delta per step acting as an independent extra dropout hazard scales step i's
  expected value by (1 - delta)^i; the cost is sum(clv) - sum(clv_more). One point less churn
  scales it by (1 - delta)^(-i), capped so that the survival of a customer alive now never
  exceeds 1: per history, the expected purchases in step i may not exceed q Delta, the expected
  purchases of a step at the current purchase rate q = d/dt E[X(t) | history] at t = 0 (which
  includes P(alive): dead customers are not revived). In these models the expected purchase
  rate only falls through dropout, so e_i / (q Delta) is the step's effective survival and the
  cap keeps it <= 1;
- revenue at risk from customers whose P(alive) is falling: customers with P(alive) in
  [low, high) (default 0.2-0.7): sum of expected_revenue (1 - p) / p, i.e. their revenue if they
  are still active (expected_revenue / p) times the probability that they are gone, with their
  count and share of the segment's customers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa

from cltv_api.analysis.fitting import FittedModels
from cltv_api.analysis.scoring import (
    Valuation,
    _arrow,
    _extend,
    _models,
    fit_histories,
    history_groups,
    prepare_summary,
    score_customers,
)
from cltv_api.engine import HISTORY_KEY, attach
from models import clv

from .cashflows import FieldChecks, FloatArray

DEFAULT_BAND = (0.2, 0.7)
DEFAULT_POINTS = 0.01
MORE = "_clv_more_churn"
LESS = "_clv_less_churn"
_RATE_STEP = 1e-3
"""Fraction of a step used to estimate the current purchase rate by Richardson extrapolation."""
_CELLS_PER_CHUNK = 2_000_000


@dataclass(frozen=True)
class ChurnCostRow:
    """Cost of churn in one segment (``segment == {}``: all customers); money in ``currency``."""

    segment: dict[str, str]
    currency: str
    customers: int
    active_customers: float
    clv_total: float
    clv_mean: float
    value_lost_per_churner: float
    cost_of_one_point_more_churn: float
    value_of_one_point_less_churn: float
    cost_of_one_point_more_churn_per_period: float | None
    value_of_one_point_less_churn_per_period: float | None
    customers_at_risk: int
    share_at_risk: float
    revenue_at_risk: float


def _check(band: tuple[float, float], points: float) -> None:
    checks = FieldChecks()
    low_ok = checks.number("band.low", band[0], low=0.0, high=1.0, low_open=True)
    high_ok = checks.number("band.high", band[1], low=0.0, high=1.0, low_open=True)
    if low_ok and high_ok and band[0] >= band[1]:
        checks.add("band.low", "must be below band.high", band[0])
    checks.number("points", points, low=0.0, high=1.0, low_open=True, high_open=True)
    checks.raise_if_any("the churn-cost settings are not valid")


def churn_cost_table(
    scored: ir.Table,
    by: Sequence[str] = (),
    *,
    band: tuple[float, float] = DEFAULT_BAND,
    points: float = DEFAULT_POINTS,
    currency: str = "",
) -> list[ChurnCostRow]:
    """Cost of churn per ``by`` segment and for all customers (last row) from a scored table.

    ``scored`` is :func:`~cltv_api.analysis.scoring.score_customers` output; when it also has the
    columns added by :func:`attach_step_factors`, the per-period figures are filled in (else
    None). ``points`` is the churn change (0.01 = one percentage point).
    """
    _check(band, points)
    low, high = band
    p = scored.p_alive
    in_band = (p >= low) & (p < high)
    metrics = {
        "customers": scored.count(),
        "active": p.sum(),
        "clv_sum": scored.clv.sum(),
        "at_risk_n": in_band.cast("int64").sum(),
        "at_risk_revenue": ibis.ifelse(in_band, scored.expected_revenue * (1.0 - p) / p, 0.0).sum(),
    }
    per_period = MORE in scored.columns and LESS in scored.columns
    if per_period:
        metrics["more_sum"] = scored[MORE].sum()
        metrics["less_sum"] = scored[LESS].sum()
    tables = [scored.aggregate(**metrics).to_pyarrow()]
    if by:
        tables.insert(
            0, scored.group_by(list(by)).aggregate(**metrics).order_by(list(by)).to_pyarrow()
        )
    rows = []
    for table in tables:
        for k in range(table.num_rows):
            segment = {c: str(table[c][k].as_py()) for c in by if c in table.column_names}
            rows.append(_row(segment, table, k, points, currency, per_period))
    return rows


def _row(
    segment: dict[str, str], table: pa.Table, k: int, points: float, currency: str, per_period: bool
) -> ChurnCostRow:
    def value(name: str) -> float:
        v = table[name][k].as_py()
        return float(v) if v is not None else 0.0

    customers = int(value("customers"))
    active, total = value("active"), value("clv_sum")
    return ChurnCostRow(
        segment=segment,
        currency=currency,
        customers=customers,
        active_customers=active,
        clv_total=total,
        clv_mean=total / customers if customers else 0.0,
        value_lost_per_churner=total / active if active > 0 else 0.0,
        cost_of_one_point_more_churn=points * total,
        value_of_one_point_less_churn=points * total,
        cost_of_one_point_more_churn_per_period=total - value("more_sum") if per_period else None,
        value_of_one_point_less_churn_per_period=value("less_sum") - total if per_period else None,
        customers_at_risk=int(value("at_risk_n")),
        share_at_risk=value("at_risk_n") / customers if customers else 0.0,
        revenue_at_risk=value("at_risk_revenue"),
    )


def step_churn_factors(
    model: clv.PurchaseModel,
    frequency: FloatArray,
    recency: FloatArray,
    T: FloatArray,
    horizon: clv.Horizon,
    delta: float,
) -> tuple[FloatArray, FloatArray]:
    """Per history: CLTV with delta more / less churn per step, as a ratio to the CLTV.

    more = sum_i DF_i e_i (1 - delta)^i / sum_i DF_i e_i
    less = sum_i DF_i min(e_i (1 - delta)^(-i), q Delta) / sum_i DF_i e_i
    with e_i the expected purchases in step i (:mod:`models.clv`), DF_i the step's discount
    factor and q Delta the expected purchases of a step at the current rate (see the module
    docstring); q by Richardson extrapolation of E[X(h)]/h, h = 0.001 step. The spend per
    purchase does not depend on the step, so the ratios apply to the CLTV itself.
    """
    theta = model._theta()
    df = horizon.discount_factors()
    i = np.arange(1, horizon.n_steps + 1, dtype=np.float64)
    more_w = df * (1.0 - delta) ** i
    up = (1.0 - delta) ** -i
    h = _RATE_STEP * horizon.step_length
    more = np.ones_like(frequency)
    less = np.ones_like(frequency)
    chunk = max(1, _CELLS_PER_CHUNK // (horizon.n_steps + 1))
    for start in range(0, frequency.shape[0], chunk):
        part = slice(start, start + chunk)
        x, t_x, age = frequency[part], recency[part], T[part]
        steps = clv._purchases_per_step(model, theta, horizon, x, t_x, age)
        e1 = model._conditional_expected_purchases(theta, np.full_like(x, h), x, t_x, age)
        e2 = model._conditional_expected_purchases(theta, np.full_like(x, 2 * h), x, t_x, age)
        rate_step = (2.0 * e1 / h - e2 / (2.0 * h)) * horizon.step_length
        cap = np.maximum(rate_step, steps[:, 0])[:, None]
        dep = steps @ df
        safe = np.where(dep > 0, dep, 1.0)
        more[part] = np.where(dep > 0, (steps @ more_w) / safe, 1.0)
        less[part] = np.where(dep > 0, (np.minimum(steps * up, cap) @ df) / safe, 1.0)
    return more, less


def attach_step_factors(
    scored: ir.Table,
    summary: ir.Table,
    fitted: FittedModels,
    valuation: Valuation,
    delta: float = DEFAULT_POINTS,
) -> ir.Table:
    """Add the per-customer CLTV with delta more / less churn per step to a scored table.

    The factors of :func:`step_churn_factors` are computed once per unique history (and fitted
    model) and joined in the engine; the two new columns are clv x factor.
    """
    key = list(fitted.model_key)
    prepared = prepare_summary(summary, fitted.request.segment_by)
    horizon = valuation.horizon_for(fitted.request.time_unit)
    groups = history_groups(prepared, key)
    cols: dict[str, list[np.ndarray]] = {}
    for fit in fitted.fits:
        _, rows, _ = fit_histories(groups, key, fit)
        x, t_x, age = (rows[c].astype(float) for c in HISTORY_KEY)
        purchase, _ = _models(fit)
        more, less = step_churn_factors(purchase, x, t_x, age, horizon, delta)
        _extend(
            cols,
            {
                **{c: rows[c] for c in key},
                **{c: rows[c] for c in HISTORY_KEY},
                "_fm": more,
                "_fl": less,
            },
        )
    joined = attach(scored, _arrow(cols, key), key=[*key, *HISTORY_KEY])
    return joined.mutate(**{MORE: joined.clv * joined._fm, LESS: joined.clv * joined._fl}).drop(
        "_fm", "_fl"
    )


def cost_of_churn(
    summary: ir.Table,
    fitted: FittedModels,
    valuation: Valuation,
    by: Sequence[str] | None = None,
    *,
    band: tuple[float, float] = DEFAULT_BAND,
    points: float = DEFAULT_POINTS,
) -> list[ChurnCostRow]:
    """Score ``summary`` and report the cost of churn per segment, per-period figures included.

    ``by`` defaults to the fit's ``segment_by``; the last row is all customers.
    """
    _check(band, points)
    by = list(fitted.request.segment_by if by is None else by)
    summary = prepare_summary(summary, list(dict.fromkeys([*by, *fitted.request.segment_by])))
    scored = score_customers(summary, fitted, valuation)
    scored = attach_step_factors(scored, summary, fitted, valuation, points)
    return churn_cost_table(scored, by, band=band, points=points, currency=valuation.currency)
