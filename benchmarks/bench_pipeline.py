"""Summary and end-to-end pipeline: ours vs lifetimes on the same transactions, one run.

    python -m benchmarks.bench_pipeline [--customers 1000000]

1. Summary step: our engine (DuckDB, Parquet in -> summary Parquet out) vs
   ``lifetimes.utils.summary_data_from_transaction_data`` on the same rows already in pandas.
2. End to end, each in a fresh process, wall time and peak RSS (VmHWM):
   - ours: ``cltv segments FILE --segment-by channel --model bgnbd --time-unit days``
     (read, validate, summarise, fit BG/NBD + Gamma-Gamma, 12-month CLTV with intervals per
     segment);
   - lifetimes: read the Parquet into pandas, summary, BetaGeoFitter, GammaGammaFitter on repeat
     customers, 12-month CLTV (monthly discount 1%), mean CLTV per channel.
3. Where the time goes: the command's steps timed one by one in a fresh process.
Targets (issue 4): summary >= 4x faster; end to end >= 15x faster with peak RSS under half.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import best_of, markdown_table, quiet, transactions_file

# Peak RSS is the kernel's high-water mark of the process itself (VmHWM, kB), which exec
# resets; ru_maxrss can carry the parent's peak into a freshly spawned child.
PEAK = """
print([line.split()[1] for line in open("/proc/self/status") if line.startswith("VmHWM")][0],
      file=sys.stderr)
"""

OURS = (
    """
import sys, io
from cltv_api.cli import main
out = io.StringIO()
rc = main(["segments", sys.argv[1], "--segment-by", "channel", "--model", "bgnbd",
           "--time-unit", "days", "--format", "csv", "--quiet", *sys.argv[2:]], out=out)
assert rc == 0, rc
"""
    + PEAK
)

LIFETIMES = (
    """
import sys, warnings
warnings.simplefilter("ignore")
import pandas as pd
from lifetimes import BetaGeoFitter, GammaGammaFitter
from lifetimes.utils import summary_data_from_transaction_data
tx = pd.read_parquet(sys.argv[1], columns=["customer_id", "date", "amount", "channel"])
s = summary_data_from_transaction_data(tx, "customer_id", "date", monetary_value_col="amount", freq="D")
bg = BetaGeoFitter().fit(s["frequency"], s["recency"], s["T"])
rep = s[s["frequency"] > 0]
gg = GammaGammaFitter().fit(rep["frequency"], rep["monetary_value"])
clv = gg.customer_lifetime_value(bg, s["frequency"], s["recency"], s["T"], s["monetary_value"],
                                 time=12, discount_rate=0.01, freq="D")
first = tx.sort_values("date").groupby("customer_id")["channel"].first()
print(clv.groupby(first.reindex(clv.index)).mean().to_dict(), file=sys.stdout)
"""
    + PEAK
)


STAGES = """
import json, sys, tempfile, time
from pathlib import Path
def peak():
    return int([l.split()[1] for l in open("/proc/self/status") if l.startswith("VmHWM")][0]) / 1024
rows, start = [], time.perf_counter()
def mark(step, since):
    now = time.perf_counter()
    rows.append({"step": step, "seconds": now - since, "peak RSS so far (MB)": peak()})
    return now
from cltv_api import cli
t = mark("import cltv_api.cli", start)
args = cli.build_parser().parse_args(["segments", sys.argv[1], "--segment-by", "channel",
    "--model", "bgnbd", "--time-unit", "days", "--quiet"])
progress = cli.Progress([], quiet=True)
with tempfile.TemporaryDirectory() as tmp, cli._engine(args, Path(tmp)) as engine:
    t = mark("engine (imports Ibis' DuckDB backend)", t)
    tx = cli._transactions(args, engine, Path(tmp))
    summary = cli._summary(args, engine, tx, progress)
    t = mark("summary (validation scan + customer parts)", t)
    fitted = cli._fit(args, engine, tx, summary)
    t = mark("fits (BG/NBD, Gamma-Gamma)", t)
    cli.segment_table(summary, fitted, cli._valuation(args), by=args.segment_by)
    t = mark("valuation (segment table)", t)
print(json.dumps(rows))
"""


def stage_breakdown(path: Path) -> list[dict[str, Any]]:
    """Seconds and peak RSS after each step of ``cltv segments``, in one fresh process."""
    proc = subprocess.run(
        [sys.executable, "-c", STAGES, str(path)], capture_output=True, text=True, check=False
    )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    rows: list[dict[str, Any]] = json.loads(proc.stdout.strip().splitlines()[-1])
    return rows


def run_process(code: str, path: Path, *extra: str) -> tuple[float, float]:
    """Wall seconds and peak RSS (MB) of a fresh Python process running ``code``."""
    start = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, str(path), *extra],
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-2000:])
    peak_kb = float(proc.stderr.strip().splitlines()[-1])
    return wall, peak_kb / 1024


def summary_step(path: Path) -> dict[str, Any]:
    import pandas as pd

    from cltv_api.engine import Engine, summarize

    with tempfile.TemporaryDirectory() as tmp, Engine.duckdb() as engine:
        ours, _ = best_of(
            lambda: engine.to_parquet(
                summarize(engine.table(path), "days"), Path(tmp) / "s.parquet"
            )
        )
    tx = pd.read_parquet(path, columns=["customer_id", "date", "amount"])
    with quiet():
        from lifetimes.utils import summary_data_from_transaction_data

        theirs, _ = best_of(
            lambda: summary_data_from_transaction_data(
                tx, "customer_id", "date", monetary_value_col="amount", freq="D"
            ),
            1,
        )
    return {"step": "summary", "ours (s)": ours, "lifetimes (s)": theirs, "speed-up": theirs / ours}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    path = transactions_file(args.customers)
    rows: list[dict[str, Any]] = [summary_step(path)]
    theirs_wall, theirs_rss = run_process(LIFETIMES, path)
    for label, extra in (("default", ()), ("--memory-limit 256MB", ("--memory-limit", "256MB"))):
        ours_wall, ours_rss = min(run_process(OURS, path, *extra) for _ in range(2))
        rows.append(
            {
                "step": f"end to end (process), {label}",
                "ours (s)": ours_wall,
                "lifetimes (s)": theirs_wall,
                "speed-up": theirs_wall / ours_wall,
                "ours peak RSS (MB)": ours_rss,
                "lifetimes peak RSS (MB)": theirs_rss,
                "RSS ratio": ours_rss / theirs_rss,
            }
        )
    rows[0].update({"ours peak RSS (MB)": "", "lifetimes peak RSS (MB)": "", "RSS ratio": ""})
    print(
        f"{args.customers:,} customers, transactions file {path.name}, {resource.getpagesize()} B pages"
    )
    print(markdown_table(rows))
    print("\nWhere the time goes (one process, default settings; Python start not included):")
    print(markdown_table(stage_breakdown(path)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2, default=str))


if __name__ == "__main__":
    main()
