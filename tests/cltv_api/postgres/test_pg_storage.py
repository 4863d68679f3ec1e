"""Repositories and storage services on PostgreSQL 15: keys, data sets, fits, the job queue's
claim and stale-job recovery, business case versions, share tokens and retention fits, plus the
rules that make SQLite behave like PostgreSQL (strict JSON, string lengths, bare URLs)."""

from __future__ import annotations

import math
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, StatementError

from cltv_api.errors import Unauthorized
from cltv_api.services.business_cases import list_cases
from cltv_api.services.retention import RetentionFitRepository
from cltv_api.services.share import generate_token, resolve_token
from cltv_api.services.workspaces import (
    authenticate,
    create_workspace,
    hash_key,
    issue_key,
    rotate_key,
)
from cltv_api.services.workspaces import revoke_key as revoke_api_key
from cltv_api.storage.db import Database
from cltv_api.storage.migrate import POSTGRES_MIGRATION_LOCK, schema_status, upgrade_to_head
from cltv_api.storage.repositories import (
    BusinessCaseRepository,
    DatasetRepository,
    FitRepository,
    JobQueue,
    JobRepository,
    ShareTokenRepository,
    WorkspaceRepository,
)
from cltv_api.storage.tables import (
    ApiKey,
    BusinessCase,
    Dataset,
    Fit,
    Job,
    RetentionFit,
    ShareToken,
    utcnow,
)
from tests.cltv_api.postgres.cluster import PostgresCluster

pytestmark = pytest.mark.xdist_group("postgres")

REPO_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def db(pg_url: str) -> Iterator[Database]:
    """The module's migrated database; each test works in workspaces of its own."""
    database = Database(pg_url)
    upgrade_to_head(database)
    yield database
    database.dispose()


@pytest.fixture
def queue_db(fresh_pg_url: str) -> Iterator[Database]:
    """A migrated database of this test alone (the job queue is shared by all workspaces)."""
    database = Database(fresh_pg_url)
    upgrade_to_head(database)
    yield database
    database.dispose()


def new_workspace_id(db: Database, name: str = "w") -> str:
    with db.session() as session:
        return WorkspaceRepository(session).add(name).id


# --- workspaces and keys -------------------------------------------------------------------------


def test_keys_are_issued_found_by_hash_revoked_and_rotated(db: Database) -> None:
    with db.session() as session:
        workspace = create_workspace(session, "keys")
        first = issue_key(session, workspace.id, "first", ["write", "read"])
        admin = issue_key(session, workspace.id, "admin", ["admin", "read", "write"])
    with db.session() as session:
        principal = authenticate(session, first.plaintext)
        assert principal.workspace.id == workspace.id
        assert principal.api_key.scopes == ["read", "write"]  # JSON list, sorted by rank
        last_used = principal.api_key.last_used_at
        assert last_used is not None and last_used.tzinfo is UTC
        assert utcnow() - last_used < timedelta(minutes=1)
    with db.session() as session:
        revoke_api_key(session, workspace.id, first.api_key.id)
    with pytest.raises(Unauthorized, match="revoked"), db.session() as session:
        authenticate(session, first.plaintext)
    with db.session() as session:
        rotated = rotate_key(session, workspace.id, admin.api_key.id)
    with db.session() as session:
        assert authenticate(session, rotated.plaintext).api_key.scopes == ["read", "write", "admin"]
    with pytest.raises(Unauthorized), db.session() as session:
        authenticate(session, admin.plaintext)
    # the digest is unique across workspaces
    other = new_workspace_id(db, "other")
    with pytest.raises(IntegrityError), db.session() as session:
        session.add(
            ApiKey(
                workspace_id=other,
                prefix="x",
                key_hash=hash_key(rotated.plaintext),
                scopes=["read"],
            )
        )


# --- data sets and fits --------------------------------------------------------------------------


def test_dataset_and_fit_json_round_trips_exactly_and_deleting_the_dataset_deletes_its_fits(
    db: Database,
) -> None:
    workspace_id = new_workspace_id(db)
    # Values JSON must keep: non-ASCII text (Russian exports), shortest round-trip floats,
    # integers beyond 2**53 as integers, nesting, nulls.
    stats = {
        "segments": {"канал": ["Интернет", "Магазин"]},
        "amount_mean": 0.1 + 0.2,
        "rows": 2**60 + 1,
        "report": [{"row": 3, "value": None}],
    }
    with db.session() as session:
        dataset = DatasetRepository(session, workspace_id).add(
            Dataset(
                name="выгрузка.csv",
                kind="transactions",
                status="ready",
                sha256="ab" * 32,
                stats=stats,
                format={"delimiter": ";", "encoding": "cp1251"},
            )
        )
        fit = FitRepository(session, workspace_id).add(
            Fit(dataset_id=dataset.id, status="succeeded", request={"model": "bgnbd"})
        )
    with db.session_factory() as session:
        stored = DatasetRepository(session, workspace_id).get(dataset.id)
        assert stored is not None and stored.stats == stats and stored.name == "выгрузка.csv"
        assert stored.stats["amount_mean"] == 0.30000000000000004
        live = (Dataset.sha256 == "ab" * 32, Dataset.deleted_at.is_(None))
        assert DatasetRepository(session, workspace_id).count(*live) == 1
    with db.session() as session:
        row = DatasetRepository(session, workspace_id).get(dataset.id)
        session.delete(row)
    with db.session() as session:
        # ON DELETE CASCADE in the database: no ORM relationship is involved
        assert FitRepository(session, workspace_id).get(fit.id) is None


# --- the job queue -------------------------------------------------------------------------------


def _backend_pid(session: sa.orm.Session) -> int:
    return int(session.scalar(sa.select(sa.func.pg_backend_pid())) or 0)


def _wait_until_blocked(db: Database, pid: int, timeout: float = 10.0) -> None:
    """Wait until the server shows backend ``pid`` waiting for a row lock."""
    query = sa.text("SELECT wait_event_type FROM pg_stat_activity WHERE pid = :pid")
    deadline = time.monotonic() + timeout
    with db.engine.connect() as connection:
        while time.monotonic() < deadline:
            if connection.execute(query, {"pid": pid}).scalar() == "Lock":
                return
            connection.rollback()
            time.sleep(0.01)
    raise AssertionError(f"backend {pid} never waited for a lock")


def test_a_second_claim_of_one_job_waits_for_the_first_and_then_fails(queue_db: Database) -> None:
    workspace_id = new_workspace_id(queue_db)
    with queue_db.session() as session:
        job_id = JobRepository(session, workspace_id).add(Job(kind="fit", payload={})).id
    first, second = queue_db.session_factory(), queue_db.session_factory()
    try:
        assert JobQueue(first).claim(job_id, utcnow())  # not committed yet
        second_pid = _backend_pid(second)
        outcome: list[bool] = []
        thread = threading.Thread(
            target=lambda: outcome.append(JobQueue(second).claim(job_id, utcnow()))
        )
        thread.start()
        # READ COMMITTED: the second UPDATE waits for the first transaction's row lock ...
        _wait_until_blocked(queue_db, second_pid)
        first.commit()
        thread.join(10)
        # ... then re-checks "status = 'queued'" on the committed row, which no longer matches
        assert outcome == [False]
        second.commit()
    finally:
        first.close()
        second.close()
    with queue_db.session() as session:
        job = JobQueue(session).get(job_id)
        assert job is not None and job.status == "running" and job.stage == "started"


def test_concurrent_workers_claim_every_job_exactly_once(queue_db: Database) -> None:
    # Four threads run the worker's claim step (jobs.JobWorker._claim_next: the oldest queued ids,
    # then a conditional claim of each until one succeeds) until the queue is empty.
    workspace_id = new_workspace_id(queue_db)
    with queue_db.session() as session:
        repository = JobRepository(session, workspace_id)
        job_ids = [repository.add(Job(kind="fit", payload={"n": n})).id for n in range(40)]
    claimed: list[str] = []
    lock = threading.Lock()

    def claim_next() -> str | None:
        with queue_db.session() as session:
            queue = JobQueue(session)
            for job_id in queue.queued_ids(limit=3):
                if queue.claim(job_id, utcnow()):
                    return job_id
        return None

    def work() -> None:
        while (job_id := claim_next()) is not None:
            with lock:
                claimed.append(job_id)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(claimed) == sorted(job_ids)  # each job once: no duplicates, none left over


def test_stale_running_jobs_fail_and_live_or_queued_ones_stay(queue_db: Database) -> None:
    workspace_id = new_workspace_id(queue_db)
    now = utcnow()
    an_hour_ago = now - timedelta(hours=1)
    rows = {
        "stale": Job(kind="fit", payload={}, status="running", heartbeat_at=an_hour_ago),
        "never_beat": Job(kind="fit", payload={}, status="running", heartbeat_at=None),
        "fresh": Job(kind="fit", payload={}, status="running", heartbeat_at=now),
        "queued": Job(kind="fit", payload={}),
        "done": Job(kind="fit", payload={}, status="succeeded", heartbeat_at=an_hour_ago),
    }
    with queue_db.session() as session:
        ids = {name: JobRepository(session, workspace_id).add(job).id for name, job in rows.items()}
    error = {"type": "job-interrupted", "status": 500}
    with queue_db.session() as session:
        failed = JobQueue(session).fail_stale(now - timedelta(seconds=30), error, now)
    assert sorted(job.id for job in failed) == sorted([ids["stale"], ids["never_beat"]])
    with queue_db.session() as session:
        jobs = {name: JobQueue(session).get(job_id) for name, job_id in ids.items()}
    statuses = {name: job.status for name, job in jobs.items() if job is not None}
    assert statuses == {
        "stale": "failed",
        "never_beat": "failed",
        "fresh": "running",
        "queued": "queued",
        "done": "succeeded",
    }
    stale = jobs["stale"]
    assert stale is not None and stale.error == error and stale.stage == "interrupted"
    assert stale.finished_at == now and stale.finished_at.tzinfo is UTC


def test_progress_of_a_cancelled_job_is_refused_and_heartbeats_touch_running_jobs_only(
    queue_db: Database,
) -> None:
    workspace_id = new_workspace_id(queue_db)
    with queue_db.session() as session:
        running = JobRepository(session, workspace_id).add(Job(kind="fit", payload={})).id
        queued = JobRepository(session, workspace_id).add(Job(kind="fit", payload={})).id
    start = utcnow()
    with queue_db.session() as session:
        assert JobQueue(session).claim(running, start)
    later = start + timedelta(seconds=5)
    with queue_db.session() as session:
        JobQueue(session).heartbeat([running, queued], later)
        assert JobQueue(session).report(running, 0.5, "half way", later)
    with queue_db.session() as session:
        job, waiting = JobQueue(session).get(running), JobQueue(session).get(queued)
        assert job is not None and (job.progress, job.stage, job.heartbeat_at) == (
            0.5,
            "half way",
            later,
        )
        assert waiting is not None and waiting.heartbeat_at is None
        job.status = "cancelled"  # what POST /v1/jobs/{id}/cancel does
    with queue_db.session() as session:
        assert not JobQueue(session).report(running, 0.9, "still going", utcnow())
        assert not JobQueue(session).finish(running, status="succeeded", progress=1.0)
    with queue_db.session() as session:
        job = JobQueue(session).get(running)
        assert job is not None and (job.status, job.progress) == ("cancelled", 0.5)


# --- business cases, share tokens, retention fits ----------------------------------------------


def test_business_case_versions_are_unique_and_listed_latest_first(db: Database) -> None:
    workspace_id = new_workspace_id(db)
    other_id = new_workspace_id(db, "other")
    with db.session() as session:
        repository = BusinessCaseRepository(session, workspace_id)
        first_a = repository.add(BusinessCase(name="a", version=1, payload={"v": 1}))
        repository.add(BusinessCase(name="a", version=2, payload={"v": 2}))
        b = repository.add(BusinessCase(name="b", version=1, payload={"v": 1}))
        latest_a = repository.add(BusinessCase(name="a", version=3, payload={"v": 3}))
        # another workspace may use the same name and version
        BusinessCaseRepository(session, other_id).add(BusinessCase(name="a", version=1, payload={}))
    with pytest.raises(IntegrityError), db.session() as session:
        BusinessCaseRepository(session, workspace_id).add(
            BusinessCase(name="a", version=2, payload={})
        )
    with db.session() as session:
        items, total = list_cases(session, workspace_id, limit=10, offset=0)
    # the latest version of each case, newest first, with the case's id (its first version's)
    assert [(row.id, case_id) for row, case_id in items] == [
        (latest_a.id, first_a.id),
        (b.id, b.id),
    ]
    assert total == 2


def test_share_tokens_are_refused_once_revoked_or_expired(db: Database) -> None:
    workspace_id = new_workspace_id(db)
    now = utcnow()
    tokens = {name: generate_token() for name in ("open", "future", "past", "revoked")}
    expiry = {"open": None, "future": now + timedelta(days=1), "past": now - timedelta(seconds=1)}
    with db.session() as session:
        repository = ShareTokenRepository(session, workspace_id)
        for name, token in tokens.items():
            repository.add(
                ShareToken(
                    resource_type="fit",
                    resource_id="fit_x",
                    token_hash=hash_key(token),
                    prefix=token[:16],
                    expires_at=expiry.get(name),
                    revoked_at=now if name == "revoked" else None,
                )
            )
    with db.session() as session:
        for name in ("open", "future"):
            assert resolve_token(session, tokens[name], "fit").workspace_id == workspace_id
        with pytest.raises(Unauthorized, match="expired"):
            resolve_token(session, tokens["past"], "fit")
        with pytest.raises(Unauthorized, match="revoked"):
            resolve_token(session, tokens["revoked"], None)


def test_retention_fit_request_and_result_round_trip(db: Database) -> None:
    workspace_id = new_workspace_id(db)
    # Fader & Hardie (2007) "How to project customer retention", Table 1: regular customers
    # alive after 0..7 years; the estimates are their Table 2's (gamma 0.704, delta 1.182).
    request = {
        "cohorts": [{"name": "regular", "survivors": [1000, 631, 468, 382, 326, 289, 262, 241]}]
    }
    result = {"params": {"gamma": 0.704, "delta": 1.182}, "survival": [1.0, 0.631, None]}
    with db.session() as session:
        row = RetentionFitRepository(session, workspace_id).add(
            RetentionFit(name="regular", request=request, result=result)
        )
    with db.session_factory() as session:
        stored = RetentionFitRepository(session, workspace_id).get(row.id)
        assert stored is not None and (stored.request, stored.result) == (request, result)
        assert RetentionFitRepository(session, new_workspace_id(db)).get(row.id) is None


# --- the same rules on both backends -------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgresql"])
def any_db(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'rules.sqlite3'}"
    else:
        url = request.getfixturevalue("fresh_pg_url")
    database = Database(url)
    upgrade_to_head(database)
    yield database
    database.dispose()


def test_nan_in_a_json_column_is_refused_on_every_backend(any_db: Database) -> None:
    # NaN is not JSON (RFC 8259); PostgreSQL's json type refuses it, SQLite would store it.
    # The serializer refuses it on both: psycopg serialises while executing and lets the
    # ValueError through, SQLAlchemy serialises SQLite's value itself and wraps it.
    workspace_id = new_workspace_id(any_db)
    refused = (StatementError, ValueError)
    with pytest.raises(refused, match="not JSON compliant"), any_db.session() as session:
        JobRepository(session, workspace_id).add(Job(kind="fit", payload={"x": math.nan}))
    with any_db.session() as session:
        assert JobRepository(session, workspace_id).count() == 0


def test_a_string_longer_than_its_column_is_refused_and_a_long_lookup_finds_nothing(
    any_db: Database,
) -> None:
    with pytest.raises(StatementError, match="201 characters"), any_db.session() as session:
        WorkspaceRepository(session).add("x" * 201)
    workspace_id = new_workspace_id(any_db, "é" * 200)  # characters, not bytes
    with any_db.session() as session:
        assert WorkspaceRepository(session).get(workspace_id) is not None
        assert JobRepository(session, workspace_id).get("job_" + "x" * 100) is None
        assert WorkspaceRepository(session).get("ws_" + "x" * 100) is None
        assert JobQueue(session).get("job_" + "x" * 100) is None


def test_bare_postgres_urls_use_psycopg_3(pg_cluster: PostgresCluster, pg_url: str) -> None:
    database = pg_url.rsplit("/", 1)[-1]
    for scheme in ("postgres", "postgresql"):
        db = Database(pg_cluster.url(database, driver=scheme))
        try:
            assert db.url == pg_cluster.url(database)  # postgresql+psycopg://
            assert schema_status(db).at_head
        finally:
            db.dispose()


# --- migrations from several processes -----------------------------------------------------------

MIGRATE = "from cltv_api.storage.db import Database; from cltv_api.storage.migrate import upgrade_to_head; import sys; upgrade_to_head(Database(sys.argv[1]))"


def _waiting_for_advisory_lock(db: Database) -> int:
    query = sa.text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted")
    with db.engine.connect() as connection:
        return int(connection.execute(query).scalar() or 0)


def test_processes_migrating_one_database_at_once_wait_for_each_other(fresh_pg_url: str) -> None:
    # Three service processes start together on an empty database, without a shared data
    # directory (no file lock). The test holds the migration lock until all three wait for it,
    # then lets them go: each must then find the schema done by the first or do it itself.
    db = Database(fresh_pg_url)
    processes: list[subprocess.Popen[bytes]] = []
    try:
        with db.engine.connect() as holder:
            holder.execute(sa.select(sa.func.pg_advisory_lock(POSTGRES_MIGRATION_LOCK)))
            processes = [
                subprocess.Popen(
                    [sys.executable, "-c", MIGRATE, fresh_pg_url],
                    cwd=REPO_ROOT,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                )
                for _ in range(3)
            ]
            deadline = time.monotonic() + 60
            while _waiting_for_advisory_lock(db) < 3:
                assert time.monotonic() < deadline, "the processes did not wait for the lock"
                assert all(p.poll() is None for p in processes), "a process finished early"
                time.sleep(0.05)
            holder.execute(sa.select(sa.func.pg_advisory_unlock(POSTGRES_MIGRATION_LOCK)))
            holder.commit()
        outputs = [p.communicate(timeout=60)[0].decode(errors="replace") for p in processes]
        assert [p.returncode for p in processes] == [0, 0, 0], outputs
        assert schema_status(db).at_head
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
                process.wait()
        db.dispose()
