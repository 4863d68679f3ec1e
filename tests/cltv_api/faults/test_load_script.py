"""``benchmarks/load.py``: its wrk result parsing and memory slope, and a 2-second run against
the calculator that must report numbers and no errors (not a performance check)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from benchmarks.load import (
    RESULT_MARK,
    WrkResult,
    lua_script,
    parse_wrk,
    slope_mib_per_minute,
    targets,
)
from tests.cltv_api.service.conftest import REPO_ROOT


def test_parse_wrk_reads_the_result_line_in_milliseconds() -> None:
    output = (
        "Running 2s test @ http://127.0.0.1:1/v1/calculator\n"
        f'{RESULT_MARK}{{"requests":5000,"duration_us":2000000,"non_2xx":3,"connect":1,'
        '"read":2,"write":0,"timeout":4,"p50_us":1500,"p90_us":4000,"p99_us":12500,'
        '"max_us":30000}\n'
    )
    # 5000 requests in 2 s = 2500 rps; errors = 3 non-2xx + 1 + 2 + 0 + 4 socket errors.
    assert parse_wrk(output) == WrkResult(
        requests=5000,
        seconds=2.0,
        non_2xx=3,
        socket_errors=7,
        p50_ms=1.5,
        p90_ms=4.0,
        p99_ms=12.5,
        max_ms=30.0,
    )
    assert parse_wrk(output).rps == 2500.0 and parse_wrk(output).errors == 10


def test_parse_wrk_without_a_result_line_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no result line"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_rss_slope_is_the_least_squares_mib_per_minute() -> None:
    # 100, 101, 102 MiB at 0, 60, 120 s: 1 MiB a minute; noise around a flat line: 0.
    assert slope_mib_per_minute([(0, 100), (60, 101), (120, 102)]) == pytest.approx(1.0)
    assert slope_mib_per_minute([(0, 100), (5, 101), (10, 100)]) == pytest.approx(0.0)
    assert slope_mib_per_minute([(0, 100)]) == 0.0


def test_lua_script_sends_the_method_body_and_key() -> None:
    script = lua_script(targets("cltv_secret", "fit_x")["segments"])
    assert "wrk.method = [==[GET]==]" in script and "wrk.body = nil" in script
    assert "wrk.headers[ [==[Authorization]==] ] = [==[Bearer cltv_secret]==]" in script
    calculator = lua_script(targets("k", "f")["calculator"])
    assert '"retention_rate": 0.85' in calculator and "[==[POST]==]" in calculator


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("wrk") is None, reason="wrk is not installed")
def test_a_two_second_calculator_run_reports_numbers_and_no_errors(tmp_path: Path) -> None:
    out = tmp_path / "load.json"
    command = [
        sys.executable, "-m", "benchmarks.load", "--duration", "2", "--warmup", "0",
        "--endpoints", "calculator", "--customers", "300", "--connections", "4",
        "--json", str(out),
    ]  # fmt: skip
    done = subprocess.run(
        command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=180, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "| endpoint | requests/s | p50 ms | p90 ms | p99 ms | errors | RSS MiB |" in done.stdout
    result = json.loads(out.read_text())["results"]["calculator"]
    assert result["requests"] > 0 and 1.0 <= result["seconds"] < 5.0
    assert result["rps"] == pytest.approx(result["requests"] / result["seconds"])
    assert 0 < result["p50_ms"] <= result["p90_ms"] <= result["p99_ms"] <= result["max_ms"]
    assert result["errors"] == 0 and result["non_2xx"] == 0 and result["socket_errors"] == 0
    assert result["rss_mib"] > 10  # a Python process with numpy, DuckDB and FastAPI loaded
