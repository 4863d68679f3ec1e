"""The background job worker, run for real with registered test job kinds (no mocks)."""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cltv_api.errors import FieldError, InvalidInput
from cltv_api.main import create_app
from cltv_api.services.jobs import (
    INTERRUPTED_DETAIL,
    ProgressReporter,
    enqueue_job,
    register_job_kind,
    unregister_job_kind,
)
from cltv_api.settings import Settings
from cltv_api.storage.db import Database
from cltv_api.storage.migrate import upgrade_to_head
from cltv_api.storage.tables import Job, utcnow
from tests.cltv_api.service.conftest import (
    Api,
    Credentials,
    TestClient,
    make_settings,
    new_workspace,
)

# --- test job kinds ------------------------------------------------------------------------------

STARTED: dict[str, threading.Event] = {}
ATTEMPTS: Counter[str] = Counter()


def steps_job(payload: dict[str, Any], report: ProgressReporter) -> str | None:
    """``steps`` equal steps of ``sleep`` seconds, reporting k/steps after step k."""
    steps = int(payload["steps"])
    for step in range(1, steps + 1):
        time.sleep(float(payload.get("sleep", 0.02)))
        report(step / steps, f"step {step} of {steps}")
    return f"/v1/test-results/{report.job_id}"


def domain_failure_job(payload: dict[str, Any], report: ProgressReporter) -> str | None:
    report(0.5, "validating columns")
    raise InvalidInput(
        "Column 'amount' has non-numeric values.",
        errors=[FieldError(field="amount", message="not a number", row=3, value="abc")],
    )


def crashing_job(payload: dict[str, Any], report: ProgressReporter) -> str | None:
    raise RuntimeError("secret internal detail")


def stubborn_job(payload: dict[str, Any], report: ProgressReporter) -> str | None:
    """First attempt: reports every 10 ms for up to 20 s (until cancelled or interrupted).
    Later attempts (after a re-queue): finish at once."""
    token = payload["token"]
    ATTEMPTS[token] += 1
    STARTED.setdefault(token, threading.Event()).set()
    if ATTEMPTS[token] > 1:
        report(1.0, "finished on a later attempt")
        return f"/v1/test-results/{token}"
    deadline = time.monotonic() + 20
    tick = 0
    while time.monotonic() < deadline:
        report(min(0.9, tick / 1000), "looping")
        time.sleep(0.01)
        tick += 1
    return None


def nan_progress_job(payload: dict[str, Any], report: ProgressReporter) -> str | None:
    report(math.nan, "broken")
    return None


KINDS: dict[str, Callable[[dict[str, Any], ProgressReporter], str | None]] = {
    "test.steps": steps_job,
    "test.domain-failure": domain_failure_job,
    "test.crash": crashing_job,
    "test.stubborn": stubborn_job,
    "test.nan-progress": nan_progress_job,
}


@pytest.fixture(autouse=True)
def test_job_kinds() -> Iterator[None]:
    for kind, func in KINDS.items():
        register_job_kind(kind, func, replace=True)
    yield
    for kind in KINDS:
        unregister_job_kind(kind)


# --- helpers -------------------------------------------------------------------------------------


def enqueue(client: TestClient, workspace_id: str, kind: str, payload: dict[str, Any]) -> str:
    """Queue a job through the service layer, as an endpoint would; returns its id."""
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    worker = client.app.state.worker  # type: ignore[attr-defined]
    with db.session() as session:
        job = enqueue_job(session, workspace_id, kind, payload, on_commit=worker.wake)
        return job.id


def wait_for_job(
    client: TestClient,
    headers: dict[str, str],
    job_id: str,
    statuses: set[str],
    timeout: float = 60,
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(f"/v1/jobs/{job_id}", headers=headers).json()
        if body["status"] in statuses:
            return body
        time.sleep(0.01)
    raise AssertionError(f"job {job_id} not in {statuses} after {timeout} s: {body}")


def wait_started(token: str, timeout: float = 30) -> None:
    assert STARTED.setdefault(token, threading.Event()).wait(timeout), f"{token} never started"


def insert_job(db: Database, workspace_id: str, **values: Any) -> str:
    values.setdefault("payload", {})
    with db.session() as session:
        job = Job(workspace_id=workspace_id, **values)
        session.add(job)
        session.flush()
        return job.id


# --- running, progress, results, errors ---------------------------------------------------------


def test_job_runs_and_reports_progress_then_result_link(api: Api) -> None:
    job_id = enqueue(
        api.client, api.credentials.workspace_id, "test.steps", {"steps": 8, "sleep": 0.05}
    )
    seen: list[tuple[float, str]] = []
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        body = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers).json()
        seen.append((body["progress"], body["stage"]))
        if body["status"] == "succeeded":
            break
        time.sleep(0.01)
    assert body["status"] == "succeeded"
    assert body["progress"] == 1.0 and body["stage"] == "done"
    assert body["result_url"] == f"/v1/test-results/{job_id}"
    assert body["error"] is None and body["url"] == f"/v1/jobs/{job_id}"
    assert body["started_at"] <= body["finished_at"]
    # progress seen while running: never decreasing, and at step k it is exactly k/8
    progresses = [progress for progress, _ in seen]
    assert progresses == sorted(progresses)
    intermediate = {(p, s) for p, s in seen if s and s.startswith("step ")}
    assert len(intermediate) >= 3
    for progress, stage in intermediate:
        step = int(stage.split()[1])
        assert progress == pytest.approx(step / 8)


def test_job_failing_with_a_domain_error_reports_it_as_problem_details(api: Api) -> None:
    job_id = enqueue(api.client, api.credentials.workspace_id, "test.domain-failure", {})
    body = wait_for_job(api.client, api.headers, job_id, {"failed"})
    assert body["stage"] == "validating columns"  # where it failed
    assert body["progress"] == 0.5
    assert body["result_url"] is None
    assert body["error"] == {
        "type": "https://cltv.dev/problems/invalid-input",
        "title": "Invalid input",
        "status": 422,
        "detail": "Column 'amount' has non-numeric values.",
        "instance": f"/v1/jobs/{job_id}",
        "errors": [{"field": "amount", "message": "not a number", "row": 3, "value": "abc"}],
    }


def test_job_crash_is_a_generic_problem_and_the_traceback_goes_to_the_log(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.ERROR, logger="cltv_api.jobs")
    job_id = enqueue(api.client, api.credentials.workspace_id, "test.crash", {})
    body = wait_for_job(api.client, api.headers, job_id, {"failed"})
    assert body["error"]["type"] == "https://cltv.dev/problems/job-failed"
    assert body["error"]["detail"] == "The job failed because of an unexpected server error."
    assert "secret" not in str(body)
    crash_logs = [r for r in caplog.records if job_id in r.getMessage()]
    assert crash_logs and crash_logs[0].exc_info is not None


def test_progress_must_be_a_finite_number(api: Api) -> None:
    job_id = enqueue(api.client, api.credentials.workspace_id, "test.nan-progress", {})
    body = wait_for_job(api.client, api.headers, job_id, {"failed"})
    assert body["error"]["type"] == "https://cltv.dev/problems/job-failed"


def test_enqueue_rejects_unknown_kinds_and_non_json_payloads(api: Api) -> None:
    with api.db.session() as session, pytest.raises(InvalidInput, match="Unknown job kind"):
        enqueue_job(session, api.credentials.workspace_id, "no.such.kind", {})
    with api.db.session() as session, pytest.raises(InvalidInput, match="not plain JSON"):
        enqueue_job(session, api.credentials.workspace_id, "test.steps", {"x": math.inf})


def test_registering_a_different_function_under_a_taken_kind_is_an_error() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_job_kind("test.steps", crashing_job)
    register_job_kind("test.steps", steps_job)  # the same function again is fine


def test_a_job_whose_kind_is_no_longer_registered_fails_clearly(api: Api) -> None:
    job_id = insert_job(api.db, api.credentials.workspace_id, kind="test.retired")
    body = wait_for_job(api.client, api.headers, job_id, {"failed"})
    assert body["error"]["detail"] == "No handler is registered for job kind 'test.retired'."


# --- listing, isolation, cancellation ---------------------------------------------------------


def test_jobs_of_another_workspace_are_not_found(
    api: Api, make_workspace: Callable[..., Credentials]
) -> None:
    other = make_workspace("other tenant")
    job_id = enqueue(api.client, api.credentials.workspace_id, "test.steps", {"steps": 1})
    wait_for_job(api.client, api.headers, job_id, {"succeeded"})
    foreign = api.client.get(f"/v1/jobs/{job_id}", headers=other.headers)
    assert foreign.status_code == 404
    assert foreign.json()["detail"] == f"No job '{job_id}' in this workspace."
    assert api.client.post(f"/v1/jobs/{job_id}/cancel", headers=other.headers).status_code == 404
    assert api.client.get("/v1/jobs", headers=other.headers).json()["items"] == []


def test_list_jobs_is_newest_first_and_filters_by_status_and_kind(api: Api) -> None:
    done = enqueue(api.client, api.credentials.workspace_id, "test.steps", {"steps": 1})
    wait_for_job(api.client, api.headers, done, {"succeeded"})
    failed = enqueue(api.client, api.credentials.workspace_id, "test.domain-failure", {})
    wait_for_job(api.client, api.headers, failed, {"failed"})

    listed = api.client.get("/v1/jobs", headers=api.headers).json()
    assert [job["id"] for job in listed["items"]] == [failed, done]
    only_failed = api.client.get("/v1/jobs?status=failed", headers=api.headers).json()
    assert [job["id"] for job in only_failed["items"]] == [failed]
    only_steps = api.client.get("/v1/jobs?kind=test.steps", headers=api.headers).json()
    assert [job["id"] for job in only_steps["items"]] == [done]
    second_page = api.client.get("/v1/jobs?limit=1&offset=1", headers=api.headers).json()
    assert [job["id"] for job in second_page["items"]] == [done]
    bad_status = api.client.get("/v1/jobs?status=sleeping", headers=api.headers)
    assert bad_status.status_code == 422


def test_cancelling_a_running_job_stops_it_at_its_next_report(api: Api) -> None:
    token = "cancel-me"
    job_id = enqueue(api.client, api.credentials.workspace_id, "test.stubborn", {"token": token})
    wait_started(token)
    cancelled = api.client.post(f"/v1/jobs/{job_id}/cancel", headers=api.headers)
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    worker = api.client.app.state.worker  # type: ignore[attr-defined]
    deadline = time.monotonic() + 30
    while worker.running_job_ids() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert worker.running_job_ids() == []  # the thread is free again
    body = api.client.get(f"/v1/jobs/{job_id}", headers=api.headers).json()
    assert body["status"] == "cancelled" and body["finished_at"] is not None
    again = api.client.post(f"/v1/jobs/{job_id}/cancel", headers=api.headers)
    assert again.status_code == 409


def test_cancelling_needs_the_write_scope(
    api: Api, make_workspace: Callable[..., Credentials]
) -> None:
    reader = make_workspace("reader", scopes=("read",))
    job_id = enqueue(api.client, reader.workspace_id, "test.steps", {"steps": 1})
    assert api.client.post(f"/v1/jobs/{job_id}/cancel", headers=reader.headers).status_code == 403


# --- restarts and shutdown ---------------------------------------------------------------------


def _prepared_database(settings: Settings) -> Database:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(settings.resolved_database_url)
    upgrade_to_head(db)
    return db


def test_restart_fails_jobs_a_dead_process_left_running_and_runs_queued_ones(
    tmp_path: Path,
) -> None:
    # What a crashed process leaves behind: one job mid-run (last heartbeat an hour ago) and one
    # job still waiting in the queue.
    settings = make_settings(tmp_path / "data")
    db = _prepared_database(settings)
    owner = new_workspace(db, "crashed")
    an_hour_ago = utcnow() - timedelta(hours=1)
    orphan = insert_job(
        db, owner.workspace_id, kind="test.steps", status="running", progress=0.3,
        stage="step 3 of 10", started_at=an_hour_ago, heartbeat_at=an_hour_ago,
    )  # fmt: skip
    waiting = insert_job(db, owner.workspace_id, kind="test.steps", payload={"steps": 2})
    db.dispose()

    with TestClient(create_app(settings)) as client:
        failed = client.get(f"/v1/jobs/{orphan}", headers=owner.headers).json()
        assert failed["status"] == "failed"
        assert "interrupted by a server restart" in failed["error"]["detail"]
        assert failed["error"] == {
            "type": "https://cltv.dev/problems/job-interrupted",
            "title": "Job interrupted",
            "status": 500,
            "detail": INTERRUPTED_DETAIL,
            "instance": f"/v1/jobs/{orphan}",
        }
        assert failed["progress"] == 0.3 and failed["finished_at"] is not None
        # the queued job never started, so the new process runs it
        done = wait_for_job(client, owner.headers, waiting, {"succeeded"})
        assert done["result_url"] == f"/v1/test-results/{waiting}"


def test_a_running_job_whose_heartbeat_stops_is_failed_once_stale(tmp_path: Path) -> None:
    # A job whose heartbeat is fresh at start-up may belong to another live process: it is left
    # alone until its heartbeat is older than job_stale_after_seconds (0.6 s here).
    settings = make_settings(
        tmp_path / "data", job_heartbeat_seconds=0.1, job_stale_after_seconds=0.6
    )
    db = _prepared_database(settings)
    owner = new_workspace(db, "crashed just now")
    now = utcnow()
    orphan = insert_job(
        db,
        owner.workspace_id,
        kind="test.steps",
        status="running",
        started_at=now,
        heartbeat_at=now,
    )
    db.dispose()
    with TestClient(create_app(settings)) as client:
        first = client.get(f"/v1/jobs/{orphan}", headers=owner.headers).json()
        assert first["status"] == "running"
        failed = wait_for_job(client, owner.headers, orphan, {"failed"}, timeout=30)
        assert failed["error"]["type"] == "https://cltv.dev/problems/job-interrupted"


def test_jobs_running_in_this_process_keep_a_fresh_heartbeat(tmp_path: Path) -> None:
    # Heartbeats every 0.1 s keep a 1.5 s job alive although it outlives job_stale_after (0.6 s).
    settings = make_settings(
        tmp_path / "data", job_heartbeat_seconds=0.1, job_stale_after_seconds=0.6
    )
    app = create_app(settings)
    with TestClient(app) as client:
        owner = new_workspace(app.state.db, "busy")
        job_id = enqueue(client, owner.workspace_id, "test.steps", {"steps": 3, "sleep": 0.5})
        body = wait_for_job(client, owner.headers, job_id, {"succeeded", "failed"})
        assert body["status"] == "succeeded", body["error"]


def test_shutdown_lets_a_short_job_finish(tmp_path: Path) -> None:
    settings = make_settings(tmp_path / "data", job_shutdown_grace_seconds=5.0)
    app = create_app(settings)
    with TestClient(app) as client:
        owner = new_workspace(app.state.db, "short")
        job_id = enqueue(client, owner.workspace_id, "test.steps", {"steps": 5, "sleep": 0.06})
        wait_for_job(client, owner.headers, job_id, {"running"})
    # the client context has exited: the app shut down, after the job finished
    db = Database(settings.resolved_database_url)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None and job.status == "succeeded"
    db.dispose()


def test_shutdown_requeues_a_long_job_and_the_next_start_runs_it(tmp_path: Path) -> None:
    token = "shutdown-requeue"
    settings = make_settings(tmp_path / "data", job_shutdown_grace_seconds=0.1)
    app = create_app(settings)
    with TestClient(app) as client:
        owner = new_workspace(app.state.db, "long")
        job_id = enqueue(client, owner.workspace_id, "test.stubborn", {"token": token})
        wait_started(token)
    db = Database(settings.resolved_database_url)
    with db.session() as session:
        job = session.get(Job, job_id)
        assert job is not None
        assert (job.status, job.progress, job.started_at) == ("queued", 0.0, None)
        assert job.stage == "re-queued after a server shutdown"
    db.dispose()

    with TestClient(create_app(settings)) as client:
        body = wait_for_job(client, owner.headers, job_id, {"succeeded"})
        assert body["result_url"] == f"/v1/test-results/{token}"
    assert ATTEMPTS[token] == 2


def test_a_cancelled_queued_job_never_starts(tmp_path: Path) -> None:
    # One worker thread, kept busy by a long job, so the second job waits in the queue.
    token = "busy-worker"
    app = create_app(make_settings(tmp_path / "data", worker_threads=1))
    with TestClient(app) as client:
        owner = new_workspace(app.state.db, "queue")
        busy = enqueue(client, owner.workspace_id, "test.stubborn", {"token": token})
        wait_started(token)
        waiting = enqueue(client, owner.workspace_id, "test.steps", {"steps": 1})
        assert client.get(f"/v1/jobs/{waiting}", headers=owner.headers).json()["status"] == "queued"
        cancelled = client.post(f"/v1/jobs/{waiting}/cancel", headers=owner.headers).json()
        assert cancelled["status"] == "cancelled"
        client.post(f"/v1/jobs/{busy}/cancel", headers=owner.headers)
        worker = app.state.worker
        deadline = time.monotonic() + 30
        while worker.running_job_ids() and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.2)  # several polls (every 0.05 s) with the worker idle
        body = client.get(f"/v1/jobs/{waiting}", headers=owner.headers).json()
        assert (body["status"], body["started_at"], body["progress"]) == ("cancelled", None, 0.0)
