"""Compress per-customer histories into unique rows with counts (sufficient statistics).

The likelihoods of all models here depend on a customer only through a few numbers
(x, t_x, T), so customers with identical histories contribute identical terms. Fitting on
unique rows weighted by their counts makes the cost grow with the number of distinct
histories, not customers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from ._validation import FloatArray


@dataclass(frozen=True)
class Compressed:
    """Unique rows of the input columns, their summed weights and the inverse index."""

    columns: tuple[FloatArray, ...]
    weights: FloatArray
    inverse: NDArray[np.intp]

    @property
    def n_unique(self) -> int:
        return int(self.weights.shape[0])


def compress(*columns: FloatArray, weights: FloatArray | None = None) -> Compressed:
    """Group identical rows of ``columns`` and sum ``weights`` (ones by default) per group.

    ``inverse`` maps each input row to its unique row, so per-unique-row predictions can be
    expanded back with ``values[inverse]``. Each column is first coded to integers (whole
    period counts are their own codes, other values take a 1-D sort); the codes are combined
    into one int64 key per row, whose unique values are the unique rows, in ascending order of
    the columns (first column first). That is several times faster than sorting rows as
    bytes, which remains the fallback when the key could overflow.
    """
    n = columns[0].shape[0]
    w = np.ones(n) if weights is None else weights
    presorted = _compress_sorted(columns, w)
    if presorted is not None:
        return presorted
    uniques: list[FloatArray | None] = []
    codes = []
    sizes = []
    for column in columns:
        u, code, size = _column_codes(column)
        uniques.append(u)
        codes.append(code)
        sizes.append(size)
    if float(np.prod(np.asarray(sizes, dtype=np.float64))) >= 2.0**62:
        return _compress_bytes(columns, w)
    key = np.zeros(n, dtype=np.int64)
    for code, size in zip(codes, sizes, strict=True):
        key = key * size + code
    unique_keys, inverse = np.unique(key, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=unique_keys.shape[0])
    out_columns = []
    rest = unique_keys
    for u, size in zip(reversed(uniques), reversed(sizes), strict=True):
        rest, code = np.divmod(rest, size)
        values = code.astype(np.float64) if u is None else u[code]
        out_columns.append(np.ascontiguousarray(values))
    return Compressed(
        columns=tuple(reversed(out_columns)),
        weights=counts.astype(np.float64),
        inverse=inverse.ravel().astype(np.intp),
    )


WHOLE_NUMBER_CODES = 2**20
"""Columns of whole numbers in [0, 2**20) (counts of periods) are their own codes."""


def _column_codes(column: FloatArray) -> tuple[FloatArray | None, NDArray[np.int64], int]:
    """Integer codes of a column's values that keep their order, and how many codes there are.

    Whole numbers below :data:`WHOLE_NUMBER_CODES` (frequency, recency and T in periods) are
    their own codes, with no sort; the first element is then None (a code is its value).
    Other values are coded by a sort (numpy's unique), returned with the distinct values.
    ``+ 0.0`` makes -0.0 and 0.0 one value.
    """
    values = np.asarray(column, dtype=np.float64) + 0.0
    if values.size:
        low, high = float(values.min()), float(values.max())
        if low >= 0 and high < WHOLE_NUMBER_CODES and np.array_equal(values, np.floor(values)):
            return None, values.astype(np.int64), int(high) + 1
    u, code = np.unique(values, return_inverse=True)
    return u, code.ravel().astype(np.int64), max(u.shape[0], 1)


def _compress_sorted(columns: tuple[FloatArray, ...], w: FloatArray) -> Compressed | None:
    """Fast path for rows already in ascending lexicographic order (no NaN), else None.

    Histories read back from the engine arrive sorted and mostly distinct; then the groups
    are the runs of equal rows, found in one pass per column instead of a sort per column.
    The result is the one the sorting path gives (unique rows ascending, -0.0 read as 0.0).
    """
    cols = [np.asarray(column, dtype=np.float64) + 0.0 for column in columns]
    n = cols[0].shape[0]
    if n < 2 or any(np.isnan(col).any() for col in cols):
        return None
    equal = np.ones(n - 1, dtype=bool)  # row i+1 equals row i on the columns seen so far
    ordered = np.zeros(n - 1, dtype=bool)  # row i+1 is already known to be greater
    for col in cols:
        ordered |= equal & (col[1:] > col[:-1])
        equal &= col[1:] == col[:-1]
    if not np.all(ordered | equal):
        return None
    starts = np.concatenate(([True], ~equal))
    inverse = (np.cumsum(starts) - 1).astype(np.intp)
    first = np.flatnonzero(starts)
    counts = np.bincount(inverse, weights=w, minlength=first.shape[0])
    return Compressed(
        columns=tuple(np.ascontiguousarray(col[first]) for col in cols),
        weights=counts.astype(np.float64),
        inverse=inverse,
    )


def _compress_bytes(columns: tuple[FloatArray, ...], w: FloatArray) -> Compressed:
    """Fallback: unique rows by sorting each row's bytes."""
    stacked = np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)
    stacked += 0.0
    row_view = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1])))
    _, first, inverse = np.unique(row_view.ravel(), return_index=True, return_inverse=True)
    counts = np.bincount(inverse.ravel(), weights=w, minlength=first.shape[0])
    unique_rows = stacked[first]
    return Compressed(
        columns=tuple(np.ascontiguousarray(unique_rows[:, j]) for j in range(stacked.shape[1])),
        weights=counts.astype(np.float64),
        inverse=inverse.ravel().astype(np.intp),
    )
