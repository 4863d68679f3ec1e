"""API round trip vs the command line on the same file, and responsiveness during a fit.

    python -m benchmarks.bench_api [--customers 1000000]

Starts a real uvicorn (one worker) on 127.0.0.1 with a fresh data directory, then: upload the
generated transactions (raw Parquet body), fit BG/NBD + Gamma-Gamma per channel in days (a
background job: the sync threshold is set low), poll the job, read the segment table. While the
job runs, another client calls /healthz every 50 ms and records the latencies. The same file
goes through ``cltv segments`` in a fresh process for the ratio.
Targets (issue 5): the round trip within 2x of ``cltv segments``; the API stays responsive.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from benchmarks.common import markdown_table, transactions_file

SEGMENT_ARGS = ["--segment-by", "channel", "--model", "bgnbd", "--time-unit", "days", "-q"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(
    data_dir: Path,
    port: int,
    *,
    env: dict[str, str] | None = None,
    args: Sequence[str] = (),
    log: Path | None = None,
    timeout: float = 90.0,
) -> subprocess.Popen[bytes]:
    """``uvicorn cltv_api.main:app`` on 127.0.0.1:``port`` with ``CLTV_*`` settings ``env`` and
    extra uvicorn ``args``; output to ``log`` (discarded without one). Returns once /healthz
    answers."""
    environment = {**os.environ, "CLTV_DATA_DIR": str(data_dir), **(env or {})}
    environment.pop("CLTV_DATABASE_URL", None)
    command = [
        sys.executable, "-m", "uvicorn", "cltv_api.main:app",
        "--host", "127.0.0.1", "--port", str(port), *args,
    ]  # fmt: skip
    with log.open("wb") if log is not None else contextlib.nullcontext() as out:
        target = out if out is not None else subprocess.DEVNULL
        process = subprocess.Popen(command, env=environment, stdout=target, stderr=target)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            shown = log.read_text(errors="replace") if log is not None else ""
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{shown}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    process.kill()
    raise RuntimeError(f"uvicorn did not start within {timeout:g} s")


def bootstrap_key(data_dir: Path) -> str:
    code = "from cltv_api.services.workspaces import bootstrap_workspace as b; print(b('bench')[1])"
    env = {**os.environ, "CLTV_DATA_DIR": str(data_dir)}
    env.pop("CLTV_DATABASE_URL", None)
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return out.stdout.strip().splitlines()[-1]


class Pinger(threading.Thread):
    """Calls /healthz every 50 ms and keeps the latencies (seconds)."""

    def __init__(self, base: str) -> None:
        super().__init__(daemon=True)
        self.base = base
        self.latencies: list[float] = []
        self.stop = threading.Event()

    def run(self) -> None:
        with httpx.Client(timeout=30) as client:
            while not self.stop.is_set():
                start = time.perf_counter()
                client.get(f"{self.base}/healthz")
                self.latencies.append(time.perf_counter() - start)
                time.sleep(0.05)


def api_round_trip(path: Path, base: str, key: str) -> tuple[float, Pinger]:
    headers = {"Authorization": f"Bearer {key}"}
    pinger = Pinger(base)
    start = time.perf_counter()
    with httpx.Client(base_url=base, headers=headers, timeout=600) as client, path.open("rb") as fh:
        up = client.post(
            "/v1/datasets",
            params={"filename": path.name, "segment_cols": "channel"},
            content=fh,
            headers={"Content-Type": "application/vnd.apache.parquet"},
        )
        up.raise_for_status()
        fit = client.post(
            "/v1/fits",
            json={
                "dataset_id": up.json()["id"],
                "purchase_model": "bgnbd",
                "segment_by": ["channel"],
                "time_unit": "days",
            },
        )
        fit.raise_for_status()
        pinger.start()
        if fit.status_code == 202:
            job_url = fit.headers["Location"]
            while True:
                job = client.get(job_url).json()
                if job["status"] in ("succeeded", "failed", "cancelled"):
                    break
                time.sleep(0.1)
            if job["status"] != "succeeded":
                raise RuntimeError(job)
            fit_id = (
                job["result"]["id"]
                if isinstance(job.get("result"), dict)
                else job["result_url"].rsplit("/", 1)[-1]
            )
        else:
            fit_id = fit.json()["id"]
        pinger.stop.set()
        seg = client.get(f"/v1/fits/{fit_id}/segments", params={"format": "csv"})
        seg.raise_for_status()
    return time.perf_counter() - start, pinger


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    args = parser.parse_args()
    path = transactions_file(args.customers)
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cltv_api.cli", "segments", str(path), *SEGMENT_ARGS],
        check=True,
        capture_output=True,
    )
    cli_s = time.perf_counter() - start
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp) / "data"
        key = bootstrap_key(data_dir)
        port = free_port()
        server = start_server(data_dir, port, env={"CLTV_SYNC_FIT_MAX_CUSTOMERS": "1000"})
        try:
            api_s, pinger = api_round_trip(path, f"http://127.0.0.1:{port}", key)
        finally:
            server.terminate()
            server.wait(timeout=60)
    lat = sorted(pinger.latencies) or [float("nan")]
    rows = [
        {"what": "cltv segments (process)", "seconds": cli_s, "ratio to CLI": 1.0},
        {
            "what": "API upload + fit job + segments CSV",
            "seconds": api_s,
            "ratio to CLI": api_s / cli_s,
        },
    ]
    print(f"{args.customers:,} customers")
    print(markdown_table(rows))
    print(
        f"/healthz during the fit: {len(lat)} calls, median {statistics.median(lat) * 1000:.1f} ms, "
        f"p99 {lat[int(0.99 * (len(lat) - 1))] * 1000:.1f} ms, max {lat[-1] * 1000:.1f} ms"
    )


if __name__ == "__main__":
    main()
