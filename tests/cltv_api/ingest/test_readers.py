"""Excel workbooks (first or named sheet, real and text dates) and Parquet input."""

from __future__ import annotations

import math
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from cltv_api.errors import InvalidInput
from cltv_api.ingest import ColumnMapping
from tests.cltv_api.ingest.helpers import ingest, rows, write_text


def _workbook(path: Path, sheets: dict[str, list[list[Any]]]) -> Path:
    wb = openpyxl.Workbook()
    wb.remove(wb.active)
    for title, data in sheets.items():
        ws = wb.create_sheet(title)
        for r, values in enumerate(data, start=1):
            for c, value in enumerate(values, start=1):
                if value is not None:
                    ws.cell(row=r, column=c, value=value)
    wb.save(path)
    return path


def test_xlsx_first_sheet_with_real_excel_dates_and_numbers(tmp_path: Path) -> None:
    # Dates are true Excel dates (datetime cells), amounts numeric cells, ids numbers.
    path = _workbook(
        tmp_path / "sales.xlsx",
        {
            "Sales": [
                ["Customer ID", "Order Date", "Revenue"],
                [1001, datetime(2024, 3, 1, 9, 30), 12.5],
                [1002, date(2024, 3, 2), 1234],
            ],
            "Notes": [["just", "text"]],
        },
    )
    result = ingest(path, tmp_path / "data")
    assert (result.format.file_type, result.format.sheet, result.format.header_row) == (
        "xlsx",
        "Sales",
        1,
    )
    assert rows(result) == [
        {"customer_id": "1001", "date": datetime(2024, 3, 1, 9, 30), "amount": 12.5},
        {"customer_id": "1002", "date": datetime(2024, 3, 2), "amount": 1234.0},
    ]


def test_xlsx_named_sheet_with_text_dates_title_rows_and_excel_row_numbers(tmp_path: Path) -> None:
    # Russian export on the second sheet: a title in row 1, blank row 2, header in row 3,
    # dates and amounts typed as text. The bad amount sits in Excel row 6 (after an empty
    # row 5), and the report must say row 6.
    data: list[list[Any]] = [
        ["Выгрузка из 1С"],
        [],
        ["Клиент", "Дата", "Сумма"],
        ["Иванов", "01.03.2024", "1 234,50"],
        [],
        ["Петров", "13.03.2024", "много"],
        ["Сидоров", "14.03.2024", 15],
    ]
    path = _workbook(tmp_path / "export.xlsx", {"Лист1": [["x", "y"]], "Продажи": data})
    with pytest.raises(InvalidInput) as info:
        ingest(path, tmp_path / "data", sheet="Продажи")
    assert [(e.row, e.field, e.value) for e in info.value.errors] == [(6, "Сумма", "много")]
    result = ingest(path, tmp_path / "data", sheet="Продажи", on_error="drop")
    assert result.format.header_row == 3
    assert result.format.date_format == "%d.%m.%Y"
    assert rows(result) == [
        {"customer_id": "Иванов", "date": datetime(2024, 3, 1), "amount": 1234.5},
        {"customer_id": "Сидоров", "date": datetime(2024, 3, 14), "amount": 15.0},
    ]


def test_xlsx_serial_numbers_in_the_date_column(tmp_path: Path) -> None:
    # Plain numeric cells (no date format) holding Excel serials: 45352 = 2024-03-01.
    path = _workbook(
        tmp_path / "serial.xlsx",
        {"S": [["customer", "date", "amount"], ["a", 45352, 1], ["b", 45353.25, 2]]},
    )
    result = ingest(path, tmp_path / "data")
    assert result.format.date_format == "excel"
    assert [r["date"] for r in rows(result)] == [datetime(2024, 3, 1), datetime(2024, 3, 2, 6)]


def test_xlsx_missing_sheet_lists_the_sheets(tmp_path: Path) -> None:
    path = _workbook(
        tmp_path / "s.xlsx", {"A": [["customer", "date", "amount"], ["a", "2024-03-01", 1]]}
    )
    with pytest.raises(InvalidInput, match="sheets") as info:
        ingest(path, tmp_path / "data", sheet="B")
    assert info.value.extra["sheets"] == ["A"]


def test_parquet_input_with_typed_columns_and_row_numbers(tmp_path: Path) -> None:
    # Typed Parquet: int ids, timestamps, doubles. Row 3 (1-based) has a NaN amount.
    table = pa.table(
        {
            "customer_id": pa.array([7, 8, 9], pa.int64()),
            "date": pa.array([datetime(2024, 3, 1), datetime(2024, 3, 2), datetime(2024, 3, 3)]),
            "amount": pa.array([10.0, 20.0, math.nan]),
            "segment": ["a", "b", "a"],
        }
    )
    path = tmp_path / "in.parquet"
    pq.write_table(table, path)
    with pytest.raises(InvalidInput) as info:
        ingest(path, tmp_path / "data", mapping=ColumnMapping(segments=("segment",)))
    assert [(e.row, e.field) for e in info.value.errors] == [(3, "amount")]
    result = ingest(
        path, tmp_path / "data", mapping=ColumnMapping(segments=("segment",)), on_error="drop"
    )
    assert result.format.file_type == "parquet"
    assert rows(result) == [
        {"customer_id": "7", "date": datetime(2024, 3, 1), "amount": 10.0, "segment": "a"},
        {"customer_id": "8", "date": datetime(2024, 3, 2), "amount": 20.0, "segment": "b"},
    ]
    assert result.segments == {"segment": 2}


def test_parquet_with_text_columns_goes_through_the_same_parsing(tmp_path: Path) -> None:
    table = pa.table(
        {"Клиент": ["x", "y"], "Дата": ["01.03.2024", "13.03.2024"], "Сумма": ["1 234,5", "7"]}
    )
    pq.write_table(table, tmp_path / "text.parquet")
    result = ingest(tmp_path / "text.parquet", tmp_path / "data")
    assert [r["amount"] for r in rows(result)] == [1234.5, 7.0]


def test_csv_and_xlsx_with_the_same_data_store_the_same_bytes(tmp_path: Path) -> None:
    # Content addressing: the stored file depends on the normalised data, not the container.
    csv_path = write_text(
        tmp_path / "a.csv", "customer,date,amount\nA,2024-03-01,10.5\nB,2024-03-02,3\n"
    )
    xlsx = _workbook(
        tmp_path / "a.xlsx",
        {
            "S": [
                ["customer", "date", "amount"],
                ["A", datetime(2024, 3, 1), 10.5],
                ["B", datetime(2024, 3, 2), 3],
            ]
        },
    )
    data = tmp_path / "data"
    assert ingest(csv_path, data).sha256 == ingest(xlsx, data).sha256
    assert len(list(data.iterdir())) == 1


def test_xlsx_real_dates_with_a_stray_text_cell_report_that_row(tmp_path: Path) -> None:
    # Date cells are real Excel dates; one cell holds the text "n/a" (row 3): that row is an
    # unreadable date, not a reason to refuse the whole column.
    path = _workbook(
        tmp_path / "d.xlsx",
        {"S": [["customer", "date", "amount"], ["a", datetime(2024, 3, 1), 1], ["b", "n/a", 2]]},
    )
    with pytest.raises(InvalidInput) as info:
        ingest(path, tmp_path / "data")
    assert [(e.row, e.value) for e in info.value.errors] == [(3, "n/a")]
