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
    expanded back with ``values[inverse]``.
    """
    n = columns[0].shape[0]
    stacked = np.ascontiguousarray(np.column_stack(columns), dtype=np.float64)
    # -0.0 and 0.0 must compare equal when viewed as bytes.
    stacked += 0.0
    row_view = stacked.view(np.dtype((np.void, stacked.dtype.itemsize * stacked.shape[1])))
    _, first, inverse = np.unique(row_view.ravel(), return_index=True, return_inverse=True)
    w = np.ones(n) if weights is None else weights
    counts = np.bincount(inverse, weights=w, minlength=first.shape[0])
    unique_rows = stacked[first]
    return Compressed(
        columns=tuple(np.ascontiguousarray(unique_rows[:, j]) for j in range(stacked.shape[1])),
        weights=counts.astype(np.float64),
        inverse=inverse.ravel().astype(np.intp),
    )
