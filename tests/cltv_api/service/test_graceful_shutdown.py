"""Graceful shutdown under a real uvicorn: SIGTERM while a slow job runs → the process exits
cleanly, the job is back in the queue (not left running), and a restarted server completes it.
Also checks that a real server writes its logs (ours and uvicorn's) as JSON lines."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from cltv_api.services.jobs import enqueue_job
from cltv_api.services.workspaces import bootstrap_workspace
from cltv_api.storage.db import Database
from cltv_api.storage.repositories import JobQueue
from tests.cltv_api.service.conftest import LiveServer, make_settings, start_live_server
from tests.cltv_api.service.slow_job_app import SLOW_JOB_KIND

GRACE_SECONDS = 0.3
# 40 steps of 0.05 s: a 2 s job, far longer than the grace period.
SLOW_PAYLOAD = {"steps": 40, "step_seconds": 0.05}


def start_slow_server(data_dir: Path, log_path: Path, timeout: float = 90.0) -> LiveServer:
    """uvicorn serving the service plus the slow job kind, with a short shutdown grace."""
    env = {
        "CLTV_LOG_FORMAT": "json",
        "CLTV_JOB_POLL_INTERVAL_SECONDS": "0.05",
        "CLTV_JOB_HEARTBEAT_SECONDS": "0.2",
        "CLTV_JOB_SHUTDOWN_GRACE_SECONDS": str(GRACE_SECONDS),
    }
    return start_live_server(
        data_dir,
        log_path,
        timeout,
        env=env,
        app="tests.cltv_api.service.slow_job_app:create_slow_app",
        factory=True,
    )


def wait_for(server: LiveServer, url: str, key: str, done: Any, timeout: float = 60) -> Any:
    """Poll ``url`` until ``done(body)``; the last body."""
    deadline = time.monotonic() + timeout
    while True:
        body = httpx.get(server.base_url + url, headers={"X-API-Key": key}, timeout=5).json()
        if done(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def json_lines(log: str) -> list[dict[str, Any]]:
    """Every line of the server's output, each of which must be one JSON object."""
    return [json.loads(line) for line in log.splitlines() if line.strip()]


@pytest.mark.slow
def test_sigterm_requeues_a_running_job_and_a_restarted_server_completes_it(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    first = start_slow_server(data_dir, tmp_path / "first.log")
    try:
        settings = make_settings(data_dir)
        workspace, key = bootstrap_workspace("shutdown", settings)
        db = Database(settings.resolved_database_url)
        try:
            with db.session() as session:
                job_id = enqueue_job(session, workspace.id, SLOW_JOB_KIND, SLOW_PAYLOAD).id
            running = wait_for(
                first,
                f"/v1/jobs/{job_id}",
                key,
                lambda job: job["status"] == "running" and job["progress"] > 0,
            )
            assert running["status"] == "running", running

            started = time.monotonic()
            exit_code = first.stop(timeout=30)
            stop_seconds = time.monotonic() - started
            # uvicorn re-raises the SIGTERM it handled: -15 (or 0); a hang ends in -9.
            assert exit_code in (0, -signal.SIGTERM)
            # The grace period, then at most one 0.05 s step until the next progress report.
            assert stop_seconds < 10

            with db.session() as session:
                job = JobQueue(session).get(job_id)
                assert job is not None
                assert (job.status, job.progress, job.started_at) == ("queued", 0.0, None)
                assert job.stage == "re-queued after a server shutdown"
        finally:
            db.dispose()
    finally:
        first.stop()

    first_log = first.log()
    lines = json_lines(first_log)  # every line, ours and uvicorn's, is JSON
    messages = [line["message"] for line in lines]
    assert any(m.startswith("interrupting running jobs at shutdown") for m in messages)
    (ended,) = [
        line for line in lines if line["message"].startswith(f"job {job_id} (test-slow) ended")
    ]
    assert (ended["outcome"], ended["job_id"], ended["workspace_id"]) == (
        "interrupted",
        job_id,
        workspace.id,
    )
    assert "Application shutdown complete." in messages
    assert {line["logger"] for line in lines} >= {"uvicorn.error", "cltv_api.access"}
    assert "Traceback" not in first_log and key not in first_log

    second = start_slow_server(data_dir, tmp_path / "second.log")
    try:
        done = wait_for(second, f"/v1/jobs/{job_id}", key, lambda job: job["status"] == "succeeded")
        assert (done["status"], done["progress"], done["stage"]) == ("succeeded", 1.0, "done")
    finally:
        assert second.stop(timeout=30) in (0, -signal.SIGTERM)
    assert "Traceback" not in second.log()
