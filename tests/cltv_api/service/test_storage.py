"""Storage: migrations from an empty database, ORM/migration agreement, SQLite settings,
portability to PostgreSQL, workspace scoping of repositories, ids and timestamps."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.exc import IntegrityError, StatementError
from sqlalchemy.schema import CreateIndex, CreateTable

from cltv_api.storage.db import Database
from cltv_api.storage.migrate import (
    MIGRATIONS_DIR,
    alembic_config,
    head_revisions,
    schema_status,
    upgrade_to_head,
)
from cltv_api.storage.repositories import JobRepository, WorkspaceRepository
from cltv_api.storage.tables import Base, Job, Workspace, new_id

TABLES = {
    "workspaces",
    "api_keys",
    "datasets",
    "fits",
    "jobs",
    "business_cases",
    "share_tokens",
    "retention_fits",
}


@pytest.fixture
def empty_db(tmp_path: Path) -> Iterator[Database]:
    db = Database(f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    yield db
    db.dispose()


@pytest.fixture
def migrated_db(empty_db: Database) -> Database:
    upgrade_to_head(empty_db)
    return empty_db


def _diff(db: Database, metadata: sa.MetaData) -> list[Any]:
    with db.engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "compare_server_default": True}
        )
        return list(compare_metadata(context, metadata))


def _operations(diff: list[Any]) -> list[str]:
    """Names of the operations in an autogenerate diff (modifications come grouped in lists)."""
    names: list[str] = []
    for entry in diff:
        group = entry if isinstance(entry, list) else [entry]
        names.extend(str(operation[0]) for operation in group)
    return sorted(names)


def test_migrations_create_the_schema_from_an_empty_database(empty_db: Database) -> None:
    assert sa.inspect(empty_db.engine).get_table_names() == []
    status = upgrade_to_head(empty_db)
    assert status.current == head_revisions() == ("0002",)
    assert set(sa.inspect(empty_db.engine).get_table_names()) == TABLES | {"alembic_version"}
    # idempotent: a second start-up changes nothing
    assert upgrade_to_head(empty_db).at_head


def test_migration_head_matches_the_orm_models(migrated_db: Database) -> None:
    assert _diff(migrated_db, Base.metadata) == []


def test_the_schema_comparison_would_notice_a_drift(migrated_db: Database) -> None:
    # Guards the test above: a model with one more column (or a changed type) is a difference.
    drifted = sa.MetaData()
    for table in Base.metadata.tables.values():
        table.to_metadata(drifted)
    drifted.tables["jobs"].append_column(sa.Column("priority", sa.Integer(), nullable=True))
    drifted.tables["workspaces"].c.name.type = sa.String(length=300)
    assert _operations(_diff(migrated_db, drifted)) == ["add_column", "modify_type"]


def test_downgrade_to_base_and_back(migrated_db: Database) -> None:
    config = alembic_config(migrated_db.url)
    command.downgrade(config, "base")
    assert set(sa.inspect(migrated_db.engine).get_table_names()) == {"alembic_version"}
    assert schema_status(migrated_db).current == ()
    assert upgrade_to_head(migrated_db).at_head


def test_sqlite_connections_use_wal_foreign_keys_and_a_busy_timeout(migrated_db: Database) -> None:
    with migrated_db.engine.connect() as connection:
        values = {
            name: connection.exec_driver_sql(f"PRAGMA {name}").scalar()
            for name in ("journal_mode", "foreign_keys", "busy_timeout")
        }
    assert values == {"journal_mode": "wal", "foreign_keys": 1, "busy_timeout": 10_000}


def test_foreign_keys_and_checks_are_enforced_and_deleting_a_workspace_cascades(
    migrated_db: Database,
) -> None:
    with pytest.raises(IntegrityError), migrated_db.session() as session:
        session.add(Job(workspace_id="ws_missing", kind="fit", payload={}))
    with migrated_db.session() as session:
        workspace = WorkspaceRepository(session).add("w")
        JobRepository(session, workspace.id).add(Job(kind="fit", payload={}))
    with pytest.raises(IntegrityError), migrated_db.session() as session:
        JobRepository(session, workspace.id).add(Job(kind="fit", payload={}, status="sleeping"))
    with migrated_db.session() as session:
        session.delete(session.get(Workspace, workspace.id))
    with migrated_db.session() as session:
        assert session.scalar(sa.select(sa.func.count()).select_from(Job)) == 0


def test_postgresql_gets_portable_sql(tmp_path: Path) -> None:
    # Offline mode renders the migration for PostgreSQL without a server (no driver needed).
    config = alembic_config("postgresql://cltv@localhost/cltv")
    config.output_buffer = io.StringIO()
    command.upgrade(config, "head", sql=True)
    sql = config.output_buffer.getvalue()
    assert sql.count("CREATE TABLE") == len(TABLES) + 1  # + alembic_version
    assert "TIMESTAMP WITH TIME ZONE" in sql and "JSON" in sql
    assert "PRAGMA" not in sql and "AUTOINCREMENT" not in sql and "_alembic_tmp" not in sql
    # the ORM's own DDL compiles for PostgreSQL too, timestamps with their time zone
    dialect = PGDialect()  # type: ignore[no-untyped-call]
    statements: list[str] = []
    for table in Base.metadata.sorted_tables:
        statements.append(str(CreateTable(table).compile(dialect=dialect)))
        statements.extend(str(CreateIndex(i).compile(dialect=dialect)) for i in table.indexes)
    ddl = "\n".join(statements)
    assert ddl.count("CREATE TABLE") == len(TABLES)
    assert "created_at TIMESTAMP WITH TIME ZONE NOT NULL" in ddl


def test_repositories_only_see_their_workspace(migrated_db: Database) -> None:
    with migrated_db.session() as session:
        first = WorkspaceRepository(session).add("first").id
        second = WorkspaceRepository(session).add("second").id
        mine = JobRepository(session, first).add(Job(kind="fit", payload={"n": 1}))
        theirs = JobRepository(session, second).add(Job(kind="fit", payload={"n": 2}))
        # add() puts the row in the repository's workspace, whatever the caller set
        forced = JobRepository(session, first).add(Job(kind="fit", payload={}, workspace_id=second))
        repository = JobRepository(session, first)
        assert repository.get(mine.id) is mine
        assert repository.get(theirs.id) is None
        assert forced.workspace_id == first
        assert {job.id for job in repository.list()} == {mine.id, forced.id}
        assert repository.count() == 2 and JobRepository(session, second).count() == 1


def test_ids_are_prefixed_random_base36() -> None:
    ids = {new_id("job") for _ in range(500)}
    assert len(ids) == 500
    assert all(re.fullmatch(r"job_[0-9a-z]{20}", job_id) for job_id in ids)


def test_timestamps_come_back_as_aware_utc(migrated_db: Database) -> None:
    paris_noon = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=1)))
    with migrated_db.session() as session:
        workspace = Workspace(name="tz", created_at=paris_noon)
        session.add(workspace)
    with migrated_db.session_factory() as session:
        stored = session.get(Workspace, workspace.id)
        assert stored is not None
        # 12:00 at UTC+1 is 11:00 UTC
        assert stored.created_at == datetime(2026, 3, 1, 11, 0, tzinfo=UTC)
        assert stored.created_at.tzinfo is UTC
    with pytest.raises(StatementError, match="naive datetime"), migrated_db.session() as session:
        session.add(Workspace(name="naive", created_at=datetime(2026, 3, 1, 12, 0)))


def test_the_packaged_alembic_ini_works_for_the_command_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `alembic -c cltv_api/migrations/alembic.ini upgrade head` with only CLTV_DATA_DIR set:
    # script_location is relative to the ini file and the URL comes from the service settings.
    data_dir = tmp_path / "cli-data"
    monkeypatch.setenv("CLTV_DATA_DIR", str(data_dir))
    monkeypatch.delenv("CLTV_DATABASE_URL", raising=False)
    config = Config(str(MIGRATIONS_DIR / "alembic.ini"))
    config.attributes["configure_logger"] = False  # keep pytest's logging as it is
    command.upgrade(config, "head")
    db = Database(f"sqlite:///{data_dir / 'cltv.sqlite3'}")
    try:
        assert schema_status(db).at_head
        assert set(sa.inspect(db.engine).get_table_names()) == TABLES | {"alembic_version"}
    finally:
        db.dispose()
