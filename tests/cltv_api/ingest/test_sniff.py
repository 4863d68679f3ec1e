"""Encodings, delimiters, header detection and files that are not usable tables."""

from __future__ import annotations

import codecs
import zipfile
from datetime import datetime
from pathlib import Path

import pytest

from cltv_api.errors import InvalidInput, PayloadTooLarge
from cltv_api.ingest import ColumnMapping, ParseOptions, preview, sniff_file
from tests.cltv_api.ingest.helpers import column, ingest, listing, rows, write_text

RUSSIAN = "Клиент;Дата;Сумма\nИванов Пётр;01.03.2024;1 234,50\nСидорова Анна;02.03.2024;99,90\n"


@pytest.mark.parametrize(
    ("encoding", "prefix", "detected"),
    [
        ("utf-8", b"", "utf-8"),
        ("utf-8", codecs.BOM_UTF8, "utf-8-sig"),
        ("utf-16-le", codecs.BOM_UTF16_LE, "utf-16-le"),
        ("utf-16-be", codecs.BOM_UTF16_BE, "utf-16-be"),
        ("cp1251", b"", "cp1251"),
    ],
)
def test_each_encoding_reads_cyrillic_headers_and_names(
    tmp_path: Path, encoding: str, prefix: bytes, detected: str
) -> None:
    # The same Russian Excel-style export in every supported encoding must give the same
    # rows: Cyrillic headers are recognised as customer/date/amount, names survive intact.
    path = tmp_path / "export.csv"
    path.write_bytes(prefix + RUSSIAN.encode(encoding))
    result = ingest(path, tmp_path / "data")
    assert result.format.encoding == detected
    assert result.mapping.customer_id == "Клиент"
    assert rows(result) == [
        {"customer_id": "Иванов Пётр", "date": datetime(2024, 3, 1), "amount": 1234.5},
        {"customer_id": "Сидорова Анна", "date": datetime(2024, 3, 2), "amount": 99.9},
    ]


def test_utf16_transcoding_streams_across_chunk_boundaries(tmp_path: Path) -> None:
    # ~2.5 MB of UTF-16: transcoding runs in 1 MiB chunks, so characters and lines are split
    # between chunks; every row must still arrive (40 000 rows, amounts 1..40 000).
    n = 40_000
    lines = ["покупатель\tдата\tвыручка"] + [
        f"клиент-{i % 97}\t2024-03-01\t{i}" for i in range(1, n + 1)
    ]
    path = tmp_path / "big16.tsv"
    path.write_bytes(codecs.BOM_UTF16_LE + ("\r\n".join(lines) + "\r\n").encode("utf-16-le"))
    result = ingest(path, tmp_path / "data")
    assert result.row_count == n
    assert result.amount_total == n * (n + 1) / 2  # sum 1..n
    assert result.customer_count == 97


def test_non_utf8_non_cyrillic_text_needs_an_explicit_encoding(tmp_path: Path) -> None:
    # Latin-1 "Müller" is invalid UTF-8 and not Cyrillic: no silent guess, a clear error;
    # with encoding="latin-1" the name is read correctly.
    path = tmp_path / "latin.csv"
    path.write_bytes("customer,date,amount\nMüller,2024-03-01,5\n".encode("latin-1"))
    with pytest.raises(InvalidInput, match="encoding"):
        ingest(path, tmp_path / "data")
    result = ingest(path, tmp_path / "data", encoding="latin-1")
    assert column(result, "customer_id") == ["Müller"]


@pytest.mark.parametrize("delimiter", [",", ";", "\t", "|"])
def test_each_delimiter_is_detected_with_quoted_fields(tmp_path: Path, delimiter: str) -> None:
    # A quoted name containing the delimiter itself and a doubled quote must stay one field.
    d = delimiter
    text = (
        f'customer_id{d}date{d}amount\n"Smith{d} ""J"""{d}2024-03-01{d}10\nLee{d}2024-03-02{d}20\n'
    )
    result = ingest(write_text(tmp_path / "t.csv", text), tmp_path / "data")
    assert result.format.delimiter == delimiter
    assert column(result, "customer_id") == ["Lee", f'Smith{d} "J"']


def test_title_lines_before_the_header_are_skipped(tmp_path: Path) -> None:
    # 1C-style export: a report title and a blank line precede the header on line 3.
    text = "Отчёт по продажам за март;;\n\nКлиент;Дата;Сумма\nА;01.03.2024;5\n"
    result = ingest(write_text(tmp_path / "t.csv", text), tmp_path / "data")
    assert result.format.header_row == 3
    assert rows(result) == [{"customer_id": "А", "date": datetime(2024, 3, 1), "amount": 5.0}]


def test_sniff_and_preview_describe_the_file_for_the_upload_form(tmp_path: Path) -> None:
    text = "Покупатель;Дата заказа;Выручка;Канал\nА;13.03.2024;1 234,50;web\nБ;01.03.2024;7;shop\n"
    path = write_text(tmp_path / "t.csv", text, "cp1251")
    fmt = sniff_file(path)
    assert (fmt.encoding, fmt.delimiter, fmt.decimal_separator, fmt.thousands_separator) == (
        "cp1251",
        ";",
        ",",
        " ",
    )
    assert fmt.date_format == "%d.%m.%Y"
    form = preview(path, n=1)
    assert form.columns == ("Покупатель", "Дата заказа", "Выручка", "Канал")
    assert form.suggested_mapping == ColumnMapping(
        customer_id="Покупатель", date="Дата заказа", amount="Выручка"
    )
    assert form.rows == [["А", "13.03.2024", "1 234,50", "web"]]
    assert listing(tmp_path) == ["t.csv"]  # previewing writes nothing


def test_preview_reports_ambiguous_dates_as_a_warning_not_an_error(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "customer,date,amount\nA,01/02/2024,1\nB,03/04/2024,2\n")
    fmt = sniff_file(path)
    assert fmt.date_format is None
    assert any("date_format" in w for w in fmt.warnings)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty"),
        (b"\n\n  \n", "empty"),
        (b"customer_id\nA\nB\n", "one column"),
        (b"customer_id,date,amount\n", "no data rows"),
        (b"customer_id;date;amount\r\n\r\n", "no data rows"),
        (bytes(range(256)) * 64, "binary"),
        (bytes(range(1, 32)) * 500, "binary"),
    ],
    ids=[
        "empty",
        "blank-lines",
        "one-column",
        "header-only",
        "header-only-crlf",
        "binary",
        "controls",
    ],
)
def test_unusable_files_are_rejected_with_a_clear_message(
    tmp_path: Path, content: bytes, message: str
) -> None:
    path = tmp_path / "upload.csv"
    path.write_bytes(content)
    with pytest.raises(InvalidInput, match=message):
        ingest(path, tmp_path / "data")
    assert listing(tmp_path / "data") == []


def test_old_xls_and_foreign_zip_files_are_refused(tmp_path: Path) -> None:
    xls = tmp_path / "old.xls"
    xls.write_bytes(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 512)
    with pytest.raises(InvalidInput, match=r"\.xls"):
        ingest(xls, tmp_path / "data")
    archive = tmp_path / "data.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("readme.txt", "hello")
    with pytest.raises(InvalidInput, match="not an Excel"):
        ingest(archive, tmp_path / "data")


def test_file_over_the_size_limit_is_payload_too_large(tmp_path: Path) -> None:
    path = write_text(tmp_path / "t.csv", "customer,date,amount\nA,2024-03-01,1\n")
    with pytest.raises(PayloadTooLarge):
        ingest(path, tmp_path / "data", max_file_bytes=10)


def test_invalid_options_are_refused_up_front() -> None:
    with pytest.raises(InvalidInput, match="on_error"):
        ParseOptions(on_error="ignore")  # type: ignore[arg-type]
    with pytest.raises(InvalidInput, match="differ"):
        ParseOptions(decimal_separator=",", thousands_separator=",")
