"""Background job state."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from cltv_api.schemas.problem import Problem

JobStatus = Literal["queued", "running", "succeeded", "failed", "cancelled"]


class JobOut(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "job_7d2k9x0c3v5b1n8q4w6e",
                    "kind": "fit",
                    "status": "running",
                    "progress": 0.4,
                    "stage": "optimising likelihood",
                    "created_at": "2026-01-05T09:30:00Z",
                    "started_at": "2026-01-05T09:30:01Z",
                    "finished_at": None,
                    "result_url": None,
                    "error": None,
                    "url": "/v1/jobs/job_7d2k9x0c3v5b1n8q4w6e",
                }
            ]
        }
    )

    id: str
    kind: str
    status: JobStatus
    progress: float = Field(ge=0, le=1, description="Fraction done, 0 to 1.")
    stage: str | None = Field(description="What the job is doing now (or did last).")
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    result_url: str | None = Field(description="Where the result is, once the job succeeded.")
    error: Problem | None = Field(description="Why the job failed, as problem details.")
    url: str = Field(description="This job.")


class JobList(BaseModel):
    items: list[JobOut]
    limit: int
    offset: int
