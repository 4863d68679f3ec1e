"""The `cltv` command on real files: a Russian-style CSV export and normalised Parquet."""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from benchmarks.generate import GeneratorConfig, generate_table
from cltv_api.cli import main


@pytest.fixture(scope="module")
def parquet_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "tx.parquet"
    pq.write_table(generate_table(GeneratorConfig(n_customers=3000, seed=5)), path)
    return path


@pytest.fixture(scope="module")
def russian_csv(parquet_file: Path) -> Path:
    """The same transactions as a Windows-1251 export: ';', decimal comma, dd.mm.yyyy."""
    table = pq.read_table(parquet_file).to_pylist()
    path = parquet_file.with_name("выгрузка.csv")
    with path.open("w", encoding="cp1251", newline="") as fh:
        writer = csv.writer(fh, delimiter=";")
        writer.writerow(["Клиент", "Дата", "Сумма", "Канал"])
        for row in table:
            amount = f"{row['amount']:.2f}".replace(".", ",")
            writer.writerow(
                [row["customer_id"], row["date"].strftime("%d.%m.%Y"), amount, row["channel"]]
            )
    return path


def _run(*argv: str) -> str:
    out = io.StringIO()
    assert main([*argv, "--quiet"], out=out) == 0
    return out.getvalue()


def test_segments_csv_output_has_one_row_per_segment_plus_total(parquet_file: Path) -> None:
    text = _run(
        "segments",
        str(parquet_file),
        "--segment-by",
        "channel",
        "--format",
        "csv",
        "--margin",
        "0.3",
    )
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["channel"] for r in rows] == ["Online", "Partner", "Retail", "(all)"]
    assert sum(int(r["customers"]) for r in rows[:-1]) == int(rows[-1]["customers"]) == 3000
    for r in rows:
        assert float(r["clv_mean_lower"]) < float(r["clv_mean"]) < float(r["clv_mean_upper"])
    total = sum(float(r["clv_total"]) for r in rows[:-1])
    assert total == pytest.approx(float(rows[-1]["clv_total"]), rel=1e-9)


def test_a_warehouse_table_gives_the_same_segments_as_the_file(
    parquet_file: Path, tmp_path: Path
) -> None:
    # A DuckDB database file stands in for the warehouse; its columns have other names.
    import duckdb

    db = tmp_path / "warehouse.ddb"
    with duckdb.connect(str(db)) as con:
        con.execute(
            "CREATE TABLE orders AS SELECT customer_id AS client, date AS ordered_at, "
            f"amount AS total, channel FROM read_parquet('{parquet_file}')"
        )
    common = ["--segment-by", "channel", "--format", "csv", "--margin", "0.3"]
    from_file = _run("segments", str(parquet_file), *common)
    from_table = _run(
        "segments",
        "orders",
        "--from-url",
        f"duckdb:///{db}",
        "--customer-col",
        "client",
        "--date-col",
        "ordered_at",
        "--amount-col",
        "total",
        *common,
    )
    file_rows = list(csv.DictReader(io.StringIO(from_file)))
    table_rows = list(csv.DictReader(io.StringIO(from_table)))
    assert [r["channel"] for r in table_rows] == [r["channel"] for r in file_rows]
    for mine, theirs in zip(table_rows, file_rows, strict=True):
        assert mine["customers"] == theirs["customers"]
        assert float(mine["clv_total"]) == pytest.approx(float(theirs["clv_total"]), rel=1e-9)


def test_a_missing_warehouse_column_exits_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    import duckdb

    db = tmp_path / "w.ddb"
    with duckdb.connect(str(db)) as con:
        con.execute("CREATE TABLE t AS SELECT 'a' AS customer_id, 1.0 AS amount")
    argv = ["summarize", "t", "--from-url", f"duckdb:///{db}", "--date-col", "day", "--quiet"]
    assert main(argv, out=io.StringIO()) == 2
    assert "has no column(s) day" in capsys.readouterr().err


def test_russian_excel_export_gives_the_same_segments_as_parquet(
    parquet_file: Path, russian_csv: Path
) -> None:
    args = ["--segment-by", "channel", "--format", "json", "--time-unit", "days"]
    from_parquet = json.loads(_run("segments", str(parquet_file), *args))
    # Column names are detected from their Russian headers; the segment column is "Канал".
    from_csv = json.loads(
        _run(
            "segments",
            str(russian_csv),
            "--segment-by",
            "Канал",
            "--format",
            "json",
            "--time-unit",
            "days",
        )
    )
    assert [r["customers"] for r in from_csv] == [r["customers"] for r in from_parquet]
    for a, b in zip(from_csv, from_parquet, strict=True):
        assert a["clv_total"] == pytest.approx(b["clv_total"], rel=1e-6)


def test_fit_json_round_trips_into_score(parquet_file: Path, tmp_path: Path) -> None:
    fit_path = tmp_path / "fit.json"
    _run("fit", str(parquet_file), "--format", "json", "--out", str(fit_path))
    stored = json.loads(fit_path.read_text())
    assert stored["fits"][0]["purchase_model"] == "bgnbd"
    assert set(stored["fits"][0]["purchase"]["params"]) == {"r", "alpha", "a", "b"}
    out = tmp_path / "customers.csv"
    _run("score", str(parquet_file), "--fit", str(fit_path), "--out", str(out))
    with out.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3000
    assert {"p_alive", "expected_purchases", "clv", "clv_lower", "clv_upper"} <= set(rows[0])


def test_fit_table_reports_parameters_and_convergence(parquet_file: Path) -> None:
    text = _run("fit", str(parquet_file), "--model", "auto", "--holdout-start", "1997-10-01")
    assert "converged" in text and "BIC" in text
    assert "selected:" in text and "holdout:" in text


def test_summarize_writes_parquet(parquet_file: Path, tmp_path: Path) -> None:
    out = tmp_path / "summary.parquet"
    _run("summarize", str(parquet_file), "--out", str(out))
    table = pq.read_table(out)
    assert table.num_rows == 3000
    assert {"customer_id", "frequency", "recency", "T", "monetary_value"} <= set(table.column_names)


def test_bad_input_exits_2_with_one_line_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("customer;date;amount\nA;31.02.2024;10\n", encoding="utf-8")
    assert main(["segments", str(bad), "--segment-by", "x", "--quiet"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("cltv: error: ")
    assert main(["summarize", str(tmp_path / "missing.csv"), "--quiet"]) == 2
    assert "no such file" in capsys.readouterr().err


def test_console_script_runs_as_a_process(parquet_file: Path) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "cltv_api.cli",
            "segments",
            str(parquet_file),
            "--segment-by",
            "region",
            "-q",
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "region" in proc.stdout.splitlines()[0] and "(all)" in proc.stdout


class _Terminal(io.StringIO):
    """A text stream that says it is a terminal, so the progress bar draws into it."""

    def isatty(self) -> bool:
        return True


def test_progress_bar_shows_the_parts_of_a_stage_on_a_terminal() -> None:
    from cltv_api.cli import Progress

    screen = _Terminal()
    progress = Progress(["read", "summarise"], quiet=False, file=screen)
    with progress.stage("summarise"):
        for done in (1, 2, 3):
            progress.part(done, 3)
    progress.close()
    assert "summarise 3/3" in screen.getvalue()
    quiet = _Terminal()
    silent = Progress(["read"], quiet=True, file=quiet)
    with silent.stage("read"):
        silent.part(1, 2)
    assert quiet.getvalue() == ""
