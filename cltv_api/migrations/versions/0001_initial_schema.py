"""Initial schema: workspaces, API keys, datasets, fits, jobs, business cases, share tokens.

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ID = sa.String(length=40)
TIMESTAMP = sa.DateTime(timezone=True)


def _id() -> sa.Column[str]:
    return sa.Column("id", ID, nullable=False)


def _workspace_id() -> sa.Column[str]:
    return sa.Column("workspace_id", ID, nullable=False)


def _timestamp(name: str, *, nullable: bool = True) -> sa.Column[object]:
    return sa.Column(name, TIMESTAMP, nullable=nullable)


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def _pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{table}"))


def upgrade() -> None:
    op.create_table(
        "workspaces",
        _id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        _timestamp("created_at", nullable=False),
        _pk("workspaces"),
    )
    op.create_table(
        "api_keys",
        _id(),
        _workspace_id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        sa.Column("key_hash", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.JSON(), nullable=False),
        _timestamp("revoked_at"),
        _timestamp("last_used_at"),
        _timestamp("created_at", nullable=False),
        _workspace_fk("api_keys"),
        _pk("api_keys"),
        sa.UniqueConstraint("key_hash", name=op.f("uq_api_keys_key_hash")),
    )
    op.create_index("ix_api_keys_workspace_created", "api_keys", ["workspace_id", "created_at"])

    op.create_table(
        "datasets",
        _id(),
        _workspace_id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=True),
        sa.Column("path", sa.String(length=1024), nullable=True),
        sa.Column("format", sa.JSON(), nullable=True),
        sa.Column("stats", sa.JSON(), nullable=True),
        sa.Column("report", sa.JSON(), nullable=True),
        _timestamp("deleted_at"),
        _timestamp("created_at", nullable=False),
        _workspace_fk("datasets"),
        _pk("datasets"),
    )
    op.create_index("ix_datasets_workspace_created", "datasets", ["workspace_id", "created_at"])

    op.create_table(
        "fits",
        _id(),
        _workspace_id(),
        sa.Column("dataset_id", ID, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("request", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        _timestamp("finished_at"),
        _timestamp("created_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["dataset_id"],
            ["datasets.id"],
            name=op.f("fk_fits_dataset_id_datasets"),
            ondelete="CASCADE",
        ),
        _workspace_fk("fits"),
        _pk("fits"),
    )
    op.create_index(op.f("ix_fits_dataset_id"), "fits", ["dataset_id"])
    op.create_index("ix_fits_workspace_created", "fits", ["workspace_id", "created_at"])

    op.create_table(
        "jobs",
        _id(),
        _workspace_id(),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("progress", sa.Float(), nullable=False),
        sa.Column("stage", sa.String(length=200), nullable=True),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result_ref", sa.String(length=1024), nullable=True),
        sa.Column("error", sa.JSON(), nullable=True),
        _timestamp("started_at"),
        _timestamp("finished_at"),
        _timestamp("heartbeat_at"),
        _timestamp("created_at", nullable=False),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'succeeded', 'failed', 'cancelled')",
            name=op.f("ck_jobs_status"),
        ),
        sa.CheckConstraint("progress >= 0 AND progress <= 1", name=op.f("ck_jobs_progress")),
        _workspace_fk("jobs"),
        _pk("jobs"),
    )
    op.create_index("ix_jobs_status_created", "jobs", ["status", "created_at"])
    op.create_index("ix_jobs_workspace_created", "jobs", ["workspace_id", "created_at"])

    op.create_table(
        "business_cases",
        _id(),
        _workspace_id(),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("result", sa.JSON(), nullable=True),
        _timestamp("created_at", nullable=False),
        _workspace_fk("business_cases"),
        _pk("business_cases"),
        sa.UniqueConstraint(
            "workspace_id", "name", "version", name="uq_business_cases_name_version"
        ),
    )

    op.create_table(
        "share_tokens",
        _id(),
        _workspace_id(),
        sa.Column("resource_type", sa.String(length=40), nullable=False),
        sa.Column("resource_id", ID, nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=32), nullable=False),
        _timestamp("expires_at"),
        _timestamp("revoked_at"),
        _timestamp("created_at", nullable=False),
        _workspace_fk("share_tokens"),
        _pk("share_tokens"),
        sa.UniqueConstraint("token_hash", name=op.f("uq_share_tokens_token_hash")),
    )
    op.create_index(
        "ix_share_tokens_resource",
        "share_tokens",
        ["workspace_id", "resource_type", "resource_id"],
    )


def downgrade() -> None:
    for table in ("share_tokens", "business_cases", "jobs", "fits", "datasets", "api_keys"):
        op.drop_table(table)  # indexes go with their table
    op.drop_table("workspaces")
