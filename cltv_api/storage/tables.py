"""ORM models of the metadata database (SQLAlchemy 2 typed declarative mapping).

Only portable types are used (strings, integers, floats, timezone-aware timestamps, the generic
``JSON`` type), so the same models and migrations run on SQLite and PostgreSQL. Where the two
differ, the column types make SQLite behave like PostgreSQL: strings longer than their column
are refused (:class:`BoundedString`; SQLite would store them) and timestamps come back aware
in UTC (:class:`UTCDateTime`; SQLite has no time zones). Every table but
``workspaces`` carries ``workspace_id``; the repositories always filter on it.

Identifiers are opaque strings ``<prefix>_<20 random base-36 characters>`` (about 103 bits from
:mod:`secrets`), e.g. ``job_3k9x0q...``; the prefix says what the id names.
"""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    DateTime,
    Dialect,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeEngine

ID_ALPHABET = string.digits + string.ascii_lowercase
ID_RANDOM_CHARS = 20
ID_LENGTH = 40

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

JOB_STATUSES = ("queued", "running", "succeeded", "failed", "cancelled")
SCOPES = ("read", "write", "admin")


def new_id(prefix: str) -> str:
    """A fresh opaque identifier such as ``ds_0m3k...`` (prefix, underscore, random base-36)."""
    return f"{prefix}_" + "".join(secrets.choice(ID_ALPHABET) for _ in range(ID_RANDOM_CHARS))


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware timestamp stored in UTC.

    SQLite has no time zones and hands back naive values; this type converts on the way in and
    marks values read back as UTC, so callers always see aware datetimes on every backend.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given for a UTC timestamp column")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class BoundedString(TypeDecorator[str]):
    """``VARCHAR(length)`` that refuses longer values on every backend.

    PostgreSQL raises "value too long" for them; SQLite ignores the length and would store
    them, so code that passes on SQLite could fail on PostgreSQL. The check here makes both
    fail alike, before the statement is sent. ``length`` counts characters, as PostgreSQL
    does. Values compared with the column are not checked: a lookup by a longer id someone
    typed simply matches nothing, as on PostgreSQL. (``Session.get`` binds the column's own
    type, so the repositories answer None for too long ids before calling it.)
    """

    impl = String
    cache_ok = True

    def __init__(self, length: int) -> None:
        super().__init__(length)
        self.max_chars = length

    def process_bind_param(self, value: str | None, dialect: Dialect) -> str | None:
        if value is not None and len(value) > self.max_chars:
            raise ValueError(
                f"a string of {len(value)} characters given for a column of at most "
                f"{self.max_chars}"
            )
        return value

    def coerce_compared_value(self, op: Any, value: Any) -> TypeEngine[Any]:
        """Comparisons bind the plain ``VARCHAR`` (no length check, see above)."""
        return self.impl_instance


def _id_column(prefix: str) -> Mapped[str]:
    return mapped_column(
        BoundedString(ID_LENGTH), primary_key=True, default=lambda: new_id(prefix), sort_order=-10
    )


def _created_at() -> Mapped[datetime]:
    return mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Base(DeclarativeBase):
    """Declarative base with a constraint naming convention (stable names for migrations)."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: dict[Any, Any] = {  # noqa: RUF012 - SQLAlchemy reads a class attribute
        datetime: UTCDateTime(),
        dict[str, Any]: JSON(),
        list[Any]: JSON(),
        list[str]: JSON(),
    }


class WorkspaceOwned:
    """Columns of every table whose rows belong to one workspace (deleted with it)."""

    if TYPE_CHECKING:
        id: Mapped[str]

    workspace_id: Mapped[str] = mapped_column(
        BoundedString(ID_LENGTH),
        ForeignKey("workspaces.id", ondelete="CASCADE"),
        nullable=False,
        sort_order=-5,
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), nullable=False, default=utcnow)


class Workspace(Base):
    """A tenant: every other row belongs to exactly one workspace."""

    __tablename__ = "workspaces"

    id: Mapped[str] = _id_column("ws")
    name: Mapped[str] = mapped_column(BoundedString(200), nullable=False)
    created_at: Mapped[datetime] = _created_at()


class ApiKey(WorkspaceOwned, Base):
    """An API key of a workspace. Only the SHA-256 hex digest of the key is stored."""

    __tablename__ = "api_keys"
    __table_args__ = (Index("ix_api_keys_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[str] = _id_column("key")
    name: Mapped[str] = mapped_column(BoundedString(200), nullable=False, default="")
    prefix: Mapped[str] = mapped_column(BoundedString(32), nullable=False)
    key_hash: Mapped[str] = mapped_column(BoundedString(64), nullable=False, unique=True)
    scopes: Mapped[list[str]] = mapped_column(nullable=False)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_used_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Dataset(WorkspaceOwned, Base):
    """An uploaded (or derived) data set: the file on disk plus what ingestion learned about it."""

    __tablename__ = "datasets"
    __table_args__ = (Index("ix_datasets_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[str] = _id_column("ds")
    name: Mapped[str] = mapped_column(BoundedString(200), nullable=False)
    kind: Mapped[str] = mapped_column(BoundedString(40), nullable=False)
    status: Mapped[str] = mapped_column(BoundedString(20), nullable=False)
    sha256: Mapped[str | None] = mapped_column(BoundedString(64), nullable=True)
    path: Mapped[str | None] = mapped_column(BoundedString(1024), nullable=True)
    format: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    stats: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    report: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Fit(WorkspaceOwned, Base):
    """A model fit on a data set: the request as given and the fitted result."""

    __tablename__ = "fits"
    __table_args__ = (Index("ix_fits_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[str] = _id_column("fit")
    dataset_id: Mapped[str] = mapped_column(
        BoundedString(ID_LENGTH),
        ForeignKey("datasets.id", ondelete="CASCADE"),
        nullable=False,
        index=True,
    )
    status: Mapped[str] = mapped_column(BoundedString(20), nullable=False)
    request: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)


class Job(WorkspaceOwned, Base):
    """A background job; ``status`` is one of :data:`JOB_STATUSES`."""

    __tablename__ = "jobs"
    __table_args__ = (
        Index("ix_jobs_workspace_created", "workspace_id", "created_at"),
        Index("ix_jobs_status_created", "status", "created_at"),
        CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')", name="status"
        ),
        CheckConstraint("progress >= 0 AND progress <= 1", name="progress"),
    )

    id: Mapped[str] = _id_column("job")
    kind: Mapped[str] = mapped_column(BoundedString(40), nullable=False)
    status: Mapped[str] = mapped_column(BoundedString(20), nullable=False, default="queued")
    progress: Mapped[float] = mapped_column(Float(), nullable=False, default=0.0)
    stage: Mapped[str | None] = mapped_column(BoundedString(200), nullable=True)
    payload: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    result_ref: Mapped[str | None] = mapped_column(BoundedString(1024), nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)


class RetentionFit(WorkspaceOwned, Base):
    """An sBG fit on contractual survivor counts (cohorts given in the request, per-customer
    start/end dates, or a contractual data set): the request as given and the fitted result."""

    __tablename__ = "retention_fits"
    __table_args__ = (Index("ix_retention_fits_workspace_created", "workspace_id", "created_at"),)

    id: Mapped[str] = _id_column("rfit")
    name: Mapped[str] = mapped_column(BoundedString(200), nullable=False, default="")
    request: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    result: Mapped[dict[str, Any]] = mapped_column(nullable=False)


class BusinessCase(WorkspaceOwned, Base):
    """A versioned CX business case: the inputs (payload) and the computed result."""

    __tablename__ = "business_cases"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", "version", name="uq_business_cases_name_version"),
    )

    id: Mapped[str] = _id_column("bc")
    name: Mapped[str] = mapped_column(BoundedString(200), nullable=False)
    version: Mapped[int] = mapped_column(Integer(), nullable=False, default=1)
    payload: Mapped[dict[str, Any]] = mapped_column(nullable=False)
    result: Mapped[dict[str, Any] | None] = mapped_column(nullable=True)


class ShareToken(WorkspaceOwned, Base):
    """A read-only link to one resource; only the SHA-256 hex digest of the token is stored."""

    __tablename__ = "share_tokens"
    __table_args__ = (
        Index("ix_share_tokens_resource", "workspace_id", "resource_type", "resource_id"),
    )

    id: Mapped[str] = _id_column("shr")
    resource_type: Mapped[str] = mapped_column(BoundedString(40), nullable=False)
    resource_id: Mapped[str] = mapped_column(BoundedString(ID_LENGTH), nullable=False)
    token_hash: Mapped[str] = mapped_column(BoundedString(64), nullable=False, unique=True)
    prefix: Mapped[str] = mapped_column(BoundedString(32), nullable=False)
    expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    revoked_at: Mapped[datetime | None] = mapped_column(nullable=True)
