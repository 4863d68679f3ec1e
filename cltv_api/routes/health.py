"""Liveness (``/healthz``: the process answers) and readiness (``/readyz``: it can serve)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter
from sqlalchemy import text

from cltv_api.deps import DatabaseDep, SettingsDep
from cltv_api.errors import CLTVError, FieldError
from cltv_api.problems import problem_responses
from cltv_api.schemas.health import Liveness, Readiness
from cltv_api.storage.db import Database
from cltv_api.storage.migrate import schema_status

router = APIRouter(tags=["health"])


@dataclass
class NotReady(CLTVError):
    """A readiness check failed; ``errors`` names each failed check."""

    type_slug: str = "not-ready"
    title: str = "Service not ready"
    status: int = 503


@router.get("/healthz", response_model=Liveness, summary="Liveness: the process answers")
async def healthz() -> Liveness:
    """Touches neither the database nor the disk: a restart cannot fix those."""
    return Liveness()


def _check_database(db: Database) -> tuple[str | None, str]:
    """(problem or None, schema revision)."""
    try:
        with db.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        status = schema_status(db)
    except Exception as exc:
        return f"database unreachable: {type(exc).__name__}", ""
    revision = ",".join(status.current)
    if not status.at_head:
        wanted = ",".join(status.head)
        return f"schema at revision '{revision or 'none'}', expected '{wanted}'", revision
    return None, revision


def _check_data_dir(data_dir: Path) -> str | None:
    try:
        with tempfile.NamedTemporaryFile(dir=data_dir, prefix=".ready-", delete=True) as probe:
            probe.write(b"ok")
            probe.flush()
    except OSError as exc:
        return f"data directory not writable: {exc.strerror or type(exc).__name__}"
    return None


@router.get(
    "/readyz",
    response_model=Readiness,
    summary="Readiness: database reachable and migrated, data directory writable",
    responses=problem_responses(503),
)
def readyz(db: DatabaseDep, settings: SettingsDep) -> Readiness:
    database_problem, revision = _check_database(db)
    failures = {
        "database": database_problem,
        "data_dir": _check_data_dir(settings.data_dir),
    }
    failed = [FieldError(field=name, message=msg) for name, msg in failures.items() if msg]
    if failed:
        raise NotReady("The service is not ready: " + "; ".join(e.message for e in failed), failed)
    return Readiness(
        checks={"database": "ok", "migrations": "ok", "data_dir": "ok"},
        schema_revision=revision,
    )
