"""A full disk and a read-only data directory during uploads, for real: the data directory (or
its ``datasets/`` folder) is a small tmpfs mounted for the test, and "read-only" is that tmpfs
remounted read-only (``chmod`` would not stop root). Needs root and mount(2), as on the CI
machine; elsewhere the tests are skipped.

Expected: a full disk answers 507 Insufficient Storage whose detail says the disk is full; a
read-only data directory answers 500 naming the data directory as not writable; both are
problem details, leave no temporary file, and the data sets stored before stay listed and
readable.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cltv_api.faults.conftest import (
    api_key,
    integrity_check,
    scratch_entries,
    start_server,
    upload_csv,
    write_transactions_csv,
)
from tests.cltv_api.service.conftest import LiveServer

pytestmark = pytest.mark.slow

PROBLEM_MEDIA_TYPE = "application/problem+json"
STORAGE_ERROR = "https://cltv.dev/problems/storage-error"
MIB = 1024 * 1024


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)


@pytest.fixture
def small_disk() -> Iterator[Any]:
    """``mount_small_disk(path, size_mib)`` mounts a tmpfs of that size at ``path``; every
    mount is unmounted at the end. Skips the test where mounting is not permitted."""
    mounted: list[Path] = []

    def mount_small_disk(path: Path, size_mib: int) -> Path:
        path.mkdir(parents=True, exist_ok=True)
        if os.geteuid() != 0:
            pytest.skip("mounting a small tmpfs needs root")
        done = _mount("-t", "tmpfs", "-o", f"size={size_mib}m,mode=0755", "tmpfs", str(path))
        if done.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
        mounted.append(path)
        return path

    yield mount_small_disk
    for path in reversed(mounted):
        if subprocess.run(["umount", str(path)], check=False).returncode != 0:
            subprocess.run(["umount", "-l", str(path)], check=False)


def assert_storage_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    body: dict[str, Any] = response.json()
    assert body["type"] == STORAGE_ERROR and body["status"] == status
    assert body["instance"] == "/v1/datasets"
    return body


def post_raw_csv(client: httpx.Client, path: Path) -> httpx.Response:
    """Upload a CSV file as the raw request body."""
    return client.post(
        "/v1/datasets",
        params={"filename": path.name},
        content=path.read_bytes(),
        headers={"Content-Type": "text/csv"},
    )


def assert_disk_full(response: httpx.Response) -> None:
    problem = assert_storage_problem(response, 507)
    assert problem["detail"].startswith("The disk is full")
    assert "No space left on device" in problem["detail"]
    assert problem["reason"] == "disk-full"


def assert_previous_data_intact(client: httpx.Client, dataset: dict[str, Any]) -> None:
    listed = client.get("/v1/datasets").json()["items"]
    assert [d["id"] for d in listed] == [dataset["id"]]
    again = client.get(f"/v1/datasets/{dataset['id']}").json()
    assert again["sha256"] == dataset["sha256"]
    summary = client.get(f"/v1/datasets/{dataset['id']}/summary")
    assert summary.status_code == 200, summary.text
    # 300 generated customers, every one of whom bought at least once
    assert summary.json()["stats"]["customers"] == 300


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A small upload (300 customers, about 75 kB) and a big one (60,000, about 15 MB), both
    generated transactions."""
    return {
        "small": write_transactions_csv(tmp_path / "small.csv", customers=300),
        "big": write_transactions_csv(tmp_path / "big.csv", customers=60_000),
    }


def serve(
    servers: list[LiveServer], data_dir: Path, tmp_path: Path, **env: str
) -> tuple[LiveServer, httpx.Client]:
    server = start_server(data_dir, tmp_path / "uvicorn.log", env)
    servers.append(server)
    return server, httpx.Client(base_url=server.base_url, timeout=120)


def test_a_full_disk_while_receiving_an_upload_is_507_and_keeps_earlier_data(
    small_disk: Any, files: dict[str, Path], tmp_path: Path, servers: list[LiveServer]
) -> None:
    # The whole data directory, SQLite database included, on an 8 MiB disk; the big upload
    # (15 MB) cannot fit while it is received.
    data_dir = small_disk(tmp_path / "data", size_mib=8)
    headers = api_key(data_dir)
    _, client = serve(servers, data_dir, tmp_path)
    with client:
        client.headers.update(headers)
        dataset = upload_csv(client, files["small"], "before")
        free_before = os.statvfs(data_dir).f_bavail
        assert_disk_full(post_raw_csv(client, files["big"]))
        assert scratch_entries(data_dir) == []  # the partial upload was removed...
        assert os.statvfs(data_dir).f_bavail >= free_before - 64  # ...and its space is free
        assert_previous_data_intact(client, dataset)
    assert integrity_check(data_dir / "cltv.sqlite3") == ["ok"]


def test_a_full_disk_while_storing_the_normalised_data_is_507_and_keeps_earlier_data(
    small_disk: Any, files: dict[str, Path], tmp_path: Path, servers: list[LiveServer]
) -> None:
    # Only datasets/ (ingestion's work database and the Parquet files) on a 1 MiB disk: the
    # upload is received on the roomy disk, then ingestion runs out of space.
    data_dir = tmp_path / "data"
    headers = api_key(data_dir)
    _, client = serve(servers, data_dir, tmp_path)
    with client:
        client.headers.update(headers)
        small_disk(data_dir / "datasets", size_mib=1)
        dataset = upload_csv(client, files["small"], "before")
        assert_disk_full(post_raw_csv(client, files["big"]))
        assert scratch_entries(data_dir) == []
        assert sorted(p.name for p in (data_dir / "datasets").iterdir()) == [
            f"{dataset['sha256']}.parquet"
        ]
        assert_previous_data_intact(client, dataset)


def test_a_read_only_data_directory_is_a_500_naming_it_and_keeps_earlier_data(
    small_disk: Any, files: dict[str, Path], tmp_path: Path, servers: list[LiveServer]
) -> None:
    # The data directory on its own tmpfs, remounted read-only once a data set is stored; the
    # database lives elsewhere (as with PostgreSQL), so only the files are read-only.
    data_dir = small_disk(tmp_path / "data", size_mib=64)
    database = tmp_path / "db" / "cltv.sqlite3"
    database.parent.mkdir()
    url = f"sqlite:///{database}"
    headers = api_key(data_dir, database_url=url)
    _, client = serve(servers, data_dir, tmp_path, CLTV_DATABASE_URL=url)
    with client:
        client.headers.update(headers)
        dataset = upload_csv(client, files["small"], "before")
        remount = _mount("-o", "remount,ro", str(data_dir))
        assert remount.returncode == 0, remount.stderr
        problem = assert_storage_problem(post_raw_csv(client, files["small"]), 500)
        assert problem["detail"].startswith(f"The data directory {data_dir} is not writable")
        assert "Read-only file system" in problem["detail"]
        assert problem["reason"] == "not-writable"
        assert_previous_data_intact(client, dataset)
    assert integrity_check(database) == ["ok"]
