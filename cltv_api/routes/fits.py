"""Fits of the caller's workspace (``/v1/fits``): fit models, read them, value segments and
customers with them.

``POST /v1/fits`` answers 201 with the fitted models when the data set is small (at most
``sync_fit_max_customers`` customers) and 202 with the queued fit and its job otherwise
(``Location: /v1/jobs/{id}``; the job's ``result_url`` is the fit once it succeeded). Values need a
fit that succeeded (409 otherwise). Segment tables and customer lists come as JSON, or as CSV with
``Accept: text/csv`` or ``?format=csv``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import StreamingResponse

from cltv_api.deps import ReadAccess, SessionDep, SettingsDep, WorkerDep, WriteAccess
from cltv_api.problems import problem_responses
from cltv_api.routes.datasets import SegmentCacheDep, next_link
from cltv_api.schemas.datasets import MAX_OFFSET, TimeUnitName
from cltv_api.schemas.fits import (
    CustomerDetail,
    CustomerPage,
    CustomerSort,
    DistributionMetric,
    DistributionOut,
    FitCreate,
    FitList,
    FitOut,
    SegmentTableOut,
)
from cltv_api.services import fits as service
from cltv_api.services.jobs import job_path
from cltv_api.storage.tables import ID_LENGTH, Fit

router = APIRouter(
    prefix="/v1/fits",
    tags=["fits"],
    responses=problem_responses(401, 403, 422, 500),
)

FitId = Annotated[str, Path(max_length=ID_LENGTH, description="Id of the fit, `fit_...`.")]
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
}
SEGMENT_FILTER_PREFIX = "segment."


def valuation_params(
    horizon: Annotated[
        int, Query(gt=0, description="CLTV horizon in `horizon_unit` (at most 20 years).")
    ] = 12,
    horizon_unit: Annotated[TimeUnitName, Query(description="Unit of the horizon.")] = "months",
    discount_rate: Annotated[
        float, Query(ge=0, le=1, description="Annual effective discount rate, e.g. 0.10.")
    ] = 0.10,
    margin: Annotated[
        float, Query(ge=0, le=1, description="Share of revenue counted as value (1 = revenue).")
    ] = 1.0,
    level: Annotated[float, Query(gt=0, lt=1, description="Interval level.")] = 0.95,
    currency: Annotated[
        str | None, Query(max_length=12, description="Currency label (default: the data set's).")
    ] = None,
) -> service.ValuationParams:
    return service.ValuationParams(
        horizon=horizon,
        horizon_unit=horizon_unit,
        discount_rate=discount_rate,
        margin=margin,
        level=level,
        currency=currency,
    )


ValuationDep = Annotated[service.ValuationParams, Depends(valuation_params)]


def wants_csv(request: Request, output: str | None) -> bool:
    """``?format=csv``, or no ``format`` and an ``Accept`` header asking for CSV."""
    if output is not None:
        return output == "csv"
    return "text/csv" in request.headers.get("accept", "")


def fit_out(fit: Fit) -> FitOut:
    return FitOut.model_validate(service.fit_document(fit))


@router.post(
    "",
    response_model=FitOut,
    status_code=status.HTTP_201_CREATED,
    summary="Fit purchase and spend models to a data set",
    responses={
        202: {"model": FitOut, "description": "Queued as a background job (large data set)."},
        **problem_responses(404),
    },
)
def create_fit(
    body: FitCreate,
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
    worker: WorkerDep,
    response: Response,
) -> FitOut:
    fit, job = service.create_fit(session, settings, principal.workspace.id, body, worker.wake)
    if job is None:
        response.headers["Location"] = service.fit_url(fit.id)
    else:
        response.status_code = status.HTTP_202_ACCEPTED
        response.headers["Location"] = job_path(job.id)
    return fit_out(fit)


@router.get("", response_model=FitList, summary="List the workspace's fits, newest first")
def list_fits(
    principal: ReadAccess,
    session: SessionDep,
    request: Request,
    dataset_id: Annotated[
        str | None, Query(max_length=ID_LENGTH, description="Only fits of this data set.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> FitList:
    fits, total = service.list_fits(
        session, principal.workspace.id, dataset_id=dataset_id, limit=limit, offset=offset
    )
    return FitList(
        items=[fit_out(f) for f in fits],
        total=total,
        limit=limit,
        offset=offset,
        next=next_link(request, total, limit, offset),
    )


@router.get(
    "/{fit_id}",
    response_model=FitOut,
    summary="A fit: request, state, parameters with intervals, diagnostics, holdout metrics",
    responses=problem_responses(404),
)
def get_fit(fit_id: FitId, principal: ReadAccess, session: SessionDep) -> FitOut:
    return fit_out(service.get_fit(session, principal.workspace.id, fit_id))


@router.delete(
    "/{fit_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a fit (a queued or running fit job is cancelled)",
    responses=problem_responses(404),
)
def delete_fit(
    fit_id: FitId,
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
    cache: SegmentCacheDep,
) -> Response:
    service.delete_fit(session, settings, principal.workspace.id, fit_id)
    cache.forget([fit_id])
    return Response(status_code=status.HTTP_204_NO_CONTENT)


def _loaded_fit(session: SessionDep, workspace_id: str, fit_id: str) -> Fit:
    """The fit, with the request's transaction ended (no lock held while values are computed)."""
    fit = service.get_fit(session, workspace_id, fit_id)
    session.commit()
    return fit


@router.get(
    "/{fit_id}/segments",
    response_model=SegmentTableOut,
    summary="CLTV per segment over a horizon, with intervals (JSON or CSV)",
    responses={**problem_responses(404, 409), **CSV_RESPONSE},
)
def fit_segments(
    fit_id: FitId,
    principal: ReadAccess,
    session: SessionDep,
    settings: SettingsDep,
    cache: SegmentCacheDep,
    params: ValuationDep,
    request: Request,
    by: Annotated[
        list[str] | None,
        Query(
            max_length=5,
            description="Segment columns (repeat or comma-separate; default: the fit's).",
        ),
    ] = None,
    output: Annotated[
        Literal["json", "csv"] | None,
        Query(alias="format", description="`csv` for CSV (as `Accept: text/csv`)."),
    ] = None,
) -> Any:
    fit = _loaded_fit(session, principal.workspace.id, fit_id)
    columns = list(dict.fromkeys(p.strip() for v in by or [] for p in v.split(",") if p.strip()))
    report = service.segment_report(settings, cache, fit, params, columns)
    if wants_csv(request, output):
        return Response(
            service.segment_csv(report),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{fit_id}-segments.csv"'},
        )
    return SegmentTableOut.model_validate(report)


def _segment_filters(request: Request) -> dict[str, str]:
    return {
        key[len(SEGMENT_FILTER_PREFIX) :]: value
        for key, value in request.query_params.items()
        if key.startswith(SEGMENT_FILTER_PREFIX) and len(key) > len(SEGMENT_FILTER_PREFIX)
    }


@router.get(
    "/{fit_id}/customers",
    response_model=CustomerPage,
    summary="Scored customers: P(alive), expected purchases and revenue, CLTV with interval "
    "(paged JSON, or every match as streamed CSV)",
    description="Filter by segment with `segment.<column>=<value>` (repeatable for different "
    "columns). With `format=csv` (or `Accept: text/csv`) every matching customer is streamed; "
    "`limit` and `offset` apply to JSON only.",
    responses={**problem_responses(404, 409), **CSV_RESPONSE},
)
def fit_customers(
    fit_id: FitId,
    principal: ReadAccess,
    session: SessionDep,
    settings: SettingsDep,
    params: ValuationDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
    sort: Annotated[CustomerSort, Query(description="`-` for descending.")] = "-clv",
    min_p_alive: Annotated[float | None, Query(ge=0, le=1)] = None,
    max_p_alive: Annotated[float | None, Query(ge=0, le=1)] = None,
    output: Annotated[
        Literal["json", "csv"] | None,
        Query(alias="format", description="`csv` for CSV (as `Accept: text/csv`)."),
    ] = None,
) -> Any:
    fit = _loaded_fit(session, principal.workspace.id, fit_id)
    query = service.CustomerQuery(
        sort=sort,
        min_p_alive=min_p_alive,
        max_p_alive=max_p_alive,
        segments=_segment_filters(request),
    )
    if wants_csv(request, output):
        export = service.CustomerExport(settings, fit, params, query)
        return StreamingResponse(
            iter(export),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{fit_id}-customers.csv"'},
        )
    items, total, conventions = service.customer_page(
        settings, fit, params, query, limit=limit, offset=offset
    )
    return CustomerPage.model_validate(
        {
            "items": items,
            "total": total,
            "limit": limit,
            "offset": offset,
            "next": next_link(request, total, limit, offset),
            "conventions": conventions,
        }
    )


@router.get(
    "/{fit_id}/customers/{customer_id}",
    response_model=CustomerDetail,
    summary="One customer's summary, predictions and CLTV interval",
    responses=problem_responses(404, 409),
)
def fit_customer(
    fit_id: FitId,
    customer_id: Annotated[str, Path(max_length=500, description="The customer's id.")],
    principal: ReadAccess,
    session: SessionDep,
    settings: SettingsDep,
    params: ValuationDep,
) -> CustomerDetail:
    fit = _loaded_fit(session, principal.workspace.id, fit_id)
    return CustomerDetail.model_validate(service.one_customer(settings, fit, params, customer_id))


@router.get(
    "/{fit_id}/distribution",
    response_model=DistributionOut,
    summary="Histogram of the customers' P(alive), CLTV or expected purchases (all customers or "
    "one segment)",
    description="Bin edges and customer counts, aggregated inside the engine. `p_alive` is "
    "binned over [0, 1]; `clv` and `expected_purchases` (over the valuation horizon) from their "
    "smallest to their largest value. Choose a segment with `segment=column=value` (several "
    "columns joined with `, `, as in the segment table and business cases) or "
    "`segment.<column>=<value>`.",
    responses=problem_responses(404, 409),
)
def fit_distribution(
    fit_id: FitId,
    principal: ReadAccess,
    session: SessionDep,
    settings: SettingsDep,
    params: ValuationDep,
    request: Request,
    metric: Annotated[
        DistributionMetric, Query(description="The per-customer value to bin.")
    ] = "p_alive",
    bins: Annotated[
        int,
        Query(
            ge=1,
            le=service.MAX_DISTRIBUTION_BINS,
            description=f"Bins of equal width (1..{service.MAX_DISTRIBUTION_BINS}).",
        ),
    ] = 20,
    segment: Annotated[
        str | None,
        Query(
            max_length=1000,
            description="`column=value` (several joined with `, `); empty or `all customers`: "
            "every customer.",
        ),
    ] = None,
) -> DistributionOut:
    fit = _loaded_fit(session, principal.workspace.id, fit_id)
    available = (fit.result or {}).get("segment_columns", [])
    chosen = {**service.parse_segment(segment, available), **_segment_filters(request)}
    report = service.distribution(settings, fit, params, metric=metric, bins=bins, segment=chosen)
    return DistributionOut.model_validate(report)
