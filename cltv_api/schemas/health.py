"""Liveness and readiness responses."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Liveness(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"status": "ok"}]})

    status: Literal["ok"] = "ok"


class Readiness(BaseModel):
    """All checks passed; a failing check answers 503 with a problem instead."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "status": "ready",
                    "checks": {"database": "ok", "migrations": "ok", "data_dir": "ok"},
                    "schema_revision": "0001",
                }
            ]
        }
    )

    status: Literal["ready"] = "ready"
    checks: dict[str, str] = Field(description="Each check and its outcome.")
    schema_revision: str = Field(description="Alembic revision the database is at.")
