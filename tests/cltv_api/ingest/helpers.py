"""Shared helpers of the ingestion tests: build input files in tmp_path and read results."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from cltv_api.ingest import ColumnMapping, IngestResult, ParseOptions, ingest_file
from cltv_api.ingest.options import Kind

# A fixed "today" so future-date checks do not depend on when the tests run.
AS_OF = date(2025, 1, 1)


def write_text(path: Path, text: str, encoding: str = "utf-8") -> Path:
    """Write ``text`` exactly (no newline translation) in ``encoding``."""
    path.write_bytes(text.encode(encoding))
    return path


def options(**kwargs: Any) -> ParseOptions:
    """ParseOptions with the fixed as_of date unless given."""
    kwargs.setdefault("as_of", AS_OF)
    return ParseOptions(**kwargs)


def ingest(
    path: Path,
    data_dir: Path,
    *,
    mapping: ColumnMapping | None = None,
    kind: Kind = "transactions",
    **opts: Any,
) -> IngestResult:
    return ingest_file(path, mapping=mapping, options=options(**opts), data_dir=data_dir, kind=kind)


def rows(result: IngestResult) -> list[dict[str, Any]]:
    """The stored Parquet rows as dicts."""
    out: list[dict[str, Any]] = pq.read_table(result.path).to_pylist()
    return out


def column(result: IngestResult, name: str) -> list[Any]:
    out: list[Any] = pq.read_table(result.path).column(name).to_pylist()
    return out


def listing(directory: Path) -> list[str]:
    """Names in a directory (hidden temporary files included), sorted."""
    return sorted(p.name for p in directory.iterdir()) if directory.exists() else []
