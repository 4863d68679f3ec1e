"""The pipeline benchmark's stage breakdown still drives the command's steps."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq

from benchmarks.bench_pipeline import stage_breakdown
from benchmarks.generate import GeneratorConfig, generate_table


def test_stage_breakdown_times_every_step_of_cltv_segments(tmp_path: Path) -> None:
    path = tmp_path / "tx.parquet"
    pq.write_table(generate_table(GeneratorConfig(n_customers=2000, seed=3)), path)
    rows = stage_breakdown(path)
    assert [r["step"].split(" ")[0] for r in rows] == [
        "import",
        "engine",
        "summary",
        "fits",
        "valuation",
    ]
    assert all(r["seconds"] > 0 for r in rows)
    peaks = [r["peak RSS so far (MB)"] for r in rows]
    assert peaks == sorted(peaks) and peaks[0] > 50  # a high-water mark never goes down
