"""A throwaway PostgreSQL 15 cluster for tests: initdb in a temporary directory, started with
``pg_ctl`` on a free port of 127.0.0.1, trust authentication, durability switched off.

The tests run as root in CI, and PostgreSQL refuses to run as root: the cluster's files then
belong to the ``postgres`` system user and every server command runs through
``runuser -u postgres --``. Run as an ordinary user, the commands run directly.

The server is stopped and its directory deleted by :meth:`PostgresCluster.destroy` (the pytest
fixture's teardown, failures included) or, as a fallback, when the interpreter exits. A test
process killed outright (SIGKILL, SIGTERM) leaves its server running: the next
:meth:`PostgresCluster.create` stops and deletes every cluster whose owning process is gone.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql

from tests.cltv_api.service.conftest import free_port

PG_BIN = Path(os.environ.get("CLTV_TEST_PG_BIN", "/usr/lib/postgresql/15/bin"))
SERVER_USER = "postgres"  # the system account that runs the server when we are root
SUPERUSER = "postgres"  # the database superuser initdb creates (trust authentication)
START_TIMEOUT_S = 60
START_ATTEMPTS = 3  # a free port can be taken between probing and binding it
ROOT_PREFIX = "cltv-pg-"
OWNER_FILE = "owner.pid"  # the id of the process that created the cluster

# Durability is pointless for a cluster deleted after the tests; these make DDL-heavy tests fast.
FAST_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "max_connections": "100",
    "shared_buffers": "32MB",
}


class ClusterUnavailable(RuntimeError):
    """The PostgreSQL server binaries (or the account to run them) are missing."""


def missing_reason(bin_dir: Path = PG_BIN) -> str | None:
    """Why a cluster cannot be started here, or None when it can."""
    hint = "install the PostgreSQL 15 server with `make system-deps`"
    for program in ("initdb", "pg_ctl", "postgres"):
        if not (bin_dir / program).is_file():
            return f"no PostgreSQL server binaries in {bin_dir} ({program} missing): {hint}"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam(SERVER_USER)
        except KeyError:
            return f"running as root but there is no '{SERVER_USER}' system user: {hint}"
        if shutil.which("runuser") is None:
            return "running as root but `runuser` (util-linux) is missing"
    return None


@dataclass
class PostgresCluster:
    """One server process and its data directory, both inside ``root``."""

    root: Path
    bin_dir: Path = PG_BIN
    port: int = 0

    @property
    def data_dir(self) -> Path:
        return self.root / "data"

    @property
    def log_path(self) -> Path:
        return self.root / "server.log"

    @property
    def socket_dir(self) -> Path:
        return self.root

    # --- life cycle ----------------------------------------------------------------------------

    @classmethod
    def create(cls, bin_dir: Path = PG_BIN) -> PostgresCluster:
        """initdb a new cluster in a fresh temporary directory and start it."""
        reason = missing_reason(bin_dir)
        if reason is not None:
            raise ClusterUnavailable(reason)
        remove_orphans(bin_dir)
        # Not pytest's tmp_path: that lies below a root-only directory the server cannot enter.
        root = Path(tempfile.mkdtemp(prefix=ROOT_PREFIX))
        (root / OWNER_FILE).write_text(str(os.getpid()))
        cluster = cls(root=root, bin_dir=bin_dir)
        atexit.register(cluster.destroy)
        try:
            cluster._chown(root)
            cluster._initdb()
            cluster._start()
        except BaseException:
            cluster.destroy()
            raise
        return cluster

    def destroy(self) -> None:
        """Stop the server (immediately: nothing needs to survive) and delete every file.
        Idempotent."""
        try:
            if (self.data_dir / "postmaster.pid").exists():
                self._run(
                    self.bin_dir / "pg_ctl", "stop", "-D", str(self.data_dir),
                    "-m", "immediate", "-w", "-t", str(START_TIMEOUT_S),
                    check=False,
                )  # fmt: skip
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _initdb(self) -> None:
        self._run(
            self.bin_dir / "initdb", "-D", str(self.data_dir), "-U", SUPERUSER,
            "--auth=trust", "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync", "--no-instructions",
        )  # fmt: skip

    def _start(self) -> None:
        for attempt in range(1, START_ATTEMPTS + 1):
            self.port = free_port()
            self._write_settings()
            started = self._run(
                self.bin_dir / "pg_ctl", "start", "-D", str(self.data_dir),
                "-l", str(self.log_path), "-w", "-t", str(START_TIMEOUT_S),
                check=False,
            )  # fmt: skip
            if started.returncode == 0:
                return
            if attempt == START_ATTEMPTS:
                raise RuntimeError(
                    f"pg_ctl start failed ({started.returncode}): {started.stdout}\n"
                    f"{self.server_log()}"
                )

    def _write_settings(self) -> None:
        settings = {
            **FAST_SETTINGS,
            "port": str(self.port),
            "listen_addresses": "'127.0.0.1'",
            "unix_socket_directories": f"'{self.socket_dir}'",
        }
        lines = "".join(f"{name} = {value}\n" for name, value in settings.items())
        # postgresql.auto.conf is read last, so a rewrite (next start attempt) wins cleanly
        (self.data_dir / "postgresql.auto.conf").write_text(lines)

    # --- databases -----------------------------------------------------------------------------

    def url(self, database: str, driver: str = "postgresql+psycopg") -> str:
        """A URL of ``database`` over TCP: ``postgresql+psycopg://`` for SQLAlchemy by default,
        ``postgres`` for Ibis."""
        return f"{driver}://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def connect(self, database: str = "postgres") -> psycopg.Connection[tuple[object, ...]]:
        """A psycopg connection in autocommit mode (CREATE/DROP DATABASE need it)."""
        return psycopg.connect(
            host="127.0.0.1", port=self.port, user=SUPERUSER, dbname=database, autocommit=True
        )

    def create_database(self, name: str, timezone: str | None = None) -> str:
        """Create an empty database (sessions in ``timezone`` if given); returns its URL."""
        if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
            raise ValueError(f"not a plain database name: {name!r}")
        database = sql.Identifier(name)
        with self.connect() as connection:
            connection.execute(sql.SQL("CREATE DATABASE {}").format(database))
            if timezone is not None:
                connection.execute(
                    sql.SQL("ALTER DATABASE {} SET timezone TO {}").format(
                        database, sql.Literal(timezone)
                    )
                )
        return self.url(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, closing connections a test left open."""
        with self.connect() as connection:
            connection.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )

    def server_log(self) -> str:
        with contextlib.suppress(OSError):
            return self.log_path.read_text(errors="replace")
        return ""

    # --- running server commands ---------------------------------------------------------------

    def _chown(self, path: Path) -> None:
        if os.geteuid() == 0:
            account = pwd.getpwnam(SERVER_USER)
            os.chown(path, account.pw_uid, account.pw_gid)
        path.chmod(0o700)

    def _run(
        self, program: Path, *args: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(program), *args]
        if os.geteuid() == 0:
            command = ["runuser", "-u", SERVER_USER, "--", *command]
        result = subprocess.run(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=self.root,
            timeout=START_TIMEOUT_S + 30,
            check=False,
        )
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({result.returncode}):\n{result.stdout}"
            )
        return result


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        return True
    return True


def remove_orphans(bin_dir: Path = PG_BIN) -> list[Path]:
    """Stop and delete the clusters left by test processes that no longer exist."""
    removed = []
    for root in Path(tempfile.gettempdir()).glob(f"{ROOT_PREFIX}*"):
        try:
            owner = int((root / OWNER_FILE).read_text())
        except (OSError, ValueError):
            continue  # not ours, or still being created
        if not _process_alive(owner):
            PostgresCluster(root=root, bin_dir=bin_dir).destroy()
            removed.append(root)
    return removed
