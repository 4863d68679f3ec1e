"""The economics of churn: what churn costs per segment of a stored fit
(``GET /v1/fits/{id}/churn-cost``), and the stateless NPS and complaint economics
(``POST /v1/economics/nps``, ``POST /v1/economics/complaints``).

The contractual counterpart of the cost of churn is ``GET /v1/retention/fits/{id}/churn-cost``
(:mod:`cltv_api.routes.retention`).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cltv_api.deps import ReadAccess, SessionDep, SettingsDep
from cltv_api.economics.churn_cost import DEFAULT_BAND, DEFAULT_POINTS
from cltv_api.problems import problem_responses
from cltv_api.routes.fits import ValuationDep
from cltv_api.schemas.economics import (
    ChurnCostOut,
    ComplaintsRequest,
    ComplaintsResponse,
    NpsRequest,
    NpsResponse,
)
from cltv_api.services import churn as service
from cltv_api.services.fits import get_fit
from cltv_api.storage.tables import ID_LENGTH

router = APIRouter(
    prefix="/v1/fits", tags=["fits"], responses=problem_responses(401, 403, 422, 500)
)
economics_router = APIRouter(
    prefix="/v1/economics", tags=["economics"], responses=problem_responses(401, 403, 422, 500)
)

FitId = Annotated[str, Path(max_length=ID_LENGTH, description="Id of the fit, `fit_...`.")]


@router.get(
    "/{fit_id}/churn-cost",
    response_model=ChurnCostOut,
    summary="Cost of churn per segment: residual CLTV, value lost per churner, +-1 point of "
    "churn, revenue at risk",
    responses=problem_responses(404, 409),
)
def fit_churn_cost(
    fit_id: FitId,
    principal: ReadAccess,
    session: SessionDep,
    settings: SettingsDep,
    params: ValuationDep,
    by: Annotated[
        list[str] | None,
        Query(
            max_length=5,
            description="Segment columns (repeat or comma-separate; default: the fit's).",
        ),
    ] = None,
    at_risk_low: Annotated[
        float, Query(description="Lower P(alive) of the at-risk band (inclusive).")
    ] = DEFAULT_BAND[0],
    at_risk_high: Annotated[
        float, Query(description="Upper P(alive) of the at-risk band (exclusive).")
    ] = DEFAULT_BAND[1],
    points: Annotated[
        float, Query(description="Churn change valued (0.01 = one percentage point).")
    ] = DEFAULT_POINTS,
) -> ChurnCostOut:
    fit = get_fit(session, principal.workspace.id, fit_id)
    session.commit()  # no database lock while the customers are scored
    columns = list(dict.fromkeys(p.strip() for v in by or [] for p in v.split(",") if p.strip()))
    report = service.churn_cost_report(
        settings, fit, params, columns, band=(at_risk_low, at_risk_high), points=points
    )
    return ChurnCostOut.model_validate(report)


@economics_router.post(
    "/nps",
    response_model=NpsResponse,
    summary="What a promoter, a passive and a detractor are worth, and an NPS shift",
)
def nps_economics(body: NpsRequest, principal: ReadAccess) -> NpsResponse:
    return NpsResponse.model_validate(service.nps_report(body))


@economics_router.post(
    "/complaints",
    response_model=ComplaintsResponse,
    summary="Complaint economics (TARP): customers and value lost, word of mouth, better "
    "complaint handling",
)
def complaint_economics(body: ComplaintsRequest, principal: ReadAccess) -> ComplaintsResponse:
    return ComplaintsResponse.model_validate(service.complaints_report(body))
