"""Business cases of the caller's workspace (``/v1/business-cases``), versioned by name.

* ``POST``: evaluate and store a case; a name already used stores its next version (201,
  ``Location`` of the case);
* ``PUT /{id}``: store the next version of that case;
* ``GET /{id}``: the latest version; ``GET /{id}/versions/{n}``: version n;
* ``DELETE /{id}``: every version.

A version comes as JSON, as its cash-flow table in CSV (``?format=csv`` or
``Accept: text/csv``; ``sep``, ``decimal`` and ``bom`` for spreadsheets of other locales), or as
an XLSX workbook whose cash flows are live formulas (``?format=xlsx`` or ``Accept:`` the XLSX
media type).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response, status

from cltv_api.deps import ReadAccess, SessionDep, SettingsDep, WriteAccess
from cltv_api.errors import FieldError, InvalidInput
from cltv_api.exports import csv_safe
from cltv_api.problems import problem_responses
from cltv_api.routes.datasets import next_link
from cltv_api.schemas.business_cases import (
    BusinessCaseCreate,
    BusinessCaseList,
    BusinessCaseOut,
    BusinessCaseSummary,
)
from cltv_api.schemas.datasets import MAX_OFFSET
from cltv_api.services import business_cases as service
from cltv_api.storage.tables import ID_LENGTH, BusinessCase

router = APIRouter(
    prefix="/v1/business-cases",
    tags=["business cases"],
    responses=problem_responses(401, 403, 422, 500),
)

CaseId = Annotated[
    str, Path(max_length=ID_LENGTH, description="Id of the case (or of any of its versions).")
]
XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
Format = Literal["json", "csv", "xlsx"]
FILE_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "content": {
            "text/csv": {"schema": {"type": "string"}},
            XLSX_MEDIA_TYPE: {"schema": {"type": "string", "format": "binary"}},
        }
    }
}


def _format(request: Request, output: Format | None) -> Format:
    """``?format=``, else the Accept header (XLSX or CSV), else JSON."""
    if output is not None:
        return output
    accept = request.headers.get("accept", "")
    if XLSX_MEDIA_TYPE in accept:
        return "xlsx"
    if "text/csv" in accept:
        return "csv"
    return "json"


def _answer(
    versions: list[BusinessCase],
    row: BusinessCase,
    output: Format,
    sep: str,
    decimal: csv_safe.DecimalMark,
    bom: bool,
) -> Any:
    filename = f"{versions[0].id}-v{row.version}"
    if output == "csv":
        problems = csv_safe.check_options(sep, decimal)
        if problems:
            raise InvalidInput(
                "The CSV options are not valid.",
                [FieldError(f"query.{name}", message, value=sep) for name, message in problems],
            )
        return Response(
            service.cash_flow_csv(row, sep=sep, decimal=decimal, bom=bom),
            media_type=CSV_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    if output == "xlsx":
        return Response(
            service.workbook_bytes(row),
            media_type=XLSX_MEDIA_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'},
        )
    return BusinessCaseOut.model_validate(service.case_document(versions, row))


OutputQuery = Annotated[
    Format | None,
    Query(alias="format", description="`csv` (cash flows) or `xlsx` (workbook); default JSON."),
]
SepQuery = Annotated[str, Query(max_length=1, description="CSV separator: `,`, `;` or a tab.")]
DecimalQuery = Annotated[
    csv_safe.DecimalMark, Query(description="CSV decimal mark: `point` or `comma`.")
]
BomQuery = Annotated[bool, Query(description="Start the CSV with a UTF-8 byte-order mark.")]


@router.post(
    "",
    response_model=BusinessCaseOut,
    status_code=status.HTTP_201_CREATED,
    summary="Evaluate and store a business case (a used name stores its next version)",
    responses=problem_responses(404, 409),
)
def create_case(
    body: BusinessCaseCreate,
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> BusinessCaseOut:
    row = service.create_case(session, settings, principal.workspace.id, body)
    versions = list(service.case_versions(session, principal.workspace.id, row.id))
    response.headers["Location"] = service.case_url(versions[0].id)
    return BusinessCaseOut.model_validate(service.case_document(versions, row))


@router.get(
    "", response_model=BusinessCaseList, summary="List the workspace's cases (latest versions)"
)
def list_cases(
    principal: ReadAccess,
    session: SessionDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> BusinessCaseList:
    rows, total = service.list_cases(session, principal.workspace.id, limit=limit, offset=offset)
    return BusinessCaseList(
        items=[
            BusinessCaseSummary.model_validate(service.summary_document(row, case_id))
            for row, case_id in rows
        ],
        total=total,
        limit=limit,
        offset=offset,
        next=next_link(request, total, limit, offset),
    )


@router.get(
    "/{case_id}",
    response_model=BusinessCaseOut,
    summary="The latest version of a case (JSON, cash-flow CSV or XLSX workbook)",
    responses={**problem_responses(404), **FILE_RESPONSES},
)
def get_case(
    case_id: CaseId,
    principal: ReadAccess,
    session: SessionDep,
    request: Request,
    output: OutputQuery = None,
    sep: SepQuery = ",",
    decimal: DecimalQuery = "point",
    bom: BomQuery = False,
) -> Any:
    versions = list(service.case_versions(session, principal.workspace.id, case_id))
    row = service.pick_version(versions, None)
    return _answer(versions, row, _format(request, output), sep, decimal, bom)


@router.get(
    "/{case_id}/versions/{version}",
    response_model=BusinessCaseOut,
    summary="One version of a case (JSON, cash-flow CSV or XLSX workbook)",
    responses={**problem_responses(404), **FILE_RESPONSES},
)
def get_case_version(
    case_id: CaseId,
    version: Annotated[int, Path(ge=1, description="Version number, 1 = the first.")],
    principal: ReadAccess,
    session: SessionDep,
    request: Request,
    output: OutputQuery = None,
    sep: SepQuery = ",",
    decimal: DecimalQuery = "point",
    bom: BomQuery = False,
) -> Any:
    versions = list(service.case_versions(session, principal.workspace.id, case_id))
    row = service.pick_version(versions, version)
    return _answer(versions, row, _format(request, output), sep, decimal, bom)


@router.put(
    "/{case_id}",
    response_model=BusinessCaseOut,
    summary="Store a new version of a case",
    responses=problem_responses(404, 409),
)
def update_case(
    case_id: CaseId,
    body: BusinessCaseCreate,
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
) -> BusinessCaseOut:
    row = service.update_case(session, settings, principal.workspace.id, case_id, body)
    versions = list(service.case_versions(session, principal.workspace.id, row.id))
    return BusinessCaseOut.model_validate(service.case_document(versions, row))


@router.delete(
    "/{case_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a case with all its versions",
    responses=problem_responses(404),
)
def delete_case(case_id: CaseId, principal: WriteAccess, session: SessionDep) -> Response:
    service.delete_case(session, principal.workspace.id, case_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
