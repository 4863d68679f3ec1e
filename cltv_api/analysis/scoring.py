"""Value customers and segments with fitted models, inside the engine.

Per unique history the purchase model gives P(alive), expected purchases over the horizon and the
discounted expected purchases (DEP) with its delta-method variance; per unique frequency the
spend model gives its linear coefficients (see :mod:`models.clv`). Those small tables are joined
back onto every customer in the engine, where CLTV and its interval are plain column arithmetic.
Segment totals and their intervals come from per-(segment, history) counts and spend sums, so no
step needs the customers in Python.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from scipy import special

from cltv_api.engine import HISTORY_KEY, attach
from cltv_api.engine.join import row_codes
from cltv_api.errors import FieldError, InvalidInput
from models import clv
from models._compress import compress

from .fitting import FittedModels, SegmentFit
from .registry import DISCRETE_MODELS

BLANK_SEGMENT = "(blank)"
"""Label of customers whose segment value is missing."""


@dataclass(frozen=True)
class Valuation:
    """How to value customers: horizon, discounting, margin and interval level.

    ``horizon`` is in ``horizon_unit`` (days, weeks, months); ``annual_discount_rate`` is an
    effective annual rate; cash flows are at the end of each horizon step; ``margin`` is the
    share of revenue counted (1 = revenue). ``currency`` is a label only.
    """

    horizon: float = 12
    horizon_unit: str = "months"
    annual_discount_rate: float = 0.10
    margin: float = 1.0
    level: float = 0.95
    currency: str = ""

    def __post_init__(self) -> None:
        errors = []
        if not np.isfinite(self.margin) or not 0 <= self.margin <= 1:
            errors.append(
                FieldError(
                    "margin", "must be between 0 and 1 (a share of revenue)", value=str(self.margin)
                )
            )
        if not 0 < self.level < 1:
            errors.append(FieldError("level", "must be between 0 and 1", value=str(self.level)))
        if errors:
            raise InvalidInput("the valuation parameters are not valid", errors=errors)

    def horizon_for(self, time_unit: str, purchase_models: Sequence[str] = ()) -> clv.Horizon:
        """The horizon in the data's time unit; discrete models need whole periods per step."""
        try:
            horizon = clv.Horizon.from_units(
                self.horizon, self.horizon_unit, time_unit, self.annual_discount_rate
            )
        except ValueError as exc:
            field_name = "annual_discount_rate" if "discount" in str(exc) else "horizon"
            raise InvalidInput(str(exc), errors=[FieldError(field_name, str(exc))]) from exc
        step = horizon.step_length
        if DISCRETE_MODELS.intersection(purchase_models) and abs(step - round(step)) > 1e-9:
            message = (
                f"BG/BB counts whole purchase opportunities (one per {time_unit} period): the "
                f"horizon step ({self.horizon_unit}) must be a whole number of {time_unit}"
            )
            raise InvalidInput(
                message, errors=[FieldError("horizon_unit", message, value=self.horizon_unit)]
            )
        return horizon

    @property
    def z(self) -> float:
        return float(special.ndtri(0.5 + self.level / 2))


def prepare_summary(summary: ir.Table, segment_cols: Sequence[str]) -> ir.Table:
    """Segment columns as strings with missing values labelled :data:`BLANK_SEGMENT`."""
    missing = [c for c in segment_cols if c not in summary.columns]
    if missing:
        raise InvalidInput(
            f"segment column(s) {missing} are not in the data",
            errors=[FieldError(c, "no such column") for c in missing],
        )
    return summary.mutate(
        **{c: summary[c].cast("string").fill_null(BLANK_SEGMENT) for c in segment_cols}
    )


# ------------------------------------------------------------------------------ per customer
def score_customers(
    summary: ir.Table,
    fitted: FittedModels,
    valuation: Valuation,
    *,
    pieces: list[FitPieces] | None = None,
) -> ir.Table:
    """Every customer of ``summary`` with predictions, as a lazy engine table.

    Added columns: ``p_alive``, ``expected_purchases`` (over the horizon, undiscounted),
    ``expected_spend`` (per purchase), ``expected_revenue``, ``clv`` (discounted margin),
    ``clv_lower``/``clv_upper`` (delta-method interval at ``valuation.level``, on the log scale).
    ``pieces`` (from :func:`fit_pieces` with the same valuation) avoids recomputing them.
    """
    key = list(fitted.model_key)
    summary = prepare_summary(summary, fitted.request.segment_by)
    if pieces is None:
        pieces = fit_pieces(summary, fitted, valuation)
    hist_table, spend_table = _prediction_tables(pieces, key)
    scored = attach(summary, hist_table, key=[*key, *HISTORY_KEY])
    scored = attach(scored, spend_table, key=[*key, "frequency"])
    m = scored.monetary_value
    spend = scored._a + scored._b * m
    spend_var = scored._va + 2.0 * m * scored._cab + m * m * scored._vb
    margin = valuation.margin
    value = margin * spend * scored._dep
    variance = (
        margin * margin * (spend * spend * scored._vdep + scored._dep * scored._dep * spend_var)
    )
    rel_se = ibis.ifelse(value > 0, variance.sqrt() / value, 0.0)
    z = valuation.z
    out = scored.mutate(
        expected_spend=spend,
        expected_revenue=spend * scored._ep,
        clv=value,
        clv_lower=value * (-z * rel_se).exp(),
        clv_upper=value * (z * rel_se).exp(),
    )
    out = out.rename(p_alive="_pa", expected_purchases="_ep")
    return out.drop("_a", "_b", "_va", "_cab", "_vb", "_dep", "_vdep")


@dataclass
class FitPieces:
    """One fitted model's valuation pieces on its unique histories and frequencies.

    ``histories`` holds the model-key columns plus frequency, recency and T of every distinct
    history of the fit's customers, aligned with ``values``; ``frequencies`` the distinct
    frequencies, aligned with ``spend``. ``groups`` are the rows of the grouped table
    (:func:`history_groups`) that belong to this fit, and ``group_history``/``group_frequency``
    the position of each such row in ``histories``/``frequencies``.
    """

    fit: SegmentFit
    histories: dict[str, np.ndarray]
    values: clv.HistoryValues
    frequencies: dict[str, np.ndarray]
    spend: clv.SpendCoefficients
    groups: np.ndarray
    group_history: np.ndarray
    group_frequency: np.ndarray


def history_groups(summary: ir.Table, group_cols: Sequence[str]) -> dict[str, np.ndarray]:
    """One engine query: customers (``n``) and summed mean spend (``msum``) per (group, history).

    The result is small (distinct histories times segments), so it comes back as numpy
    arrays: every valuation piece and every segment total is computed from it.
    """
    grouped = (
        summary.group_by([*group_cols, *HISTORY_KEY])
        .aggregate(n=summary.count(), msum=summary.monetary_value.sum())
        .to_pyarrow()
    )
    return {
        name: np.asarray(grouped[name].to_numpy(zero_copy_only=False))
        for name in grouped.column_names
    }


def fit_histories(
    groups: dict[str, np.ndarray], key: Sequence[str], fit: SegmentFit
) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
    """The distinct histories of one fitted model's customers in a grouped table.

    Returns the positions of the fit's rows in ``groups`` (from :func:`history_groups`), the
    distinct (model key, frequency, recency, T) rows among them, and for each of the fit's
    rows the position of its history in those distinct rows. The distinct histories are
    sorted by (x, T, t_x), which keeps the histories that share (x, T) together: what the
    chunked valuation of :func:`models.clv.history_values` evaluates once per chunk.
    """
    rows = np.flatnonzero(_rows_of(groups, key, fit))
    x, t_x, T = (groups[c][rows].astype(float) for c in HISTORY_KEY)
    distinct = compress(x, T, t_x)
    ux, uT, utx = distinct.columns
    h = {c: np.full(distinct.n_unique, fit.segment[c], dtype=object) for c in key}
    h.update({"frequency": ux, "recency": utx, "T": uT})
    return rows, h, distinct.inverse


def fit_pieces(
    summary: ir.Table,
    fitted: FittedModels,
    valuation: Valuation,
    *,
    groups: dict[str, np.ndarray] | None = None,
) -> list[FitPieces]:
    """Evaluate every fitted model once on its customers' distinct histories and frequencies.

    ``groups`` (from :func:`history_groups` with columns including the fit's model key)
    saves the engine query.
    """
    key = list(fitted.model_key)
    horizon = valuation.horizon_for(
        fitted.request.time_unit, [f.purchase_model for f in fitted.fits]
    )
    if groups is None:
        summary = prepare_summary(summary, fitted.request.segment_by)
        groups = history_groups(summary, key)
    out = []
    for fit in fitted.fits:
        rows, h, hist_codes = fit_histories(groups, key, fit)
        freqs = compress(groups["frequency"][rows].astype(float))
        freq_codes = freqs.inverse
        f = {c: np.full(freqs.n_unique, fit.segment[c], dtype=object) for c in key}
        f["frequency"] = freqs.columns[0]
        purchase, spend = _models(fit)
        values = clv.history_values(purchase, h["frequency"], h["recency"], h["T"], horizon)
        coefficients = clv.spend_coefficients(spend, f["frequency"])
        out.append(FitPieces(fit, h, values, f, coefficients, rows, hist_codes, freq_codes))
    return out


def _prediction_tables(
    pieces: Sequence[FitPieces], key: Sequence[str]
) -> tuple[pa.Table, pa.Table]:
    hist_cols: dict[str, list[np.ndarray]] = {}
    spend_cols: dict[str, list[np.ndarray]] = {}
    for piece in pieces:
        h, hv = piece.histories, piece.values
        _extend(
            hist_cols,
            {
                **{c: h[c] for c in key},
                "frequency": h["frequency"].astype(float),
                "recency": h["recency"],
                "T": h["T"],
                "_pa": hv.prob_alive,
                "_ep": hv.expected_purchases,
                "_dep": hv.discounted_purchases,
                "_vdep": hv.variance,
            },
        )
        f, sc = piece.frequencies, piece.spend
        _extend(
            spend_cols,
            {
                **{c: f[c] for c in key},
                "frequency": f["frequency"].astype(float),
                "_a": sc.intercept,
                "_b": sc.slope,
                "_va": sc.var_intercept,
                "_cab": sc.cov_intercept_slope,
                "_vb": sc.var_slope,
            },
        )
    return _arrow(hist_cols, key), _arrow(spend_cols, key)


def _rows_of(groups: dict[str, np.ndarray], key: Sequence[str], fit: SegmentFit) -> np.ndarray:
    """Mask of the grouped rows whose model-key columns equal the fit's segment."""
    mask = np.ones(groups["n"].shape[0], dtype=bool)
    for c in key:
        mask &= groups[c].astype(object) == fit.segment[c]
    return mask


def _extend(cols: dict[str, list[np.ndarray]], values: dict[str, np.ndarray]) -> None:
    for name, arr in values.items():
        cols.setdefault(name, []).append(np.asarray(arr))


def _arrow(cols: dict[str, list[np.ndarray]], key: Sequence[str]) -> pa.Table:
    out = {}
    for name, parts in cols.items():
        arr = np.concatenate(parts)
        out[name] = pa.array(
            arr.astype(object) if name in key else np.nan_to_num(arr.astype(float), nan=0.0)
        )
    return pa.table(out)


# ------------------------------------------------------------------------------ per segment
@dataclass
class SegmentRow:
    """One row of the segment table; money in the data's currency, CLTV is margin."""

    segment: dict[str, str]
    customers: int
    share_active: float
    expected_purchases: float
    expected_purchases_per_customer: float
    expected_revenue: float
    clv_mean: float
    clv_mean_lower: float
    clv_mean_upper: float
    clv_median: float
    clv_total: float
    clv_total_lower: float
    clv_total_upper: float
    share_of_value: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


def segment_table(
    summary: ir.Table,
    fitted: FittedModels,
    valuation: Valuation,
    by: Sequence[str] | None = None,
) -> list[SegmentRow]:
    """CLTV per segment (default: the fit's ``segment_by``) plus a last row for all customers.

    Means and totals carry delta-method intervals from the parameters' covariance (models of
    different segments are independent fits, so their variances add). The median is the engine's
    quantile of the per-customer CLTV.
    """
    by = list(fitted.request.segment_by if by is None else by)
    key = list(fitted.model_key)
    summary = prepare_summary(summary, list(dict.fromkeys([*by, *fitted.request.segment_by])))
    groups = history_groups(summary, list(dict.fromkeys([*by, *key])))
    pieces = fit_pieces(summary, fitted, valuation, groups=groups)
    totals = _group_totals(groups, pieces, valuation, by)
    medians = _medians(score_customers(summary, fitted, valuation, pieces=pieces), by)
    rows = [
        _row(segment, parts, medians.get(label, float("nan")), valuation)
        for label, (segment, parts) in totals.items()
    ]
    everyone = [p for _, parts in totals.values() for p in parts]
    overall = _row({}, everyone, medians.get((), float("nan")), valuation)
    total_value = overall.clv_total
    for row in [*rows, overall]:
        row.share_of_value = row.clv_total / total_value if total_value > 0 else 0.0
    rows.sort(key=lambda r: tuple(r.segment.values()))
    return [*rows, overall] if by else [overall]


@dataclass
class _Part:
    """A report segment's share of one fitted model's customers."""

    total: clv.GroupTotal
    alive_sum: float
    model_index: int
    purchase_log_cov: np.ndarray
    spend_log_cov: np.ndarray | None


def _group_totals(
    groups: dict[str, np.ndarray],
    pieces: Sequence[FitPieces],
    valuation: Valuation,
    by: Sequence[str],
) -> dict[tuple[str, ...], tuple[dict[str, str], list[_Part]]]:
    """Per report segment (keyed by its values): the segment and one total per fitted model.

    ``groups`` is the grouped table the ``pieces`` were computed from (:func:`fit_pieces`).
    """
    out: dict[tuple[str, ...], tuple[dict[str, str], list[_Part]]] = {}
    for index, piece in enumerate(pieces):
        rows = piece.groups
        if rows.size == 0:
            continue
        purchase, spend = _models(piece.fit)
        p_cov = clv._log_covariance(purchase)
        s_cov = None if spend is None else clv._log_covariance(spend)
        codes, uniques = _segment_codes(groups, rows, by)
        # Rows ordered by segment once: each segment is then a contiguous slice (a view).
        order = np.argsort(codes, kind="stable")
        bounds = np.searchsorted(codes[order], np.arange(len(uniques) + 1))
        hv = _take(piece.values, piece.group_history[order])
        sc = _take(piece.spend, piece.group_frequency[order])
        n = groups["n"][rows[order]].astype(float)
        msum = groups["msum"][rows[order]].astype(float)
        for code, label in enumerate(uniques):
            sel = slice(bounds[code], bounds[code + 1])
            part_hv, part_sc = _take(hv, sel), _take(sc, sel)
            total = clv.group_total(
                part_hv, part_sc, n[sel], msum[sel], valuation.margin, p_cov, s_cov
            )
            label_t = tuple(str(v) for v in label)
            segment = dict(zip(by, label_t, strict=True))
            part = _Part(total, float(np.dot(part_hv.prob_alive, n[sel])), index, p_cov, s_cov)
            out.setdefault(label_t, (segment, []))[1].append(part)
    return out


def _segment_codes(
    groups: dict[str, np.ndarray], rows: np.ndarray, by: Sequence[str]
) -> tuple[np.ndarray, list[tuple[str, ...]]]:
    """Each row's report segment (a code) and the segments' values, ordered by the first
    column's values in order of appearance, then the second column's, and so on."""
    if not by:
        return np.zeros(rows.size, dtype=np.intp), [()]
    labels = [_label_codes(groups[c][rows]) for c in by]
    combined = row_codes([(codes, len(values)) for codes, values in labels], rows.size)
    _, first = np.unique(combined, return_index=True)
    return combined, [tuple(str(values[codes[i]]) for codes, values in labels) for i in first]


def _label_codes(values: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """Codes of segment labels (strings) by Arrow's hash encoding, and the distinct labels.

    Hashing: sorting 300k Python strings (numpy's unique on an object array) took 0.1 s.
    """
    encoded = pc.dictionary_encode(pa.array(values, type=pa.string()))
    codes = np.asarray(encoded.indices.to_numpy(zero_copy_only=False), dtype=np.intp)
    return codes, [str(v) for v in encoded.dictionary.to_pylist()]


_T = TypeVar("_T", clv.HistoryValues, clv.SpendCoefficients)


def _take(pieces: _T, rows: np.ndarray | slice) -> _T:
    """The rows (indices, mask or slice) of every array field of a valuation-pieces dataclass."""
    return type(pieces)(*(getattr(pieces, f)[rows] for f in pieces.__dataclass_fields__))


def _models(fit: SegmentFit) -> tuple[clv.PurchaseModel, clv.SpendModel | None]:
    """The fitted models of a segment, typed as what the valuation needs of them."""
    return cast(clv.PurchaseModel, fit.purchase), cast(clv.SpendModel | None, fit.spend)


def _medians(scored: ir.Table, by: Sequence[str]) -> dict[tuple[str, ...], float]:
    """Median CLTV per segment and over everyone (key ``()``), in one engine query.

    The per-segment medians and the overall one are a union of two aggregates over the same
    join of the customers to their predictions: one query where there were two.
    """
    overall = scored.aggregate(_all=ibis.literal(True), med=scored.clv.quantile(0.5))
    if by:
        per = scored.group_by(list(by)).aggregate(
            _all=ibis.literal(False), med=scored.clv.quantile(0.5)
        )
        overall = overall.mutate(**{c: ibis.null(scored[c].type()) for c in by})
        overall = per.union(overall.select(*by, "_all", "med"))
    out: dict[tuple[str, ...], float] = {}
    for row in overall.to_pyarrow().to_pylist():
        label = () if row["_all"] else tuple(str(row[c]) for c in by)
        out[label] = float(row["med"] or 0.0)
    return out


def _row(
    segment: dict[str, str], parts: Sequence[_Part], median: float, valuation: Valuation
) -> SegmentRow:
    customers = sum(p.total.customers for p in parts)
    total = sum(p.total.clv_total for p in parts)
    se = _combined_se(parts)
    lower, upper = _log_interval(total, se, valuation.z)
    purchases = sum(p.total.purchases_total for p in parts)
    n = max(customers, 1.0)
    return SegmentRow(
        segment=dict(segment),
        customers=int(customers),
        share_active=sum(p.alive_sum for p in parts) / n,
        expected_purchases=purchases,
        expected_purchases_per_customer=purchases / n,
        expected_revenue=sum(p.total.revenue_total for p in parts),
        clv_mean=total / n,
        clv_mean_lower=lower / n,
        clv_mean_upper=upper / n,
        clv_median=median,
        clv_total=total,
        clv_total_lower=lower,
        clv_total_upper=upper,
    )


def _combined_se(parts: Sequence[_Part]) -> float:
    """Standard error of a sum of parts: gradients add within a model, variances across models."""
    variance = 0.0
    for index in {p.model_index for p in parts}:
        mine = [p for p in parts if p.model_index == index]
        grad_p = np.sum([p.total.grad_purchase for p in mine], axis=0)
        grad_s = np.sum([p.total.grad_spend for p in mine], axis=0)
        variance += clv.total_variance(
            grad_p, grad_s, mine[0].purchase_log_cov, mine[0].spend_log_cov
        )
    return float(np.sqrt(max(variance, 0.0))) if np.isfinite(variance) else float("nan")


def _log_interval(value: float, se: float, z: float) -> tuple[float, float]:
    """Interval for a positive quantity on the log scale (stays positive)."""
    if value <= 0 or not np.isfinite(se):
        return value, value
    factor = float(np.exp(z * se / value))
    return value / factor, value * factor
