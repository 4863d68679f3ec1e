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
    expanded back with ``values[inverse]``. Each column is first coded to integers (a 1-D sort
    each); the codes are combined into one int64 key per row, whose unique values are the
    unique rows. That is several times faster than sorting rows as bytes, which remains the
    fallback when the key could overflow.
    """
    n = columns[0].shape[0]
    w = np.ones(n) if weights is None else weights
    uniques = []
    codes = []
    for column in columns:
        # + 0.0 makes -0.0 and 0.0 one value.
        u, code = np.unique(np.asarray(column, dtype=np.float64) + 0.0, return_inverse=True)
        uniques.append(u)
        codes.append(code.ravel().astype(np.int64))
    sizes = [max(u.shape[0], 1) for u in uniques]
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
        out_columns.append(np.ascontiguousarray(u[code]))
    return Compressed(
        columns=tuple(reversed(out_columns)),
        weights=counts.astype(np.float64),
        inverse=inverse.ravel().astype(np.intp),
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
