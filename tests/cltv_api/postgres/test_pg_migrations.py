"""The migrations and the schema on PostgreSQL: the storage tests written for SQLite
(tests/cltv_api/service/test_storage.py) run again here on a real PostgreSQL 15 database."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from cltv_api.storage.db import Database
from cltv_api.storage.migrate import upgrade_to_head
from tests.cltv_api.service import test_storage as on_sqlite

pytestmark = pytest.mark.xdist_group("postgres")


@pytest.fixture
def empty_db(fresh_pg_url: str) -> Iterator[Database]:
    db = Database(fresh_pg_url)
    yield db
    db.dispose()


@pytest.fixture
def migrated_db(empty_db: Database) -> Database:
    upgrade_to_head(empty_db)
    return empty_db


def test_migrations_create_the_schema_from_an_empty_database(empty_db: Database) -> None:
    on_sqlite.test_migrations_create_the_schema_from_an_empty_database(empty_db)


def test_migration_head_matches_the_orm_models(migrated_db: Database) -> None:
    on_sqlite.test_migration_head_matches_the_orm_models(migrated_db)


def test_the_schema_comparison_would_notice_a_drift(migrated_db: Database) -> None:
    on_sqlite.test_the_schema_comparison_would_notice_a_drift(migrated_db)


def test_downgrade_to_base_and_back(migrated_db: Database) -> None:
    on_sqlite.test_downgrade_to_base_and_back(migrated_db)


def test_foreign_keys_and_checks_are_enforced_and_deleting_a_workspace_cascades(
    migrated_db: Database,
) -> None:
    on_sqlite.test_foreign_keys_and_checks_are_enforced_and_deleting_a_workspace_cascades(
        migrated_db
    )


def test_repositories_only_see_their_workspace(migrated_db: Database) -> None:
    on_sqlite.test_repositories_only_see_their_workspace(migrated_db)


def test_timestamps_come_back_as_aware_utc(migrated_db: Database) -> None:
    on_sqlite.test_timestamps_come_back_as_aware_utc(migrated_db)
