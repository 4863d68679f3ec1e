"""Stage an uploaded file in DuckDB as text columns, ready for SQL parsing.

Every reader produces the relation ``staged`` with ``__row`` (the row number the user sees:
the 1-based line for CSV, the sheet row for XLSX, the 1-based row index for Parquet) and, per
source column, a :class:`SourceColumn`: SQL over ``staged`` for its text as in the file
(VARCHAR) and, where the source is typed, its DOUBLE or TIMESTAMP value. CSV and XLSX store
them as columns ``c<i>``, ``c<i>__num`` and ``c<i>__ts``; Parquet's ``c<i>`` is the file's
column, cast where used.

CSV is read by DuckDB itself (no per-row Python): ``read_csv`` with explicit VARCHAR columns,
strict mode, and malformed lines stored in a rejects table with their line numbers.
Non-UTF-8 text is transcoded first, streaming in chunks. XLSX goes through openpyxl's
streaming reader in batches. CSV (its mapped columns) and XLSX are copied into a table of the
work database; Parquet is a view over DuckDB's ``read_parquet``: each query reads only the
columns it uses, and the text of a typed column is computed only where a query needs it (for
a reported row, say), not for every row.
"""

from __future__ import annotations

import csv
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from cltv_api.errors import InvalidInput
from cltv_api.ingest.encoding import transcode_to_utf8
from cltv_api.ingest.sniff import Sample, cell_text, open_workbook, pick_sheet
from cltv_api.ingest.sqltext import ident, lit

STAGED = "staged"
_CSV_TABLE = "staged_csv"
_BATCH_ROWS = 20_000
_REJECTED_LINES = 1_000_000  # malformed lines remembered to number the other rows
_NUMERIC_TYPES = (
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
    "FLOAT",
    "DOUBLE",
    "DECIMAL",
)


@dataclass(frozen=True)
class SourceColumn:
    """One column of the file in ``staged``: its header and SQL expressions for its text
    (``raw``), its typed number (``num``) or timestamp (``ts``)."""

    name: str
    raw: str
    num: str | None = None
    ts: str | None = None

    @property
    def text(self) -> str:
        """Trimmed text, NULL when blank."""
        return f"NULLIF(trim({self.raw}), '')"


@dataclass(frozen=True)
class Malformed:
    """A CSV line DuckDB could not split into the header's columns."""

    line: int
    message: str
    text: str


@dataclass
class Staged:
    """The staged table and what the pipeline needs to report rows correctly."""

    columns: list[SourceColumn]
    rows: int
    malformed: list[Malformed] = field(default_factory=list)
    malformed_count: int = 0
    line_map: LineMap | None = None

    def user_rows(self, rows: Iterable[int]) -> dict[int, int]:
        """Map provisional ``__row`` values to the numbers the user sees in the file."""
        wanted = list(rows)
        if self.line_map is None:
            return {r: r for r in wanted}
        return self.line_map.lines(wanted)


def stage(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    sample: Sample,
    work: Path,
    used: Collection[int] | None = None,
) -> Staged:
    """Load ``path`` into ``staged`` (see the module docstring). ``used``: the positions of the
    columns the caller reads (default all); a CSV stores only those."""
    if sample.file_type == "csv":
        return _stage_csv(con, path, sample, work, used)
    if sample.file_type == "xlsx":
        return _stage_xlsx(con, path, sample)
    return _stage_parquet(con, path, sample)


# --------------------------------------------------------------------------- CSV


def _stage_csv(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    sample: Sample,
    work: Path,
    used: Collection[int] | None,
) -> Staged:
    assert sample.encoding is not None and sample.delimiter is not None
    source = path
    if not sample.encoding.is_utf8:
        source = work / "transcoded.csv"
        transcode_to_utf8(path, source, sample.encoding)
    names = [f"c{i}" for i in range(len(sample.columns))]
    spec = "{" + ", ".join(f"{lit(n)}: 'VARCHAR'" for n in names) + "}"
    skip = sample.skip_lines
    # Every column is read (a line with too few or too many fields is malformed), only the
    # used ones are stored.
    kept = ", ".join(names[i] for i in sorted(set(range(len(names)) if used is None else used)))
    con.execute(
        f"CREATE TABLE {_CSV_TABLE} AS SELECT {kept} FROM read_csv({lit(str(source))}, "
        f"header = false, skip = {skip}, delim = {lit(sample.delimiter)}, quote = '\"', "
        f"escape = '\"', columns = {spec}, auto_detect = false, strict_mode = true, "
        "null_padding = false, store_rejects = true, rejects_table = 'cltv_rejects', "
        "rejects_scan = 'cltv_reject_scans', rejects_limit = 0)"
    )
    # The records are stored in file order (insertion order is preserved), so a record's
    # rowid is its ordinal: cheaper than row_number() OVER (), which serialises the insert.
    con.execute(
        f"CREATE TEMP VIEW {STAGED} AS SELECT {skip} + 1 + rowid AS __row, {kept} FROM {_CSV_TABLE}"
    )
    rows = _scalar(con, f"SELECT count(*) FROM {_CSV_TABLE}")
    # DuckDB may record several errors for one line (too few fields, then a missing column):
    # a malformed line counts once, with its first error.
    malformed_count = _scalar(con, "SELECT count(DISTINCT line) FROM cltv_rejects")
    malformed = [
        Malformed(int(line), _reject_message(kind, msg), str(text or "").strip("\r\n"))
        for line, kind, msg, text in con.execute(
            "SELECT DISTINCT ON (line) line, error_type, error_message, csv_line "
            "FROM cltv_rejects ORDER BY line, column_idx LIMIT 1000"
        ).fetchall()
    ]
    regular = malformed_count == 0 and count_lines(source) == skip + rows
    line_map = None
    if not regular:
        rejected = {
            int(r[0])
            for r in con.execute(
                f"SELECT DISTINCT line FROM cltv_rejects LIMIT {_REJECTED_LINES}"
            ).fetchall()
        }
        line_map = LineMap(source, sample.delimiter, skip, rejected)
        physical = line_map.physical([m.line for m in malformed])
        malformed = [replace(m, line=physical.get(m.line, m.line)) for m in malformed]
    columns = [SourceColumn(name, ident(n)) for name, n in zip(sample.columns, names, strict=True)]
    return Staged(columns, rows, malformed, malformed_count, line_map)


def _reject_message(kind: str, message: str) -> str:
    first = str(message or "").splitlines()[0] if message else ""
    return f"{str(kind).lower()}: {first}" if first else str(kind).lower()


def count_lines(path: Path) -> int:
    """Physical lines in a text file (a last line without newline counts), streamed."""
    lines, last = 0, b""
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 22):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (1 if last not in (b"", b"\n") else 0)


class LineMap:
    """Line numbers of records in a CSV whose records are not one per line.

    Needed only when the file has blank lines, quoted line breaks or malformed lines (then
    DuckDB's record order no longer gives the line number). DuckDB's own line numbers (in
    its rejects table) count a record with quoted line breaks as one line; this maps both
    to the physical line where the record starts. It scans the file with Python's csv
    module up to the last record asked for, so it costs time only for such files.
    """

    def __init__(self, path: Path, delimiter: str, skip: int, rejected: set[int]) -> None:
        self.path, self.delimiter, self.skip, self.rejected = path, delimiter, skip, rejected

    def lines(self, provisional: list[int]) -> dict[int, int]:
        """Provisional ``__row`` (skip + record ordinal) -> physical line."""
        found, _ = self._scan({r - self.skip for r in provisional}, set())
        return {r: found.get(r - self.skip, r) for r in provisional}

    def physical(self, duckdb_lines: list[int]) -> dict[int, int]:
        """DuckDB's line numbers (rejects table) -> physical lines."""
        _, found = self._scan(set(), set(duckdb_lines))
        return {line: found.get(line, line) for line in duckdb_lines}

    def _scan(self, ordinals: set[int], logical: set[int]) -> tuple[dict[int, int], dict[int, int]]:
        by_ordinal: dict[int, int] = {}
        by_logical: dict[int, int] = {}
        if not ordinals and not logical:
            return by_ordinal, by_logical
        with self.path.open(encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh, delimiter=self.delimiter, quotechar='"')
            try:
                while reader.line_num < self.skip:
                    next(reader)
                previous_end, line, ordinal = reader.line_num, self.skip, 0
                for fields in reader:
                    start, previous_end = previous_end + 1, reader.line_num
                    line += 1  # DuckDB counts a record (or a blank line) as one line
                    if line in logical:
                        by_logical[line] = start
                    if not fields or line in self.rejected:
                        continue
                    ordinal += 1
                    if ordinal in ordinals:
                        by_ordinal[ordinal] = start
                    if len(by_ordinal) == len(ordinals) and len(by_logical) == len(logical):
                        break
            except (csv.Error, StopIteration):
                pass
        return by_ordinal, by_logical


# --------------------------------------------------------------------------- XLSX


def _stage_xlsx(con: duckdb.DuckDBPyConnection, path: Path, sample: Sample) -> Staged:
    width = len(sample.columns)
    defs = ["__row BIGINT"]
    columns = []
    for i, name in enumerate(sample.columns):
        defs += [f"c{i} VARCHAR", f"c{i}__num DOUBLE", f"c{i}__ts TIMESTAMP"]
        columns.append(SourceColumn(name, f"c{i}", f"c{i}__num", f"c{i}__ts"))
    con.execute(f"CREATE TABLE {STAGED} ({', '.join(defs)})")
    wb = open_workbook(path)
    try:
        ws = pick_sheet(wb, sample.sheet)
        assert sample.header_row is not None
        batch = _XlsxBatch(width)
        start = sample.header_row + 1
        for number, values in enumerate(ws.iter_rows(min_row=start, values_only=True), start=start):
            batch.add(number, values)
            if batch.size >= _BATCH_ROWS:
                batch.flush(con)
        batch.flush(con)
    finally:
        wb.close()
    rows = _scalar(con, f"SELECT count(*) FROM {STAGED}")
    return Staged(columns, rows)


class _XlsxBatch:
    """Column buffers for a batch of sheet rows, inserted into DuckDB through Arrow."""

    def __init__(self, width: int) -> None:
        self.width = width
        self._reset()

    def _reset(self) -> None:
        self.rows: list[int] = []
        self.text: list[list[str | None]] = [[] for _ in range(self.width)]
        self.num: list[list[float | None]] = [[] for _ in range(self.width)]
        self.ts: list[list[datetime | None]] = [[] for _ in range(self.width)]

    @property
    def size(self) -> int:
        return len(self.rows)

    def add(self, number: int, values: tuple[Any, ...]) -> None:
        cells = list(values[: self.width]) + [None] * max(0, self.width - len(values))
        texts = [cell_text(v) for v in cells]
        if all(t is None for t in texts):
            return
        self.rows.append(number)
        for i, (value, text) in enumerate(zip(cells, texts, strict=True)):
            self.text[i].append(text)
            is_number = isinstance(value, int | float) and not isinstance(value, bool)
            self.num[i].append(float(value) if is_number else None)
            self.ts[i].append(_as_datetime(value))

    def flush(self, con: duckdb.DuckDBPyConnection) -> None:
        if not self.rows:
            return
        arrays: list[pa.Array] = [pa.array(self.rows, pa.int64())]
        names = ["__row"]
        for i in range(self.width):
            arrays += [
                pa.array(self.text[i], pa.string()),
                pa.array(self.num[i], pa.float64()),
                pa.array(self.ts[i], pa.timestamp("us")),
            ]
            names += [f"c{i}", f"c{i}__num", f"c{i}__ts"]
        con.register("cltv_batch", pa.Table.from_arrays(arrays, names=names))
        try:
            con.execute(f"INSERT INTO {STAGED} SELECT * FROM cltv_batch")
        finally:
            con.unregister("cltv_batch")
        self._reset()


def _as_datetime(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day)
    return None


# --------------------------------------------------------------------------- Parquet


def _stage_parquet(con: duckdb.DuckDBPyConnection, path: Path, sample: Sample) -> Staged:
    source = f"read_parquet({lit(str(path))}, file_row_number = true)"
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()
    except duckdb.Error as exc:
        raise InvalidInput(f"Cannot read the Parquet file: {exc}") from exc
    types = {str(name): str(kind).upper() for name, kind, *_ in described}
    select = ["file_row_number + 1 AS __row"]
    columns = []
    for i, name in enumerate(sample.columns):
        kind, c = types.get(name, "VARCHAR"), f"c{i}"
        select.append(f"{ident(name)} AS {c}")
        num = ts = None
        base = kind.split("(")[0].strip()
        if base in _NUMERIC_TYPES:
            num = f"CAST({c} AS DOUBLE)"
        elif base in ("DATE", "TIMESTAMP", "TIMESTAMP_S", "TIMESTAMP_MS", "TIMESTAMP_NS") or (
            base.startswith("TIMESTAMP WITH")
        ):
            ts = f"CAST({c} AS TIMESTAMP)"
        # Casts in the expressions, not in the view: a query evaluates them only where it
        # needs them (the text of a typed value, say, only for the rows a report lists).
        columns.append(SourceColumn(name, f"CAST({c} AS VARCHAR)", num, ts))
    con.execute(f"CREATE TEMP VIEW {STAGED} AS SELECT {', '.join(select)} FROM {source}")
    rows = _scalar(con, f"SELECT count(*) FROM read_parquet({lit(str(path))})")  # metadata
    return Staged(columns, rows)


def _scalar(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
