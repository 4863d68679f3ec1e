"""Content-addressed, atomic storage of normalised Parquet files.

The Parquet file is written by DuckDB to a hidden temporary file *in the target directory*
(so the final rename cannot cross file systems), flushed with ``fsync``, hashed (SHA-256 of
the file's bytes) and hard-linked to ``<sha256>.parquet``; linking fails rather than
overwrites when that name exists, in which case the existing file (same content) is kept.
The temporary name is always removed, so a failure leaves the directory as it was.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import uuid
from pathlib import Path

import duckdb

from cltv_api.errors import StorageError
from cltv_api.ingest.sqltext import lit

TEMP_PREFIX = ".cltv-tmp-"


def prepare_dir(data_dir: Path) -> Path:
    """Create ``data_dir`` if needed; raise StorageError if it cannot be written."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"Cannot create the data directory {data_dir}: {exc.strerror}") from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StorageError(f"The data directory {data_dir} is not writable.")
    return data_dir


def make_workdir(data_dir: Path) -> Path:
    """A private scratch directory inside ``data_dir`` (DuckDB database, spill, transcoding)."""
    work = data_dir / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
    try:
        work.mkdir()
    except OSError as exc:
        raise StorageError(f"Cannot write to {data_dir}: {exc.strerror}") from exc
    return work


def remove_workdir(work: Path) -> None:
    shutil.rmtree(work, ignore_errors=True)


def publish_parquet(
    con: duckdb.DuckDBPyConnection, select_sql: str, data_dir: Path
) -> tuple[Path, str]:
    """Write the result of ``select_sql`` to ``<sha256>.parquet`` in ``data_dir`` atomically.

    Returns the final path and the hex SHA-256 of the file.
    """
    tmp = data_dir / f"{TEMP_PREFIX}{uuid.uuid4().hex}.parquet"
    try:
        con.execute(
            f"COPY ({select_sql}) TO {lit(str(tmp))} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
        _fsync_file(tmp)
        digest = sha256_file(tmp)
        final = data_dir / f"{digest}.parquet"
        try:
            os.link(tmp, final)
        except FileExistsError:
            pass  # same name means same bytes: keep the file already there
        except OSError:
            if not final.exists():
                os.replace(tmp, final)  # file systems without hard links
        _fsync_dir(data_dir)
        return final, digest
    except (OSError, duckdb.IOException) as exc:
        raise StorageError(f"Could not store the normalised data in {data_dir}: {exc}") from exc
    finally:
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def _fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every platform can fsync a directory
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
