"""Run the Alembic migrations from Python (no ``alembic.ini`` on the path needed).

The migration scripts ship inside the package (``cltv_api/migrations``), so an installed wheel
can create or upgrade its database at start-up.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, func, select

from cltv_api.storage.db import Database

MIGRATIONS_DIR = Path(__file__).resolve().parent.parent / "migrations"
# Key of the PostgreSQL advisory lock held while migrating: any fixed 64-bit number that no other
# application sharing the database uses (this one spells "cltv" in ASCII, 0x636c7476).
POSTGRES_MIGRATION_LOCK = 0x636C7476


def alembic_config(url: str) -> Config:
    """An Alembic configuration pointing at the packaged migrations and ``url``."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    config.attributes["configure_logger"] = False
    return config


def head_revisions(url: str = "sqlite://") -> tuple[str, ...]:
    """The head revision(s) of the packaged migration scripts."""
    return tuple(ScriptDirectory.from_config(alembic_config(url)).get_heads())


@dataclass(frozen=True)
class SchemaStatus:
    """Where the database stands relative to the migration scripts."""

    current: tuple[str, ...]
    head: tuple[str, ...]

    @property
    def at_head(self) -> bool:
        return set(self.current) == set(self.head)


def schema_status(db: Database) -> SchemaStatus:
    """The revision(s) the database is at, and the head of the scripts."""
    with db.engine.connect() as connection:
        current = MigrationContext.configure(connection).get_current_heads()
    return SchemaStatus(current=tuple(current), head=head_revisions(db.url))


@contextlib.contextmanager
def _process_lock(lock_path: Path | None) -> Iterator[None]:
    """Serialise migrations between processes sharing a data directory (POSIX ``flock``)."""
    if lock_path is None:
        yield
        return
    try:
        import fcntl  # noqa: PLC0415 - POSIX only; elsewhere one process is assumed
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _database_lock(connection: Connection) -> None:
    """On PostgreSQL, wait for the migration lock, held until this transaction ends.

    The file lock serialises only processes that see the same lock file (``flock`` across
    machines, e.g. on a network file system, is not reliable), and without a lock two processes
    starting on an empty database both create the tables: the second fails with "relation
    already exists". SQLite needs nothing more: its database is a file of the data directory,
    and a writer locks the whole file.
    """
    if connection.dialect.name == "postgresql":
        connection.execute(select(func.pg_advisory_xact_lock(POSTGRES_MIGRATION_LOCK)))


def upgrade_to_head(db: Database, lock_path: Path | None = None) -> SchemaStatus:
    """Apply every pending migration (idempotent) and return the resulting status.

    ``lock_path`` (a file in the data directory) makes concurrent start-ups of several worker
    processes wait for each other instead of racing to create the same tables; on PostgreSQL
    an advisory lock in the database does the same for processes on different machines.
    """
    with _process_lock(lock_path), db.engine.begin() as connection:
        _database_lock(connection)
        config = alembic_config(db.url)
        config.attributes["connection"] = connection
        command.upgrade(config, "head")
    return schema_status(db)
