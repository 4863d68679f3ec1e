"""Data sets of the caller's workspace (``/v1/datasets``): upload, preview, list, read, RFM
summary, delete.

An upload is either ``multipart/form-data`` with the file in the ``file`` part, or the file itself
as the request body (``text/csv``, ``application/octet-stream``, the XLSX or Parquet media type,
with ``?filename=``). Column mapping and parsing options are query parameters or form fields.
Deleting a data set deletes its fits too: they answer 404 afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cltv_api.deps import ReadAccess, SessionDep, SettingsDep, WorkerDep, WriteAccess
from cltv_api.problems import problem_responses
from cltv_api.schemas.datasets import (
    MAX_OFFSET,
    DatasetList,
    DatasetOut,
    PreviewOut,
    RFMSummaryOut,
    TimeUnitName,
    UploadOptions,
)
from cltv_api.schemas.fits import FitCreate
from cltv_api.services import datasets as service
from cltv_api.services import fits as fit_service
from cltv_api.services.fits import SegmentCache
from cltv_api.services.jobs import JobWorker
from cltv_api.settings import Settings
from cltv_api.storage.tables import ID_LENGTH, Dataset

router = APIRouter(
    prefix="/v1/datasets",
    tags=["datasets"],
    responses=problem_responses(401, 403, 422, 500),
)

DatasetId = Annotated[str, Path(max_length=ID_LENGTH, description="Id of the data set, `ds_...`.")]

_FILE_SCHEMA = {"type": "string", "format": "binary"}
UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "description": "The file, as the `file` part of a form (other form fields: the upload "
        "options, as in the query) or as the whole body.",
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {
                        "file": _FILE_SCHEMA,
                        "customer_col": {"type": "string"},
                        "date_col": {"type": "string"},
                        "amount_col": {"type": "string"},
                        "segment_cols": {"type": "array", "items": {"type": "string"}},
                        "date_format": {"type": "string"},
                    },
                }
            },
            "text/csv": {"schema": _FILE_SCHEMA},
            "application/octet-stream": {"schema": _FILE_SCHEMA},
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": {
                "schema": _FILE_SCHEMA
            },
            "application/vnd.apache.parquet": {"schema": _FILE_SCHEMA},
        },
    }
}


async def get_segment_cache(request: Request) -> SegmentCache:
    """The application's cache of segment tables (created with the application)."""
    cache: SegmentCache = request.app.state.segment_cache
    return cache


SegmentCacheDep = Annotated[SegmentCache, Depends(get_segment_cache)]


def dataset_out(dataset: Dataset) -> DatasetOut:
    """The API view of a stored data set."""
    stats = dataset.stats or {}
    return DatasetOut.model_validate(
        {
            "id": dataset.id,
            "name": dataset.name,
            "kind": dataset.kind,
            "status": dataset.status,
            "format": dataset.format or {},
            "mapping": stats.get("mapping", {}),
            "row_count": stats.get("row_count", 0),
            "stored_rows": stats.get("stored_rows", 0),
            "customer_count": stats.get("customer_count"),
            "transaction_count": stats.get("transaction_count"),
            "date_min": stats.get("date_min"),
            "date_max": stats.get("date_max"),
            "amount_total": stats.get("amount_total"),
            "currency": stats.get("currency"),
            "segment_columns": [
                {"name": name, "distinct_values": count}
                for name, count in stats.get("segments", {}).items()
            ],
            "report": dataset.report or {},
            "sha256": dataset.sha256 or "",
            "created_at": dataset.created_at,
            "url": service.dataset_url(dataset.id),
        }
    )


async def _receive(
    request: Request, options: UploadOptions, settings: Settings
) -> service.ReceivedUpload:
    return await service.receive_upload(
        request.stream(),
        content_type=request.headers.get("content-type"),
        content_length=request.headers.get("content-length"),
        settings=settings,
        filename=options.filename,
    )


@router.post(
    "",
    response_model=DatasetOut,
    status_code=status.HTTP_201_CREATED,
    summary="Upload transactions (CSV, XLSX or Parquet): read, check and store them",
    openapi_extra=UPLOAD_BODY,
    responses=problem_responses(413, 415, 507),
)
async def upload_dataset(
    request: Request,
    options: Annotated[UploadOptions, Query()],
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
    worker: WorkerDep,
    cache: SegmentCacheDep,
    response: Response,
) -> Any:
    """The file is streamed to disk, ingested whole or rejected whole (422 with the rows at
    fault; nothing is stored), and stored as a data set (201, `Location` header). With `fit`,
    the data set is also fitted and the answer is its segment table as CSV."""
    await run_in_threadpool(session.commit)  # release the authentication's write, if any
    upload = await _receive(request, options, settings)
    try:
        merged = service.merge_options(options, upload.fields)
        dataset = await run_in_threadpool(
            service.create_dataset, session, settings, principal.workspace.id, upload, merged
        )
    finally:
        upload.discard()
    if merged.fit is not None:
        columns = _columns(merged.segment_by) or [
            c.name for c in dataset_out(dataset).segment_columns
        ]
        valuation = fit_service.ValuationParams(
            horizon=merged.horizon,
            horizon_unit=merged.horizon_unit,
            discount_rate=merged.discount_rate,
            margin=merged.margin,
        )
        batch = BatchFit(merged.fit, columns, merged.time_unit, valuation)
        return await run_in_threadpool(
            _fit_and_report,
            session,
            settings,
            principal.workspace.id,
            dataset,
            batch,
            worker,
            cache,
        )
    response.headers["Location"] = service.dataset_url(dataset.id)
    return dataset_out(dataset)


@dataclass(frozen=True)
class BatchFit:
    """The fit and valuation of a one-call batch upload."""

    purchase_model: str
    segment_by: list[str]
    time_unit: str
    valuation: fit_service.ValuationParams


def _columns(values: list[str] | None) -> list[str]:
    return list(dict.fromkeys(p.strip() for v in values or [] for p in v.split(",") if p.strip()))


def _fit_and_report(
    session: Session,
    settings: Settings,
    workspace_id: str,
    dataset: Dataset,
    batch: BatchFit,
    worker: JobWorker,
    cache: SegmentCache,
) -> Response:
    body = FitCreate(
        dataset_id=dataset.id,
        purchase_model=batch.purchase_model,  # type: ignore[arg-type]
        segment_by=batch.segment_by,
        time_unit=batch.time_unit,  # type: ignore[arg-type]
    )
    fit, job = fit_service.create_fit(session, settings, workspace_id, body, worker.wake)
    if job is not None:
        return JSONResponse(
            {
                "dataset_id": dataset.id,
                "fit_id": fit.id,
                "job": {"id": job.id, "url": f"/v1/jobs/{job.id}"},
            },
            status_code=status.HTTP_202_ACCEPTED,
            headers={"Location": f"/v1/jobs/{job.id}"},
        )
    report = fit_service.segment_report(settings, cache, fit, batch.valuation, batch.segment_by)
    return Response(
        fit_service.segment_csv(report),
        status_code=status.HTTP_201_CREATED,
        media_type="text/csv; charset=utf-8",
        headers={
            "Location": fit_service.fit_url(fit.id),
            "X-Dataset-Id": dataset.id,
            "Content-Disposition": f'attachment; filename="{fit.id}-segments.csv"',
        },
    )


@router.post(
    "/preview",
    response_model=PreviewOut,
    summary="Detect the format, columns and mapping of a file and show its first rows "
    "(stores nothing)",
    openapi_extra=UPLOAD_BODY,
    responses=problem_responses(413, 415),
)
async def preview_dataset(
    request: Request,
    options: Annotated[UploadOptions, Query()],
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
) -> PreviewOut:
    await run_in_threadpool(session.commit)  # release the authentication's write, if any
    upload = await _receive(request, options, settings)
    try:
        merged = service.merge_options(options, upload.fields)
        result = await run_in_threadpool(service.preview_upload, upload, merged, settings)
    finally:
        upload.discard()
    mapping = result.suggested_mapping
    return PreviewOut.model_validate(
        {
            "format": result.format.as_dict(),
            "columns": list(result.columns),
            "suggested_mapping": None
            if mapping is None
            else {**vars(mapping), "segments": list(mapping.segments)},
            "mapping_problem": result.mapping_problem,
            "rows": result.rows,
        }
    )


@router.get("", response_model=DatasetList, summary="List the workspace's data sets, newest first")
def list_datasets(
    principal: ReadAccess,
    session: SessionDep,
    request: Request,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> DatasetList:
    datasets, total = service.list_datasets(
        session, principal.workspace.id, limit=limit, offset=offset
    )
    return DatasetList(
        items=[dataset_out(d) for d in datasets],
        total=total,
        limit=limit,
        offset=offset,
        next=next_link(request, total, limit, offset),
    )


def next_link(request: Request, total: int, limit: int, offset: int) -> str | None:
    """Path and query of the next page (the request's other parameters kept), or None on the
    last page."""
    if offset + limit >= total:
        return None
    url = request.url.include_query_params(limit=limit, offset=offset + limit)
    return f"{url.path}?{url.query}"


@router.get(
    "/{dataset_id}",
    response_model=DatasetOut,
    summary="A data set: format, counts, segment columns and validation report",
    responses=problem_responses(404),
)
def get_dataset(dataset_id: DatasetId, principal: ReadAccess, session: SessionDep) -> DatasetOut:
    return dataset_out(service.get_dataset(session, principal.workspace.id, dataset_id))


@router.get(
    "/{dataset_id}/summary",
    response_model=RFMSummaryOut,
    summary="RFM preview: the first customers' frequency, recency, T and monetary value, with "
    "aggregate statistics",
    responses=problem_responses(404),
)
def dataset_summary(
    dataset_id: DatasetId,
    principal: ReadAccess,
    session: SessionDep,
    settings: SettingsDep,
    time_unit: Annotated[TimeUnitName, Query(description="Length of a purchase period.")] = "weeks",
    limit: Annotated[int, Query(ge=1, le=1000, description="Customers listed.")] = 20,
) -> RFMSummaryOut:
    dataset = service.get_dataset(session, principal.workspace.id, dataset_id)
    session.commit()
    return RFMSummaryOut.model_validate(service.rfm_summary(settings, dataset, time_unit, limit))


@router.delete(
    "/{dataset_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Delete a data set and its fits (they answer 404 afterwards)",
    responses=problem_responses(404),
)
def delete_dataset(
    dataset_id: DatasetId,
    principal: WriteAccess,
    session: SessionDep,
    settings: SettingsDep,
    cache: SegmentCacheDep,
) -> Response:
    workspace_id = principal.workspace.id
    removed = service.delete_dataset(
        session,
        settings,
        workspace_id,
        dataset_id,
        cascade=lambda s, ds: fit_service.delete_fits_of_dataset(s, workspace_id, ds),
    )
    fit_service.remove_fit_files(settings, removed)
    cache.forget(removed)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
