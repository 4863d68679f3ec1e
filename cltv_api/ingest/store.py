"""Content-addressed, atomic storage of normalised Parquet files, and scratch space.

The Parquet file is written by DuckDB to a temporary file inside a private scratch directory
*in the target directory* (so the final link cannot cross file systems), flushed with ``fsync``,
hashed (SHA-256 of the file's bytes) and hard-linked to ``<sha256>.parquet``; linking fails
rather than overwrites when that name exists, in which case the existing file (same content) is
kept. The scratch directory is always removed, so a failure leaves the directory as it was.

Scratch entries (work directories, uploads being received, engine spill directories) are
*claimed*: the process that creates one holds an exclusive ``flock`` on it until it removes it.
A process killed mid-way (``kill -9``, power loss) cannot remove its entries, but the kernel
drops its locks, so :func:`sweep_scratch` (run at start-up) can tell an abandoned entry (lock
free) from one another live process still uses (lock held), even when several processes share
the data directory. A lock on the directory itself orders "create, then lock" against the
sweep, so a sweep never sees a fresh entry before its owner locked it.

Write failures become :class:`~cltv_api.errors.StorageError` problems through
:func:`storage_error`: a full disk (``ENOSPC``, ``EDQUOT``, ``EFBIG``) is 507 Insufficient
Storage, a read-only or forbidden data directory (``EROFS``, ``EACCES``, ``EPERM``) is 500.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import shutil
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb

from cltv_api.errors import StorageError
from cltv_api.ingest.sqltext import lit

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: no flock, so no sweeping either
    fcntl = None  # type: ignore[assignment]

TEMP_PREFIX = ".cltv-tmp-"

DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})
NOT_WRITABLE_ERRNOS = frozenset({errno.EROFS, errno.EACCES, errno.EPERM})
_KNOWN_ERRNOS = DISK_FULL_ERRNOS | NOT_WRITABLE_ERRNOS


# ------------------------------------------------------------------------------ errors


def _errno_of(exc: BaseException) -> int | None:
    """The errno behind an OSError, or behind a DuckDB I/O error (recognised by the C library's
    message for it, which DuckDB quotes, e.g. "No space left on device")."""
    if isinstance(exc, OSError) and exc.errno is not None:
        return exc.errno
    text = str(exc)
    return next((code for code in _KNOWN_ERRNOS if os.strerror(code) in text), None)


def storage_error(exc: BaseException, directory: Path, action: str) -> StorageError:
    """The problem to report when ``action`` (e.g. "store the upload") failed in ``directory``:
    507 with "the disk is full" for ENOSPC/EDQUOT/EFBIG, 500 "not writable" for EROFS/EACCES/
    EPERM, else 507 with the system's message."""
    code = _errno_of(exc)
    reason = os.strerror(code) if code is not None else str(exc)
    if code in DISK_FULL_ERRNOS:
        return StorageError(
            f"The disk is full: could not {action} in {directory} ({reason}). "
            "Free some space on the server, then try again.",
            extra={"reason": "disk-full"},
        )
    if code in NOT_WRITABLE_ERRNOS:
        return StorageError(
            f"The data directory {directory} is not writable ({reason}): could not {action}.",
            extra={"reason": "not-writable"},
            status=500,
        )
    return StorageError(f"Could not {action} in {directory}: {reason}")


def prepare_dir(data_dir: Path) -> Path:
    """Create ``data_dir`` if needed; raise StorageError if it cannot be written."""
    try:
        data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise storage_error(exc, data_dir, "create the data directory") from exc
    if not os.access(data_dir, os.W_OK | os.X_OK):
        raise StorageError(
            f"The data directory {data_dir} is not writable.",
            extra={"reason": "not-writable"},
            status=500,
        )
    return data_dir


# ------------------------------------------------------------------------------ scratch


@dataclass
class Scratch:
    """A claimed scratch entry (file or directory) and the descriptor holding its lock."""

    path: Path
    fd: int | None

    def release(self) -> None:
        """Remove the entry (wherever it was renamed to), then drop the lock (idempotent)."""
        _remove_entry(self.path)
        if self.fd is not None:
            with contextlib.suppress(OSError):
                os.close(self.fd)
            self.fd = None


@contextlib.contextmanager
def _guard(directory: Path, *, exclusive: bool) -> Iterator[None]:
    """``flock`` on the directory itself: shared while an entry is created and locked,
    exclusive while the directory is swept."""
    if fcntl is None:  # pragma: no cover - Windows
        yield
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH)
        yield
    finally:
        os.close(fd)  # closing the last descriptor releases the lock


def claim_scratch(path: Path, *, directory: bool, data_dir: Path | None = None) -> Scratch:
    """Create the scratch file or directory ``path`` (its parent must exist) and lock it;
    StorageError (see :func:`storage_error`, naming ``data_dir``, default the parent) when it
    cannot be created."""
    try:
        with _guard(path.parent, exclusive=False):
            if directory:
                path.mkdir()
            else:
                os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
            fd = os.open(path, os.O_RDONLY)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # new: nobody else can hold it
    except OSError as exc:
        _remove_entry(path)
        raise storage_error(exc, data_dir or path.parent, "create scratch space") from exc
    return Scratch(path, fd)


def sweep_scratch(directory: Path, prefixes: tuple[str, ...] = (TEMP_PREFIX,)) -> list[Path]:
    """Remove the scratch entries of ``directory`` (names starting with one of ``prefixes``)
    that no live process holds: leftovers of a process that was killed. Returns them.

    Safe while other processes use the directory: entries they hold are skipped. Does nothing
    when the directory is missing or cannot be written (start-up goes on; writes will report
    the problem), or where ``flock`` does not exist.
    """
    if fcntl is None or not directory.is_dir():  # pragma: no cover - Windows
        return []
    removed: list[Path] = []
    with contextlib.suppress(OSError), _guard(directory, exclusive=True):
        for entry in directory.iterdir():
            wanted = entry.name.startswith(prefixes)
            if wanted and _remove_if_abandoned(entry):
                removed.append(entry)
    return removed


def _remove_if_abandoned(entry: Path) -> bool:
    try:
        fd = os.open(entry, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:  # a symbolic link or already gone: not ours
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # held by a live process
            return False
        _remove_entry(entry)
        return True
    finally:
        os.close(fd)


def _remove_entry(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(OSError):
            path.unlink(missing_ok=True)


_CLAIMED: dict[Path, Scratch] = {}
"""Scratch entries this process holds, by path (for :func:`release` and :func:`rename_claimed`)."""
_CLAIMED_LOCK = threading.Lock()


def claim(path: Path, *, directory: bool, data_dir: Path | None = None) -> Path:
    """:func:`claim_scratch` ``path`` and remember it until :func:`release`."""
    scratch = claim_scratch(path, directory=directory, data_dir=data_dir)
    with _CLAIMED_LOCK:
        _CLAIMED[scratch.path] = scratch
    return scratch.path


def release(path: Path) -> None:
    """Remove a claimed entry and drop its lock (an unclaimed ``path`` is just removed)."""
    with _CLAIMED_LOCK:
        scratch = _CLAIMED.pop(path, None)
    if scratch is None:
        _remove_entry(path)
    else:
        scratch.release()


def rename_claimed(path: Path, new_path: Path) -> None:
    """Rename a claimed entry; its claim (lock and later removal) follows it."""
    path.rename(new_path)
    with _CLAIMED_LOCK:
        scratch = _CLAIMED.pop(path, None)
        if scratch is not None:
            scratch.path = new_path
            _CLAIMED[new_path] = scratch


def make_workdir(data_dir: Path) -> Path:
    """A private, claimed scratch directory inside ``data_dir`` (DuckDB database, spill,
    transcoding); give it back with :func:`remove_workdir`."""
    return claim(data_dir / f"{TEMP_PREFIX}{uuid.uuid4().hex}", directory=True)


def remove_workdir(work: Path) -> None:
    """Remove a directory made by :func:`make_workdir` and release its lock."""
    release(work)


# ------------------------------------------------------------------------------ publishing


def publish_parquet(
    con: duckdb.DuckDBPyConnection, select_sql: str, data_dir: Path
) -> tuple[Path, str]:
    """Write the result of ``select_sql`` to ``<sha256>.parquet`` in ``data_dir`` atomically.

    Returns the final path and the hex SHA-256 of the file.
    """
    work = make_workdir(data_dir)
    tmp = work / "data.parquet"
    try:
        con.execute(
            f"COPY ({select_sql}) TO {lit(str(tmp))} "
            "(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE 122880)"
        )
        _fsync_file(tmp)
        digest = sha256_file(tmp)
        final = data_dir / f"{digest}.parquet"
        _link_or_move(tmp, final)
        _fsync_dir(data_dir)
        return final, digest
    except (OSError, duckdb.IOException) as exc:
        raise storage_error(exc, data_dir, "store the normalised data") from exc
    finally:
        remove_workdir(work)


def _link_or_move(tmp: Path, final: Path) -> None:
    """Give ``tmp`` the name ``final`` unless a file (same name, so same bytes) is there."""
    try:
        os.link(tmp, final)
    except FileExistsError:
        pass  # same name means same bytes: keep the file already there
    except OSError:
        if not final.exists():
            os.replace(tmp, final)  # file systems without hard links


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
