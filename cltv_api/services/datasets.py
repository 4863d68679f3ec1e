"""Data sets: receiving uploads, ingesting them, listing, RFM previews and deletion.

Layout of the data directory (all paths below ``settings.data_dir``):

* ``uploads/.upload-<random>``: an upload while it is received and ingested; always removed;
* ``datasets/<sha256>.parquet``: the normalised rows (content-addressed, written by
  :func:`cltv_api.ingest.ingest_file`); one file serves every data set row with that content,
  in any workspace;
* ``tmp/engine-<random>/``: where a request's or job's DuckDB spills; removed afterwards.

These temporary entries (and ingestion's ``datasets/.cltv-tmp-*``) are claimed with a ``flock``
while in use (see :mod:`cltv_api.ingest.store`); a process killed mid-way leaves them behind, and
:func:`remove_abandoned_scratch`, run when the service starts, removes the ones no live process
holds. A failed write answers 507 when the disk is full and 500 when the data directory is not
writable (:func:`cltv_api.ingest.store.storage_error`).

Uploads are streamed to disk in chunks (never held in memory) and counted against
``settings.max_upload_bytes``. A file is ingested whole or rejected whole: a rejected file leaves
no data set row and no file behind.

Deleting a data set is a soft delete of its row; its Parquet file is removed once no live data set
row (of any workspace) has the same content. Fits on a deleted data set are deleted with it, so
they answer 404 afterwards (see ``cascade`` of :func:`delete_dataset`).
"""

from __future__ import annotations

import contextlib
import logging
import math
import tempfile
import threading
import uuid
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any

import ibis.expr.types as ir
from pydantic import ValidationError
from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, MultipartState, parse_options_header
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from cltv_api.engine import Engine, summarize
from cltv_api.errors import (
    FieldError,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    StorageError,
    UnsupportedMediaType,
)
from cltv_api.ingest import ColumnMapping, IngestResult, ParseOptions, Preview, ingest_file, preview
from cltv_api.ingest.store import (
    TEMP_PREFIX,
    Scratch,
    claim,
    claim_scratch,
    release,
    rename_claimed,
    storage_error,
    sweep_scratch,
)
from cltv_api.schemas.datasets import UploadOptions
from cltv_api.settings import Settings
from cltv_api.storage.repositories import DatasetRepository
from cltv_api.storage.tables import Dataset, utcnow

logger = logging.getLogger("cltv_api.datasets")

UPLOADS_DIR = "uploads"
DATASETS_DIR = "datasets"
TMP_DIR = "tmp"
UPLOAD_PREFIX = ".upload-"
ENGINE_PREFIX = "engine-"
LOCK_FILE = ".datasets.lock"
_THREAD_LOCK = threading.Lock()

WRITE_CHUNK_BYTES = 1024 * 1024
"""Received bytes are written to disk in pieces of about this size (in the threadpool)."""
MULTIPART_OVERHEAD_BYTES = 1024 * 1024
"""Allowance for form fields and part headers when a multipart Content-Length is checked."""
MAX_FORM_FIELDS = 64
MAX_FORM_FIELD_BYTES = 64 * 1024

RAW_MEDIA_TYPES = frozenset(
    {
        "text/csv",
        "text/plain",
        "text/tab-separated-values",
        "application/csv",
        "application/octet-stream",
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
        "application/vnd.apache.parquet",
        "application/x-parquet",
        "application/parquet",
    }
)
MULTIPART = "multipart/form-data"


# ------------------------------------------------------------------------------ receiving


@dataclass
class ReceivedUpload:
    """An upload stored in a temporary file, with its file name and form fields."""

    path: Path
    filename: str | None = None
    size: int = 0
    fields: dict[str, list[str]] = field(default_factory=dict)

    def discard(self) -> None:
        """Remove the temporary file and release its claim (idempotent)."""
        release_upload_path(self.path)


def media_type(content_type: str | None) -> str:
    """The bare media type of a Content-Type header, lower case (``""`` when absent)."""
    return (content_type or "").split(";", 1)[0].strip().lower()


def check_content_length(content_length: str | None, kind: str, limit: int) -> None:
    """Refuse early (413) a body whose declared length is over the limit."""
    if content_length is None or not content_length.isdigit():
        return
    allowance = MULTIPART_OVERHEAD_BYTES if kind == MULTIPART else 0
    if int(content_length) > limit + allowance:
        raise _too_large(limit)


def _too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"The upload is larger than the limit of {limit} bytes.",
        extra={"max_upload_bytes": limit},
    )


def new_upload_path(settings: Settings) -> Path:
    """A fresh, empty temporary file in the data directory's upload area, claimed (so a start-up
    sweep of another process leaves it alone) until :func:`release_upload_path`."""
    directory = settings.data_dir / UPLOADS_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, settings.data_dir, "create the upload area") from exc
    name = f"{UPLOAD_PREFIX}{uuid.uuid4().hex}"
    return claim(directory / name, directory=False, data_dir=settings.data_dir)


def release_upload_path(path: Path) -> None:
    """Remove a temporary upload file and release its claim (idempotent)."""
    release(path)


class _ChunkWriter:
    """Writes received bytes to a file in about 1 MiB pieces, off the event loop, enforcing the
    size limit as bytes arrive."""

    def __init__(self, handle: IO[bytes], limit: int) -> None:
        self.handle = handle
        self.limit = limit
        self.size = 0
        self._pending = bytearray()

    def add(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self.limit:
            raise _too_large(self.limit)
        self._pending.extend(data)

    @property
    def has_enough(self) -> bool:
        return len(self._pending) >= WRITE_CHUNK_BYTES

    async def flush(self) -> None:
        if self._pending:
            data = bytes(self._pending)
            self._pending.clear()
            await run_in_threadpool(self.handle.write, data)


async def receive_raw(
    stream: AsyncIterator[bytes], path: Path, limit: int, filename: str | None
) -> ReceivedUpload:
    """Store a raw request body (the file itself) at ``path``."""
    upload = ReceivedUpload(path=path, filename=filename)
    with path.open("wb") as handle:
        writer = _ChunkWriter(handle, limit)
        async for chunk in stream:
            writer.add(chunk)
            if writer.has_enough:
                await writer.flush()
        await writer.flush()
    upload.size = writer.size
    if upload.size == 0:
        raise InvalidInput(
            "The request body is empty; send the file as the body or as the 'file' part of a "
            "multipart form.",
            errors=[FieldError("body", "empty")],
        )
    return upload


class _MultipartSink:
    """Callbacks of the streaming multipart parser: the ``file`` part goes to disk, other parts
    are small text fields."""

    def __init__(self, writer: _ChunkWriter) -> None:
        self.writer = writer
        self.fields: dict[str, list[str]] = {}
        self.filename: str | None = None
        self.file_seen = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._name = ""
        self._is_file = False
        self._data = bytearray()

    def callbacks(self) -> dict[str, Callable[..., None]]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    def on_part_begin(self) -> None:
        self._disposition = b""
        self._data = bytearray()
        self._is_file = False

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = b""
        self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        if b"name" not in options:
            raise InvalidInput("A multipart part has no name in its Content-Disposition header.")
        self._name = _decode(options[b"name"])
        self._is_file = b"filename" in options
        if self._is_file:
            if self._name != "file" or self.file_seen:
                raise InvalidInput(
                    "Send exactly one file, in the form field named 'file'.",
                    errors=[FieldError(f"form.{self._name}", "unexpected file")],
                )
            self.file_seen = True
            self.filename = _decode(options[b"filename"]) or None
        elif sum(len(v) for v in self.fields.values()) >= MAX_FORM_FIELDS:
            raise InvalidInput(f"The form has more than {MAX_FORM_FIELDS} fields.")

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._is_file:
            self.writer.add(data[start:end])
            return
        self._data.extend(data[start:end])
        if len(self._data) > MAX_FORM_FIELD_BYTES:
            raise InvalidInput(
                f"Form field '{self._name}' is longer than {MAX_FORM_FIELD_BYTES} bytes.",
                errors=[FieldError(f"form.{self._name}", "too long")],
            )

    def on_part_end(self) -> None:
        if not self._is_file:
            self.fields.setdefault(self._name, []).append(_decode(bytes(self._data)))


def _decode(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


async def receive_multipart(
    stream: AsyncIterator[bytes], content_type: str, path: Path, limit: int
) -> ReceivedUpload:
    """Parse a ``multipart/form-data`` body as it arrives: the ``file`` part is written to
    ``path`` (counted against ``limit``), the other parts are returned as form fields."""
    _, params = parse_options_header(content_type)
    boundary = params.get(b"boundary")
    if not boundary:
        raise InvalidInput("The multipart Content-Type has no boundary.")
    with path.open("wb") as handle:
        writer = _ChunkWriter(handle, limit)
        sink = _MultipartSink(writer)
        parser = MultipartParser(boundary, sink.callbacks())  # type: ignore[arg-type]
        try:
            async for chunk in stream:
                parser.write(chunk)
                if writer.has_enough:
                    await writer.flush()
            parser.finalize()
        except FormParserError as exc:
            raise InvalidInput(f"The multipart body is malformed: {exc}") from exc
        if parser.state != MultipartState.END:
            raise InvalidInput(
                "The multipart body is truncated: it ends before its closing boundary; "
                "send the whole file again."
            )
        await writer.flush()
    if not sink.file_seen:
        raise InvalidInput(
            "The form has no 'file' part.", errors=[FieldError("form.file", "field required")]
        )
    if writer.size == 0:
        raise InvalidInput("The uploaded file is empty.", errors=[FieldError("form.file", "empty")])
    return ReceivedUpload(path=path, filename=sink.filename, size=writer.size, fields=sink.fields)


async def receive_upload(
    stream: AsyncIterator[bytes],
    *,
    content_type: str | None,
    content_length: str | None,
    settings: Settings,
    filename: str | None = None,
) -> ReceivedUpload:
    """Store an upload (multipart ``file`` part or raw body) in a temporary file of the data
    directory. On any error the temporary file is removed before the error propagates; a failed
    write is a StorageError (507 disk full, 500 not writable)."""
    kind = media_type(content_type)
    if kind != MULTIPART and kind not in RAW_MEDIA_TYPES:
        raise UnsupportedMediaType(
            f"Cannot read a body of type '{kind or 'none'}'. Send multipart/form-data with a "
            "'file' part, or the file itself as text/csv, application/octet-stream, the XLSX "
            "or the Parquet media type.",
            extra={"supported": sorted([MULTIPART, *RAW_MEDIA_TYPES])},
        )
    limit = settings.max_upload_bytes
    check_content_length(content_length, kind, limit)
    path = new_upload_path(settings)
    try:
        if kind == MULTIPART:
            upload = await receive_multipart(stream, content_type or "", path, limit)
        else:
            upload = await receive_raw(stream, path, limit, filename)
        return _with_type_suffix(upload)
    except OSError as exc:
        release_upload_path(path)
        raise storage_error(exc, settings.data_dir, "store the upload") from exc
    except BaseException:
        release_upload_path(path)
        raise


def _with_type_suffix(upload: ReceivedUpload) -> ReceivedUpload:
    """Name the temporary file after its content (``.xlsx``, ``.parquet`` or ``.csv``, from the
    magic bytes): openpyxl refuses to open a workbook whose file name has no Excel extension."""
    with upload.path.open("rb") as fh:
        head = fh.read(4)
    suffix = ".xlsx" if head == b"PK\x03\x04" else ".parquet" if head == b"PAR1" else ".csv"
    renamed = upload.path.with_suffix(suffix)
    rename_claimed(upload.path, renamed)
    upload.path = renamed
    return upload


def merge_options(query: UploadOptions, form: Mapping[str, list[str]]) -> UploadOptions:
    """Upload options from the query string, overridden by form fields of the same name.

    Form values are validated like query parameters; errors name ``form.<field>``.
    """
    values = query.model_dump(exclude_unset=True)
    for name, given in form.items():
        values[name] = given if name in ("segment_cols", "segment_by") else given[-1]
    try:
        return UploadOptions.model_validate(values)
    except ValidationError as exc:
        field_errors = [
            FieldError(
                field=("form." if str(e["loc"][0]) in form else "query.")
                + ".".join(str(p) for p in e["loc"]),
                message=str(e["msg"]),
            )
            for e in exc.errors()
        ]
        raise InvalidInput(
            "The upload options are not valid; see errors.", errors=field_errors
        ) from exc


# ------------------------------------------------------------------------------ ingesting


def parse_options(options: UploadOptions, settings: Settings) -> ParseOptions:
    """The ingestion options of an upload (format overrides and row policies)."""
    return ParseOptions(
        encoding=options.encoding,
        delimiter=options.delimiter,
        decimal_separator=options.decimal,
        thousands_separator=options.thousands,
        date_format=options.date_format,
        sheet=options.sheet,
        negative_amounts=options.negative_amounts,
        on_error=options.on_error,
        future_dates=options.future_dates,
        memory_limit=settings.duckdb_memory_limit,
    )


def column_mapping(options: UploadOptions) -> ColumnMapping:
    """The column roles the caller named (the rest is found by header name)."""
    return ColumnMapping(
        customer_id=options.customer_col,
        date=options.date_col,
        amount=options.amount_col,
        order_id=options.order_col,
        segments=tuple(options.segment_cols),
    )


def preview_upload(upload: ReceivedUpload, options: UploadOptions, settings: Settings) -> Preview:
    """Format, columns, suggested mapping and first rows of an upload; stores nothing."""
    return preview(
        upload.path,
        20,
        options=parse_options(options, settings),
        mapping=column_mapping(options),
        kind=options.kind,
    )


@contextlib.contextmanager
def storage_lock(settings: Settings) -> Iterator[None]:
    """Serialise "is this Parquet file still used?" decisions between threads and processes
    sharing the data directory (POSIX ``flock``), so a delete never removes a file that an
    upload of the same content is about to reference."""
    try:
        import fcntl  # noqa: PLC0415 - POSIX only; elsewhere one process is assumed
    except ImportError:  # pragma: no cover - Windows
        with _THREAD_LOCK:
            yield
        return
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    with (settings.data_dir / LOCK_FILE).open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def create_dataset(
    session: Session,
    settings: Settings,
    workspace_id: str,
    upload: ReceivedUpload,
    options: UploadOptions,
) -> Dataset:
    """Ingest an upload and record it as a ready data set of the workspace (committed here, so
    the row and the file it references appear together)."""
    mapping, parse = column_mapping(options), parse_options(options, settings)
    target = settings.data_dir / DATASETS_DIR

    def ingest() -> IngestResult:
        try:
            return ingest_file(
                upload.path, mapping=mapping, options=parse, data_dir=target, kind=options.kind
            )
        except StorageError as exc:
            raise _plain_storage_error(exc, target) from exc.__cause__

    result = ingest()
    with storage_lock(settings):
        if not result.path.exists():  # removed by a concurrent delete of the same content
            result = ingest()
        try:
            dataset = DatasetRepository(session, workspace_id).add(
                Dataset(
                    name=_dataset_name(options, upload),
                    kind=options.kind,
                    status="ready",
                    sha256=result.sha256,
                    path=str(result.path.relative_to(settings.data_dir)),
                    format=result.format.as_dict(),
                    stats=_stats(result, options),
                    report=result.report.as_dict(),
                )
            )
            session.commit()
        except BaseException:
            session.rollback()
            if not _content_in_use(session, result.sha256):
                _remove(result.path)
            raise
    return dataset


def _plain_storage_error(exc: StorageError, target: Path) -> StorageError:
    """The ingestion's storage error, re-worded "the disk is full" (507) or "not writable" (500)
    when its cause (e.g. DuckDB's I/O error while staging) says so."""
    if exc.__cause__ is None:
        return exc
    plain = storage_error(exc.__cause__, target, "store the data set")
    return plain if "reason" in plain.extra else exc


def _dataset_name(options: UploadOptions, upload: ReceivedUpload) -> str:
    """The given name, else the file's name without any directory part."""
    if options.name:
        return options.name
    filename = Path(upload.filename or options.filename or "").name
    return filename[:200] or "upload"


def _stats(result: IngestResult, options: UploadOptions) -> dict[str, Any]:
    """What ingestion learned about the content, as stored on the data set row."""
    mapping = result.mapping
    return {
        "layout": result.layout,
        "mapping": {
            **{k: v for k, v in vars(mapping).items() if k != "segments" and v is not None},
            "segments": list(mapping.segments),
        },
        "row_count": result.row_count,
        "stored_rows": result.stored_rows,
        "customer_count": result.customer_count,
        "transaction_count": result.transaction_count,
        "date_min": result.date_min.isoformat() if result.date_min else None,
        "date_max": result.date_max.isoformat() if result.date_max else None,
        "amount_total": result.amount_total
        if result.amount_total is not None and math.isfinite(result.amount_total)
        else None,
        "segments": dict(result.segments),
        "currency": options.currency,
    }


# ------------------------------------------------------------------------------ reading


def dataset_url(dataset_id: str) -> str:
    return f"/v1/datasets/{dataset_id}"


def _live() -> Any:
    return Dataset.deleted_at.is_(None)


def get_dataset(session: Session, workspace_id: str, dataset_id: str) -> Dataset:
    """A live data set of the workspace; NotFound for unknown, deleted or foreign ids."""
    dataset = DatasetRepository(session, workspace_id).get(dataset_id)
    if dataset is None or dataset.deleted_at is not None:
        raise NotFound(f"No data set '{dataset_id}' in this workspace.")
    return dataset


def list_datasets(
    session: Session, workspace_id: str, *, limit: int, offset: int
) -> tuple[Sequence[Dataset], int]:
    """A page of the workspace's live data sets (newest first) and how many there are."""
    repository = DatasetRepository(session, workspace_id)
    return repository.list(_live(), limit=limit, offset=offset), repository.count(_live())


def dataset_file(settings: Settings, dataset: Dataset) -> Path:
    """Where the data set's normalised rows are (StorageError if the file is gone)."""
    if not dataset.path:
        raise StorageError(f"Data set '{dataset.id}' has no stored file.")
    path = settings.data_dir / dataset.path
    if not path.exists():
        raise StorageError(f"The file of data set '{dataset.id}' is missing from the data dir.")
    return path


def segment_columns(dataset: Dataset) -> list[str]:
    """The data set's segment columns, in upload order."""
    return list((dataset.stats or {}).get("segments", {}))


# ------------------------------------------------------------------------------ engine


@contextlib.contextmanager
def open_engine(settings: Settings) -> Iterator[Engine]:
    """A query engine for one request or job: its own DuckDB connection (connections are not
    thread-safe) with the configured memory limit, spilling to a private directory that is
    removed afterwards. ``settings.engine == "spark"`` uses the process's local Spark session."""
    if settings.engine == "spark":
        spark = Engine.spark()
        try:
            yield spark
        finally:
            spark.close()
        return
    scratch = _claim_spill(settings)
    try:
        engine = Engine.duckdb(memory_limit=settings.duckdb_memory_limit, temp_dir=scratch.path)
        try:
            yield engine
        finally:
            engine.close()
    finally:
        scratch.release()


def _claim_spill(settings: Settings) -> Scratch:
    """A claimed spill directory under ``tmp/``; when the data directory cannot be written (full
    or read-only), an unclaimed one in the system's temporary directory, so reads still work."""
    directory = settings.data_dir / TMP_DIR
    try:
        directory.mkdir(parents=True, exist_ok=True)
        return claim_scratch(directory / f"{ENGINE_PREFIX}{uuid.uuid4().hex}", directory=True)
    except (OSError, StorageError) as exc:
        fallback = Path(tempfile.mkdtemp(prefix="cltv-engine-"))
        logger.warning("cannot spill to %s (%s); spilling to %s", directory, exc, fallback)
        return Scratch(fallback, None)


def remove_abandoned_scratch(settings: Settings) -> list[Path]:
    """Remove the temporary uploads, ingestion work directories and spill directories that a
    killed process left in the data directory (entries a live process holds are kept, so this
    is safe while other processes share the directory). Returns the removed paths."""
    root = settings.data_dir
    return [
        *sweep_scratch(root / UPLOADS_DIR, (UPLOAD_PREFIX,)),
        *sweep_scratch(root / DATASETS_DIR, (TEMP_PREFIX,)),
        *sweep_scratch(root / TMP_DIR, (ENGINE_PREFIX,)),
    ]


def require_transactions(dataset: Dataset, field_name: str) -> None:
    """RFM summaries and fits need transaction data (not summary or contractual tables)."""
    layout = (dataset.stats or {}).get("layout")
    if dataset.kind != "transactions" or layout != "transactions":
        raise InvalidInput(
            f"Data set '{dataset.id}' holds {dataset.kind} data; this needs transactions "
            "(customer id, date, amount per purchase).",
            errors=[FieldError(field_name, "not a transactions data set", value=dataset.id)],
        )


def rfm_summary(settings: Settings, dataset: Dataset, time_unit: str, limit: int) -> dict[str, Any]:
    """The per-customer summary a fit would start from: the first ``limit`` customers (by id)
    and aggregates over all customers, in whole periods of ``time_unit`` observed up to the
    latest transaction."""
    require_transactions(dataset, "path.dataset_id")
    segments = segment_columns(dataset)
    with open_engine(settings) as engine:
        summary = summarize(
            engine.table(dataset_file(settings, dataset)), time_unit, segment_cols=segments
        )
        first = engine.to_pyarrow(summary.order_by("customer_id").limit(limit)).to_pylist()
        stats = _rfm_stats(engine, summary)
    observation_end = (dataset.stats or {}).get("date_max")
    return {
        "dataset_id": dataset.id,
        "time_unit": time_unit,
        "observation_end": _as_date(observation_end),
        "customers": [
            {
                "customer_id": str(row["customer_id"]),
                "segments": {c: row[c] for c in segments},
                **{k: float(row[k]) for k in ("frequency", "recency", "T", "monetary_value")},
            }
            for row in first
        ],
        "stats": stats,
    }


def _as_date(value: str | None) -> date | None:
    return datetime.fromisoformat(value).date() if value else None


def _rfm_stats(engine: Engine, summary: ir.Table) -> dict[str, Any]:
    """Count, repeat share and mean/median/min/max of each statistic in one query."""
    repeat = summary.frequency > 0
    metrics: dict[str, ir.Value] = {
        "customers": summary.count(),
        "repeat_customers": repeat.sum(),
    }
    for name in ("frequency", "recency", "T"):
        column = summary[name]
        metrics |= _distribution(name, column)
    metrics |= _distribution("monetary_value", summary.monetary_value, where=repeat)
    row = engine.to_pyarrow(summary.aggregate(**metrics)).to_pylist()[0]
    customers = int(row["customers"] or 0)
    repeaters = int(row["repeat_customers"] or 0)
    return {
        "customers": customers,
        "repeat_customers": repeaters,
        "share_repeat": repeaters / customers if customers else None,
        **{
            name: {
                stat: _finite(row[f"{name}_{stat}"]) for stat in ("mean", "median", "min", "max")
            }
            for name in ("frequency", "recency", "T", "monetary_value")
        },
    }


def _distribution(
    name: str, column: ir.NumericColumn, where: ir.BooleanValue | None = None
) -> dict[str, ir.Value]:
    return {
        f"{name}_mean": column.mean(where=where),
        f"{name}_median": column.quantile(0.5, where=where),
        f"{name}_min": column.min(where=where),
        f"{name}_max": column.max(where=where),
    }


def _finite(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    return number if math.isfinite(number) else None


# ------------------------------------------------------------------------------ deleting


def delete_dataset(
    session: Session,
    settings: Settings,
    workspace_id: str,
    dataset_id: str,
    cascade: Callable[[Session, str], Sequence[str]],
) -> list[str]:
    """Soft-delete a data set (committed here) and remove its file when no live data set row,
    of any workspace, shares the content.

    ``cascade(session, dataset_id)`` deletes what depends on the data set (its fits) in the same
    transaction and returns their ids, which this function returns.
    """
    with storage_lock(settings):
        dataset = get_dataset(session, workspace_id, dataset_id)
        removed = list(cascade(session, dataset.id))
        dataset.deleted_at = utcnow()
        dataset.status = "deleted"
        session.flush()
        still_used = dataset.sha256 is not None and _content_in_use(session, dataset.sha256)
        session.commit()
        if dataset.path and not still_used:
            _remove(settings.data_dir / dataset.path)
    return removed


def _remove(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink(missing_ok=True)


def _content_in_use(session: Session, sha256: str) -> bool:
    """Whether any live data set, of any workspace, stores this content.

    A deliberate cross-workspace query: stored files are shared by content, and the answer is
    never shown to the caller (it only decides whether the file can go).
    """
    query = select(func.count()).select_from(Dataset).where(Dataset.sha256 == sha256, _live())
    return bool(session.scalar(query))
