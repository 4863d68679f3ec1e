"""The economics of churn: cost of churn per segment of a stored fit, NPS economics and TARP
complaint economics. The maths lives in :mod:`cltv_api.economics`; this module loads stored
fits, maps request fields to the economics' inputs and back, and names every error as the
caller sent it (``query.at_risk_low``, ``body.shift.points``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from typing import Any

from cltv_api.economics import churn_cost, complaints, nps
from cltv_api.errors import FieldError, InvalidInput
from cltv_api.schemas.economics import ComplaintsRequest, NpsRequest
from cltv_api.services import datasets as dataset_service
from cltv_api.services.fits import ValuationParams, conventions, load_fitted, summary_file
from cltv_api.services.retention import finite_json
from cltv_api.settings import Settings
from cltv_api.storage.tables import Fit

DEFINITIONS = {
    "clv_total": "expected residual CLTV over the horizon (discounted margin), summed over the "
    "segment's customers; clv_mean per customer",
    "value_lost_per_churner": "sum(CLTV) / sum(P(alive)) = E[CLTV | alive]: in BG/NBD-type "
    "models CLTV = P(alive) x value if alive (Fader, Hardie & Lee 2005, eq. 10)",
    "cost_of_one_point_more_churn": "one-off: one percentage point of the active customers "
    "churn now, each losing E[CLTV | alive] = points x clv_total; value_of_one_point_less_churn "
    "is the same amount to first order",
    "cost_of_one_point_more_churn_per_period": "an extra dropout hazard of `points` in every "
    "horizon step scales step i's expected value by (1 - points)^i; the cost is the fall in "
    "clv_total. value_of_one_point_less_churn_per_period scales by (1 - points)^-i, capped so "
    "that no customer's survival exceeds 1",
    "revenue_at_risk": "customers with P(alive) in [at_risk_low, at_risk_high): sum of "
    "expected_revenue (1 - p) / p, their revenue if still active times P(gone)",
}

NPS_SOURCE = (
    "NPS: Reichheld (2003), The One Number You Need to Grow, HBR 81(12); group values: the "
    "constant-retention CLTV of Gupta & Lehmann (2003), Customers as Assets, J. Interactive "
    "Marketing 17(1)"
)
NPS_FORMULA = (
    "value of a member of group g = CLTV of (m_g + f_g x V_new) with retention r_g; moving a "
    "customer from g to h is worth value_h - value_g"
)
COMPLAINT_MODEL = (
    "N customers split into no problem N(1-p), non-complainers Np(1-c), satisfied complainers "
    "Npcs and unsatisfied complainers Npc(1-s); each group loses N_g (1 - r_g) customers worth V; "
    "word of mouth: unsatisfied customers tell told_bad people, satisfied complainers told_good "
    "(TARP; Goodman, Basic Facts on Customer Complaint Behavior)"
)


def relocated(exc: InvalidInput, rename: Callable[[str], str]) -> InvalidInput:
    """``exc`` with every field renamed as the caller sent it."""
    return InvalidInput(exc.detail, [replace(e, field=rename(e.field)) for e in exc.errors])


# ------------------------------------------------------------------------------ cost of churn


def _check_columns(fit: Fit, by: Sequence[str]) -> list[str]:
    available = (fit.result or {}).get("segment_columns", [])
    errors = [
        FieldError("query.by", f"no such segment column; the fit has {available}", value=name)
        for name in by
        if name not in available
    ]
    if errors:
        raise InvalidInput("Unknown segment column; see errors.", errors)
    return list(by)


def _query_field(name: str) -> str:
    names = {"band.low": "at_risk_low", "band.high": "at_risk_high"}
    return "query." + names.get(name, name)


def churn_cost_report(
    settings: Settings,
    fit: Fit,
    params: ValuationParams,
    by: Sequence[str],
    *,
    band: tuple[float, float],
    points: float,
) -> dict[str, Any]:
    """Cost of churn per segment (default: the fit's segments) and for all customers."""
    fitted = load_fitted(fit)
    columns = _check_columns(fit, list(by) or list(fitted.request.segment_by))
    valuation = params.valuation()
    try:
        with dataset_service.open_engine(settings) as engine:
            summary = engine.table(summary_file(settings, fit))
            rows = churn_cost.cost_of_churn(
                summary, fitted, valuation, columns, band=band, points=points
            )
    except InvalidInput as exc:
        raise relocated(exc, _query_field) from exc
    base = conventions(fit, fitted, params)
    currency = base["currency"]
    documents = [finite_json({**asdict(row), "currency": currency}) for row in rows]
    return {
        "fit_id": fit.id,
        "by": columns,
        "conventions": {
            **{k: base[k] for k in _CONVENTION_KEYS},
            "points": points,
            "at_risk_low": band[0],
            "at_risk_high": band[1],
            "definitions": DEFINITIONS,
        },
        "segments": documents[:-1] if columns else [],
        "total": documents[-1],
    }


_CONVENTION_KEYS = (
    "time_unit",
    "horizon",
    "horizon_unit",
    "discount_rate_annual_effective",
    "discount_rate_per_step",
    "cash_flow_timing",
    "margin",
    "currency",
    "observation_end",
)


# ------------------------------------------------------------------------------ NPS


def _group(body: Any) -> nps.GroupEconomics:
    return nps.GroupEconomics(body.retention, body.margin_per_period, body.referrals_per_period)


def _nps_counts(body: NpsRequest) -> nps.NpsCounts:
    if (body.counts is None) == (body.scores is None):
        message = "give either counts or scores"
        raise InvalidInput(
            f"The NPS answers are {'ambiguous' if body.counts else 'missing'}: {message}.",
            [FieldError("body.counts", message), FieldError("body.scores", message)],
        )
    if body.scores is not None:
        try:
            return nps.counts_from_scores(body.scores, field="scores")
        except InvalidInput as exc:
            raise relocated(exc, lambda name: f"body.{name}") from exc
    assert body.counts is not None
    return nps.NpsCounts(body.counts.promoters, body.counts.passives, body.counts.detractors)


def _nps_field(name: str) -> str:
    if name in ("points", "to_promoter_share"):
        return f"body.shift.{name}"
    return f"body.{name}"


def nps_report(body: NpsRequest) -> dict[str, Any]:
    """Value per NPS group, of moving a customer up, and of an NPS shift (if asked)."""
    counts = _nps_counts(body)
    profile = nps.NpsProfile(
        counts=counts,
        promoters=_group(body.promoters),
        passives=_group(body.passives),
        detractors=_group(body.detractors),
        new_customer_value=body.new_customer_value,
    )
    options: dict[str, Any] = {
        "annual_discount_rate": body.annual_discount_rate,
        "period": body.period,
        "horizon_periods": body.horizon_periods,
        "timing": body.timing,
        "currency": body.currency,
    }
    try:
        result = nps.value_groups(profile, **options)
        moves = (
            None
            if body.shift is None
            else nps.value_of_shift(
                profile,
                body.shift.points,
                to_promoter_share=body.shift.to_promoter_share,
                **options,
            )
        )
    except InvalidInput as exc:
        raise relocated(exc, _nps_field) from exc
    return {
        "nps": result.nps,
        "respondents": result.respondents,
        "counts": asdict(counts),
        "new_customer_value": result.new_customer_value,
        "groups": [asdict(g) for g in result.groups],
        "value_detractor_to_passive": result.value_detractor_to_passive,
        "value_detractor_to_promoter": result.value_detractor_to_promoter,
        "value_passive_to_promoter": result.value_passive_to_promoter,
        "shift": None if moves is None else asdict(moves),
        "assumptions": result.assumptions,
        "conventions": {
            "period": body.period,
            "currency": body.currency,
            "timing": body.timing,
            "annual_discount_rate": body.annual_discount_rate,
            "discount_rate_per_period": result.discount_rate_per_period,
            "horizon_periods": body.horizon_periods,
            "formula": NPS_FORMULA,
            "source": NPS_SOURCE,
        },
    }


# ------------------------------------------------------------------------------ complaints

_PRESETS: Mapping[str, complaints.RetentionRates] = {
    "small_ticket": complaints.TARP_SMALL_TICKET,
    "large_ticket": complaints.TARP_LARGE_TICKET,
}


def _complaint_input(body: ComplaintsRequest) -> tuple[complaints.ComplaintInput, str]:
    if isinstance(body.retention, str):
        rates, source = _PRESETS[body.retention], f"TARP {body.retention.replace('_', ' ')}"
    else:
        r = body.retention
        rates = complaints.RetentionRates(
            r.non_complainer, r.unsatisfied_complainer, r.satisfied_complainer, r.no_problem
        )
        source = "given"
    inp = complaints.ComplaintInput(
        customers=body.customers,
        problem_share=body.problem_share,
        satisfied_share=body.satisfied_share,
        complain_share=body.complain_share,
        retention=rates,
        customer_value=body.customer_value,
        annual_revenue_per_customer=body.annual_revenue_per_customer,
        margin=body.margin,
        value_years=body.value_years,
        annual_discount_rate=body.annual_discount_rate,
        told_bad=body.told_bad,
        told_good=body.told_good,
        wom_loss_per_person_told=body.wom_loss_per_person_told,
        wom_gain_per_person_told=body.wom_gain_per_person_told,
        currency=body.currency,
    )
    return inp, source


def _improvement_field(name: str) -> str:
    if name in ("complain_share", "satisfied_share"):
        return f"body.improvement.{name}"
    return f"body.{name}"


def complaints_report(body: ComplaintsRequest) -> dict[str, Any]:
    """Customers and value at risk per complaint group, and the value of better handling."""
    inp, source = _complaint_input(body)
    try:
        result = complaints.evaluate(inp)
    except InvalidInput as exc:
        raise relocated(exc, lambda name: f"body.{name}") from exc
    improvement = None
    if body.improvement is not None:
        try:
            better = complaints.improvement(
                inp,
                complain_share=body.improvement.complain_share,
                satisfied_share=body.improvement.satisfied_share,
            )
        except InvalidInput as exc:
            raise relocated(exc, _improvement_field) from exc
        improvement = {
            "after": asdict(better.after),
            "customers_kept": better.customers_kept,
            "value_gained": better.value_gained,
        }
    inputs = {
        k: getattr(inp, k)
        for k in (
            "customers",
            "problem_share",
            "satisfied_share",
            "complain_share",
            "customer_value",
            "annual_revenue_per_customer",
            "margin",
            "value_years",
            "annual_discount_rate",
            "told_bad",
            "told_good",
            "wom_loss_per_person_told",
            "wom_gain_per_person_told",
        )
    }
    return {
        "currency": body.currency,
        "inputs": {**inputs, "retention": asdict(inp.retention), "retention_source": source},
        "result": asdict(result),
        "improvement": improvement,
        "model": COMPLAINT_MODEL,
    }
