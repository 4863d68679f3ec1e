"""File ingestion (``cltv_api.ingest.ingest_file``) on large uploads: Parquet and two CSVs.

    python -m benchmarks.bench_ingest [--customers 1000000] [--repeat 2] [--threads N]

The generated transactions (customer_id, order_id, date, amount, channel, region, nps_group)
are ingested with order ids and the three segment columns mapped, from:

* ``parquet``: the generated file itself (typed columns);
* ``csv``: the same rows as a comma-separated UTF-8 CSV (ISO dates, decimal point);
* ``csv-ru``: the same rows as a Russian-style export: ``;`` delimiter, decimal comma,
  ``dd.mm.yyyy`` dates, Russian headers and segment values, cp1251 encoding (so the file is
  transcoded first).

Each variant runs in a fresh process (best wall time of ``--repeat`` runs); the peak RSS is
the process's high-water mark (VmHWM) minus its resident size before ingesting, in MB.
The CSVs are written next to the Parquet file once, then reused.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import duckdb

from benchmarks.common import markdown_table, transactions_file

RU_VALUES = {
    "channel": {"Online": "Интернет", "Retail": "Магазин", "Partner": "Партнёр"},
    "region": {
        "North": "Север",
        "South": "Юг",
        "East": "Восток",
        "West": "Запад",
        "Central": "Центр",
    },
}
RU_HEADERS = ("Клиент", "Заказ", "Дата", "Сумма", "Канал", "Регион", "NPS")

# Runs in the child: ingest once, print seconds and memory (MB) as JSON on the last line.
CHILD = """
import json, sys, time
from cltv_api.ingest import ColumnMapping, ParseOptions, ingest_file

def vm(key):
    return [int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(key)][0] / 1024

path, data_dir, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
options = ParseOptions(threads=spec["threads"], max_issues_per_kind=20)
before = vm("VmRSS")
start = time.perf_counter()
result = ingest_file(path, mapping=ColumnMapping(**spec["mapping"]), options=options,
                     data_dir=data_dir)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rss_mb": vm("VmHWM") - before,
                  "rows": result.row_count, "stored": result.stored_rows,
                  "sha256": result.sha256}))
"""


def csv_files(parquet: Path) -> dict[str, Path]:
    """The CSV variants of ``parquet`` (written once)."""
    plain = parquet.with_suffix(".csv")
    russian = parquet.with_name(parquet.stem + "_ru.csv")
    con = duckdb.connect()
    con.execute("SET enable_progress_bar = false")
    try:
        src = f"read_parquet('{parquet}')"
        if not plain.exists():
            tmp = plain.with_suffix(".tmp")
            con.execute(
                f"COPY (SELECT customer_id, order_id, strftime(date, '%Y-%m-%d') AS date, "
                f"amount, channel, region, nps_group FROM {src}) TO '{tmp}' (FORMAT csv)"
            )
            tmp.rename(plain)
        if not russian.exists():
            _write_russian(con, src, russian)
    finally:
        con.close()
    return {"csv": plain, "csv-ru": russian}


def _write_russian(con: duckdb.DuckDBPyConnection, src: str, path: Path) -> None:
    """``;``-separated, decimal comma, dd.mm.yyyy, Russian names, re-encoded to cp1251."""
    utf8 = path.with_suffix(".utf8.tmp")

    def case(column: str) -> str:
        whens = " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in RU_VALUES[column].items())
        return f"CASE {column} {whens} ELSE {column} END"

    con.execute(
        f"COPY (SELECT customer_id, order_id, strftime(date, '%d.%m.%Y'), "
        f"replace(printf('%.2f', amount), '.', ','), {case('channel')}, {case('region')}, "
        f"nps_group FROM {src}) TO '{utf8}' (FORMAT csv, DELIMITER ';', HEADER false)"
    )
    tmp = path.with_suffix(".tmp")
    with utf8.open(encoding="utf-8", newline="") as fin, tmp.open("wb") as fout:
        fout.write((";".join(RU_HEADERS) + "\n").encode("cp1251"))
        while chunk := fin.read(1 << 22):
            fout.write(chunk.encode("cp1251"))
    utf8.unlink()
    tmp.rename(path)


def mapping_of(variant: str) -> dict[str, Any]:
    if variant == "csv-ru":
        customer, order, when, amount, *segments = RU_HEADERS
    else:
        customer, order, when, amount = "customer_id", "order_id", "date", "amount"
        segments = ["channel", "region", "nps_group"]
    return {
        "customer_id": customer,
        "order_id": order,
        "date": when,
        "amount": amount,
        "segments": segments,
    }


def run_child(path: Path, variant: str, threads: int | None) -> dict[str, Any]:
    spec = json.dumps({"mapping": mapping_of(variant), "threads": threads})
    with tempfile.TemporaryDirectory() as tmp:
        proc = subprocess.run(
            [sys.executable, "-c", CHILD, str(path), str(Path(tmp) / "data"), spec],
            capture_output=True,
            text=True,
            check=False,
        )
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr[-3000:])
    out: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--customers", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (default all)")
    parser.add_argument("--only", choices=["parquet", "csv", "csv-ru"], action="append")
    args = parser.parse_args()
    parquet = transactions_file(args.customers)
    files = {"parquet": parquet, **csv_files(parquet)}
    rows = []
    for variant, path in files.items():
        if args.only and variant not in args.only:
            continue
        runs = [run_child(path, variant, args.threads) for _ in range(args.repeat)]
        best = min(runs, key=lambda r: r["seconds"])
        rows.append(
            {
                "input": variant,
                "MB": path.stat().st_size / 1e6,
                "rows": best["rows"],
                "seconds (best)": best["seconds"],
                "rows/s": best["rows"] / best["seconds"],
                "peak RSS delta (MB)": max(r["rss_mb"] for r in runs),
                "sha256": best["sha256"][:12],
            }
        )
    print(f"{args.customers:,} customers, threads={args.threads or 'default'}")
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
