"""Join per-history predictions back onto customers, and aggregate them per segment.

Predictions are computed in Python once per *unique* history (see :mod:`.compress`); this
module ships that small table to the engine as an Ibis memtable and joins it on the history
key, so the per-customer table never leaves the engine. Aggregates per segment (counts, sums,
means, quantiles) are engine expressions too.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, TypeAlias

import ibis
import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from numpy.typing import ArrayLike

from cltv_api.errors import FieldError, InvalidInput

from .compress import HISTORY_KEY

if TYPE_CHECKING:
    import pandas as pd

Predictions: TypeAlias = "pa.Table | pd.DataFrame | Mapping[str, ArrayLike]"
DEFAULT_QUANTILES = (0.1, 0.5, 0.9)


def attach(
    summary: ir.Table, predictions: Predictions, key: Sequence[str] = HISTORY_KEY
) -> ir.Table:
    """Left-join per-history predictions onto every customer of ``summary`` on ``key``.

    ``predictions`` holds the ``key`` columns plus prediction columns, one row per unique key
    (e.g. :meth:`.compress.Histories.with_predictions`); add segment columns to ``key`` when
    predictions differ per segment (null segment values match each other). Customers whose
    key is absent get nulls. Only the small predictions table travels to the engine (as a
    memtable); the result is a lazy per-customer table.

    Non-integral float keys (a mean spend) must come from one materialised summary
    (:meth:`.backends.Engine.persist`): a parallel engine that recomputes a sum may round its
    last bit differently. Integral keys (frequency, recency, T) are always exact.
    """
    key = list(key)
    small = _as_arrow(predictions)
    _check_prediction_table(summary, small, key)
    table = ibis.memtable(small)
    table = table.cast({k: summary[k].type() for k in key})
    # null-safe equality: a customer whose segment value is null still finds its row
    joined = summary.left_join(table, [summary[k].identical_to(table[k]) for k in key])
    new_cols = [c for c in small.column_names if c not in key]
    return joined.select(*[summary[c] for c in summary.columns], *[table[c] for c in new_cols])


def segment_aggregates(
    table: ir.Table,
    values: Sequence[str],
    by: Sequence[str] = (),
    *,
    quantiles: Sequence[float] = DEFAULT_QUANTILES,
) -> ir.Table:
    """Per segment: customer count and, for each value column, sum, mean and quantiles.

    Columns are ``n_customers`` and ``{value}_sum``, ``{value}_mean``, ``{value}_p{100 q}``
    (e.g. ``clv_p50``; ``clv_p97_5`` for q = 0.975). Quantiles interpolate linearly between
    order statistics (DuckDB ``quantile_cont``, Spark ``percentile``, numpy's default).
    Nulls are skipped by sums, means and quantiles; ``n_customers`` counts all rows. With
    ``by=()`` the result is one row for all customers; otherwise it is sorted by ``by``.
    """
    _require(table, [*by, *values])
    bad_q = [q for q in quantiles if not 0.0 <= q <= 1.0]
    if bad_q:
        raise InvalidInput(
            f"quantiles must lie in [0, 1], got {bad_q}",
            errors=[FieldError("quantiles", "must lie in [0, 1]", value=str(bad_q[0]))],
        )
    metrics: dict[str, ir.Scalar] = {"n_customers": table.count()}
    for name in values:
        col = table[name]
        metrics[f"{name}_sum"] = col.sum()
        metrics[f"{name}_mean"] = col.mean()
        for q in quantiles:
            metrics[f"{name}_{_quantile_label(q)}"] = col.quantile(q)
    if not by:
        return table.aggregate(**metrics)
    return table.group_by(list(by)).aggregate(**metrics).order_by(list(by))


def _quantile_label(q: float) -> str:
    return f"p{round(q * 100, 6):g}".replace(".", "_")


def _as_arrow(predictions: Predictions) -> pa.Table:
    if isinstance(predictions, pa.Table):
        return predictions
    # A DataFrame can only exist once pandas is imported; this module does not import it.
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(predictions, pandas.DataFrame):
        return pa.Table.from_pandas(predictions, preserve_index=False)
    return pa.table({name: pa.array(values) for name, values in predictions.items()})


def _check_prediction_table(summary: ir.Table, small: pa.Table, key: list[str]) -> None:
    _require(summary, key)
    missing = [k for k in key if k not in small.column_names]
    if missing:
        raise InvalidInput(
            f"predictions have no key column(s) {', '.join(missing)}",
            errors=[FieldError(k, "key column is missing from the predictions") for k in missing],
        )
    new_cols = [c for c in small.column_names if c not in key]
    clashes = [c for c in new_cols if c in summary.columns]
    if not new_cols or clashes:
        raise InvalidInput(
            "predictions need at least one column that is not in the summary"
            + (f"; already in the summary: {', '.join(clashes)}" if clashes else ""),
            errors=[FieldError(c, "column already exists in the summary") for c in clashes],
        )
    duplicates = small.num_rows - distinct_rows(small, key)
    if duplicates:
        raise InvalidInput(
            f"predictions have {duplicates} duplicate key row(s) on {key}",
            errors=[FieldError(",".join(key), "must be unique in the predictions")],
        )


def distinct_rows(table: pa.Table, columns: Sequence[str]) -> int:
    """Number of distinct rows of ``table`` over ``columns`` (nulls equal each other).

    Each column becomes integer codes (numpy's sort-based unique for numbers without nulls,
    Arrow's dictionary encoding for strings and nulls), combined column by column and
    re-coded at each step so they stay below the row count. Arrow's multi-column
    ``group_by`` is not used: its hashing took 20 s on 200k rows of integer-valued floats.
    """
    combined = row_codes([_codes(table[name]) for name in columns], table.num_rows)
    return int(combined.max()) + 1 if combined.size else 0


def row_codes(columns: Sequence[tuple[np.ndarray, int]], n_rows: int) -> np.ndarray:
    """One code per distinct row from per-column ``(codes, number of codes)``.

    The codes are combined column by column and re-coded (numpy's unique) after each, so they
    stay below the row count however many columns there are; equal rows share a code, and
    codes follow the rows' order by the columns' codes (first column first).
    """
    combined = np.zeros(n_rows, dtype=np.int64)
    for codes, n_values in columns:
        combined = np.unique(combined * n_values + codes, return_inverse=True)[1].reshape(-1)
    return combined


def _codes(column: pa.ChunkedArray) -> tuple[np.ndarray, int]:
    """Integer codes of a column's values (equal values, and all nulls, share a code)."""
    numeric = pa.types.is_floating(column.type) or pa.types.is_integer(column.type)
    if numeric and column.null_count == 0:
        uniques, codes = np.unique(column.to_numpy(), return_inverse=True)
        return codes.reshape(-1).astype(np.int64), len(uniques)
    encoded = pc.dictionary_encode(column, null_encoding="encode").combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False).astype(np.int64)
    return codes, len(encoded.dictionary)


def _require(table: ir.Table, columns: Sequence[str]) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in table.columns]
    if missing:
        raise InvalidInput(
            f"table has no column(s) {', '.join(missing)}",
            errors=[FieldError(c, "column is missing") for c in missing],
        )
