"""Business cases: build the economics' case from a request (baselines from stored fits where
asked), evaluate it (NPV, ROI, payback, break-even, tornado, Monte Carlo), store it as a new
version, and hand it out as JSON, CSV or an XLSX workbook with live formulas.

Versions: cases are identified by their name within a workspace. A POST with a new name stores
version 1; a POST with an existing name, or a PUT on the case, stores the next version. Each
version is one row of ``business_cases`` (``payload``: the request as given; ``result``: the
evaluation plus the resolved case, i.e. every baseline as the numbers it was valued with, so a
later change or deletion of a fit never changes a stored version). The case's id is the id of
its version 1; any version's id finds the case.

Baselines (per segment; see :mod:`cltv_api.economics.business_case`):

* ``manual``: customers, margin and constant retention as given;
* ``fit``: a stored fit's expected margin per period, per segment, from
  :func:`~cltv_api.economics.business_case.baseline_from_model` with steps of one plan period;
  a report segment spanning several per-segment models is the sum of their curves (independent
  fits: relative standard errors combine as sqrt(sum se_i^2) / sum value_i);
* ``retention_fit``: a stored sBG fit (Fader & Hardie 2007) for a contractual base.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any, cast

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from cltv_api.analysis import FittedModels
from cltv_api.analysis.registry import DISCRETE_MODELS
from cltv_api.analysis.scoring import prepare_summary
from cltv_api.economics import business_case as bc
from cltv_api.economics import montecarlo, nps, sensitivity
from cltv_api.engine import HISTORY_KEY
from cltv_api.errors import Conflict, FieldError, InvalidInput, NotFound
from cltv_api.exports import csv_safe
from cltv_api.exports.workbook import business_case_workbook
from cltv_api.schemas.business_cases import (
    ALL_SEGMENTS,
    BusinessCaseCreate,
    EffectsIn,
    FitBaselineIn,
    ManualBaselineIn,
    RetentionBaselineIn,
)
from cltv_api.services import datasets as dataset_service
from cltv_api.services import retention as retention_service
from cltv_api.services.fits import get_fit, load_fitted, summary_file
from cltv_api.services.retention import finite_json
from cltv_api.settings import Settings
from cltv_api.storage.repositories import BusinessCaseRepository
from cltv_api.storage.tables import BusinessCase
from models import clv
from models.sbg import SBG

ALL_CUSTOMERS = "all customers"
INITIATIVE_FIELDS = (
    "one_off_cost",
    "running_cost_per_period",
    "start_period",
    "horizon_periods",
    "annual_discount_rate",
    "period",
    "timing",
)
PERIOD_FIELDS = (
    "period",
    "baseline_value",
    "value_with_initiative",
    "incremental_value",
    "incremental_customers_retained",
    "referred_customers",
    "costs",
    "net_cash_flow",
    "discount_factor",
    "present_value",
    "cumulative_net_cash_flow",
    "cumulative_present_value",
)
SOURCE = (
    "NPV, ROI, payback: Brealey, Myers & Allen, Principles of Corporate Finance, ch. 5-6; "
    "baselines: Gupta & Lehmann (2003); Fader, Hardie & Lee (2005); Fader & Hardie (2007)"
)


def case_url(case_id: str) -> str:
    return f"/v1/business-cases/{case_id}"


# ------------------------------------------------------------------------------ field names


@dataclass(frozen=True)
class FieldMap:
    """Turns the economics' input paths into the request's field names."""

    baseline_kind: str
    effect_keys: Sequence[str | None]
    range_index: Mapping[str, int]

    def request_field(self, name: str) -> str:
        seg = re.match(r"^segments\[(\d+)\]\.?(baseline|effects|name)?\.?(.*)$", name)
        if seg:
            i, part, rest = int(seg.group(1)), seg.group(2), seg.group(3)
            if part == "effects":
                key = self.effect_keys[i] if i < len(self.effect_keys) else None
                rest = rest.replace("nps_shift.profile.", "nps_shift.")
                return f"body.effects.{key or ALL_SEGMENTS}.{rest}".rstrip(".")
            if self.baseline_kind == "manual":
                leaf = "name" if part == "name" else rest
                return f"body.baseline.segments.{i}.{leaf}".rstrip(".")
            if self.baseline_kind == "retention_fit" and rest:
                return f"body.baseline.{rest}"
            return "body.baseline"
        if name == "segments":
            return "body.baseline"
        if name in INITIATIVE_FIELDS:
            return f"body.initiative.{name}"
        if name == "relative_range":
            return "body.sensitivity.relative_range"
        if name.startswith("ranges["):
            index = self.range_index.get(name[len("ranges[") : -1])
            return "body.sensitivity.ranges" + ("" if index is None else f".{index}")
        if name == "n_draws":
            return "body.monte_carlo.draws"
        if name in ("seed", "bins"):
            return f"body.monte_carlo.{name}"
        dist = re.match(r"^distributions\[(\d+)\]\.(.*)$", name)
        if dist:
            return f"body.monte_carlo.distributions.{dist.group(1)}.{dist.group(2)}"
        return f"body.{name}"

    def relocate(self, exc: InvalidInput) -> InvalidInput:
        errors = [replace(e, field=self.request_field(e.field)) for e in exc.errors]
        return InvalidInput(exc.detail, errors)


# ------------------------------------------------------------------------------ baselines


def segment_label(segment: Mapping[str, str]) -> str:
    """``channel=web, region=north``; ``all customers`` for no columns."""
    return ", ".join(f"{k}={v}" for k, v in segment.items()) or ALL_CUSTOMERS


def _manual_segments(baseline: ManualBaselineIn) -> list[tuple[str, bc.Baseline]]:
    return [
        (
            s.name,
            bc.ManualBaseline(s.customers, s.margin_per_customer, s.retention, s.value_relative_se),
        )
        for s in baseline.segments
    ]


def _sum_curves(curves: Sequence[bc.CurveBaseline], source: str) -> bc.CurveBaseline:
    """One curve for a segment spread over several (independent) fitted models."""
    if len(curves) == 1:
        return replace(curves[0], source=source)
    values = np.sum([np.asarray(c.value_per_period) for c in curves], axis=0)
    totals = [float(np.sum(c.value_per_period)) for c in curves]
    variance = sum((c.value_relative_se * t) ** 2 for c, t in zip(curves, totals, strict=True))
    total = sum(totals)
    return bc.CurveBaseline(
        customers=sum(c.customers for c in curves),
        value_per_period=tuple(float(v) for v in values),
        active_customers=sum(c.active_customers or 0.0 for c in curves),
        value_relative_se=math.sqrt(variance) / total if total > 0 else 0.0,
        source=source,
    )


def _fit_segments(
    session: Session,
    settings: Settings,
    workspace_id: str,
    baseline: FitBaselineIn,
    initiative: bc.BusinessCaseInput,
) -> list[tuple[str, bc.Baseline]]:
    """Curve baselines of the fit's segments over the plan (steps of one plan period)."""
    fit = get_fit(session, workspace_id, baseline.fit_id)
    fitted = load_fitted(fit)
    available = (fit.result or {}).get("segment_columns", [])
    by = list(fitted.request.segment_by if baseline.by is None else baseline.by)
    unknown = [c for c in by if c not in available]
    if unknown:
        raise InvalidInput(
            "Unknown segment column; see errors.",
            [
                FieldError(
                    "body.baseline.by", f"no such segment column; the fit has {available}", value=c
                )
                for c in unknown
            ],
        )
    if not (isinstance(baseline.margin, float | int) and 0 <= baseline.margin <= 1):
        raise InvalidInput(
            "The margin must be a share.",
            [
                FieldError(
                    "body.baseline.margin", "must be between 0 and 1", value=str(baseline.margin)
                )
            ],
        )
    key = list(fitted.model_key)
    group_cols = list(dict.fromkeys([*by, *key]))
    with dataset_service.open_engine(settings) as engine:
        summary = prepare_summary(
            engine.table(summary_file(settings, fit)),
            list(dict.fromkeys([*by, *fitted.request.segment_by])),
        )
        grouped = (
            summary.group_by([*group_cols, *HISTORY_KEY])
            .aggregate(n=summary.count(), msum=summary.monetary_value.fill_null(0.0).sum())
            .to_pyarrow()
        )
    cols = {c: np.asarray(grouped[c].to_numpy(zero_copy_only=False)) for c in grouped.column_names}
    horizon = bc.period_horizon(
        initiative.period,
        initiative.horizon_periods,
        fitted.request.time_unit,
        initiative.annual_discount_rate,
    )
    _check_discrete_steps(fitted, horizon, initiative.period)
    labels = [segment_label({c: str(cols[c][j]) for c in by}) for j in range(cols["n"].shape[0])]
    label_arr = np.asarray(labels, dtype=object)
    wanted = sorted(set(labels)) if baseline.segments is None else list(baseline.segments)
    missing = [(i, name) for i, name in enumerate(wanted) if name not in set(labels)]
    if missing:
        raise InvalidInput(
            "The fit has no such segment; see errors.",
            [
                FieldError(
                    f"body.baseline.segments.{i}",
                    f"no such segment; the fit's are {sorted(set(labels))}",
                    value=name,
                )
                for i, name in missing
            ],
        )
    out: list[tuple[str, bc.Baseline]] = []
    for name in wanted:
        curves = []
        for model_fit in fitted.fits:
            mask = label_arr == name
            for c in key:
                mask &= cols[c].astype(object) == model_fit.segment[c]
            if not mask.any():
                continue
            curves.append(
                bc.baseline_from_model(
                    cast(clv.PurchaseModel, model_fit.purchase),
                    cast(clv.SpendModel | None, model_fit.spend),
                    cols["frequency"][mask].astype(float),
                    cols["recency"][mask].astype(float),
                    cols["T"][mask].astype(float),
                    cols["n"][mask].astype(float),
                    cols["msum"][mask].astype(float),
                    horizon,
                    baseline.margin,
                )
            )
        source = (
            f"fit {fit.id} ({fitted.fits[0].purchase_model} + spend), margin {baseline.margin:g}"
        )
        out.append((name, _sum_curves(curves, source)))
    return out


def _check_discrete_steps(fitted: FittedModels, horizon: clv.Horizon, period: str) -> None:
    """BG/BB counts whole purchase opportunities (one per period of the fit's time unit), so a
    plan period must span a whole number of them (a month is not a whole number of weeks)."""
    discrete = DISCRETE_MODELS.intersection(f.purchase_model for f in fitted.fits)
    if discrete and abs(horizon.step_length - round(horizon.step_length)) > 1e-9:
        unit = fitted.request.time_unit
        raise InvalidInput(
            f"The fit uses {sorted(discrete)}, which counts whole {unit}; a {period} is "
            f"{horizon.step_length:.4g} {unit}.",
            [
                FieldError(
                    "body.initiative.period",
                    f"must be a whole number of the fit's time unit ({unit})",
                    value=period,
                )
            ],
        )


def _retention_segments(
    session: Session, workspace_id: str, baseline: RetentionBaselineIn
) -> list[tuple[str, bc.Baseline]]:
    fit = retention_service.get_retention_fit(session, workspace_id, baseline.retention_fit_id)
    base = retention_service.active_base(fit)
    active = sum(base.values())
    customers = active if baseline.customers is None else baseline.customers
    margin = (
        float(fit.result["conventions"]["value_per_period"])
        if baseline.margin_per_customer is None
        else baseline.margin_per_customer
    )
    renewals = baseline.renewals
    if renewals is None:
        renewals = round(sum(k * n for k, n in base.items()) / active) if active > 0 else 0
    model = retention_service.load_model(fit)
    return [(baseline.segment, bc.SBGBaseline(model, customers, margin, renewals))]


def _effects(
    effects: Mapping[str, EffectsIn], names: Sequence[str]
) -> tuple[list[bc.Effects], list[str | None]]:
    unknown = [k for k in effects if k != ALL_SEGMENTS and k not in names]
    if unknown:
        raise InvalidInput(
            "Effects name a segment the baseline does not have; see errors.",
            [
                FieldError(f"body.effects.{k}", f"no such segment; the segments are {list(names)}")
                for k in unknown
            ],
        )
    out, keys = [], []
    for name in names:
        key = name if name in effects else (ALL_SEGMENTS if ALL_SEGMENTS in effects else None)
        keys.append(key)
        out.append(bc.Effects() if key is None else _effects_of(effects[key]))
    return out, keys


def _effects_of(e: EffectsIn) -> bc.Effects:
    shift = None
    if e.nps_shift is not None:
        s = e.nps_shift

        def group(g: Any) -> nps.GroupEconomics:
            return nps.GroupEconomics(g.retention, g.margin_per_period, g.referrals_per_period)

        profile = nps.NpsProfile(
            counts=nps.NpsCounts(s.counts.promoters, s.counts.passives, s.counts.detractors),
            promoters=group(s.promoters),
            passives=group(s.passives),
            detractors=group(s.detractors),
            new_customer_value=s.new_customer_value,
        )
        shift = bc.NpsShift(profile, s.detractors_to_passive, s.detractors_to_promoter)
    referrals = None
    if e.referrals is not None:
        referrals = bc.Referrals(
            e.referrals.new_customers_per_period, e.referrals.value_per_new_customer
        )
    return bc.Effects(
        churn_reduction_points=e.churn_reduction_points,
        churn_reduction_share=e.churn_reduction_share,
        spend_uplift=e.spend_uplift,
        frequency_uplift=e.frequency_uplift,
        nps_shift=shift,
        referrals=referrals,
    )


def build_case(
    session: Session, settings: Settings, workspace_id: str, body: BusinessCaseCreate
) -> tuple[bc.BusinessCaseInput, FieldMap]:
    """The economics' case for a request, baselines resolved from stored fits."""
    i = body.initiative
    case = bc.BusinessCaseInput(
        name=body.name,
        currency=i.currency,
        one_off_cost=i.one_off_cost,
        running_cost_per_period=i.running_cost_per_period,
        horizon_periods=i.horizon_periods,
        segments=(),
        start_period=i.start_period,
        annual_discount_rate=i.annual_discount_rate,
        period=i.period,
        timing=i.timing,
    )
    ranges = {r.input: j for j, r in enumerate(body.sensitivity.ranges)}
    field_map = FieldMap(body.baseline.kind, [], ranges)
    _check_initiative(case, field_map)
    if isinstance(body.baseline, ManualBaselineIn):
        segments = _manual_segments(body.baseline)
    elif isinstance(body.baseline, FitBaselineIn):
        segments = _fit_segments(session, settings, workspace_id, body.baseline, case)
    else:
        segments = _retention_segments(session, workspace_id, body.baseline)
    names = [name for name, _ in segments]
    effects, keys = _effects(body.effects, names)
    case = replace(
        case,
        segments=tuple(
            bc.SegmentCase(name, baseline, e)
            for (name, baseline), e in zip(segments, effects, strict=True)
        ),
    )
    return case, FieldMap(body.baseline.kind, keys, ranges)


def _check_initiative(case: bc.BusinessCaseInput, field_map: FieldMap) -> None:
    """The plan's own fields, before a baseline is built over its horizon."""
    probe = replace(
        case,
        segments=(bc.SegmentCase("probe", bc.ManualBaseline(1.0, 1.0, 0.5)),),
    )
    try:
        bc.validate(probe)
    except InvalidInput as exc:
        raise field_map.relocate(exc) from exc


# ------------------------------------------------------------------------------ evaluation


def _baseline_document(seg: bc.SegmentCase) -> dict[str, Any]:
    b = seg.baseline
    doc: dict[str, Any] = {
        "segment": seg.name,
        "customers": b.customers,
        "active_customers": None,
        "margin_per_customer": None,
        "retention": None,
        "value_per_period": None,
        "sbg": None,
    }
    if isinstance(b, bc.ManualBaseline):
        doc.update(
            kind="manual",
            source="given",
            active_customers=b.customers,
            margin_per_customer=b.margin_per_customer,
            retention=b.retention,
        )
    elif isinstance(b, bc.CurveBaseline):
        active = b.customers if b.active_customers is None else b.active_customers
        first = b.value_per_period[0] if b.value_per_period else 0.0
        doc.update(
            kind="curve",
            source=b.source,
            active_customers=active,
            margin_per_customer=first / active if active > 0 else 0.0,
            value_per_period=list(b.value_per_period),
        )
    else:
        doc.update(
            kind="sbg",
            source="sBG retention fit (Fader & Hardie 2007)",
            margin_per_customer=b.margin_per_customer,
            sbg={**b.model.params_, "renewals": float(b.renewals)},
        )
    return doc


def evaluate_case(
    case: bc.BusinessCaseInput, body: BusinessCaseCreate, field_map: FieldMap
) -> dict[str, Any]:
    """Evaluation, tornado and (if asked) Monte Carlo, as plain JSON."""
    try:
        result = bc.evaluate(case)
        tornado = sensitivity.tornado(
            case,
            relative_range=body.sensitivity.relative_range,
            ranges={r.input: (r.low, r.high) for r in body.sensitivity.ranges},
        )
        simulation = None
        if body.monte_carlo is not None:
            mc = body.monte_carlo
            simulation = montecarlo.simulate(
                case,
                [montecarlo.Distribution(**d.model_dump()) for d in mc.distributions],
                n_draws=mc.draws,
                seed=mc.seed,
                parameter_uncertainty=mc.parameter_uncertainty,
                bins=mc.bins,
            )
    except InvalidInput as exc:
        raise field_map.relocate(exc) from exc
    doc = asdict(result)
    conventions = {
        "currency": doc.pop("currency"),
        "period": doc.pop("period"),
        "timing": doc.pop("timing"),
        "annual_discount_rate": case.annual_discount_rate,
        "discount_rate_per_period": doc.pop("discount_rate_per_period"),
        "value_basis": "margin per period as given by each segment's baseline",
        "payback_unit": f"{case.period}s from today, interpolated within the period",
        "source": SOURCE,
    }
    doc.pop("name")
    mc_doc = None
    if simulation is not None:
        mc_doc = asdict(simulation)
        mc_doc["percentiles"] = {str(k): v for k, v in simulation.percentiles.items()}
    out: dict[str, Any] = finite_json(
        {
            **doc,
            "baselines": [_baseline_document(s) for s in case.segments],
            "inputs": bc.numeric_inputs(case),
            "tornado": asdict(tornado),
            "monte_carlo": mc_doc,
            "conventions": conventions,
            "resolved_case": case_to_dict(case),
        }
    )
    return out


# ------------------------------------------------------------------------------ (de)serialise


def case_to_dict(case: bc.BusinessCaseInput) -> dict[str, Any]:
    """The resolved case as plain JSON (the inverse is :func:`case_from_dict`)."""
    segments = []
    for seg in case.segments:
        b = seg.baseline
        if isinstance(b, bc.SBGBaseline):
            baseline = {
                "kind": "sbg",
                "model": b.model.to_dict(),
                "customers": b.customers,
                "margin_per_customer": b.margin_per_customer,
                "renewals": b.renewals,
            }
        else:
            baseline = {
                "kind": "manual" if isinstance(b, bc.ManualBaseline) else "curve",
                **asdict(b),
            }
        segments.append({"name": seg.name, "baseline": baseline, "effects": asdict(seg.effects)})
    fields = {k: v for k, v in asdict(replace(case, segments=())).items() if k != "segments"}
    out: dict[str, Any] = finite_json({**fields, "segments": segments})
    return out


def case_from_dict(data: Mapping[str, Any]) -> bc.BusinessCaseInput:
    segments = []
    for seg in data["segments"]:
        b = dict(seg["baseline"])
        kind = b.pop("kind")
        baseline: bc.Baseline
        if kind == "manual":
            baseline = bc.ManualBaseline(**b)
        elif kind == "curve":
            baseline = bc.CurveBaseline(**{**b, "value_per_period": tuple(b["value_per_period"])})
        else:
            model = dict(b.pop("model"))
            if model.get("covariance") is not None:
                model["covariance"] = [
                    [np.nan if v is None else v for v in row] for row in model["covariance"]
                ]
            if model.get("log_likelihood") is None:
                model["log_likelihood"] = float("nan")
            baseline = bc.SBGBaseline(SBG.from_dict(model), **b)
        segments.append(bc.SegmentCase(seg["name"], baseline, _effects_from_dict(seg["effects"])))
    fields = {k: v for k, v in data.items() if k != "segments"}
    return bc.BusinessCaseInput(**fields, segments=tuple(segments))


def _effects_from_dict(data: Mapping[str, Any]) -> bc.Effects:
    shift = data.get("nps_shift")
    referrals = data.get("referrals")
    nps_shift = None
    if shift is not None:
        p = shift["profile"]
        profile = nps.NpsProfile(
            counts=nps.NpsCounts(**p["counts"]),
            promoters=nps.GroupEconomics(**p["promoters"]),
            passives=nps.GroupEconomics(**p["passives"]),
            detractors=nps.GroupEconomics(**p["detractors"]),
            new_customer_value=p.get("new_customer_value"),
        )
        nps_shift = bc.NpsShift(
            profile, shift["detractors_to_passive"], shift["detractors_to_promoter"]
        )
    return bc.Effects(
        churn_reduction_points=data["churn_reduction_points"],
        churn_reduction_share=data["churn_reduction_share"],
        spend_uplift=data["spend_uplift"],
        frequency_uplift=data["frequency_uplift"],
        nps_shift=nps_shift,
        referrals=None if referrals is None else bc.Referrals(**referrals),
    )


# ------------------------------------------------------------------------------ versions


def _versions(session: Session, workspace_id: str, name: str) -> Sequence[BusinessCase]:
    query = (
        select(BusinessCase)
        .where(BusinessCase.workspace_id == workspace_id, BusinessCase.name == name)
        .order_by(BusinessCase.version)
    )
    return session.scalars(query).all()


def case_versions(session: Session, workspace_id: str, case_id: str) -> Sequence[BusinessCase]:
    """Every version of the case that ``case_id`` (any of its versions' ids) names, oldest
    first; NotFound for unknown or foreign ids."""
    row = BusinessCaseRepository(session, workspace_id).get(case_id)
    if row is None:
        raise NotFound(f"No business case '{case_id}' in this workspace.")
    return _versions(session, workspace_id, row.name)


def _store(
    session: Session,
    settings: Settings,
    workspace_id: str,
    body: BusinessCaseCreate,
) -> BusinessCase:
    case, field_map = build_case(session, settings, workspace_id, body)
    result = evaluate_case(case, body, field_map)
    previous = _versions(session, workspace_id, body.name)
    version = previous[-1].version + 1 if previous else 1
    row = BusinessCase(
        name=body.name, version=version, payload=body.model_dump(mode="json"), result=result
    )
    try:
        return BusinessCaseRepository(session, workspace_id).add(row)
    except IntegrityError as exc:
        raise Conflict(
            f"Another version {version} of '{body.name}' was stored at the same time; retry."
        ) from exc


def create_case(
    session: Session, settings: Settings, workspace_id: str, body: BusinessCaseCreate
) -> BusinessCase:
    """Store version 1 of a new case, or the next version of the case with this name."""
    return _store(session, settings, workspace_id, body)


def update_case(
    session: Session, settings: Settings, workspace_id: str, case_id: str, body: BusinessCaseCreate
) -> BusinessCase:
    """Store the next version of an existing case (its name cannot change)."""
    versions = case_versions(session, workspace_id, case_id)
    if body.name != versions[0].name:
        raise InvalidInput(
            "A new version keeps the case's name; POST a new case to use another name.",
            [FieldError("body.name", f"must be {versions[0].name!r}", value=body.name)],
        )
    return _store(session, settings, workspace_id, body)


def pick_version(versions: Sequence[BusinessCase], version: int | None) -> BusinessCase:
    if version is None:
        return versions[-1]
    for row in versions:
        if row.version == version:
            return row
    raise NotFound(f"Business case '{versions[0].id}' has no version {version}.")


def delete_case(session: Session, workspace_id: str, case_id: str) -> None:
    """Delete every version of the case."""
    for row in case_versions(session, workspace_id, case_id):
        session.delete(row)
    session.flush()


def list_cases(
    session: Session, workspace_id: str, *, limit: int, offset: int
) -> tuple[list[tuple[BusinessCase, str]], int]:
    """The latest version of each case (newest first) with its case id, and how many cases."""
    latest = (
        select(
            BusinessCase.name,
            func.max(BusinessCase.version).label("latest"),
            func.min(BusinessCase.version).label("first"),
        )
        .where(BusinessCase.workspace_id == workspace_id)
        .group_by(BusinessCase.name)
        .subquery()
    )
    query = (
        select(BusinessCase)
        .join(
            latest,
            (BusinessCase.name == latest.c.name) & (BusinessCase.version == latest.c.latest),
        )
        .where(BusinessCase.workspace_id == workspace_id)
        .order_by(BusinessCase.created_at.desc(), BusinessCase.id.desc())
        .limit(limit)
        .offset(offset)
    )
    rows = session.scalars(query).all()
    total = int(session.scalar(select(func.count()).select_from(latest)) or 0)
    return [(row, _case_id(session, workspace_id, row.name)) for row in rows], total


def _case_id(session: Session, workspace_id: str, name: str) -> str:
    return _versions(session, workspace_id, name)[0].id


# ------------------------------------------------------------------------------ outputs


def case_document(versions: Sequence[BusinessCase], row: BusinessCase) -> dict[str, Any]:
    """The API view of one version (:class:`~cltv_api.schemas.business_cases.BusinessCaseOut`)."""
    case_id = versions[0].id
    url = case_url(case_id)
    return {
        "id": case_id,
        "version_id": row.id,
        "url": url,
        "name": row.name,
        "version": row.version,
        "latest_version": versions[-1].version,
        "created_at": row.created_at,
        "input": row.payload,
        "result": row.result,
        "links": {
            "self": f"{url}/versions/{row.version}",
            "latest": url,
            "csv": f"{url}/versions/{row.version}?format=csv",
            "xlsx": f"{url}/versions/{row.version}?format=xlsx",
        },
    }


def summary_document(row: BusinessCase, case_id: str) -> dict[str, Any]:
    result = row.result or {}
    return {
        "id": case_id,
        "url": case_url(case_id),
        "name": row.name,
        "version": row.version,
        "created_at": row.created_at,
        "currency": result["conventions"]["currency"],
        "npv": result["npv"],
        "roi": result["roi"],
    }


def cash_flow_csv(
    row: BusinessCase, *, sep: str, decimal: csv_safe.DecimalMark, bom: bool
) -> bytes:
    """The cash-flow table of one version as safe CSV (one row per period, 0 = today)."""
    result = row.result or {}
    conv = result["conventions"]
    header = ["case", "version", "currency", "period_unit", *PERIOD_FIELDS]
    rows = [
        [row.name, row.version, conv["currency"], conv["period"], *(p[f] for f in PERIOD_FIELDS)]
        for p in result["periods"]
    ]
    text = csv_safe.write_csv(header, rows, sep=sep, decimal=decimal, bom=bom)
    return text.encode("utf-8")


def workbook_bytes(row: BusinessCase) -> bytes:
    """The XLSX of one version: inputs, cash flows as live formulas, results."""
    result = row.result or {}
    case = case_from_dict(result["resolved_case"])
    return business_case_workbook(case, result, title=row.name, version=row.version)
