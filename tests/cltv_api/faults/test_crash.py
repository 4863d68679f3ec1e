"""Crash tests: a real uvicorn process is killed with SIGKILL in the middle of an upload, of an
ingestion, of a fit job and of business-case writes, then restarted on the same data directory
and SQLite database. After the restart no partial data set is visible, no temporary file is
left (the start-up sweep removes what the dead process held), the database passes
``PRAGMA integrity_check``, and an interrupted job is failed with a problem-details error within
the stale window rather than left "running".
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cltv_api.faults.conftest import (
    STALE_AFTER_SECONDS,
    api_key,
    integrity_check,
    kill,
    scratch_entries,
    start_server,
    upload_csv,
    wait_for,
    write_transactions_csv,
)
from tests.cltv_api.service.conftest import LiveServer

pytestmark = pytest.mark.slow

PROBLEMS = "https://cltv.dev/problems/"
FIT_AS_JOB = {"CLTV_SYNC_FIT_MAX_CUSTOMERS": "0"}  # every fit is a background job


def listed_datasets(client: httpx.Client) -> list[dict[str, Any]]:
    response = client.get("/v1/datasets", params={"limit": 200})
    assert response.status_code == 200, response.text
    items: list[dict[str, Any]] = response.json()["items"]
    return items


def stored_parquet(data_dir: Path) -> list[str]:
    return sorted(p.name for p in (data_dir / "datasets").glob("*.parquet"))


def entries_starting(directory: Path, prefix: str) -> list[Path]:
    return (
        [p for p in directory.iterdir() if p.name.startswith(prefix)] if directory.is_dir() else []
    )


@dataclass
class Crashed:
    """A server killed mid-way, what the kill left on disk, and the restarted server."""

    data_dir: Path
    headers: dict[str, str]
    before: dict[str, Any]  # state recorded before the kill
    left_behind: list[str]  # temporary entries on disk right after the kill
    restarted: LiveServer
    restarted_at: float  # time.monotonic() when the restarted server answered

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.restarted.base_url, headers=self.headers, timeout=60)


def restart(
    data_dir: Path, log: Path, headers: dict[str, str], before: dict[str, Any], **env: str
) -> Crashed:
    left_behind = scratch_entries(data_dir)
    server = start_server(data_dir, log, env)
    return Crashed(data_dir, headers, before, left_behind, server, time.monotonic())


def slow_body(total_bytes: int, chunk: bytes, pause: float) -> Iterator[bytes]:
    """A CSV body of about ``total_bytes``: a header, then ``chunk`` repeated with pauses."""
    yield b"customer_id,date,amount\n"
    sent = 0
    while sent < total_bytes:
        yield chunk
        sent += len(chunk)
        time.sleep(pause)


# --- (a) an upload: while the body is received, and while it is ingested ----------------------


@pytest.fixture
def complete_dataset(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str], LiveServer, str]]:
    """A server with one complete data set (300 generated customers); yields the data dir, the
    key headers, the server and the data set's id."""
    data_dir = tmp_path / "data"
    headers = api_key(data_dir)
    server = start_server(data_dir, tmp_path / "uvicorn.log")
    try:
        small = write_transactions_csv(tmp_path / "small.csv", customers=300)
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            dataset_id = upload_csv(client, small, "complete")["id"]
        yield data_dir, headers, server, dataset_id
    finally:
        kill(server)


def test_kill_while_an_upload_streams_leaves_no_data_set_and_the_restart_removes_the_partial_file(
    complete_dataset: tuple[Path, dict[str, str], LiveServer, str], tmp_path: Path
) -> None:
    data_dir, headers, server, dataset_id = complete_dataset
    row = b"C000001,2024-01-02,12.50\n" * 2600  # about 64 KiB per chunk
    outcome: dict[str, Any] = {}

    def upload() -> None:
        try:
            outcome["response"] = httpx.post(
                f"{server.base_url}/v1/datasets",
                params={"filename": "slow.csv"},
                content=slow_body(64 * 1024 * 1024, row, pause=0.005),
                headers={**headers, "Content-Type": "text/csv"},
                timeout=60,
            )
        except httpx.HTTPError as exc:
            outcome["error"] = exc

    sender = threading.Thread(target=upload, daemon=True)
    sender.start()
    uploads = data_dir / "uploads"

    def received() -> int:  # bytes of the half-received upload on disk so far
        return sum(p.stat().st_size for p in entries_starting(uploads, ".upload-"))

    wait_for(received, lambda size: size >= 2 * 1024 * 1024, timeout=30, what="2 MiB received")
    kill(server)
    sender.join(timeout=30)
    assert "response" not in outcome  # the client saw the connection drop, not an answer
    crashed = restart(data_dir, tmp_path / "uvicorn.log", headers, {})
    try:
        assert [name.split("/")[0] for name in crashed.left_behind] == ["uploads"]
        assert scratch_entries(data_dir) == []  # removed by the start-up sweep
        with crashed.client() as client:
            assert [d["id"] for d in listed_datasets(client)] == [dataset_id]
            assert client.get(f"/v1/datasets/{dataset_id}/summary").status_code == 200
        assert len(stored_parquet(data_dir)) == 1
        assert integrity_check(data_dir / "cltv.sqlite3") == ["ok"]
    finally:
        kill(crashed.restarted)


def test_kill_during_ingestion_leaves_no_data_set_and_the_restart_removes_the_work_directory(
    complete_dataset: tuple[Path, dict[str, str], LiveServer, str], tmp_path: Path
) -> None:
    data_dir, headers, server, dataset_id = complete_dataset
    # 60,000 generated customers (about 15 MB of CSV): ingestion takes about a second.
    big = write_transactions_csv(tmp_path / "big.csv", customers=60_000)

    def upload() -> None:
        with (
            httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client,
            pytest.raises(httpx.HTTPError),
        ):
            upload_csv(client, big, "interrupted")

    sender = threading.Thread(target=upload, daemon=True)
    sender.start()
    wait_for(
        lambda: entries_starting(data_dir / "datasets", ".cltv-tmp-"),
        bool,
        timeout=30,
        interval=0.005,
        what="an ingestion work directory",
    )
    kill(server)
    sender.join(timeout=30)
    crashed = restart(data_dir, tmp_path / "uvicorn.log", headers, {})
    try:
        assert any(name.startswith("datasets/.cltv-tmp-") for name in crashed.left_behind)
        assert scratch_entries(data_dir) == []
        with crashed.client() as client:
            assert [d["id"] for d in listed_datasets(client)] == [dataset_id]
            assert len(stored_parquet(data_dir)) == 1
            # the same file uploads completely after the restart
            again = upload_csv(client, big, "after restart")
            assert again["customer_count"] == 60_000
        assert len(stored_parquet(data_dir)) == 2
        assert integrity_check(data_dir / "cltv.sqlite3") == ["ok"]
    finally:
        kill(crashed.restarted)


# --- (b) a fit job --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def crashed_fit(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crashed]:
    """A fit job (all three purchase models per channel on 60,000 generated customers: about
    3 s) whose server is killed while it fits; the server restarted on the same directory."""
    tmp = tmp_path_factory.mktemp("crashed-fit")
    data_dir, log = tmp / "data", tmp / "uvicorn.log"
    headers = api_key(data_dir)
    server = start_server(data_dir, log, FIT_AS_JOB)
    try:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as client:
            csv = write_transactions_csv(tmp / "tx.csv", customers=60_000)
            dataset = upload_csv(client, csv, "fit me")
            body = {
                "dataset_id": dataset["id"],
                "purchase_model": "auto",
                "segment_by": ["channel"],
                "per_segment": True,
                "time_unit": "days",
            }
            queued = client.post("/v1/fits", json=body)
            assert queued.status_code == 202, queued.text
            job_url, fit_id = queued.headers["Location"], queued.json()["id"]
            running = wait_for(
                lambda: client.get(job_url).json(),
                lambda job: job["status"] != "queued" and job["stage"] == "fit",
                timeout=30,
                interval=0.02,
                what="the job fitting",
            )
        kill(server)
    except BaseException:
        kill(server)
        raise
    before = {"job_url": job_url, "fit_id": fit_id, "job": running, "body": body}
    crashed = restart(data_dir, log, headers, before, **FIT_AS_JOB)
    yield crashed
    kill(crashed.restarted)


def job_finished(client: httpx.Client, url: str, timeout: float) -> dict[str, Any]:
    job: dict[str, Any] = wait_for(
        lambda: client.get(url).json(),
        lambda job: job["status"] not in ("queued", "running"),
        timeout=timeout,
        what=f"{url} finished",
    )
    return job


def test_a_job_killed_mid_fit_is_failed_with_a_problem_within_the_stale_window(
    crashed_fit: Crashed,
) -> None:
    assert crashed_fit.before["job"]["status"] == "running"
    with crashed_fit.client() as client:
        # failed once its heartbeat is older than the stale window (2 s), checked every
        # heartbeat (0.2 s); allow a few seconds for a loaded machine.
        job = job_finished(client, crashed_fit.before["job_url"], STALE_AFTER_SECONDS + 8)
    waited = time.monotonic() - crashed_fit.restarted_at
    assert waited < STALE_AFTER_SECONDS + 8
    assert job["status"] == "failed" and job["stage"] == "interrupted"
    error = job["error"]
    assert error["type"] == PROBLEMS + "job-interrupted"
    assert error["status"] == 500 and error["title"] == "Job interrupted"
    assert "interrupted by a server restart" in error["detail"]
    assert job["finished_at"] is not None


def test_the_restart_removes_the_killed_fits_spill_directory_and_the_database_is_sound(
    crashed_fit: Crashed,
) -> None:
    assert any(name.startswith("tmp/engine-") for name in crashed_fit.left_behind)
    assert scratch_entries(crashed_fit.data_dir) == []
    assert integrity_check(crashed_fit.data_dir / "cltv.sqlite3") == ["ok"]


def test_the_same_fit_submitted_again_after_the_restart_succeeds(crashed_fit: Crashed) -> None:
    with crashed_fit.client() as client:
        queued = client.post("/v1/fits", json=crashed_fit.before["body"])
        assert queued.status_code == 202, queued.text
        job = job_finished(client, queued.headers["Location"], timeout=120)
        assert job["status"] == "succeeded", job
        fit = client.get(f"/v1/fits/{queued.json()['id']}").json()
    assert fit["status"] == "succeeded"
    assert sorted(f["segment"]["channel"] for f in fit["result"]["fits"]) == [
        "Online",
        "Partner",
        "Retail",
    ]


def test_the_fit_of_a_killed_job_is_failed_too(crashed_fit: Crashed) -> None:
    with crashed_fit.client() as client:
        job_finished(client, crashed_fit.before["job_url"], STALE_AFTER_SECONDS + 8)
        fit = client.get(f"/v1/fits/{crashed_fit.before['fit_id']}").json()
    assert fit["status"] == "failed"
    assert fit["error"]["type"] == PROBLEMS + "job-interrupted"


# --- (c) business-case writes ---------------------------------------------------------------

# The hand-worked case of tests/cltv_api/service/test_business_cases_api.py: yearly periods,
# 10% a year, 1,000 customers, margin 10, retention 0.9 lifted to 0.95, 3 years, one-off cost
# 500 today, running cost 20 a year. NPV = -500 - 20/1.1 + 480/1.1^2 + 905/1.1^3.
HAND_NPV = -500 - 20 / 1.1 + 480 / 1.1**2 + 905 / 1.1**3


def case_body(name: str, one_off_cost: float) -> dict[str, Any]:
    return {
        "name": name,
        "initiative": {
            "name": "call detractors",
            "currency": "EUR",
            "one_off_cost": one_off_cost,
            "running_cost_per_period": 20.0,
            "horizon_periods": 3,
            "annual_discount_rate": 0.10,
            "period": "year",
        },
        "baseline": {
            "kind": "manual",
            "segments": [
                {"name": "mass", "customers": 1000, "margin_per_customer": 10, "retention": 0.9}
            ],
        },
        "effects": {"mass": {"churn_reduction_points": 0.05}},
    }


def test_kill_during_business_case_writes_keeps_every_acknowledged_version_and_a_sound_database(
    tmp_path: Path,
) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "uvicorn.log"
    headers = api_key(data_dir)
    server = start_server(data_dir, log)
    acknowledged: list[tuple[str, int, float]] = []  # (name, version, one-off cost)
    unexpected: list[str] = []  # answers other than 201 Created
    stop = threading.Event()

    def writer(name: str) -> None:
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=30) as client:
            cost = 500.0
            while not stop.is_set():
                try:
                    response = client.post("/v1/business-cases", json=case_body(name, cost))
                except httpx.HTTPError:
                    return  # the server died under this request
                if response.status_code != 201:
                    unexpected.append(response.text)
                    return
                acknowledged.append((name, response.json()["version"], cost))
                cost += 1.0

    writers = [threading.Thread(target=writer, args=(f"case {i}",)) for i in range(3)]
    try:
        for thread in writers:
            thread.start()
        wait_for(lambda: len(acknowledged), lambda n: n >= 30, timeout=60, what="30 writes")
        kill(server)  # the writers have requests in flight
    finally:
        stop.set()
        kill(server)
        for thread in writers:
            thread.join(timeout=30)
    assert unexpected == []
    assert integrity_check(data_dir / "cltv.sqlite3") == ["ok"]
    restarted = start_server(data_dir, log)
    try:
        with httpx.Client(base_url=restarted.base_url, headers=headers, timeout=30) as client:
            listed = client.get("/v1/business-cases", params={"limit": 200}).json()["items"]
            assert sorted(item["name"] for item in listed) == ["case 0", "case 1", "case 2"]
            for item in listed:
                latest = item["version"]
                for version in range(1, latest + 1):
                    stored = client.get(f"{item['url']}/versions/{version}").json()
                    # versions are contiguous, and each row's result matches its own input:
                    # the one-off cost is paid today, so NPV moves one for one with it.
                    cost = stored["input"]["initiative"]["one_off_cost"]
                    assert cost == 500.0 + version - 1
                    assert stored["result"]["npv"] == pytest.approx(HAND_NPV - (cost - 500))
                assert all(v <= latest for n, v, _ in acknowledged if n == item["name"])
    finally:
        kill(restarted)
