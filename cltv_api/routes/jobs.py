"""Background jobs of the caller's workspace (``/v1/jobs``)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query

from cltv_api.deps import ReadAccess, SessionDep, WriteAccess
from cltv_api.problems import problem_responses
from cltv_api.schemas.datasets import MAX_OFFSET
from cltv_api.schemas.jobs import JobList, JobOut, JobStatus
from cltv_api.schemas.problem import Problem
from cltv_api.services import jobs as service
from cltv_api.storage.tables import ID_LENGTH, Job

router = APIRouter(
    prefix="/v1/jobs",
    tags=["jobs"],
    responses=problem_responses(401, 403, 422, 500),
)

JobId = Annotated[str, Path(max_length=ID_LENGTH, description="Id of the job, `job_...`.")]


def job_out(job: Job) -> JobOut:
    """The API view of a job; a stored error becomes problem details about this job."""
    url = service.job_path(job.id)
    error = Problem.model_validate({**job.error, "instance": url}) if job.error else None
    return JobOut(
        id=job.id,
        kind=job.kind,
        status=job.status,  # type: ignore[arg-type]  # constrained by a CHECK constraint
        progress=job.progress,
        stage=job.stage,
        created_at=job.created_at,
        started_at=job.started_at,
        finished_at=job.finished_at,
        result_url=job.result_ref,
        error=error,
        url=url,
    )


@router.get("", response_model=JobList, summary="List the workspace's jobs, newest first")
def list_jobs(
    principal: ReadAccess,
    session: SessionDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
    kind: Annotated[str | None, Query(max_length=40, description="Only jobs of this kind.")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    offset: Annotated[int, Query(ge=0, le=MAX_OFFSET)] = 0,
) -> JobList:
    jobs = service.list_jobs(
        session, principal.workspace.id, status=status, kind=kind, limit=limit, offset=offset
    )
    return JobList(items=[job_out(job) for job in jobs], limit=limit, offset=offset)


@router.get(
    "/{job_id}",
    response_model=JobOut,
    summary="State, progress, result link or error of a job",
    responses=problem_responses(404),
)
def get_job(job_id: JobId, principal: ReadAccess, session: SessionDep) -> JobOut:
    return job_out(service.get_job(session, principal.workspace.id, job_id))


@router.post(
    "/{job_id}/cancel",
    response_model=JobOut,
    summary="Cancel a queued or running job (a running one stops at its next progress report)",
    responses=problem_responses(404, 409),
)
def cancel_job(job_id: JobId, principal: WriteAccess, session: SessionDep) -> JobOut:
    return job_out(service.cancel_job(session, principal.workspace.id, job_id))
