"""Validation policies, report row numbers, storage guarantees, orders and segments."""

from __future__ import annotations

import hashlib
import time
from datetime import date, datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cltv_api.errors import InvalidInput, StorageError
from cltv_api.ingest import ColumnMapping
from tests.cltv_api.ingest.helpers import column, ingest, listing, rows, write_text

# Lines as the user sees them in an editor: a blank line (4) and a quoted line break
# (lines 5-6) make the CSV record number differ from the line number.
MESSY = (
    "customer_id,date,amount,note\n"  # 1
    "A,2024-03-01,10,ok\n"  # 2
    ",2024-03-02,11,x\n"  # 3  missing customer id
    "\n"  # 4  blank
    'B,2024-03-03,12,"multi\n'  # 5
    'line note"\n'  # 6
    "C,yesterday,13,x\n"  # 7  unparsable date
    "D,2024-03-04,abc,x\n"  # 8  unparsable amount
    "E,2024-03-05,inf,x\n"  # 9  non-finite amount
    "F,2024-03-06,14,x,extra\n"  # 10 malformed: one field too many
    "G,1899-12-31,15,x\n"  # 11 before 1900
)


def test_bad_rows_reject_the_file_with_line_numbers_and_store_nothing(tmp_path: Path) -> None:
    data = tmp_path / "data"
    with pytest.raises(InvalidInput) as info:
        ingest(write_text(tmp_path / "m.csv", MESSY), data)
    found = sorted((e.row, e.field, e.value) for e in info.value.errors)
    assert found == [
        (3, "customer_id", None),
        (7, "date", "yesterday"),
        (8, "amount", "abc"),
        (9, "amount", "inf"),
        (10, "malformed_row", "F,2024-03-06,14,x,extra"),
        (11, "date", "1899-12-31"),
    ]
    assert "on_error='drop'" in info.value.detail
    assert info.value.extra["report"]["counts"]["bad_date"] == 1
    assert listing(data) == []  # nothing half-stored, no scratch files left


def test_drop_policy_keeps_good_rows_and_reports_the_rest(tmp_path: Path) -> None:
    result = ingest(write_text(tmp_path / "m.csv", MESSY), tmp_path / "data", on_error="drop")
    report = result.report
    assert column(result, "customer_id") == ["A", "B"]
    # 8 data records (B spans lines 5-6; the blank line 4 is no record): 2 kept, 6 dropped.
    assert (report.rows_read, report.rows_kept, report.rows_dropped) == (8, 2, 6)
    assert report.counts == {
        "missing_customer_id": 1,
        "bad_date": 1,
        "date_out_of_range": 1,
        "bad_amount": 1,
        "non_finite_amount": 1,
        "malformed_row": 1,
    }
    assert set(report.actions.values()) == {"dropped"}
    assert report.policies["on_error"] == "drop"
    assert {i.kind: i.row for i in report.issues}["bad_amount"] == 8


def test_a_malformed_line_counts_once_however_many_errors_it_has(tmp_path: Path) -> None:
    # Regression: DuckDB records two errors for a line with too few fields (and for one with
    # two or more extra fields); each was counted as a malformed row and a row read.
    text = (
        "customer,date,amount,channel\n"
        "a,2024-01-05,10,x\n"
        "b,2024-01-06\n"  # two fields missing
        "c,2024-01-07,12,y,z,w\n"  # two fields too many
        "d,2024-01-08,5,x\n"
    )
    result = ingest(write_text(tmp_path / "m.csv", text), tmp_path / "data", on_error="drop")
    report = result.report
    assert (report.rows_read, report.rows_kept, report.rows_dropped) == (4, 2, 2)
    assert report.counts == {"malformed_row": 2}
    assert [(i.kind, i.row) for i in report.issues] == [("malformed_row", 3), ("malformed_row", 4)]


def test_report_lists_the_first_n_rows_per_kind_but_counts_all(tmp_path: Path) -> None:
    body = "".join(f"c{i},2024-03-01,oops\n" for i in range(30)) + "ok,2024-03-01,1\n"
    path = write_text(tmp_path / "t.csv", "customer,date,amount\n" + body)
    result = ingest(path, tmp_path / "data", on_error="drop", max_issues_per_kind=5)
    assert result.report.counts["bad_amount"] == 30
    assert [i.row for i in result.report.issues] == [2, 3, 4, 5, 6]


def test_long_values_are_truncated_in_the_report(tmp_path: Path) -> None:
    path = write_text(
        tmp_path / "t.csv", f"customer,date,amount\na,2024-03-01,{'9x' * 100}\nb,2024-03-01,1\n"
    )
    issue = ingest(path, tmp_path / "data", on_error="drop").report.issues[0]
    assert issue.value is not None and len(issue.value) == 100 and issue.value.endswith("…")


NEGATIVES = "customer,date,amount\nA,2024-03-01,10\nA,2024-03-02,-4\nB,2024-03-03,0\n"


def test_negative_amounts_are_dropped_by_default_and_said_so(tmp_path: Path) -> None:
    result = ingest(write_text(tmp_path / "n.csv", NEGATIVES), tmp_path / "data")
    assert column(result, "amount") == [10.0, 0.0]
    assert result.report.actions == {"negative_amount": "dropped", "zero_amount": "kept"}
    assert (result.report.counts["negative_amount"], result.report.counts["zero_amount"]) == (1, 1)


def test_negative_amounts_can_be_kept_or_reject_the_file(tmp_path: Path) -> None:
    path = write_text(tmp_path / "n.csv", NEGATIVES)
    kept = ingest(path, tmp_path / "data", negative_amounts="keep")
    assert kept.amount_total == 6.0  # 10 - 4 + 0
    with pytest.raises(InvalidInput, match="negative") as info:
        ingest(path, tmp_path / "data", negative_amounts="reject")
    assert [(e.row, e.value) for e in info.value.errors] == [(3, "-4")]


def test_zero_amounts_can_be_dropped(tmp_path: Path) -> None:
    result = ingest(
        write_text(tmp_path / "n.csv", NEGATIVES), tmp_path / "data", zero_amounts="drop"
    )
    assert column(result, "amount") == [10.0]


def test_future_dates_follow_their_policy(tmp_path: Path) -> None:
    # as_of 2024-06-30: the 2024-07-01 purchase is in the future.
    path = write_text(tmp_path / "f.csv", "customer,date,amount\nA,2024-06-30,1\nB,2024-07-01,2\n")
    as_of = date(2024, 6, 30)
    with pytest.raises(InvalidInput, match="future") as info:
        ingest(path, tmp_path / "data", as_of=as_of)
    assert [(e.row, e.value) for e in info.value.errors] == [(3, "2024-07-01")]
    dropped = ingest(path, tmp_path / "data", as_of=as_of, future_dates="drop")
    assert column(dropped, "customer_id") == ["A"]
    kept = ingest(path, tmp_path / "data", as_of=as_of, future_dates="keep")
    assert kept.date_max == datetime(2024, 7, 1)
    assert kept.report.actions == {"future_date": "kept"}


def test_all_rows_dropped_is_an_error(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "customer,date,amount\nA,2024-03-01,-1\n")
    with pytest.raises(InvalidInput, match="No usable rows"):
        ingest(path, tmp_path / "data")


def test_stored_file_is_named_by_its_sha256_and_ingest_is_idempotent(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "customer,date,amount\nB,2024-03-02,2\nA,2024-03-01,1\n")
    data = tmp_path / "data"
    first = ingest(path, data)
    assert first.path == data / f"{first.sha256}.parquet"
    assert hashlib.sha256(first.path.read_bytes()).hexdigest() == first.sha256
    mtime = first.path.stat().st_mtime_ns
    time.sleep(0.01)
    second = ingest(path, data)
    assert second.sha256 == first.sha256
    assert first.path.stat().st_mtime_ns == mtime  # the existing file was kept, not rewritten
    assert listing(data) == [first.path.name]  # atomic rename: no temp files left


def test_stored_schema_and_sorting(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "customer,date,amount\nB,2024-03-02,2\nA,2024-03-01,1\n")
    result = ingest(path, tmp_path / "data")
    schema = pq.read_schema(result.path)
    assert [(f.name, str(f.type)) for f in schema] == [
        ("customer_id", "string"),
        ("date", "timestamp[us]"),
        ("amount", "double"),
    ]
    assert column(result, "customer_id") == ["A", "B"]  # sorted: same data, same bytes


def test_unwritable_data_dir_is_a_storage_error(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "customer,date,amount\nA,2024-03-01,1\n")
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("x")
    with pytest.raises(StorageError):
        ingest(path, blocker / "data")


def test_rows_sharing_an_order_id_are_one_transaction(tmp_path: Path) -> None:
    text = (
        "customer,order_id,date,amount,channel\n"
        "A,o1,2024-03-02,10,web\n"
        "A,o1,2024-03-01,5,web\n"  # same order: 10 + 5 = 15, dated at the earliest line
        "A,o2,2024-03-05,7,shop\n"
        "B,,2024-03-06,1,web\n"  # no order id: its own transaction
        "B,,2024-03-06,2,web\n"
        "C,o2,2024-03-07,3,web\n"  # o2 also used by A: warned, kept apart
    )
    result = ingest(
        write_text(tmp_path / "o.csv", text),
        tmp_path / "data",
        mapping=ColumnMapping(segments=("channel",)),
    )
    assert rows(result) == [
        {
            "customer_id": "A",
            "date": datetime(2024, 3, 1),
            "amount": 15.0,
            "order_id": "o1",
            "channel": "web",
        },
        {
            "customer_id": "A",
            "date": datetime(2024, 3, 5),
            "amount": 7.0,
            "order_id": "o2",
            "channel": "shop",
        },
        {
            "customer_id": "B",
            "date": datetime(2024, 3, 6),
            "amount": 1.0,
            "order_id": None,
            "channel": "web",
        },
        {
            "customer_id": "B",
            "date": datetime(2024, 3, 6),
            "amount": 2.0,
            "order_id": None,
            "channel": "web",
        },
        {
            "customer_id": "C",
            "date": datetime(2024, 3, 7),
            "amount": 3.0,
            "order_id": "o2",
            "channel": "web",
        },
    ]
    assert (result.row_count, result.transaction_count, result.customer_count) == (6, 5, 3)
    assert result.report.actions["order_id_shared"] == "kept"
    assert [(i.row, i.value) for i in result.report.issues] == [(4, "o2")]
    assert any("combined into 3 transactions" in n for n in result.report.notes)


def test_segment_columns_are_stored_as_strings_with_distinct_counts(tmp_path: Path) -> None:
    text = (
        "Клиент;Дата;Сумма;Регион;Канал;Комментарий\n"
        "a;01.03.2024;1;Москва;1;x\nb;02.03.2024;2;СПб;2;y\nc;03.03.2024;3;Москва;;z\n"
    )
    result = ingest(
        write_text(tmp_path / "s.csv", text),
        tmp_path / "data",
        mapping=ColumnMapping(segments=("Регион", "Канал")),
    )
    assert result.segments == {"Регион": 2, "Канал": 2}  # the empty channel is null
    schema = pq.read_schema(result.path)
    assert [f.name for f in schema] == ["customer_id", "date", "amount", "Регион", "Канал"]
    assert str(schema.field("Канал").type) == "string"
    assert column(result, "Канал") == ["1", "2", None]


@pytest.mark.parametrize(
    ("header", "segments", "message"),
    [
        ("client,date,total,Amount", ("Amount",), "reserved"),
        ("client,date,sum,Region,region", ("Region", "region"), "both named"),
        ("client,date,sum,seg", ("nope",), "not in the file"),
        ("client,date,sum,seg", ("date",), "also listed as a segment"),
    ],
)
def test_segment_name_problems_are_refused_clearly(
    tmp_path: Path, header: str, segments: tuple[str, ...], message: str
) -> None:
    n = header.count(",") + 1
    path = write_text(
        tmp_path / "s.csv",
        f"{header}\n" + ",".join(["a", "2024-03-01", "1"] + ["x"] * (n - 3)) + "\n",
    )
    with pytest.raises(InvalidInput, match=message):
        ingest(
            path,
            tmp_path / "data",
            mapping=ColumnMapping(amount=header.split(",")[2], segments=segments),
        )


def test_explicit_mapping_wins_over_default_names(tmp_path: Path) -> None:
    # "amount" would be found by name, but the user says the gross column is the amount.
    text = "customer,date,amount,gross\nA,2024-03-01,1,100\n"
    result = ingest(
        write_text(tmp_path / "t.csv", text),
        tmp_path / "data",
        mapping=ColumnMapping(amount="gross"),
    )
    assert column(result, "amount") == [100.0]
    assert result.mapping.amount == "gross"


def test_missing_role_names_the_columns_found(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "who,when,how much\nA,2024-03-01,1\n")
    with pytest.raises(InvalidInput, match="customer_id") as info:
        ingest(path, tmp_path / "data")
    assert info.value.extra["columns"] == ["who", "when", "how much"]
    result = ingest(
        path,
        tmp_path / "data",
        mapping=ColumnMapping(customer_id="who", date="when", amount="how much"),
    )
    assert result.transaction_count == 1


def test_large_csv_streams_through_duckdb_with_a_low_memory_limit(tmp_path: Path) -> None:
    # 200 000 rows (~7 MB) with a 64 MB DuckDB memory limit and 2 threads: DuckDB spills to
    # the scratch directory; totals are checked against closed forms.
    n = 200_000
    path = tmp_path / "big.csv"
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("Клиент;Дата;Сумма;Регион\n")
        for i in range(n):
            fh.write(
                f"c{i % 5000};{1 + i % 28:02d}.02.2024;{i % 1000} {i % 1000:03d},50;r{i % 7}\n"
            )
    result = ingest(
        path,
        tmp_path / "data",
        mapping=ColumnMapping(segments=("Регион",)),
        memory_limit="64MB",
        threads=2,
    )
    # amount_i = 1000*(i%1000) + (i%1000) + 0.5 = 1001*(i%1000) + 0.5; each residue 200 times.
    expected = 200 * 1001 * (999 * 1000 / 2) + 0.5 * n
    assert (result.row_count, result.customer_count) == (n, 5000)
    assert result.amount_total == pytest.approx(expected, rel=1e-12)
    assert (result.date_min, result.date_max) == (datetime(2024, 2, 1), datetime(2024, 2, 28))
    assert result.segments == {"Регион": 7}
    assert listing(tmp_path / "data") == [result.path.name]
