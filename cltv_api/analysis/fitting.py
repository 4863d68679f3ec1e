"""Fit purchase and spend models on the engine's compressed histories.

One pooled model for all customers, or one per segment (``per_segment``); ``auto`` fits every
candidate purchase model and keeps the best. With a holdout the calibration-period fit is scored
against the purchases actually made in the holdout (Fader, Hardie & Lee 2005, section 5), and the
final models are refitted on the whole observation window.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import ibis.expr.types as ir
import numpy as np

from cltv_api.engine import CALIBRATION_HISTORY_KEY, Histories, histories, spend_histories
from cltv_api.errors import FieldError, FitFailed, InvalidInput
from models import ModelFitError
from models._base import BaseModel

from .registry import AUTO_CANDIDATES, PURCHASE_MODELS, SPEND_MODELS

ALL_SEGMENTS: dict[str, str] = {}
"""Segment key of the pooled model."""


@dataclass(frozen=True)
class FitRequest:
    """What to fit. ``time_unit`` is the unit of recency and T in the summary."""

    purchase_model: str = "auto"
    spend_model: str = "gamma_gamma"
    segment_by: tuple[str, ...] = ()
    per_segment: bool = False
    time_unit: str = "weeks"

    def __post_init__(self) -> None:
        errors = []
        if self.purchase_model not in (*PURCHASE_MODELS, "auto"):
            errors.append(
                FieldError(
                    "purchase_model",
                    f"must be one of {[*PURCHASE_MODELS, 'auto']}",
                    value=self.purchase_model,
                )
            )
        if self.spend_model not in (*SPEND_MODELS, "none"):
            errors.append(
                FieldError(
                    "spend_model",
                    f"must be one of {[*SPEND_MODELS, 'none']}",
                    value=self.spend_model,
                )
            )
        if self.per_segment and not self.segment_by:
            errors.append(FieldError("per_segment", "needs at least one segment_by column"))
        if errors:
            raise InvalidInput("the fit request is not valid", errors=errors)


@dataclass
class Candidate:
    """One purchase model tried: its fit statistics, and holdout error when scored."""

    model: str
    converged: bool
    log_likelihood: float | None
    aic: float | None
    bic: float | None
    holdout_mae: float | None = None
    holdout_rmse: float | None = None
    error: str | None = None


@dataclass
class SegmentFit:
    """Models fitted for one segment (``segment == {}`` for the pooled model)."""

    segment: dict[str, str]
    purchase_model: str
    purchase: BaseModel
    spend: BaseModel | None
    n_customers: int
    n_repeat_customers: int
    n_histories: int
    candidates: list[Candidate] = field(default_factory=list)
    selection_reason: str = ""
    calibration: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "segment": self.segment,
            "purchase_model": self.purchase_model,
            "purchase": self.purchase.to_dict(),
            "spend": None if self.spend is None else self.spend.to_dict(),
            "n_customers": self.n_customers,
            "n_repeat_customers": self.n_repeat_customers,
            "n_histories": self.n_histories,
            "candidates": [asdict(c) for c in self.candidates],
            "selection_reason": self.selection_reason,
            "calibration": self.calibration,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SegmentFit:
        purchase_cls = PURCHASE_MODELS[data["purchase_model"]]
        spend_data = data.get("spend")
        return cls(
            segment=dict(data["segment"]),
            purchase_model=data["purchase_model"],
            purchase=purchase_cls.from_dict(data["purchase"]),
            spend=None if spend_data is None else SPEND_MODELS["gamma_gamma"].from_dict(spend_data),
            n_customers=int(data["n_customers"]),
            n_repeat_customers=int(data["n_repeat_customers"]),
            n_histories=int(data["n_histories"]),
            candidates=[Candidate(**c) for c in data.get("candidates", [])],
            selection_reason=str(data.get("selection_reason", "")),
            calibration=data.get("calibration"),
        )


@dataclass
class FittedModels:
    """All fitted models of one request; JSON round-trips through to_dict/from_dict."""

    request: FitRequest
    fits: list[SegmentFit]

    def to_dict(self) -> dict[str, Any]:
        req = asdict(self.request)
        req["segment_by"] = list(self.request.segment_by)
        return {"request": req, "fits": [f.to_dict() for f in self.fits]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FittedModels:
        req = dict(data["request"])
        req["segment_by"] = tuple(req.get("segment_by", ()))
        return cls(request=FitRequest(**req), fits=[SegmentFit.from_dict(f) for f in data["fits"]])

    @property
    def model_key(self) -> tuple[str, ...]:
        """Segment columns that select a model (empty for a pooled fit)."""
        return self.request.segment_by if self.request.per_segment else ()


def fit_models(
    summary: ir.Table,
    request: FitRequest,
    *,
    calibration: ir.Table | None = None,
) -> FittedModels:
    """Fit the requested models on ``summary`` (one pooled fit, or one per segment).

    ``calibration`` is the engine's calibration/holdout summary of the same transactions; when
    given, each candidate is scored on the holdout and ``auto`` picks the lowest holdout error.
    """
    by = list(request.segment_by) if request.per_segment else []
    purchase_hist = histories(summary, by=by)
    spend_hist = spend_histories(summary, by=by) if request.spend_model != "none" else None
    cal_hist = _calibration_table(calibration, by) if calibration is not None else None
    fits = []
    for segment, mask in _segment_masks(purchase_hist, by):
        spend_part = (
            None if spend_hist is None else _select(spend_hist, _mask_for(spend_hist, by, segment))
        )
        cal_part = None if cal_hist is None else _select_rows(cal_hist, by, segment)
        fits.append(
            _fit_segment(request, segment, _select(purchase_hist, mask), spend_part, cal_part)
        )
    return FittedModels(request=request, fits=fits)


# ------------------------------------------------------------------------------- one segment
def _fit_segment(
    request: FitRequest,
    segment: dict[str, str],
    hist: Histories,
    spend_hist: Histories | None,
    cal: dict[str, np.ndarray] | None,
) -> SegmentFit:
    label = _label(segment)
    names = list(AUTO_CANDIDATES) if request.purchase_model == "auto" else [request.purchase_model]
    fitted: dict[str, BaseModel] = {}
    candidates = []
    for name in names:
        candidate, model = _try_fit(name, hist)
        if model is not None:
            fitted[name] = model
            if cal is not None:
                scores = _holdout_scores(name, cal)
                candidate.holdout_mae = scores["mae_per_customer"]
                candidate.holdout_rmse = scores["rmse_per_customer"]
        candidates.append(candidate)
    if not fitted:
        reasons = "; ".join(f"{c.model}: {c.error}" for c in candidates)
        raise FitFailed(f"no purchase model could be fitted{label}: {reasons}")
    chosen, reason = _choose(candidates, fitted, request.purchase_model)
    spend = _fit_spend(request.spend_model, spend_hist, label)
    calibration = _holdout_scores(chosen, cal) if cal is not None else None
    x = hist["frequency"]
    return SegmentFit(
        segment=segment,
        purchase_model=chosen,
        purchase=fitted[chosen],
        spend=spend,
        n_customers=hist.n_customers,
        n_repeat_customers=int(hist.counts[np.asarray(x, dtype=float) > 0].sum()),
        n_histories=hist.n_unique,
        candidates=candidates,
        selection_reason=reason,
        calibration=calibration,
    )


def _try_fit(name: str, hist: Histories) -> tuple[Candidate, BaseModel | None]:
    model = PURCHASE_MODELS[name]()
    try:
        model.fit(hist["frequency"], hist["recency"], hist["T"], weights=hist.counts)  # type: ignore[attr-defined]
    except ModelFitError as exc:
        return Candidate(
            model=name, converged=False, log_likelihood=None, aic=None, bic=None, error=str(exc)
        ), None
    return (
        Candidate(
            model=name,
            converged=model.converged_,
            log_likelihood=model.log_likelihood_,
            aic=model.aic_,
            bic=model.bic_,
            error=None if model.converged_ else model.convergence_message_,
        ),
        model,
    )


def _choose(
    candidates: list[Candidate], fitted: Mapping[str, BaseModel], requested: str
) -> tuple[str, str]:
    if requested != "auto":
        return requested, f"{requested} was requested"
    usable = [c for c in candidates if c.model in fitted and c.converged] or [
        c for c in candidates if c.model in fitted
    ]
    if all(c.holdout_rmse is not None for c in usable):
        # Squared error is minimised by the conditional mean, which is what the models predict;
        # absolute error rewards predicting the median (0 for most customers) instead.
        best = min(usable, key=lambda c: c.holdout_rmse if c.holdout_rmse is not None else np.inf)
        others = ", ".join(f"{c.model} {c.holdout_rmse:.4f}" for c in usable if c is not best)
        return best.model, (
            f"{best.model} has the lowest holdout root-mean-square error per customer "
            f"({best.holdout_rmse:.4f}; {others or 'no other candidate'})"
        )
    best = min(usable, key=lambda c: c.bic if c.bic is not None else np.inf)
    others = ", ".join(
        f"{c.model} {c.bic:.1f}" for c in usable if c is not best and c.bic is not None
    )
    return best.model, (
        f"{best.model} has the lowest BIC ({best.bic:.1f}; {others or 'no other candidate'}); all "
        "candidates have 4 parameters, so this is also the highest log-likelihood"
    )


def _fit_spend(name: str, hist: Histories | None, label: str) -> BaseModel | None:
    """Fit the spend model on the repeat customers whose mean repeat spend is positive.

    The Gamma-Gamma model describes positive transaction values (Fader, Hardie & Lee 2005, JMR
    42(4), section 3); a repeat customer whose repeat purchases all had amount 0 (free items,
    fully discounted orders: CDNOW has 80 such purchases) carries no information for it and is
    left out of its fit. Scoring still values such customers (their expected spend follows from
    the fitted model with m_x = 0).
    """
    if name == "none" or hist is None:
        return None
    hist = _select(hist, np.asarray(hist["monetary_value"], dtype=float) > 0)
    if hist.n_unique == 0:
        raise FitFailed(f"the spend model needs repeat customers with positive spend{label}")
    model = SPEND_MODELS[name]()
    try:
        model.fit(hist["frequency"], hist["monetary_value"], weights=hist.counts)  # type: ignore[attr-defined]
    except ModelFitError as exc:
        raise FitFailed(f"the spend model could not be fitted{label}: {exc}") from exc
    return model


# ------------------------------------------------------------------------------- holdout
def _calibration_table(calibration: ir.Table, by: Sequence[str]) -> dict[str, np.ndarray]:
    """Customers per (calibration history, holdout duration, holdout purchases).

    Grouping on the holdout purchases too keeps the table small (histories are few) while
    every row's customers share one actual value, so holdout errors are exact per customer.
    """
    key = [*by, *CALIBRATION_HISTORY_KEY, "duration_holdout", "frequency_holdout"]
    grouped = calibration.group_by(key).aggregate(n_customers=calibration.count())
    table = grouped.to_pyarrow()
    return {name: table[name].to_numpy(zero_copy_only=False) for name in table.column_names}


def _holdout_scores(name: str, cal: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Refit ``name`` on calibration histories; compare predicted with actual holdout purchases.

    Returns totals, the mean absolute and root-mean-square error per customer, and the table of
    Fader, Hardie & Lee (2005, Fig. 3): mean predicted vs actual holdout purchases by
    calibration frequency (0..6, 7+).
    """
    counts = cal["n_customers"].astype(float)
    model = PURCHASE_MODELS[name]()
    model.fit(cal["frequency_cal"], cal["recency_cal"], cal["T_cal"], weights=counts)  # type: ignore[attr-defined]
    predicted = model.conditional_expected_purchases(  # type: ignore[attr-defined]
        cal["duration_holdout"], cal["frequency_cal"], cal["recency_cal"], cal["T_cal"]
    )
    actual_each = cal["frequency_holdout"].astype(float)
    actual = actual_each * counts
    n = counts.sum()
    buckets = np.minimum(np.asarray(cal["frequency_cal"], dtype=float), 7).astype(int)
    table = []
    for b in range(8):
        sel = buckets == b
        if sel.any():
            table.append(
                {
                    "frequency_cal": f"{b}+" if b == 7 else str(b),
                    "customers": int(counts[sel].sum()),
                    "predicted_mean": float(
                        np.dot(predicted[sel], counts[sel]) / counts[sel].sum()
                    ),
                    "actual_mean": float(actual[sel].sum() / counts[sel].sum()),
                }
            )
    return {
        "model": name,
        "params": model.params_,
        "customers": int(n),
        "predicted_total": float(np.dot(predicted, counts)),
        "actual_total": float(actual.sum()),
        "mae_per_customer": float(np.dot(np.abs(predicted - actual_each), counts) / n),
        "rmse_per_customer": float(np.sqrt(np.dot((predicted - actual_each) ** 2, counts) / n)),
        "by_frequency": table,
    }


# ------------------------------------------------------------------------------- segments
def _segment_masks(hist: Histories, by: Sequence[str]) -> list[tuple[dict[str, str], np.ndarray]]:
    if not by:
        return [(dict(ALL_SEGMENTS), np.ones(hist.n_unique, dtype=bool))]
    keys = list(zip(*(hist.segments[c] for c in by), strict=True))
    out = []
    for values in dict.fromkeys(keys):
        segment = {c: _segment_value(v) for c, v in zip(by, values, strict=True)}
        out.append((segment, _mask_for(hist, by, segment)))
    return out


def _segment_value(value: object) -> str:
    return "" if value is None else str(value)


def _mask_for(hist: Histories, by: Sequence[str], segment: Mapping[str, str]) -> np.ndarray:
    mask = np.ones(hist.n_unique, dtype=bool)
    for c in by:
        mask &= np.array([_segment_value(v) == segment[c] for v in hist.segments[c]], dtype=bool)
    return mask


def _select(hist: Histories, mask: np.ndarray) -> Histories:
    return Histories(
        key=hist.key,
        values={k: v[mask] for k, v in hist.values.items()},
        counts=hist.counts[mask],
        segments={k: v[mask] for k, v in hist.segments.items()},
    )


def _select_rows(
    table: Mapping[str, np.ndarray], by: Sequence[str], segment: Mapping[str, str]
) -> dict[str, np.ndarray]:
    mask = np.ones(len(table["n_customers"]), dtype=bool)
    for c in by:
        mask &= np.array([_segment_value(v) == segment[c] for v in table[c]], dtype=bool)
    return {k: v[mask] for k, v in table.items()}


def _label(segment: Mapping[str, str]) -> str:
    if not segment:
        return ""
    return " for segment " + ", ".join(f"{k}={v}" for k, v in segment.items())
