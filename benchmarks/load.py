"""Load test of a real server with ``wrk``: throughput, latency percentiles, errors and memory.

    python -m benchmarks.load [--duration 30] [--warmup 5] [--connections 16] [--soak SECONDS]

Starts uvicorn (one worker, 127.0.0.1, access log off) on a fresh temporary data directory,
seeds a workspace, a data set (generated transactions, ``benchmarks/generate.py``) and a fit,
then runs ``wrk`` (a Lua script sets the method, JSON body and API key) against:

* ``calculator``: ``POST /v1/calculator`` with a typical body (no key, no database);
* ``segments``: ``GET /v1/fits/{id}/segments?format=csv`` of the seeded fit, read once before
  so it comes from the in-process segment cache (key check, database read, CSV rendering).

The server runs with the service's defaults (log level INFO, to a file) except the rate limit,
which is off (``CLTV_RATE_LIMIT_PER_SECOND=0``): all the load comes from one address and key.
Each endpoint gets a warm-up run (not reported), then a measured run of ``--duration`` seconds.
``--soak SECONDS`` adds a long calculator run during which the server's resident memory (RSS,
``/proc/<pid>/status``) is sampled every ``--sample-every`` seconds; the report gives its
start, end and maximum and the least-squares slope in MiB per minute (a leak shows as a steady
positive slope). The result is a markdown table: requests/s, p50/p90/p99 latency (ms, wrk's
latency distribution), errors (wrk's non-2xx/3xx responses plus socket connect/read/write/
timeout errors) and the server's RSS after the run; ``--json PATH`` also writes the numbers.

Target (issue 9) for the calculator on 2 cores: >= 2000 requests/s, p99 < 25 ms, no errors.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pyarrow.csv as pa_csv

from benchmarks import bench_api
from benchmarks.bench_api import bootstrap_key, free_port
from benchmarks.common import markdown_table
from benchmarks.generate import GeneratorConfig, generate_table

WRK = shutil.which("wrk") or "/usr/bin/wrk"
RESULT_MARK = "CLTV_WRK_RESULT "
TARGET_RPS, TARGET_P99_MS = 2000.0, 25.0

CALCULATOR_BODY: dict[str, Any] = {
    # A subscription-like customer: 80 a month at 30% margin, 85% monthly retention, 10% a
    # year discounting, three-year horizon, 120 to acquire.
    "average_order_value": 80.0,
    "purchases_per_period": 1.0,
    "gross_margin": 0.3,
    "retention_rate": 0.85,
    "annual_discount_rate": 0.10,
    "period": "month",
    "timing": "start",
    "horizon_periods": 36,
    "acquisition_cost": 120.0,
    "currency": "EUR",
}

# wrk's done() callback prints one JSON line; latencies are in microseconds.
LUA_TEMPLATE = """
wrk.method = {method}
wrk.body = {body}
{headers}
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{mark}{{"requests":%d,"duration_us":%d,"non_2xx":%d,"connect":%d,"read":%d,' ..
    '"write":%d,"timeout":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}}\\n',
    summary.requests, summary.duration, e.status, e.connect, e.read, e.write, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max))
end
"""


@dataclass(frozen=True)
class Target:
    """One endpoint to load: method, path (with query), JSON body, headers."""

    name: str
    method: str
    path: str
    body: str | None = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests: int
    seconds: float
    non_2xx: int
    socket_errors: int
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def lua_string(text: str) -> str:
    """A Lua string literal (long brackets cannot hold ``]]``; JSON rarely does)."""
    return "[==[" + text + "]==]"


def lua_script(target: Target) -> str:
    headers = "\n".join(
        f"wrk.headers[ {lua_string(k)} ] = {lua_string(v)}" for k, v in target.headers.items()
    )
    return LUA_TEMPLATE.format(
        method=lua_string(target.method),
        body=lua_string(target.body) if target.body is not None else "nil",
        headers=headers,
        mark=RESULT_MARK,
    )


def parse_wrk(output: str) -> WrkResult:
    """The numbers from the JSON line the Lua ``done`` callback printed."""
    for line in output.splitlines():
        if line.startswith(RESULT_MARK):
            raw = json.loads(line[len(RESULT_MARK) :])
            return WrkResult(
                requests=int(raw["requests"]),
                seconds=raw["duration_us"] / 1e6,
                non_2xx=int(raw["non_2xx"]),
                socket_errors=sum(int(raw[k]) for k in ("connect", "read", "write", "timeout")),
                p50_ms=raw["p50_us"] / 1000,
                p90_ms=raw["p90_us"] / 1000,
                p99_ms=raw["p99_us"] / 1000,
                max_ms=raw["max_us"] / 1000,
            )
    raise RuntimeError(f"no result line in wrk's output:\n{output}")


def run_wrk(
    base_url: str, target: Target, seconds: float, connections: int, threads: int, work: Path
) -> WrkResult:
    """One wrk run against ``target`` for ``seconds``."""
    script = work / f"{target.name}.lua"
    script.write_text(lua_script(target))
    command = [
        WRK, f"-t{threads}", f"-c{connections}", f"-d{max(1, round(seconds))}s",
        "--latency", "--timeout", "5s", "-s", str(script), base_url + target.path,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return parse_wrk(done.stdout)


# --- the server ----------------------------------------------------------------------------


def rss_mib(pid: int) -> float:
    """Resident memory of a process, MiB (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def start_server(
    data_dir: Path, port: int, log: Path, log_level: str = "INFO"
) -> subprocess.Popen[bytes]:
    """uvicorn with the service's default settings, except: no per-key/per-IP rate limit (all
    load comes from one address and one key) and the given log level (logs go to ``log``)."""
    return bench_api.start_server(
        data_dir,
        port,
        env={"CLTV_LOG_LEVEL": log_level, "CLTV_RATE_LIMIT_PER_SECOND": "0"},
        args=["--workers", "1", "--no-access-log", "--log-level", "warning"],
        log=log,
    )


def seed(base_url: str, key: str, work: Path, customers: int) -> str:
    """Upload generated transactions, fit BG/NBD + Gamma-Gamma by channel (in the request) and
    read its segment table once; returns the fit's id."""
    csv = work / "transactions.csv"
    pa_csv.write_csv(generate_table(GeneratorConfig(n_customers=customers, seed=42)), csv)
    headers = {"Authorization": f"Bearer {key}"}
    with httpx.Client(base_url=base_url, headers=headers, timeout=300) as client:
        dataset = client.post(
            "/v1/datasets",
            params={"filename": csv.name, "segment_cols": "channel"},
            content=csv.read_bytes(),
            headers={"Content-Type": "text/csv"},
        )
        dataset.raise_for_status()
        fit = client.post(
            "/v1/fits",
            json={
                "dataset_id": dataset.json()["id"],
                "purchase_model": "bgnbd",
                "segment_by": ["channel"],
            },
        )
        if fit.status_code != 201:
            raise RuntimeError(f"the seed fit did not finish in the request: {fit.text}")
        fit_id: str = fit.json()["id"]
        client.get(f"/v1/fits/{fit_id}/segments", params={"format": "csv"}).raise_for_status()
    return fit_id


def targets(key: str, fit_id: str) -> dict[str, Target]:
    return {
        "calculator": Target(
            "calculator",
            "POST",
            "/v1/calculator",
            json.dumps(CALCULATOR_BODY),
            {"Content-Type": "application/json"},
        ),
        "segments": Target(
            "segments",
            "GET",
            f"/v1/fits/{fit_id}/segments?format=csv",
            headers={"Authorization": f"Bearer {key}"},
        ),
    }


# --- soak ----------------------------------------------------------------------------------


class RssSampler(threading.Thread):
    """Samples a process's RSS every ``interval`` seconds: (seconds since start, MiB)."""

    def __init__(self, pid: int, interval: float) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self.stop = threading.Event()

    def run(self) -> None:
        start = time.monotonic()
        while True:
            self.samples.append((time.monotonic() - start, rss_mib(self.pid)))
            if self.stop.wait(self.interval):
                self.samples.append((time.monotonic() - start, rss_mib(self.pid)))
                return


def slope_mib_per_minute(samples: Sequence[tuple[float, float]]) -> float:
    """Least-squares slope of RSS against time, MiB per minute (0 for fewer than 2 samples)."""
    if len(samples) < 2:
        return 0.0
    n = len(samples)
    mean_t = sum(t for t, _ in samples) / n
    mean_m = sum(m for _, m in samples) / n
    var_t = sum((t - mean_t) ** 2 for t, _ in samples)
    if var_t == 0:
        return 0.0
    cov = sum((t - mean_t) * (m - mean_m) for t, m in samples)
    return cov / var_t * 60


# --- main ----------------------------------------------------------------------------------


def result_row(name: str, result: WrkResult, rss: float) -> dict[str, Any]:
    return {
        "endpoint": name,
        "requests/s": round(result.rps, 1),
        "p50 ms": result.p50_ms,
        "p90 ms": result.p90_ms,
        "p99 ms": result.p99_ms,
        "errors": result.errors,
        "RSS MiB": round(rss, 1),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Start, seed, load each endpoint (and soak); returns the numbers for the report."""
    report: dict[str, Any] = {"results": {}, "soak": None}
    with tempfile.TemporaryDirectory(prefix="cltv-load-") as tmp:
        work = Path(tmp)
        data_dir = work / "data"
        key = bootstrap_key(data_dir)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_server(data_dir, port, work / "uvicorn.log", args.log_level)
        try:
            fit_id = seed(base, key, work, args.customers)
            chosen = targets(key, fit_id)
            for name in args.endpoints:
                target = chosen[name]
                if args.warmup > 0:
                    run_wrk(base, target, args.warmup, args.connections, args.threads, work)
                result = run_wrk(base, target, args.duration, args.connections, args.threads, work)
                report["results"][name] = {
                    **asdict(result),
                    "rps": result.rps,
                    "errors": result.errors,
                    "rss_mib": rss_mib(server.pid),
                }
            if args.soak:
                sampler = RssSampler(server.pid, args.sample_every)
                sampler.start()
                result = run_wrk(
                    base, chosen["calculator"], args.soak, args.connections, args.threads, work
                )
                sampler.stop.set()
                sampler.join()
                memory = [m for _, m in sampler.samples]
                report["soak"] = {
                    **asdict(result),
                    "rps": result.rps,
                    "errors": result.errors,
                    "rss_start_mib": memory[0],
                    "rss_end_mib": memory[-1],
                    "rss_max_mib": max(memory),
                    "rss_slope_mib_per_min": slope_mib_per_minute(sampler.samples),
                    "samples": sampler.samples,
                }
        finally:
            server.terminate()
            server.wait(timeout=60)
    return report


def print_report(report: dict[str, Any], args: argparse.Namespace) -> None:
    rows = [
        result_row(name, WrkResult(**_wrk_fields(r)), r["rss_mib"])
        for name, r in report["results"].items()
    ]
    print(
        f"wrk: {args.threads} thread(s), {args.connections} connections, {args.duration:g} s "
        f"per endpoint after {args.warmup:g} s warm-up; {os.cpu_count()} CPU(s)"
    )
    if rows:
        print(markdown_table(rows))
    calculator = report["results"].get("calculator")
    if calculator is not None:
        met = (
            calculator["rps"] >= TARGET_RPS
            and calculator["p99_ms"] < TARGET_P99_MS
            and calculator["errors"] == 0
        )
        print(
            f"\ncalculator target (>= {TARGET_RPS:g} rps, p99 < {TARGET_P99_MS:g} ms, 0 errors): "
            f"{'met' if met else 'NOT met'}"
        )
    soak = report["soak"]
    if soak is not None:
        print(f"\nsoak: calculator for {args.soak:g} s, RSS every {args.sample_every:g} s")
        print(
            markdown_table(
                [
                    {
                        "requests/s": round(soak["rps"], 1),
                        "p99 ms": soak["p99_ms"],
                        "errors": soak["errors"],
                        "RSS start MiB": round(soak["rss_start_mib"], 1),
                        "RSS end MiB": round(soak["rss_end_mib"], 1),
                        "RSS max MiB": round(soak["rss_max_mib"], 1),
                        "slope MiB/min": round(soak["rss_slope_mib_per_min"], 3),
                    }
                ]
            )
        )


def _wrk_fields(raw: dict[str, Any]) -> dict[str, Any]:
    return {name: raw[name] for name in WrkResult.__dataclass_fields__}


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=30.0, help="seconds per endpoint")
    parser.add_argument("--warmup", type=float, default=5.0, help="warm-up seconds (0: none)")
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1, help="wrk threads")
    parser.add_argument(
        "--endpoints",
        type=lambda text: [part for part in text.split(",") if part],
        default=["calculator", "segments"],
        help="comma-separated: calculator, segments",
    )
    parser.add_argument("--soak", type=float, default=0.0, help="soak seconds (0: no soak)")
    parser.add_argument("--sample-every", type=float, default=5.0, help="RSS sampling, seconds")
    parser.add_argument("--customers", type=int, default=5000, help="customers in the seed data")
    parser.add_argument(
        "--log-level", default="INFO", help="the server's CLTV_LOG_LEVEL (default: INFO)"
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the numbers here")
    args = parser.parse_args(argv)
    unknown = set(args.endpoints) - {"calculator", "segments"}
    if unknown:
        parser.error(f"unknown endpoint(s): {sorted(unknown)}")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    report = run(args)
    print_report(report, args)
    if args.json is not None:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
