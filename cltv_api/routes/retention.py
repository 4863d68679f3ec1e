"""Retention fits of the caller's workspace (``/v1/retention/fits``): the sBG model (Fader &
Hardie 2007) on contractual survivor data, its forecasts and the value of retention (Fader &
Hardie 2010).

``POST`` fits and stores (201, ``Location``); the fit is small (sufficient statistics per period)
so it always runs inside the request. A stored fit can be read, listed, deleted, re-valued with
other economics (``/churn-cost``) and used as a business-case baseline
(``{"kind": "retention_fit", "retention_fit_id": ...}``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response, status

from cltv_api.deps import ReadAccess, SessionDep, SettingsDep, WriteAccess
from cltv_api.problems import problem_responses
from cltv_api.routes.datasets import next_link
from cltv_api.schemas.datasets import MAX_OFFSET
from cltv_api.schemas.retention import (
    RetentionChurnCostOut,
    RetentionFitCreate,
    RetentionFitList,
    RetentionFitOut,
)
from cltv_api.services import retention as service
from cltv_api.storage.tables import ID_LENGTH

router = APIRouter(
    prefix="/v1/retention/fits",
    tags=["retention"],
    responses=problem_responses(401, 403, 422, 500),
)

RetentionFitId = Annotated[
    str, Path(max_length=ID_LENGTH, description="Id of the retention fit, `rfit_...`.")
]


@router.post(
    "",
    response_model=RetentionFitOut,
    status_code=status.HTTP_201_CREATED,
    summary="Fit the sBG retention model to survivor counts, customer dates or a data set",
    responses=problem_responses(404),
)
def create_retention_fit(
    body: RetentionFitCreate,
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> RetentionFitOut:
    fit = service.create_retention_fit(session, settings, principal.workspace.id, body)
    response.headers["Location"] = service.retention_fit_url(fit.id)
    return RetentionFitOut.model_validate(service.fit_document(fit))


@router.get("", response_model=RetentionFitList, summary="List the workspace's retention fits")
def list_retention_fits(
    principal: ReadAccess,
    session: SessionDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> RetentionFitList:
    fits, total = service.list_retention_fits(
        session, principal.workspace.id, limit=limit, offset=offset
    )
    return RetentionFitList(
        items=[RetentionFitOut.model_validate(service.fit_document(f)) for f in fits],
        total=total,
        limit=limit,
        offset=offset,
        next=next_link(request, total, limit, offset),
    )


@router.get(
    "/{fit_id}",
    response_model=RetentionFitOut,
    summary="A retention fit: parameters with standard errors, forecast, values by tenure",
    responses=problem_responses(404),
)
def get_retention_fit(
    fit_id: RetentionFitId, principal: ReadAccess, session: SessionDep
) -> RetentionFitOut:
    fit = service.get_retention_fit(session, principal.workspace.id, fit_id)
    return RetentionFitOut.model_validate(service.fit_document(fit))


@router.delete(
    "/{fit_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a retention fit",
    responses=problem_responses(404),
)
def delete_retention_fit(
    fit_id: RetentionFitId, principal: WriteAccess, session: SessionDep
) -> Response:
    service.delete_retention_fit(session, principal.workspace.id, fit_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.get(
    "/{fit_id}/churn-cost",
    response_model=RetentionChurnCostOut,
    summary="Cost of churn of the contractual base: value lost per churner, +-1 point retention",
    responses=problem_responses(404),
)
def retention_churn_cost(
    fit_id: RetentionFitId,
    principal: ReadAccess,
    session: SessionDep,
    value_per_period: Annotated[
        float | None,
        Query(ge=0, description="Margin per active customer per period (default: the fit's)."),
    ] = None,
    discount_rate: Annotated[
        float | None,
        Query(gt=0, le=10, description="Discount rate PER PERIOD (default: the fit's)."),
    ] = None,
    points: Annotated[
        float, Query(gt=0, lt=1, description="Retention change valued (0.01 = 1 point).")
    ] = service.DEFAULT_POINTS,
    max_renewals: Annotated[
        int | None, Query(ge=0, le=1000, description="Table of renewals 0..N (default: fit's).")
    ] = None,
) -> RetentionChurnCostOut:
    fit = service.get_retention_fit(session, principal.workspace.id, fit_id)
    return RetentionChurnCostOut.model_validate(
        service.churn_cost_document(
            fit,
            value_per_period=value_per_period,
            discount_rate=discount_rate,
            points=points,
            max_renewals=max_renewals,
        )
    )
