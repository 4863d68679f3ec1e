"""Shared helpers for the benchmark scripts: data, timing, and printing ratios."""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pyarrow.parquet as pq

from benchmarks.generate import GeneratorConfig, iter_tables

DATA_DIR = Path(__file__).parent / "data"
T = TypeVar("T")


def transactions_file(n_customers: int, seed: int = 42) -> Path:
    """Path of a generated transaction Parquet file (generated once, then reused)."""
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    path = DATA_DIR / f"tx_{n_customers}_{seed}.parquet"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        writer = None
        for table in iter_tables(GeneratorConfig(n_customers=n_customers, seed=seed)):
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
        if writer is not None:
            writer.close()
        tmp.rename(path)
    return path


def best_of(func: Callable[[], T], repeat: int = 3) -> tuple[float, T]:
    """Fastest wall time of ``repeat`` runs, and the last result."""
    best = float("inf")
    result: Any = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = func()
        best = min(best, time.perf_counter() - start)
    return best, result


@contextlib.contextmanager
def quiet() -> Iterator[None]:
    """lifetimes warns a lot on current pandas; keep benchmark output readable."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def max_rel_diff(a: dict[str, float], b: dict[str, float]) -> float:
    return max(abs(a[k] - b[k]) / abs(b[k]) for k in b)


def markdown_table(rows: list[dict[str, Any]]) -> str:
    headers = list(rows[0])
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_fmt(row[h]) for h in headers) + " |")
    return "\n".join(lines)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, np.integer):
        return str(int(value))
    return str(value)
