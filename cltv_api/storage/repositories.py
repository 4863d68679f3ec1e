"""Data access. Every query on workspace-owned rows filters on ``workspace_id``.

A :class:`ScopedRepository` is bound to one workspace when it is created, so a caller holding a
repository for workspace A cannot read, list or change a row of workspace B: such a row is simply
"not found". Two deliberate exceptions, each a small class of its own, work across workspaces:

* :class:`ApiKeyLookup` finds a key by its hash, which is how a request learns its workspace;
* :class:`JobQueue` is the background worker's view of the ``jobs`` table (claim, heartbeat,
  recover), used by no request handler.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, ClassVar, Generic, TypeVar

from sqlalchemy import ColumnElement, Select, func, select, update
from sqlalchemy.orm import Session

from cltv_api.storage.tables import (
    ID_LENGTH,
    ApiKey,
    BusinessCase,
    Dataset,
    Fit,
    Job,
    ShareToken,
    Workspace,
    WorkspaceOwned,
)

DEFAULT_PAGE_SIZE = 50

T = TypeVar("T", bound=WorkspaceOwned)
R = TypeVar("R", Workspace, Job)


def _get_by_id(session: Session, model: type[R], row_id: str) -> R | None:
    """``session.get`` (identity map first), or None for an id longer than any stored one
    (binding it would fail the column's length check, see ``tables.BoundedString``)."""
    if len(row_id) > ID_LENGTH:
        return None
    return session.get(model, row_id)


class WorkspaceRepository:
    """Workspaces themselves (the tenants)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def add(self, name: str) -> Workspace:
        workspace = Workspace(name=name)
        self.session.add(workspace)
        self.session.flush()
        return workspace

    def get(self, workspace_id: str) -> Workspace | None:
        return _get_by_id(self.session, Workspace, workspace_id)


class ScopedRepository(Generic[T]):
    """Rows of one table that belong to one workspace."""

    model: ClassVar[type[Any]]

    def __init__(self, session: Session, workspace_id: str) -> None:
        self.session = session
        self.workspace_id = workspace_id

    def _select(self) -> Select[T]:
        return select(self.model).where(self.model.workspace_id == self.workspace_id)

    def add(self, row: T) -> T:
        """Insert ``row`` into this workspace (its ``workspace_id`` is set here)."""
        row.workspace_id = self.workspace_id
        self.session.add(row)
        self.session.flush()
        return row

    def get(self, row_id: str) -> T | None:
        """The row with this id in this workspace, or None (also when it is another's)."""
        return self.session.scalars(self._select().where(self.model.id == row_id)).one_or_none()

    def list(
        self,
        *conditions: ColumnElement[bool],
        limit: int = DEFAULT_PAGE_SIZE,
        offset: int = 0,
    ) -> Sequence[T]:
        """Rows of this workspace matching ``conditions``, newest first."""
        query = (
            self._select()
            .where(*conditions)
            .order_by(self.model.created_at.desc(), self.model.id.desc())
            .limit(limit)
            .offset(offset)
        )
        return self.session.scalars(query).all()

    def count(self, *conditions: ColumnElement[bool]) -> int:
        """How many rows of this workspace match ``conditions``."""
        query = (
            select(func.count())
            .select_from(self.model)
            .where(self.model.workspace_id == self.workspace_id, *conditions)
        )
        return int(self.session.scalar(query) or 0)


class ApiKeyRepository(ScopedRepository[ApiKey]):
    model = ApiKey

    def active(self) -> Sequence[ApiKey]:
        """Keys of this workspace that are not revoked, newest first."""
        return self.list(ApiKey.revoked_at.is_(None), limit=10_000)


class DatasetRepository(ScopedRepository[Dataset]):
    model = Dataset


class FitRepository(ScopedRepository[Fit]):
    model = Fit


class JobRepository(ScopedRepository[Job]):
    model = Job


class BusinessCaseRepository(ScopedRepository[BusinessCase]):
    model = BusinessCase


class ShareTokenRepository(ScopedRepository[ShareToken]):
    model = ShareToken


class ApiKeyLookup:
    """Finds the key a request presents, whatever its workspace (authentication only)."""

    def __init__(self, session: Session) -> None:
        self.session = session

    def by_hash(self, key_hash: str) -> ApiKey | None:
        return self.session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


class JobQueue:
    """The worker's cross-workspace view of the ``jobs`` table.

    State changes are conditional updates (``... WHERE status = 'running'``), so two worker
    threads, or two processes sharing the database, never both claim or finish one job, and a
    job cancelled while running is not overwritten by the worker finishing it.
    """

    def __init__(self, session: Session) -> None:
        self.session = session

    def queued_ids(self, limit: int) -> Sequence[str]:
        """Ids of the oldest queued jobs."""
        query = (
            select(Job.id)
            .where(Job.status == "queued")
            .order_by(Job.created_at, Job.id)
            .limit(limit)
        )
        return self.session.scalars(query).all()

    def claim(self, job_id: str, now: datetime) -> bool:
        """Mark a queued job running; False when another thread or process got it first."""
        return self._transition(
            job_id,
            "queued",
            status="running",
            started_at=now,
            heartbeat_at=now,
            progress=0.0,
            stage="started",
        )

    def get(self, job_id: str) -> Job | None:
        return _get_by_id(self.session, Job, job_id)

    def report(self, job_id: str, progress: float, stage: str, now: datetime) -> bool:
        """Record progress of a running job; False when it is no longer running (cancelled)."""
        return self._transition(job_id, "running", progress=progress, stage=stage, heartbeat_at=now)

    def finish(self, job_id: str, **values: Any) -> bool:
        """Move a running job to its final state (``values`` include ``status``)."""
        return self._transition(job_id, "running", **values)

    def heartbeat(self, job_ids: Sequence[str], now: datetime) -> None:
        """Refresh ``heartbeat_at`` of the given running jobs."""
        if job_ids:
            self.session.execute(
                update(Job)
                .where(Job.id.in_(job_ids), Job.status == "running")
                .values(heartbeat_at=now)
            )

    def fail_stale(
        self, stale_before: datetime, error: dict[str, Any], now: datetime
    ) -> Sequence[Job]:
        """Fail running jobs whose heartbeat is older than ``stale_before``; returns them."""
        return self.session.scalars(
            update(Job)
            .where(
                Job.status == "running",
                (Job.heartbeat_at.is_(None)) | (Job.heartbeat_at < stale_before),
            )
            .values(status="failed", error=error, finished_at=now, stage="interrupted")
            .returning(Job)
        ).all()

    def _transition(self, job_id: str, from_status: str, **values: Any) -> bool:
        result = self.session.execute(
            update(Job).where(Job.id == job_id, Job.status == from_status).values(**values)
        )
        return bool(getattr(result, "rowcount", 0))
