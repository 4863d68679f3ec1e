"""Database engine and sessions (SQLAlchemy 2, synchronous).

SQLite (the default) is opened in WAL mode with foreign keys enforced and a busy timeout, so the
request threads and the job worker threads can share one file. PostgreSQL is reached through
psycopg 3: ``postgres://`` and ``postgresql://`` URLs (which SQLAlchemy would send to the
absent psycopg2) are read as ``postgresql+psycopg://``.

JSON columns are written as strict JSON (RFC 8259) on every backend: NaN and infinities are
refused when a row is written. PostgreSQL's ``json`` type refuses them too, so a value SQLite
would have stored as the non-standard token ``NaN`` fails the same way on both.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker

SQLITE_BUSY_TIMEOUT_MS = 10_000
POSTGRES_DRIVER_SCHEME = "postgresql+psycopg"
_BARE_POSTGRES_SCHEMES = ("postgres", "postgresql")

json_serializer = functools.partial(json.dumps, allow_nan=False)


def normalize_url(url: str) -> str:
    """``url`` with a bare PostgreSQL scheme (``postgres://``, ``postgresql://``) given the
    psycopg 3 driver; any other URL unchanged."""
    scheme, separator, rest = url.partition("://")
    if separator and scheme in _BARE_POSTGRES_SCHEMES:
        return f"{POSTGRES_DRIVER_SCHEME}://{rest}"
    return url


def _is_sqlite(url: str) -> bool:
    return url.startswith("sqlite")


def _configure_sqlite_connection(dbapi_connection: Any, _record: Any) -> None:
    """Per-connection pragmas: WAL journal, enforced foreign keys, wait instead of failing."""
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


def make_engine(url: str) -> Engine:
    """Create the engine for ``url``; SQLite connections get the pragmas above."""
    url = normalize_url(url)
    if _is_sqlite(url):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": SQLITE_BUSY_TIMEOUT_MS / 1000},
            json_serializer=json_serializer,
        )
        event.listen(engine, "connect", _configure_sqlite_connection)
        return engine
    return create_engine(url, pool_pre_ping=True, json_serializer=json_serializer)


class Database:
    """An engine and its session factory; one per application instance."""

    def __init__(self, url: str) -> None:
        self.url = normalize_url(url)
        self.engine = make_engine(self.url)
        self.session_factory = sessionmaker(self.engine, expire_on_commit=False)

    @contextmanager
    def session(self) -> Iterator[Session]:
        """A unit of work: committed when the block ends normally, rolled back otherwise."""
        with self.session_factory() as session:
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise

    def dispose(self) -> None:
        """Close every pooled connection (at application shutdown)."""
        self.engine.dispose()
