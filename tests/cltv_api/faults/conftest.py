"""Helpers for fault tests: real uvicorn processes that can be killed (SIGKILL) and restarted on
the same data directory and database, their API keys, generated transaction files, and what a
crash may leave behind on disk and in the SQLite file.

Servers run with a short job heartbeat (0.2 s) and stale window (2 s), so an interrupted job is
marked failed about 2 s after its process died rather than the default minute.
"""

from __future__ import annotations

import signal
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pyarrow.csv as pa_csv
import pytest

from benchmarks.generate import GeneratorConfig, generate_table
from cltv_api.services.workspaces import bootstrap_workspace
from tests.cltv_api.service.conftest import LiveServer, make_settings, start_live_server

HEARTBEAT_SECONDS = 0.2
STALE_AFTER_SECONDS = 2.0
SCRATCH_PREFIXES = (".upload-", ".cltv-tmp-", "engine-")
"""Names of temporary entries (uploads/, datasets/, tmp/) that only a running request owns."""

FAST_JOBS = {
    "CLTV_JOB_POLL_INTERVAL_SECONDS": "0.05",
    "CLTV_JOB_HEARTBEAT_SECONDS": str(HEARTBEAT_SECONDS),
    "CLTV_JOB_STALE_AFTER_SECONDS": str(STALE_AFTER_SECONDS),
    "CLTV_JOB_SHUTDOWN_GRACE_SECONDS": "1",
    "CLTV_WORKER_THREADS": "2",
}


def start_server(
    data_dir: Path, log_path: Path, env: dict[str, str] | None = None, timeout: float = 90.0
) -> LiveServer:
    """``python -m uvicorn cltv_api.main:app`` on a free port with ``FAST_JOBS`` settings plus
    ``env``; returns once ``/healthz`` answers. The log is appended to (restarts share it)."""
    return start_live_server(
        data_dir, log_path, timeout, env={**FAST_JOBS, **(env or {})}, append=True
    )


def kill(server: LiveServer) -> None:
    """SIGKILL: no shutdown handler, no cleanup, as in a crash or an OOM kill."""
    if server.process.poll() is None:
        server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=30)


@pytest.fixture
def servers() -> Iterator[list[LiveServer]]:
    """Every server a test starts (append them); all are killed when the test ends."""
    started: list[LiveServer] = []
    yield started
    for server in started:
        kill(server)


def api_key(data_dir: Path, name: str = "faults", **settings: Any) -> dict[str, str]:
    """Headers with the admin key of a new workspace, created directly in the database."""
    _, key = bootstrap_workspace(name, make_settings(data_dir, **settings))
    return {"Authorization": f"Bearer {key}"}


def write_transactions_csv(path: Path, customers: int, seed: int = 7) -> Path:
    """A CSV of generated transactions (benchmarks/generate.py: BG/NBD + Gamma-Gamma
    customers, with channel/region/nps_group segments)."""
    table = generate_table(GeneratorConfig(n_customers=customers, seed=seed))
    pa_csv.write_csv(table, path)
    return path


def upload_csv(
    client: httpx.Client, path: Path, name: str, segments: str = "channel"
) -> dict[str, Any]:
    """Upload a CSV of generated transactions as the raw body; the created data set."""
    response = client.post(
        "/v1/datasets",
        params={
            "filename": path.name,
            "name": name,
            "customer_col": "customer_id",
            "date_col": "date",
            "amount_col": "amount",
            "segment_cols": segments,
        },
        content=path.read_bytes(),
        headers={"Content-Type": "text/csv"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def scratch_entries(data_dir: Path) -> list[str]:
    """Temporary entries (half-received uploads, ingestion and spill directories) on disk."""
    found = []
    for sub in ("uploads", "datasets", "tmp"):
        directory = data_dir / sub
        if directory.is_dir():
            found += [
                f"{sub}/{p.name}"
                for p in directory.iterdir()
                if p.name.startswith(SCRATCH_PREFIXES)
            ]
    return sorted(found)


def integrity_check(database: Path) -> list[str]:
    """``PRAGMA integrity_check`` of a SQLite file (``["ok"]`` when sound), read-only."""
    with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as connection:
        return [row[0] for row in connection.execute("PRAGMA integrity_check")]


def wait_for(
    probe: Any, condition: Any, timeout: float, interval: float = 0.05, what: str = "condition"
) -> Any:
    """Call ``probe()`` until ``condition(value)`` holds; the last value (fails on timeout)."""
    deadline = time.monotonic() + timeout
    value = probe()
    while not condition(value):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not reached within {timeout} s; last value: {value!r}")
        time.sleep(interval)
        value = probe()
    return value
