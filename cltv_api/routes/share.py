"""Read-only share tokens (``/v1/share-tokens``) and the pulls that use them (``/v1/share``).

Spreadsheets cannot send an ``Authorization`` header (Excel ``WEBSERVICE``, Google Sheets
``IMPORTDATA``), so a token in the URL grants reads of ONE fit or ONE business case::

    =WEBSERVICE("https://cltv.example/v1/share/cltv_share_.../value?metric=clv_mean&segment=Online")
    =IMPORTDATA("https://cltv.example/v1/share/cltv_share_.../segments.csv")

* ``POST /v1/share-tokens`` (write scope): 201 with the token, shown once;
* ``GET /v1/share-tokens`` (read scope): the workspace's tokens, by prefix;
* ``DELETE /v1/share-tokens/{id}`` (write scope): revoke (204);
* ``GET /v1/share/{token}/value``: one bare number as ``text/plain``;
* ``GET /v1/share/{token}/segments.csv`` (fit tokens), ``/cashflows.csv`` (business-case tokens).

Unknown tokens, tokens of the other resource type and resources gone from the token's workspace
are 404; revoked or expired tokens are 401 (see :mod:`cltv_api.services.share`).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Response, status

from cltv_api.deps import ReadAccess, SessionDep, SettingsDep, WriteAccess
from cltv_api.exports import csv_safe
from cltv_api.problems import problem_responses
from cltv_api.routes.datasets import SegmentCacheDep
from cltv_api.routes.fits import ValuationDep
from cltv_api.schemas.share import (
    ShareTokenCreate,
    ShareTokenCreated,
    ShareTokenList,
    ShareTokenOut,
)
from cltv_api.services import share as service
from cltv_api.storage.tables import ID_LENGTH

router = APIRouter(
    prefix="/v1/share-tokens",
    tags=["share tokens"],
    responses=problem_responses(401, 403, 422, 500),
)
pull_router = APIRouter(
    prefix="/v1/share",
    tags=["share tokens"],
    responses=problem_responses(401, 404, 422, 500),
)

TEXT_MEDIA_TYPE = "text/plain; charset=utf-8"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
NO_STORE = {"Cache-Control": "no-store"}  # the middleware adds Referrer-Policy: no-referrer
Token = Annotated[str, Path(max_length=100, description="The share token `cltv_share_...`.")]
SepQuery = Annotated[str, Query(max_length=1, description="CSV separator: `,`, `;` or a tab.")]
DecimalQuery = Annotated[
    csv_safe.DecimalMark, Query(description="Decimal mark: `point` (1234.5) or `comma` (1234,5).")
]
BomQuery = Annotated[bool, Query(description="Start the CSV with a UTF-8 byte-order mark.")]
MetricQuery = Annotated[
    str,
    Query(
        max_length=60,
        description="Fits: a segment-table column (`customers`, `clv_mean`, `clv_total`...); "
        "business cases: `npv`, `roi`, `payback_periods`, `pv_benefits`, `pv_costs`, "
        "`break_even`.",
    ),
]
SegmentQuery = Annotated[
    str | None,
    Query(
        max_length=500,
        description="Fits only: the segment's value (several columns: joined by `, `); "
        "omitted = all customers.",
    ),
]


def _out(row: Any) -> ShareTokenOut:
    return ShareTokenOut.model_validate(row)


@router.post(
    "",
    response_model=ShareTokenCreated,
    status_code=status.HTTP_201_CREATED,
    summary="Create a read-only share token for one fit or business case (shown once)",
    responses=problem_responses(404),
)
def create_token(
    body: ShareTokenCreate, principal: WriteAccess, session: SessionDep
) -> ShareTokenCreated:
    issued = service.issue_token(session, principal.workspace.id, body)
    return ShareTokenCreated(
        **_out(issued.row).model_dump(),
        token=issued.plaintext,
        urls=service.share_urls(issued.plaintext, issued.row.resource_type),
    )


@router.get("", response_model=ShareTokenList, summary="List the workspace's share tokens")
def list_tokens(principal: ReadAccess, session: SessionDep) -> ShareTokenList:
    rows = service.list_tokens(session, principal.workspace.id)
    return ShareTokenList(items=[_out(r) for r in rows])


@router.delete(
    "/{token_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Revoke a share token (idempotent)",
    responses=problem_responses(404),
)
def revoke_token(
    token_id: Annotated[str, Path(max_length=ID_LENGTH)],
    principal: WriteAccess,
    session: SessionDep,
) -> Response:
    service.revoke_token(session, principal.workspace.id, token_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@pull_router.get(
    "/{token}/value",
    response_class=Response,
    summary="One number of the shared resource as text/plain (for WEBSERVICE / IMPORTDATA)",
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def pull_value(
    token: Token,
    session: SessionDep,
    settings: SettingsDep,
    cache: SegmentCacheDep,
    params: ValuationDep,
    metric: MetricQuery,
    segment: SegmentQuery = None,
    decimal: DecimalQuery = "point",
) -> Response:
    row = service.resolve_token(session, token, None)
    if row.resource_type == service.FIT:
        report = service.fit_report(session, settings, cache, row, params)
        value = service.fit_value(report, metric, segment)
    else:
        value = service.case_value(service.shared_case(session, row), metric)
    return Response(
        service.value_text(value, decimal), media_type=TEXT_MEDIA_TYPE, headers=NO_STORE
    )


@pull_router.get(
    "/{token}/segments.csv",
    response_class=Response,
    summary="The shared fit's segment table as CSV",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def pull_segments(
    token: Token,
    session: SessionDep,
    settings: SettingsDep,
    cache: SegmentCacheDep,
    params: ValuationDep,
    sep: SepQuery = ",",
    decimal: DecimalQuery = "point",
    bom: BomQuery = False,
) -> Response:
    service.check_csv_options(sep, decimal)
    row = service.resolve_token(session, token, service.FIT)
    report = service.fit_report(session, settings, cache, row, params)
    body = service.segments_csv(report, sep=sep, decimal=decimal, bom=bom)
    return Response(body, media_type=CSV_MEDIA_TYPE, headers=NO_STORE)


@pull_router.get(
    "/{token}/cashflows.csv",
    response_class=Response,
    summary="The shared business case's cash flows (latest version) as CSV",
    responses={200: {"content": {"text/csv": {"schema": {"type": "string"}}}}},
)
def pull_cash_flows(
    token: Token,
    session: SessionDep,
    sep: SepQuery = ",",
    decimal: DecimalQuery = "point",
    bom: BomQuery = False,
) -> Response:
    service.check_csv_options(sep, decimal)
    row = service.resolve_token(session, token, service.BUSINESS_CASE)
    case = service.shared_case(session, row)
    body = service.cash_flows_csv(case, sep=sep, decimal=decimal, bom=bom)
    return Response(body, media_type=CSV_MEDIA_TYPE, headers=NO_STORE)
