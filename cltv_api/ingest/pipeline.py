"""Public entry points: ``sniff_file``, ``preview`` and ``ingest_file``.

``ingest_file`` reads a CSV/XLSX/Parquet upload into a DuckDB work database (bounded memory,
spilling to a scratch directory inside ``data_dir``), detects the number and date formats,
parses and checks every row in SQL, and stores the normalised rows as one content-addressed
Parquet file. A file is accepted whole or rejected: on any error nothing is left behind.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import Any

import duckdb

from cltv_api.errors import (
    AmbiguousFormat,
    FieldError,
    InvalidInput,
    PayloadTooLarge,
    StorageError,
)
from cltv_api.ingest import dates, numbers
from cltv_api.ingest.dates import DateSpec, DateStats
from cltv_api.ingest.layouts import LAYOUTS, Context
from cltv_api.ingest.mapping import (
    OUTPUT_COLUMNS,
    ColumnMapping,
    ResolvedMapping,
    resolve_mapping,
    suggest_mapping,
)
from cltv_api.ingest.numbers import NumberFormat, NumberStats
from cltv_api.ingest.options import Kind, ParseOptions
from cltv_api.ingest.readers import STAGED, Staged, stage
from cltv_api.ingest.sniff import DetectedFormat, Sample, cell_text, detect_file_type, read_sample
from cltv_api.ingest.sqltext import ident, lit
from cltv_api.ingest.store import make_workdir, prepare_dir, publish_parquet, remove_workdir
from cltv_api.ingest.validate import ValidationReport, policies_of

NUMBER_ROLES: dict[str, tuple[str, ...]] = {
    "transactions": ("amount",),
    "summary": ("frequency", "recency", "T", "monetary_value", "weight"),
    "cohort": ("period", "survivors"),
    "customer": (),
}
DATE_ROLES: dict[str, tuple[str, ...]] = {
    "transactions": ("date",),
    "summary": (),
    "cohort": (),
    "customer": ("start", "end"),
}
MAX_SEGMENT_VALUES = 10_000
"""Most distinct values a segment column may have: a segment report, a per-segment fit and a
business case have one row (or model) per value, so a column with a value per customer (an id,
a free-text field) is refused rather than turned into a million one-customer segments."""
_NATIVE = DateSpec("iso", "native")  # every date cell is typed (Excel/Parquet dates)


@dataclass(frozen=True)
class IngestResult:
    """The stored file and what is in it.

    ``row_count`` counts the data rows read from the file (header excluded, dropped rows
    included); ``stored_rows`` the rows in the Parquet file. ``transaction_count`` (stored
    transactions, after order-id aggregation), ``date_min``/``date_max`` and
    ``amount_total`` (sum of stored amounts, file currency) are set for transactions;
    ``customer_count`` for every kind but cohort tables, where it is the total of the
    cohorts' period-0 survivors. ``segments`` maps each segment column to its number of
    distinct values.
    """

    path: Path
    sha256: str
    kind: str
    layout: str
    format: DetectedFormat
    mapping: ColumnMapping
    row_count: int
    stored_rows: int
    customer_count: int | None
    transaction_count: int | None
    date_min: datetime | None
    date_max: datetime | None
    amount_total: float | None
    segments: dict[str, int]
    report: ValidationReport

    def as_dict(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "sha256": self.sha256,
            "kind": self.kind,
            "layout": self.layout,
            "format": self.format.as_dict(),
            "row_count": self.row_count,
            "stored_rows": self.stored_rows,
            "customer_count": self.customer_count,
            "transaction_count": self.transaction_count,
            "date_min": self.date_min.isoformat() if self.date_min else None,
            "date_max": self.date_max.isoformat() if self.date_max else None,
            "amount_total": self.amount_total,
            "segments": dict(self.segments),
            "report": self.report.as_dict(),
        }


@dataclass(frozen=True)
class Preview:
    """What the upload form shows: format, columns, a suggested mapping and the first rows
    (as text). ``mapping_problem`` says why no mapping could be suggested."""

    format: DetectedFormat
    columns: tuple[str, ...]
    suggested_mapping: ColumnMapping | None
    mapping_problem: str | None
    rows: list[list[str | None]] = field(default_factory=list)


def sniff_file(
    path: str | Path,
    options: ParseOptions | None = None,
    *,
    mapping: ColumnMapping | None = None,
    kind: Kind = "transactions",
) -> DetectedFormat:
    """Detect the file's format from a sample; value-level doubts become ``warnings``."""
    return preview(path, 0, options=options, mapping=mapping, kind=kind).format


def preview(
    path: str | Path,
    n: int = 20,
    *,
    options: ParseOptions | None = None,
    mapping: ColumnMapping | None = None,
    kind: Kind = "transactions",
) -> Preview:
    """Format, columns, suggested mapping and the first ``n`` data rows of a file."""
    options = options or ParseOptions()
    file = Path(path)
    _check_size(file, options)
    sample = read_sample(file, detect_file_type(file), options)
    fmt = sample.format()
    try:
        resolved: ResolvedMapping | None = resolve_mapping(sample.columns, mapping, kind)
        problem = None
    except InvalidInput as exc:
        resolved, problem = None, exc.detail
    suggested = resolved.as_mapping() if resolved else suggest_mapping(sample.columns, kind)[0]
    if resolved is not None:
        fmt = _sample_formats(fmt, sample, resolved, options)
    rows = [[cell_text(v) for v in row] for row in sample.rows[:n]]
    return Preview(fmt, sample.columns, suggested, problem, rows)


def ingest_file(
    path: str | Path,
    *,
    mapping: ColumnMapping | None = None,
    options: ParseOptions | None = None,
    data_dir: str | Path,
    kind: Kind = "transactions",
) -> IngestResult:
    """Read, check and store an upload; see the module docstring and :mod:`layouts`.

    Raises InvalidInput (AmbiguousFormat when the user must choose a format),
    PayloadTooLarge and StorageError; never leaves partial files in ``data_dir``.
    """
    options = options or ParseOptions()
    file = Path(path)
    _check_size(file, options)
    sample = read_sample(file, detect_file_type(file), options)
    resolved = resolve_mapping(sample.columns, mapping, kind)
    _check_segment_names(resolved)
    target = prepare_dir(Path(data_dir))
    work = make_workdir(target)
    try:
        con = _connect(work, options)
        try:
            return _ingest(con, file, sample, resolved, options, target, work, kind)
        finally:
            con.close()
    except duckdb.OutOfMemoryException as exc:
        raise StorageError(
            f"Ran out of memory/scratch space while reading the file: {exc}"
        ) from exc
    except duckdb.IOException as exc:
        raise StorageError(f"Could not write scratch data in {target}: {exc}") from exc
    except duckdb.Error as exc:
        raise InvalidInput(f"Could not read the file: {_first_line(exc)}") from exc
    finally:
        remove_workdir(work)


def _ingest(
    con: duckdb.DuckDBPyConnection,
    file: Path,
    sample: Sample,
    resolved: ResolvedMapping,
    options: ParseOptions,
    target: Path,
    work: Path,
    kind: str,
) -> IngestResult:
    for statement in numbers.macro_statements(options.strip_currency):
        con.execute(statement)
    used = [*resolved.roles.values(), *resolved.segments]
    staged = stage(con, file, sample, work, used)
    if staged.rows + staged.malformed_count == 0:
        raise InvalidInput(f"The file has a header ({list(sample.columns)}) but no data rows.")
    number = _decide_number(con, staged, sample, resolved, options)
    con.execute(numbers.parse_macro_statement(number))
    date_spec = _decide_dates(con, staged, sample, resolved, options)
    as_of = options.as_of or date.today()
    ctx = Context(con, staged, resolved, options, number, date_spec, as_of)
    report = ValidationReport(policies=policies_of(options) | {"as_of": as_of.isoformat()})
    select_sql = LAYOUTS[resolved.layout](ctx, report)
    segments = _segment_counts(con, select_sql, resolved)
    # Sorted by every column: the same rows give the same bytes, whatever their order.
    path, digest = publish_parquet(con, f"{select_sql} ORDER BY ALL", target)
    fmt = replace(
        sample.format(),
        decimal_separator=number.decimal if NUMBER_ROLES[resolved.layout] else None,
        thousands_separator=number.thousands if NUMBER_ROLES[resolved.layout] else None,
        date_format=date_spec.label if date_spec else None,
    )
    return _result(con, path, digest, kind, resolved, fmt, report, segments)


# --------------------------------------------------------------------------- formats


def _decide_number(
    con: duckdb.DuckDBPyConnection,
    staged: Staged,
    sample: Sample,
    resolved: ResolvedMapping,
    options: ParseOptions,
) -> NumberFormat:
    idx = [resolved.roles[r] for r in NUMBER_ROLES[resolved.layout] if r in resolved.roles]
    if not idx:
        return NumberFormat(options.decimal_separator or ".", options.thousands_separator or None)
    label = _columns_label(resolved, idx)
    overrides = {"decimal": options.decimal_separator, "thousands": options.thousands_separator}
    try:
        return numbers.decide_number_format(
            _sample_number_stats(sample, idx, options), columns=label, **overrides
        )
    except InvalidInput:
        full = _full_number_stats(con, staged, idx)  # the sample was not enough: look at all
        return numbers.decide_number_format(full, columns=label, **overrides)


def _decide_dates(
    con: duckdb.DuckDBPyConnection,
    staged: Staged,
    sample: Sample,
    resolved: ResolvedMapping,
    options: ParseOptions,
) -> DateSpec | None:
    idx = [resolved.roles[r] for r in DATE_ROLES[resolved.layout] if r in resolved.roles]
    if not idx:
        return None
    if options.date_format:
        return dates.spec_from_override(options.date_format, excel_epoch=sample.excel_epoch)
    label = _columns_label(resolved, idx)
    stats = _sample_date_stats(sample, idx)
    try:
        if stats.nonempty:
            return dates.decide_date_spec(stats, column=label, excel_epoch=sample.excel_epoch)
    except InvalidInput:
        pass
    full = _full_date_stats(con, staged, idx)
    full.examples = stats.examples
    if full.nonempty == 0:
        return _NATIVE
    try:
        return dates.decide_date_spec(full, column=label, excel_epoch=sample.excel_epoch)
    except AmbiguousFormat:
        raise
    except InvalidInput:
        if _typed_dates(con, staged, idx) == 0:
            raise
        return _NATIVE  # real date cells; the few text values become unreadable-date rows


def _typed_dates(con: duckdb.DuckDBPyConnection, staged: Staged, idx: list[int]) -> int:
    typed = [staged.columns[i].ts for i in idx if staged.columns[i].ts]
    if not typed:
        return 0
    return _one(con, f"SELECT {' + '.join(f'count({t})' for t in typed)} FROM {STAGED}")


def _sample_formats(
    fmt: DetectedFormat, sample: Sample, resolved: ResolvedMapping, options: ParseOptions
) -> DetectedFormat:
    """Formats found on the sample alone (for the preview); doubts become warnings."""
    warnings: list[str] = []
    number_idx = [resolved.roles[r] for r in NUMBER_ROLES[resolved.layout] if r in resolved.roles]
    decimal = thousands = date_format = None
    if number_idx:
        try:
            nf = numbers.decide_number_format(
                _sample_number_stats(sample, number_idx, options),
                columns=_columns_label(resolved, number_idx),
                decimal=options.decimal_separator,
                thousands=options.thousands_separator,
            )
            decimal, thousands = nf.decimal, nf.thousands
        except InvalidInput as exc:
            warnings.append(exc.detail)
    date_idx = [resolved.roles[r] for r in DATE_ROLES[resolved.layout] if r in resolved.roles]
    if date_idx:
        try:
            if options.date_format:
                date_format = dates.spec_from_override(options.date_format).label
            else:
                stats = _sample_date_stats(sample, date_idx)
                date_format = (
                    dates.decide_date_spec(stats, column=_columns_label(resolved, date_idx)).label
                    if stats.nonempty
                    else _NATIVE.label
                )
        except InvalidInput as exc:
            warnings.append(exc.detail)
    return replace(
        fmt,
        decimal_separator=decimal,
        thousands_separator=thousands,
        date_format=date_format,
        warnings=tuple(warnings),
    )


def _sample_number_stats(sample: Sample, idx: list[int], options: ParseOptions) -> NumberStats:
    values = [row[i] for row in sample.rows for i in idx if isinstance(row[i], str)]
    return numbers.stats_from_values(values, strip_currency=options.strip_currency)


def _sample_date_stats(sample: Sample, idx: list[int]) -> DateStats:
    values = []
    for row in sample.rows:
        for i in idx:
            if isinstance(row[i], datetime | date):
                continue
            text = cell_text(row[i])
            if text is not None:
                values.append(text)
    return dates.stats_from_values(values)


def _full_number_stats(
    con: duckdb.DuckDBPyConnection, staged: Staged, idx: list[int]
) -> NumberStats:
    parts = []
    for i in idx:
        col = staged.columns[i]
        typed = f" AND {col.num} IS NULL" if col.num else ""
        parts.append(
            f"SELECT cltv_amt_body(cltv_amt_s1({col.raw})) AS b FROM {STAGED} "
            f"WHERE {col.text} IS NOT NULL{typed}"
        )
    sql = f"SELECT {', '.join(numbers.stats_select('b'))} FROM ({' UNION ALL '.join(parts)})"
    row = con.execute(sql).fetchone()
    return numbers.stats_from_row(tuple(row or ()))


def _full_date_stats(con: duckdb.DuckDBPyConnection, staged: Staged, idx: list[int]) -> DateStats:
    parts = []
    for i in idx:
        col = staged.columns[i]
        typed = f" AND {col.ts} IS NULL" if col.ts else ""
        parts.append(f"SELECT {col.text} AS v FROM {STAGED} WHERE {col.text} IS NOT NULL{typed}")
    sql = f"SELECT {', '.join(dates.stats_select('v'))} FROM ({' UNION ALL '.join(parts)})"
    row = con.execute(sql).fetchone()
    return dates.stats_from_row(tuple(row or ()))


def _columns_label(resolved: ResolvedMapping, idx: list[int]) -> str:
    names = [repr(resolved.columns[i]) for i in idx]
    return names[0] if len(names) == 1 else "columns " + ", ".join(names)


# --------------------------------------------------------------------------- helpers


def _check_size(path: Path, options: ParseOptions) -> None:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidInput(f"Cannot read the uploaded file: {exc.strerror}") from exc
    if options.max_file_bytes is not None and size > options.max_file_bytes:
        raise PayloadTooLarge(
            f"The file has {size} bytes; the limit is {options.max_file_bytes} bytes."
        )


def _check_segment_names(resolved: ResolvedMapping) -> None:
    reserved = {c.lower() for c in OUTPUT_COLUMNS[resolved.layout]}
    seen: set[str] = set()
    for i in resolved.segments:
        name = resolved.columns[i]
        key = name.lower()
        if key in reserved or key.startswith("__"):
            raise InvalidInput(
                f"Segment column {name!r} clashes with a reserved column name of the stored "
                f"data ({sorted(OUTPUT_COLUMNS[resolved.layout])}); rename it in the file."
            )
        if key in seen:
            raise InvalidInput(
                f"Two segment columns are both named {name!r} (names are compared without "
                "case); rename one of them."
            )
        seen.add(key)


def _connect(work: Path, options: ParseOptions) -> duckdb.DuckDBPyConnection:
    """The work database ``work/ingest.duckdb``, spilling to ``work/spill``.

    Only the staged copy of a CSV or XLSX file is stored in the database file; the tables
    derived from it are temporary (in memory up to the memory limit, then spilled), which
    saves compressing them into the file. The file is deleted after use, so it is never
    checkpointed.
    """
    config: dict[str, Any] = {
        "memory_limit": options.memory_limit,
        "temp_directory": str(work / "spill"),
        "preserve_insertion_order": True,
        "checkpoint_threshold": "1TB",
    }
    if options.threads:
        config["threads"] = options.threads
    try:
        con = duckdb.connect(str(work / "ingest.duckdb"), config=config)
        con.execute("PRAGMA disable_checkpoint_on_shutdown")
        with contextlib.suppress(duckdb.Error):  # refused inside Jupyter without ipywidgets
            con.execute("SET enable_progress_bar = false")
        return con
    except duckdb.Error as exc:
        raise InvalidInput(f"Invalid DuckDB settings: {_first_line(exc)}") from exc


def _segment_counts(
    con: duckdb.DuckDBPyConnection, select_sql: str, resolved: ResolvedMapping
) -> dict[str, int]:
    """Distinct values of each segment column of the rows to store; InvalidInput (before
    anything is stored) for a column with more than :data:`MAX_SEGMENT_VALUES`."""
    names = [resolved.columns[i] for i in resolved.segments]
    if not names:
        return {}
    counts = ", ".join(f"count(DISTINCT {ident(n)})" for n in names)
    row = con.execute(f"SELECT {counts} FROM ({select_sql})").fetchone()
    found = dict(zip(names, (int(v) for v in row or [0] * len(names)), strict=True))
    for name, count in found.items():
        if count > MAX_SEGMENT_VALUES:
            raise InvalidInput(
                f"Segment column {name!r} has {count:,} distinct values; a segment column may "
                f"have at most {MAX_SEGMENT_VALUES:,} (segments group many customers each). "
                "Nothing was stored; upload it without that column as a segment.",
                errors=[FieldError(name, f"more than {MAX_SEGMENT_VALUES:,} distinct values")],
            )
    return found


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _result(
    con: duckdb.DuckDBPyConnection,
    path: Path,
    digest: str,
    kind: str,
    resolved: ResolvedMapping,
    fmt: DetectedFormat,
    report: ValidationReport,
    segments: dict[str, int],
) -> IngestResult:
    src = f"read_parquet({lit(str(path))})"
    layout = resolved.layout
    stored = _one(con, f"SELECT count(*) FROM {src}")
    customers: Any = None
    tx: int | None = None
    dmin = dmax = None
    total: float | None = None
    if layout == "transactions":
        row = con.execute(
            f"SELECT count(DISTINCT customer_id), min(date), max(date), sum(amount) FROM {src}"
        ).fetchone()
        assert row is not None
        customers, dmin, dmax, total = int(row[0]), row[1], row[2], float(row[3])
        tx = stored
    elif layout == "summary":
        customers = _one(con, f"SELECT count(DISTINCT customer_id) FROM {src}")
    elif layout == "cohort":
        customers = _one(con, f"SELECT coalesce(sum(survivors), 0) FROM {src} WHERE period = 0")
    else:
        row = con.execute(
            f"SELECT count(DISTINCT customer_id), min(start), "
            f'max(greatest(start, coalesce("end", start))) FROM {src}'
        ).fetchone()
        assert row is not None
        customers, dmin, dmax = int(row[0]), row[1], row[2]
    return IngestResult(
        path=path,
        sha256=digest,
        kind=kind,
        layout=layout,
        format=fmt,
        mapping=resolved.as_mapping(),
        row_count=report.rows_read,
        stored_rows=stored,
        customer_count=customers,
        transaction_count=tx,
        date_min=dmin,
        date_max=dmax,
        amount_total=total,
        segments=segments,
        report=report,
    )


def _one(con: duckdb.DuckDBPyConnection, sql: str) -> int:
    row = con.execute(sql).fetchone()
    return int(row[0]) if row and row[0] is not None else 0
