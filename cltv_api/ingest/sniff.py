"""Detect what a file is and how it is laid out, from its first bytes/rows only.

``sniff_file`` is cheap (it reads a sample: ``ParseOptions.sample_bytes`` of a CSV, the first
rows of a sheet or a Parquet file) and never raises for value-level ambiguity: those become
``warnings`` in :class:`DetectedFormat`. ``ingest_file`` confirms ambiguous cases on the whole
column before refusing a file.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from cltv_api.errors import InvalidInput
from cltv_api.ingest.dates import EXCEL_EPOCH_1900, EXCEL_EPOCH_1904
from cltv_api.ingest.encoding import EncodingGuess, decode_sample, detect_encoding
from cltv_api.ingest.options import ParseOptions

FileType = Literal["csv", "xlsx", "parquet"]
DELIMITERS: tuple[str, ...] = (",", ";", "\t", "|")
SAMPLE_ROWS = 2000
_HEADER_SEARCH_ROWS = 50
_XLS_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
MAX_XLSX_EXPANDED_BYTES = 4 * 1024**3
"""Largest total size the parts of an .xlsx may expand to (4 GiB, about 40 million cells)."""
MAX_XLSX_RATIO = 200
"""Largest expansion ratio of one part bigger than :data:`_RATIO_CHECKED_BYTES`: sheet XML of real
exports deflates 5-30x; a ZIP bomb (a tiny file expanding to gigabytes) is ~1000x."""
_RATIO_CHECKED_BYTES = 16 * 1024**2


@dataclass(frozen=True)
class DetectedFormat:
    """What the ingester found out about a file (and will use to read it).

    ``header_row`` is the 1-based line (CSV) or sheet row (XLSX) of the header; Parquet files
    have none. ``decimal_separator``/``thousands_separator``/``date_format`` describe the
    mapped amount and date columns (``thousands_separator`` ``" "`` stands for any space,
    incl. U+00A0 and U+202F). ``date_format`` is a strptime format or one of ``iso``,
    ``excel``, ``unix_s``, ``unix_ms``.
    """

    file_type: FileType
    encoding: str | None = None
    delimiter: str | None = None
    quote: str | None = None
    decimal_separator: str | None = None
    thousands_separator: str | None = None
    date_format: str | None = None
    header_row: int | None = None
    sheet: str | None = None
    columns: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "file_type": self.file_type,
            "encoding": self.encoding,
            "delimiter": self.delimiter,
            "quote": self.quote,
            "decimal_separator": self.decimal_separator,
            "thousands_separator": self.thousands_separator,
            "date_format": self.date_format,
            "header_row": self.header_row,
            "sheet": self.sheet,
            "columns": list(self.columns),
            "warnings": list(self.warnings),
        }


@dataclass
class Sample:
    """The header and first data rows of a file, with the file-level format found so far.

    CSV cells are ``str``; XLSX and Parquet cells keep their Python types (numbers,
    datetimes). ``skip_lines`` is the number of physical CSV lines up to and including the
    header (what DuckDB must skip).
    """

    file_type: FileType
    columns: tuple[str, ...]
    rows: list[tuple[Any, ...]]
    header_row: int | None = None
    encoding: EncodingGuess | None = None
    delimiter: str | None = None
    skip_lines: int = 0
    sheet: str | None = None
    excel_epoch: date = EXCEL_EPOCH_1900
    complete: bool = False
    extra: dict[str, Any] = field(default_factory=dict)

    def format(self) -> DetectedFormat:
        return DetectedFormat(
            file_type=self.file_type,
            encoding=self.encoding.name if self.encoding else None,
            delimiter=self.delimiter,
            quote='"' if self.file_type == "csv" else None,
            header_row=self.header_row,
            sheet=self.sheet,
            columns=self.columns,
        )


def detect_file_type(path: Path) -> FileType:
    """CSV/XLSX/Parquet from the magic bytes (never from the file name)."""
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise InvalidInput(f"Cannot read the uploaded file: {exc.strerror or exc}") from exc
    if size == 0:
        raise InvalidInput("The file is empty.")
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(_XLS_MAGIC):
        raise InvalidInput(
            "This is an old binary Excel .xls file; save it as .xlsx or CSV and upload again."
        )
    if head.startswith(b"PK\x03\x04"):
        _check_xlsx_zip(path)
        return "xlsx"
    return "csv"


def cell_text(value: Any) -> str | None:
    """Canonical text of a typed cell (what SQL sees in the raw text column)."""
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() and abs(value) < 1e15 else repr(value)
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.replace(tzinfo=None).isoformat(sep=" ")
    if isinstance(value, date | time):
        return value.isoformat()
    if isinstance(value, timedelta):
        return str(value)
    return str(value)


def read_sample(path: Path, file_type: FileType, options: ParseOptions) -> Sample:
    """The header and first rows of ``path`` (see :class:`Sample`)."""
    if file_type == "csv":
        return _sniff_csv(path, options)
    if file_type == "xlsx":
        return _sniff_xlsx(path, options)
    return _sniff_parquet(path)


# --------------------------------------------------------------------------- CSV


def _sniff_csv(path: Path, options: ParseOptions) -> Sample:
    size = path.stat().st_size
    with path.open("rb") as fh:
        raw = fh.read(options.sample_bytes)
    complete = len(raw) >= size
    guess = _user_encoding(raw, options.encoding) if options.encoding else detect_encoding(raw)
    text = decode_sample(raw, guess, complete=complete)
    if not complete:
        cut = text.rfind("\n")
        if cut < 0:
            raise InvalidInput(
                f"The first line is longer than {options.sample_bytes} bytes; this does not look "
                "like a CSV export."
            )
        text = text[: cut + 1]
    if not text.strip():
        raise InvalidInput("The file is empty (no text in it).")
    delimiter, records = _choose_delimiter(text, options)
    header_idx = _header_index(records, delimiter, options)
    start, end, header = records[header_idx]
    columns = _column_names(header)
    data = [tuple(r) for _, _, r in records[header_idx + 1 :]]
    if not data and complete:
        raise InvalidInput(
            f"The file has a header row (line {start}: {list(columns)}) but no data rows."
        )
    return Sample(
        file_type="csv",
        columns=columns,
        rows=[_pad(r, len(columns)) for r in data[:SAMPLE_ROWS]],
        header_row=start,
        encoding=guess,
        delimiter=delimiter,
        skip_lines=end,
        complete=complete,
    )


def _user_encoding(raw: bytes, name: str) -> EncodingGuess:
    try:
        codec = codecs.lookup(name).name
    except LookupError as exc:
        raise InvalidInput(f"Unknown encoding {name!r}.") from exc
    if codec == "utf-8" and raw.startswith(codecs.BOM_UTF8):
        return EncodingGuess("utf-8-sig", 3)
    return EncodingGuess(codec)


Record = tuple[int, int, list[str]]  # first line, last line (1-based), fields


def _records(
    text: str, delimiter: str, limit: int = SAMPLE_ROWS + _HEADER_SEARCH_ROWS
) -> list[Record]:
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter, quotechar='"')
    out: list[Record] = []
    previous_end = 0
    try:
        for fields in reader:
            start, previous_end = previous_end + 1, reader.line_num
            if fields:
                out.append((start, previous_end, fields))
            if len(out) >= limit:
                break
    except csv.Error:
        return out
    return out


def _choose_delimiter(text: str, options: ParseOptions) -> tuple[str, list[Record]]:
    if options.delimiter is not None:
        records = _records(text, options.delimiter)
        if not records or max(len(r) for _, _, r in records) < 2:
            raise InvalidInput(
                f"With delimiter {options.delimiter!r} the file has only one column; check "
                "the delimiter."
            )
        return options.delimiter, records
    best: tuple[tuple[float, int, int], str, list[Record]] | None = None
    for delimiter in DELIMITERS:
        records = _records(text, delimiter)
        score = _delimiter_score(records)
        if score is not None and (best is None or score > best[0]):
            best = (score, delimiter, records)
    if best is None:
        raise InvalidInput(
            "Only one column found: no delimiter (comma, semicolon, tab or |) splits the lines "
            "into columns. The file needs at least customer id, date and amount columns."
        )
    return best[1], best[2]


def _delimiter_score(records: list[Record]) -> tuple[float, int, int] | None:
    """(share of rows after the header with the header's width, -header index, width)."""
    widths = [len(r) for _, _, r in records]
    if not widths:
        return None
    counts = Counter(widths)
    width = max(counts, key=lambda w: (counts[w], w))
    if width < 2:
        return None
    header_idx = next(
        (i for i, (_, _, r) in enumerate(records) if len(r) == width and _nonempty(r) >= 2), None
    )
    if header_idx is None:
        return None
    after = widths[header_idx + 1 :]
    share = sum(1 for w in after if w == width) / len(after) if after else 1.0
    return (round(share, 2), -header_idx, width)


def _header_index(records: list[Record], delimiter: str, options: ParseOptions) -> int:
    if options.header_row is not None:
        for i, (start, _, _) in enumerate(records):
            if start == options.header_row:
                return i
        raise InvalidInput(f"Line {options.header_row} is not the start of a CSV row.")
    widths = Counter(len(r) for _, _, r in records)
    width = max(widths, key=lambda w: (widths[w], w))
    for i, (_, _, r) in enumerate(records[:_HEADER_SEARCH_ROWS]):
        if len(r) == width and _nonempty(r) >= 2:
            return i
    raise InvalidInput(f"No header row found (delimiter {delimiter!r}).")


# --------------------------------------------------------------------------- XLSX


def _check_xlsx_zip(path: Path) -> None:
    try:
        with zipfile.ZipFile(path) as zf:
            members = zf.infolist()
    except zipfile.BadZipFile as exc:
        raise InvalidInput("The file is a damaged ZIP/XLSX archive.") from exc
    if "xl/workbook.xml" not in {m.filename for m in members}:
        raise InvalidInput(
            "The file is a ZIP archive but not an Excel .xlsx workbook; upload the CSV, XLSX or "
            "Parquet file itself."
        )
    _check_expansion(members)


def _check_expansion(members: list[zipfile.ZipInfo]) -> None:
    """Refuse a ZIP bomb from the sizes in the archive's directory, before expanding anything.

    Python's ``zipfile`` (which openpyxl reads through) never inflates a part beyond the size its
    directory entry declares, so checking the declared sizes bounds the work of every reader.
    """
    total = sum(m.file_size for m in members)
    if total > MAX_XLSX_EXPANDED_BYTES:
        raise InvalidInput(
            f"The workbook expands to {total:,} bytes, more than the {MAX_XLSX_EXPANDED_BYTES:,} "
            "allowed; save it as CSV (or split it) and upload again."
        )
    for m in members:
        ratio = m.file_size / max(m.compress_size, 1)
        if m.file_size > _RATIO_CHECKED_BYTES and ratio > MAX_XLSX_RATIO:
            raise InvalidInput(
                f"The workbook part {m.filename!r} expands {ratio:,.0f} times (to "
                f"{m.file_size:,} bytes), more than the {MAX_XLSX_RATIO} times real spreadsheets "
                "do: this looks like a ZIP bomb, so it was not opened."
            )


def open_workbook(path: Path) -> Any:
    """Open an .xlsx read-only (streaming) with cached formula values."""
    import openpyxl  # noqa: PLC0415 - heavy import, only for Excel uploads

    try:
        return openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises many kinds for broken files
        raise InvalidInput(f"Cannot open the Excel workbook: {exc}") from exc


def pick_sheet(workbook: Any, name: str | None) -> Any:
    """The named sheet, or the first one."""
    if name is None:
        return workbook.worksheets[0]
    if name not in workbook.sheetnames:
        raise InvalidInput(
            f"The workbook has no sheet {name!r}; sheets: {workbook.sheetnames}.",
            extra={"sheets": list(workbook.sheetnames)},
        )
    return workbook[name]


def excel_epoch(workbook: Any) -> date:
    """The workbook's date system: 1899-12-30 (Windows) or 1904-01-01 (old Mac)."""
    epoch = getattr(workbook, "epoch", None)
    return EXCEL_EPOCH_1904 if epoch is not None and epoch.year == 1904 else EXCEL_EPOCH_1900


def _sniff_xlsx(path: Path, options: ParseOptions) -> Sample:
    wb = open_workbook(path)
    try:
        ws = pick_sheet(wb, options.sheet)
        head: list[tuple[int, tuple[Any, ...]]] = []
        rows: list[tuple[Any, ...]] = []
        header_at: int | None = None
        columns: tuple[str, ...] = ()
        limit = options.header_row or _HEADER_SEARCH_ROWS
        for number, values in enumerate(ws.iter_rows(min_row=1, values_only=True), start=1):
            if header_at is None:
                head.append((number, values))
                if number < limit:
                    continue
                header_at, columns = _xlsx_header(head, options)
                rows = [_pad(v, len(columns)) for n, v in head if n > header_at and _nonempty(v)]
                continue
            if _nonempty(values):
                rows.append(_pad(values, len(columns)))
            if len(rows) >= SAMPLE_ROWS:
                break
        if header_at is None:
            if not head:
                raise InvalidInput(f"Sheet {ws.title!r} is empty.")
            header_at, columns = _xlsx_header(head, options)
            rows = [_pad(v, len(columns)) for n, v in head if n > header_at and _nonempty(v)]
        if not rows:
            raise InvalidInput(
                f"Sheet {ws.title!r} has a header row (row {header_at}: {list(columns)}) but no "
                "data rows."
            )
        return Sample(
            file_type="xlsx",
            columns=columns,
            rows=rows[:SAMPLE_ROWS],
            header_row=header_at,
            sheet=ws.title,
            excel_epoch=excel_epoch(wb),
        )
    finally:
        wb.close()


def _xlsx_header(
    head: list[tuple[int, tuple[Any, ...]]], options: ParseOptions
) -> tuple[int, tuple[str, ...]]:
    if options.header_row is not None:
        chosen = [(n, v) for n, v in head if n == options.header_row]
        if not chosen:
            raise InvalidInput(f"Row {options.header_row} is beyond the end of the sheet.")
        number, values = chosen[0]
    else:
        widest = max((_nonempty(v) for _, v in head), default=0)
        if widest < 2:
            raise InvalidInput(
                "Only one column found in the sheet; it needs at least customer id, date and "
                "amount columns."
            )
        number, values = next((n, v) for n, v in head if _nonempty(v) >= max(2, (widest + 1) // 2))
    texts = [cell_text(v) for v in values]
    last = max((i for i, t in enumerate(texts) if t is not None), default=-1)
    return number, _column_names([t or "" for t in texts[: last + 1]])


# --------------------------------------------------------------------------- Parquet


def _sniff_parquet(path: Path) -> Sample:
    import pyarrow.parquet as pq  # noqa: PLC0415

    try:
        pf = pq.ParquetFile(path)
        columns = tuple(pf.schema_arrow.names)
        rows: list[tuple[Any, ...]] = []
        for batch in pf.iter_batches(batch_size=SAMPLE_ROWS):
            rows = [tuple(r.values()) for r in batch.to_pylist()]
            break
        total = pf.metadata.num_rows
    except Exception as exc:  # pyarrow raises ArrowInvalid/OSError for broken files
        raise InvalidInput(f"Cannot read the Parquet file: {exc}") from exc
    if len(columns) < 2:
        raise InvalidInput("The Parquet file has fewer than two columns.")
    if total == 0:
        raise InvalidInput(f"The Parquet file has columns {list(columns)} but no rows.")
    return Sample(file_type="parquet", columns=columns, rows=rows, complete=total <= len(rows))


# --------------------------------------------------------------------------- helpers


def _nonempty(values: tuple[Any, ...] | list[Any]) -> int:
    return sum(1 for v in values if cell_text(v) is not None)


def _pad(values: tuple[Any, ...] | list[Any], width: int) -> tuple[Any, ...]:
    row = tuple(values[:width])
    return row + (None,) * (width - len(row))


def _column_names(header: list[str]) -> tuple[str, ...]:
    names = []
    for i, name in enumerate(header, start=1):
        clean = name.replace("\ufeff", "").strip()
        names.append(clean or f"column_{i}")
    return tuple(names)
