"""Fixtures of the PostgreSQL tests: one throwaway cluster per test session, a database per
test module (``pg_url``) or per test (``fresh_pg_url``).

Every test module here carries ``pytest.mark.xdist_group("postgres")``, so under
``pytest -n 2 --dist loadgroup`` one worker runs them all and only that worker starts a cluster.
The cluster is stopped and its directory deleted when the session ends, failures included.
Without the server binaries the tests are skipped with a hint (``make system-deps``).
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from tests.cltv_api.postgres.cluster import PostgresCluster, missing_reason

# Databases are created with a non-UTC session time zone (UTC-03:30, a half-hour offset) so a
# test would notice any timestamp read back in the server's zone instead of UTC.
DATABASE_TIMEZONE = "America/St_Johns"

_database_numbers = itertools.count(1)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A running PostgreSQL 15 server on 127.0.0.1 (trust authentication, fsync off)."""
    reason = missing_reason()
    if reason is not None:
        pytest.skip(reason)
    cluster = PostgresCluster.create()
    try:
        yield cluster
    finally:
        cluster.destroy()


def _database_name(label: str) -> str:
    """A unique, valid database name derived from a module or test name."""
    slug = re.sub(r"[^a-z0-9_]+", "_", label.lower()).strip("_")
    return f"t{next(_database_numbers)}_{slug}"[:63]


def _database(cluster: PostgresCluster, label: str) -> Iterator[str]:
    name = _database_name(label)
    url = cluster.create_database(name, timezone=DATABASE_TIMEZONE)
    try:
        yield url
    finally:
        cluster.drop_database(name)


@pytest.fixture(scope="module")
def pg_url(pg_cluster: PostgresCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLAlchemy URL (``postgresql+psycopg://``) of an empty database shared by one module."""
    yield from _database(pg_cluster, request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture
def fresh_pg_url(pg_cluster: PostgresCluster, request: pytest.FixtureRequest) -> Iterator[str]:
    """SQLAlchemy URL of an empty database of this test alone."""
    yield from _database(pg_cluster, request.node.name)
