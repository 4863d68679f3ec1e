"""Scratch space (``cltv_api.ingest.store``): entries a live process holds survive a sweep,
entries of a killed process do not; write errors are classified by their errno."""

from __future__ import annotations

import errno
import signal
import subprocess
import sys
from pathlib import Path

import duckdb

from cltv_api.ingest.store import claim_scratch, storage_error, sweep_scratch
from tests.cltv_api.service.conftest import REPO_ROOT

CLAIM_AND_WAIT = (
    "import sys, time; from pathlib import Path; "
    "from cltv_api.ingest.store import claim_scratch; "
    "claim_scratch(Path(sys.argv[1]), directory=True); print('held', flush=True); time.sleep(60)"
)


def test_a_sweep_keeps_held_entries_and_removes_those_of_a_killed_process(tmp_path: Path) -> None:
    mine = claim_scratch(tmp_path / ".cltv-tmp-mine", directory=True)
    (mine.path / "spill.bin").write_bytes(b"x" * 10)
    child = subprocess.Popen(
        [sys.executable, "-c", CLAIM_AND_WAIT, str(tmp_path / ".cltv-tmp-child")],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "held"
        assert sweep_scratch(tmp_path) == []  # both owners are alive
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    (tmp_path / "keep.parquet").write_bytes(b"PAR1")  # not a scratch name: never swept
    assert sweep_scratch(tmp_path) == [tmp_path / ".cltv-tmp-child"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".cltv-tmp-mine", "keep.parquet"]
    mine.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.parquet"]


def test_storage_errors_are_classified_by_errno(tmp_path: Path) -> None:
    full = storage_error(OSError(errno.ENOSPC, "No space left on device"), tmp_path, "store it")
    assert full.status == 507 and full.extra == {"reason": "disk-full"}
    assert full.detail.startswith(f"The disk is full: could not store it in {tmp_path}")
    read_only = storage_error(OSError(errno.EROFS, "Read-only file system"), tmp_path, "write")
    assert read_only.status == 500 and read_only.extra == {"reason": "not-writable"}
    assert read_only.detail.startswith(f"The data directory {tmp_path} is not writable")
    # DuckDB's I/O errors carry no errno, only the C library's message
    quoted = duckdb.IOException('Could not write file "x": No space left on device')
    assert storage_error(quoted, tmp_path, "stage").status == 507
    other = storage_error(OSError(errno.EIO, "Input/output error"), tmp_path, "write")
    assert other.status == 507 and other.extra == {}
    assert other.detail == f"Could not write in {tmp_path}: Input/output error"
