"""What ingestion's shortcuts for large files must not change.

Orders are combined only where an order id has several rows, typed Parquet values are not
written out as text, and a CSV stores only its mapped columns; the stored bytes, the combined
amounts and the report must be what combining every order, converting every value and
storing every column would give.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from cltv_api.ingest import ColumnMapping
from tests.cltv_api.ingest.helpers import ingest, rows, write_text

ORDER_AMOUNTS = (0.1, 0.2, 0.3)
# Added in file order: (0.1 + 0.2) + 0.3 = 0.6000000000000001 in binary floating point, while
# 0.1 + (0.2 + 0.3) = 0.6: a sum in any other order would change the stored bytes.
FILE_ORDER_SUM = (0.1 + 0.2) + 0.3


def _orders_table(orders: int) -> pa.Table:
    """``orders`` orders of three rows each, the rows of an order a third of the file apart
    (so in different row groups, read by different threads), plus one row per order without
    an order id."""
    customers: list[str] = []
    order_ids: list[str | None] = []
    dates: list[datetime] = []
    amounts: list[float] = []
    for part, amount in enumerate(ORDER_AMOUNTS):
        for k in range(orders):
            customers.append(f"C{k % 500:04d}")
            order_ids.append(f"O{k:06d}")
            dates.append(datetime(2024, 1 + part, 1 + k % 28))
            amounts.append(amount)
    for k in range(orders):
        customers.append(f"C{k % 500:04d}")
        order_ids.append(None)
        dates.append(datetime(2024, 5, 1 + k % 28))
        amounts.append(1.0 + k % 7)
    return pa.table(
        {"customer_id": customers, "order_id": order_ids, "date": dates, "amount": amounts}
    )


def test_the_same_rows_store_the_same_bytes_with_one_or_two_threads_in_any_order(
    tmp_path: Path,
) -> None:
    # 280,000 rows: more than one of DuckDB's row groups (122,880 rows) of orders, so with two
    # threads an order's rows are added up in parts (a plain sum gave 0.6 for some orders).
    table = _orders_table(70_000)
    pq.write_table(table, tmp_path / "in.parquet", row_group_size=10_000)
    pq.write_table(table.take(list(reversed(range(table.num_rows)))), tmp_path / "rev.parquet")
    one = ingest(tmp_path / "in.parquet", tmp_path / "a", threads=1)
    two = ingest(tmp_path / "in.parquet", tmp_path / "b", threads=2)
    again = ingest(tmp_path / "in.parquet", tmp_path / "c", threads=2)
    reversed_rows = ingest(tmp_path / "rev.parquet", tmp_path / "d", threads=2)
    assert one.sha256 == two.sha256 == again.sha256
    assert one.path.read_bytes() == two.path.read_bytes()
    # Reversed, every order's rows are added in the opposite order: the same sum only where
    # floating point allows, so compare everything but the combined amounts.
    stored = [{**r, "amount": None} for r in rows(one) if r["order_id"] is not None]
    stored_rev = [{**r, "amount": None} for r in rows(reversed_rows) if r["order_id"]]
    assert stored == stored_rev
    combined = {r["amount"] for r in rows(one) if r["order_id"] is not None}
    assert combined == {FILE_ORDER_SUM}
    assert (one.row_count, one.transaction_count) == (280_000, 140_000)
    assert one.report.notes == [
        "210000 rows with an order id were combined into 70000 transactions "
        "(amounts summed, earliest date kept)."
    ]


def test_a_single_row_order_is_stored_as_its_sum_and_a_row_without_order_as_read(
    tmp_path: Path,
) -> None:
    text = (
        "customer,order_id,date,amount\n"
        "A,o1,2024-03-03,0.1\n"
        "A,o1,2024-03-01,0.2\n"  # the earliest date of o1
        "A,o1,2024-03-02,0.3\n"
        "B,o2,2024-03-01,-0\n"  # one row: its sum, and a sum of -0.0 is +0.0
        "C,,2024-03-01,-0\n"  # no order id: stored as read, -0.0
    )
    result = ingest(write_text(tmp_path / "o.csv", text), tmp_path / "data")
    stored = rows(result)
    assert [(r["customer_id"], r["date"], r["order_id"]) for r in stored] == [
        ("A", datetime(2024, 3, 1), "o1"),
        ("B", datetime(2024, 3, 1), "o2"),
        ("C", datetime(2024, 3, 1), None),
    ]
    assert stored[0]["amount"] == FILE_ORDER_SUM
    assert math.copysign(1.0, stored[1]["amount"]) == 1.0
    assert math.copysign(1.0, stored[2]["amount"]) == -1.0
    # Both zero amounts are reported (kept by default), at their lines.
    assert [(i.kind, i.row, i.value) for i in result.report.issues] == [
        ("zero_amount", 5, "-0"),
        ("zero_amount", 6, "-0"),
    ]


def test_typed_parquet_problems_show_the_values_as_written_in_the_file(tmp_path: Path) -> None:
    # DATE and DECIMAL(10,2) columns: the report shows "2031-05-01" and "-5.50" (the file's
    # values as text), not the converted "2031-05-01 00:00:00" and "-5.5".
    table = pa.table(
        {
            "customer_id": ["a", "b", "c", "d"],
            "date": pa.array(
                [date(2024, 3, 1), date(2031, 5, 1), date(2024, 3, 3), None], pa.date32()
            ),
            "amount": pa.array(
                [Decimal("10.00"), Decimal("3.25"), Decimal("-5.50"), Decimal("1.00")],
                pa.decimal128(10, 2),
            ),
        }
    )
    pq.write_table(table, tmp_path / "typed.parquet")
    result = ingest(tmp_path / "typed.parquet", tmp_path / "data", on_error="drop")
    assert [(i.kind, i.row, i.value) for i in result.report.issues] == [
        ("missing_date", 4, None),
        ("future_date", 2, "2031-05-01"),
        ("negative_amount", 3, "-5.50"),
    ]
    assert [(r["customer_id"], r["amount"]) for r in rows(result)] == [("a", 10.0)]
    assert result.report.rows_dropped == 3


def test_malformed_lines_are_found_in_columns_that_are_not_mapped(tmp_path: Path) -> None:
    # Only customer, date and amount are stored; the extra fields of lines 3 and 6 are
    # beyond the unmapped columns, and still make those lines malformed.
    text = (
        "customer,note,date,extra,amount,junk\n"
        "A,n1,2024-03-01,e1,1.5,j\n"
        "A,n2,2024-03-02,e2,2.5,j,one too many\n"  # line 3
        'B,"a note\nover two lines",2024-03-04,e4,4.5,j\n'  # lines 4-5: one record
        "C,n5,2024-03-05,e5,5.5,j\n"
        "C,n6,2024-03-06,e6,6.5,j,x\n"  # line 7
    )
    result = ingest(
        write_text(tmp_path / "u.csv", text),
        tmp_path / "data",
        mapping=ColumnMapping(customer_id="customer", date="date", amount="amount"),
        on_error="drop",
    )
    assert result.report.counts == {"malformed_row": 2}
    assert [(i.row, i.value) for i in result.report.issues] == [
        (3, "A,n2,2024-03-02,e2,2.5,j,one too many"),
        (7, "C,n6,2024-03-06,e6,6.5,j,x"),
    ]
    assert [(r["customer_id"], r["amount"]) for r in rows(result)] == [
        ("A", 1.5),
        ("B", 4.5),
        ("C", 5.5),
    ]
    assert (result.row_count, result.report.rows_kept) == (5, 3)
