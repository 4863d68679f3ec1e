"""Where the engine's expressions run: embedded DuckDB (default), local PySpark, or any Ibis URL.

* :meth:`Engine.duckdb` — embedded DuckDB, no server. ``memory_limit`` bounds its memory and
  ``temp_dir`` is where it spills, so inputs larger than RAM work.
* :meth:`Engine.spark` — PySpark through Ibis' ``pyspark`` backend; by default a local
  session (``local[2]``, few shuffle partitions, UI off, UTC session time zone). Needs the
  ``spark`` extra (pyspark) and a Java runtime.
* :meth:`Engine.from_url` — any connection URL Ibis understands, e.g.
  ``duckdb:///data/warehouse.ddb`` or ``postgres://user:password@host:5432/db`` (the
  PostgreSQL backend needs ``ibis-framework[postgres]``); then ``engine.table("transactions")``
  reads a table of that database.

The summary functions take any Ibis table, so they run wherever the table lives.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol, Self
from urllib.parse import urlsplit, urlunsplit

import duckdb
import ibis
import ibis.common.exceptions as ibis_exc
import ibis.expr.types as ir
import pyarrow as pa
import pyarrow.parquet as pq

from cltv_api.errors import FieldError, InvalidInput, NotFound, PayloadTooLarge

_PARQUET_SUFFIXES = (".parquet", ".pq", ".parq")
DEFAULT_MAX_ROWS = 1_000_000


class Engine:
    """An Ibis backend connection plus the reading and writing the summary engine needs."""

    def __init__(self, backend: ibis.BaseBackend, *, memory_limit: str | None = None) -> None:
        self.backend = backend
        # DuckDB's memory limit as set (e.g. "1GB"), re-applied by release_memory
        self._memory_limit = memory_limit

    @property
    def name(self) -> str:
        """The Ibis backend name: ``duckdb``, ``pyspark``, ``postgres``..."""
        return str(self.backend.name)

    @classmethod
    def duckdb(
        cls,
        database: str | Path = ":memory:",
        *,
        memory_limit: str | None = None,
        temp_dir: str | Path | None = None,
        threads: int | None = None,
    ) -> Self:
        """Embedded DuckDB.

        ``memory_limit`` is a DuckDB size string (``"2GB"``); beyond it DuckDB spills to
        ``temp_dir``. Insertion order is not preserved (lets DuckDB stream large inputs).
        """
        # Allocator background threads return freed memory to the system while the next
        # steps run (fits, valuation); without them a finished summary's hash tables stay
        # resident (about 200 MB on 1M customers).
        config: dict[str, Any] = {
            "preserve_insertion_order": False,
            "allocator_background_threads": True,
        }
        if memory_limit is not None:
            config["memory_limit"] = memory_limit
        if temp_dir is not None:
            Path(temp_dir).mkdir(parents=True, exist_ok=True)
            config["temp_directory"] = os.fspath(temp_dir)
        if threads is not None:
            config["threads"] = threads
        backend = ibis.duckdb.connect(database, **config)
        with contextlib.suppress(duckdb.Error):
            # A session setting, not a config key; DuckDB refuses it inside Jupyter without
            # ipywidgets, where there is no terminal bar to silence anyway.
            backend.raw_sql("SET enable_progress_bar = false")
        return cls(backend, memory_limit=memory_limit)

    @classmethod
    def spark(
        cls,
        master: str = "local[2]",
        *,
        shuffle_partitions: int = 4,
        driver_memory: str = "1g",
        app_name: str = "cltv-engine",
        log_level: str = "ERROR",
        conf: dict[str, str] | None = None,
    ) -> Self:
        """PySpark session (reused if one is already running in this process).

        Defaults suit one machine: ``shuffle_partitions`` small (Spark's 200 is for clusters),
        web UI and console progress bars off, modest driver memory, UTC session time zone
        (timestamps are read as UTC wall-clock time, as in DuckDB). ``conf`` adds settings.
        """
        # pyspark is optional (the spark extra): import it only when Spark is asked for.
        from pyspark.sql import SparkSession  # noqa: PLC0415

        settings = {
            "spark.sql.shuffle.partitions": str(shuffle_partitions),
            "spark.default.parallelism": str(shuffle_partitions),
            "spark.ui.enabled": "false",
            "spark.ui.showConsoleProgress": "false",
            "spark.driver.memory": driver_memory,
            "spark.sql.session.timeZone": "UTC",
            **(conf or {}),
        }
        builder = SparkSession.builder.master(master).appName(app_name)
        for key, value in settings.items():
            builder = builder.config(key, value)
        session = builder.getOrCreate()
        session.sparkContext.setLogLevel(log_level)
        return cls(ibis.pyspark.connect(session))

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> Self:
        """Connect with an Ibis URL (``duckdb:///path/file.ddb``, ``postgres://...``).

        Any failure to connect (unknown scheme, missing driver, unreachable server, refused
        login) is an InvalidInput naming the URL with its password masked.
        """
        try:
            return cls(ibis.connect(url, **kwargs))
        except Exception as exc:  # drivers raise their own types (psycopg, duckdb, ...)
            shown = mask_password(url)
            reason = _first_line(str(exc)).replace(url, shown)
            raise InvalidInput(
                f"cannot connect to {shown!r}: {reason}",
                errors=[FieldError("url", reason, value=shown)],
            ) from exc

    def table(self, source: str | Path) -> ir.Table:
        """A Parquet file/directory/glob (lazy scan) or a table of the connected database.

        A :class:`~pathlib.Path`, a name ending in .parquet/.pq, a glob or an existing path is
        read as Parquet (a directory means all ``*.parquet`` files in it, as Spark writes
        them); anything else is a table name. Raises NotFound when neither exists.
        """
        if _is_parquet_source(source):
            return self._read_parquet(Path(source))
        try:
            with _third_party_deprecations():
                return self.backend.table(str(source))
        except ibis_exc.TableNotFound as exc:
            raise NotFound(f"no table named {source!r} in the {self.name} database") from exc

    def _read_parquet(self, path: Path) -> ir.Table:
        if "*" not in path.name and not path.exists():
            raise NotFound(f"no Parquet file at {path}")
        target = path / "*.parquet" if path.is_dir() else path
        with _third_party_deprecations():
            return self.backend.read_parquet(os.fspath(target))

    def to_parquet(self, expr: ir.Table, path: str | Path) -> None:
        """Run ``expr`` and write the result as Parquet without collecting it in Python.

        DuckDB streams into one file; Spark writes a directory of part files (read either
        back with :meth:`table`); other backends stream record batches into one file.
        """
        target = os.fspath(path)
        if self.name == "duckdb":
            self.backend.to_parquet(expr, target)
            return
        if self.name == "pyspark":
            self.backend.to_parquet(expr, target, mode="overwrite")
            return
        write_batches(self.backend, expr, target)

    def persist(self, expr: ir.Table, path: str | Path) -> ir.Table:
        """Write ``expr`` to Parquet and return a table reading it (compute once, reuse).

        A database that cannot read Parquet (PostgreSQL) keeps the result in a temporary table
        of its own instead, computed there once, and the file is written from that table.
        """
        if _reads_parquet(self.backend):
            self.to_parquet(expr, path)
            return self.table(Path(path))
        return self.store([expr], path)

    def store(
        self,
        parts: Sequence[ir.Table],
        path: str | Path | None = None,
        *,
        on_part: Callable[[int, int], None] | None = None,
    ) -> ir.Table:
        """Compute ``parts`` (tables with one schema) one after another into one table.

        The parts run as separate queries, so the engine's working memory is that of one part
        (see :func:`.summary.summarize_parts`). The result is a temporary table of the
        session (Spark: the cached union); with ``path`` it is also written there as Parquet.
        ``on_part(done, total)`` is called after each part (progress bars).
        """
        if not parts:
            raise ValueError("store needs at least one part")
        report = on_part or (lambda done, total: None)
        if self.name == "pyspark":
            stored = ibis.union(*parts).cache() if len(parts) > 1 else parts[0].cache()
            report(len(parts), len(parts))
        else:
            name = ibis.util.gen_name("cltv_store")
            # Not Ibis' ``cache()``: its finalizer drops the table at interpreter exit, after
            # the connection is closed, and fails there.
            with _third_party_deprecations():
                stored = self.backend.create_table(name, parts[0], temp=True)
                report(1, len(parts))
                for done, part in enumerate(parts[1:], start=2):
                    self.backend.insert(name, part)
                    report(done, len(parts))
        self.release_memory()
        if path is not None:
            self.to_parquet(stored, path)
        return stored

    def release_memory(self) -> None:
        """Give memory DuckDB has freed but still holds back to the system, now.

        After a large aggregation DuckDB keeps its freed buffers (about 200 MB on 1M
        customers); its allocator's background threads return them within a second or two,
        while the next steps are already running. Setting the memory limit makes DuckDB 2.0's
        buffer manager flush them at once. It is set to the value the engine was created
        with; an engine created without one is left alone (DuckDB shows its own limit
        rounded to 0.1 MiB, so setting what it shows would lower it). Other engines: nothing.
        """
        if self.name != "duckdb" or self._memory_limit is None:
            return
        self.backend.con.execute(f"SET memory_limit = '{self._memory_limit}'")

    def to_pyarrow(self, expr: ir.Table, *, max_rows: int = DEFAULT_MAX_ROWS) -> pa.Table:
        """Collect a *small* result; raises PayloadTooLarge beyond ``max_rows`` rows."""
        result = self.backend.to_pyarrow(expr.limit(max_rows + 1))
        if result.num_rows > max_rows:
            raise PayloadTooLarge(
                f"result has more than {max_rows} rows; write it with to_parquet instead"
            )
        return result

    def close(self) -> None:
        """Release the connection (a Spark session is left running for reuse)."""
        if self.name != "pyspark":
            self.backend.disconnect()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BatchSource(Protocol):
    """What :func:`write_batches` needs of a backend (every Ibis backend has it)."""

    def to_pyarrow_batches(self, expr: ir.Table, /) -> pa.RecordBatchReader: ...


def write_batches(backend: BatchSource, expr: ir.Table, path: str | Path) -> None:
    """Stream ``expr``'s record batches into one Parquet file (memory: one batch)."""
    with (
        backend.to_pyarrow_batches(expr) as batches,
        pq.ParquetWriter(os.fspath(path), batches.schema) as writer,
    ):
        for batch in batches:
            writer.write_batch(batch)


def _reads_parquet(backend: ibis.BaseBackend) -> bool:
    """Whether the backend implements ``read_parquet`` (Ibis' base class only raises)."""
    return type(backend).read_parquet is not ibis.BaseBackend.read_parquet


def mask_password(url: str) -> str:
    """``url`` with the password of its user-info part (``user:password@``) replaced by ***."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else "connection failed"


def _is_parquet_source(source: str | Path) -> bool:
    if isinstance(source, Path):
        return True
    return source.lower().endswith(_PARQUET_SUFFIXES) or "*" in source or Path(source).exists()


@contextlib.contextmanager
def _third_party_deprecations() -> Iterator[None]:
    """Ignore the one deprecation Ibis 12 triggers inside duckdb 2 when reading a schema.

    ``ibis.backends.duckdb.Backend.get_schema`` calls ``DuckDBPyRelation.fetch_arrow_table``,
    deprecated in duckdb 2.0 in favour of ``to_arrow_table``; the call is Ibis', not ours.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message=r"fetch_arrow_table\(\) is deprecated", category=DeprecationWarning
        )
        yield
