"""Compressed sufficient statistics: the unique customer histories and how many share each.

The BG/NBD and Pareto/NBD likelihoods depend on a customer only through (x, t_x, T) (Fader,
Hardie & Lee 2005, "Counting your customers the easy way", Marketing Science 24(2);
Schmittlein, Morrison & Colombo 1987, "Counting your customers: who are they and what will
they do next?", Management Science 33(1)), and the Gamma-Gamma spend likelihood only through
(x, m_x) (Fader, Hardie & Lee 2005, "RFM and CLV: using iso-value curves for customer base
analysis", JMR 42(4); Fader & Hardie 2013, "The Gamma-Gamma model of monetary value").
Customers with equal statistics contribute identical terms, so the engine ships only the
unique rows with their counts to Python: a table whose size grows with the number of distinct
histories (at most cubic in the number of periods, far fewer in practice), not customers.

The grouping runs in the engine; only the small result is pulled into numpy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ibis.expr.types as ir
import numpy as np
import pyarrow as pa
from numpy.typing import ArrayLike, NDArray

from cltv_api.errors import FieldError, InvalidInput

FloatArray = NDArray[np.float64]

HISTORY_KEY = ("frequency", "recency", "T")
CALIBRATION_HISTORY_KEY = ("frequency_cal", "recency_cal", "T_cal")
SPEND_KEY = ("frequency", "monetary_value")
COUNT = "n_customers"


@dataclass(frozen=True)
class Histories:
    """Unique rows of ``key`` columns (per ``by`` segment) and the number of customers in each.

    ``values[name]`` is a float64 array per key column, ``segments[name]`` an object array
    per ``by`` column, ``counts`` the customers per row; rows are sorted by (by, key).
    """

    key: tuple[str, ...]
    values: Mapping[str, FloatArray]
    counts: FloatArray
    segments: Mapping[str, NDArray[np.object_]] = field(default_factory=dict)

    def __getitem__(self, name: str) -> NDArray[np.float64] | NDArray[np.object_]:
        if name in self.values:
            return self.values[name]
        return self.segments[name]

    @property
    def n_unique(self) -> int:
        """Number of distinct rows."""
        return int(self.counts.shape[0])

    @property
    def n_customers(self) -> int:
        """Number of customers the rows stand for."""
        return int(self.counts.sum())

    def with_predictions(self, **predictions: ArrayLike) -> pa.Table:
        """Arrow table of the by/key columns plus one column per prediction array.

        Each prediction must have one value per unique row; the result is what
        :func:`.join.attach` joins back onto the per-customer summary.
        """
        columns: dict[str, pa.Array] = {
            **{name: pa.array(arr) for name, arr in self.segments.items()},
            **{name: pa.array(arr, type=pa.float64()) for name, arr in self.values.items()},
        }
        for name, values in predictions.items():
            arr = np.asarray(values)
            if arr.shape != (self.n_unique,):
                raise InvalidInput(
                    f"prediction {name!r} has shape {arr.shape}, expected ({self.n_unique},)",
                    errors=[FieldError(name, "needs one value per unique history")],
                )
            columns[name] = pa.array(arr)
        return pa.table(columns)


def history_counts(
    summary: ir.Table, by: Sequence[str] = (), key: Sequence[str] = HISTORY_KEY
) -> ir.Table:
    """Engine expression: unique (by, key) rows with ``n_customers``, sorted by (by, key)."""
    _require_columns(summary, [*by, *key])
    grouped = summary.group_by([*by, *key]).aggregate(**{COUNT: summary.count()})
    return grouped.order_by([*by, *key])


def histories(
    summary: ir.Table, by: Sequence[str] = (), key: Sequence[str] = HISTORY_KEY
) -> Histories:
    """Unique (frequency, recency, T) histories with counts, optionally per segment.

    Use ``key=CALIBRATION_HISTORY_KEY`` on a calibration/holdout summary.
    """
    result = history_counts(summary, by, key).to_pyarrow()
    return _to_histories(result, tuple(by), tuple(key))


def spend_histories(
    summary: ir.Table,
    by: Sequence[str] = (),
    key: Sequence[str] = SPEND_KEY,
    *,
    repeat_only: bool = True,
) -> Histories:
    """Unique (frequency, monetary_value) rows with counts for the Gamma-Gamma spend model.

    With ``repeat_only`` (default) customers with frequency 0 are left out: their
    monetary_value is 0 by convention and carries no spend information (the Gamma-Gamma
    model is fitted on customers with x > 0, Fader & Hardie 2013). Monetary values
    are continuous, so this compresses well only when spend takes few distinct values.
    """
    _require_columns(summary, [*by, *key])
    if repeat_only:
        summary = summary.filter(summary[key[0]] > 0)
    return histories(summary, by, key)


def expand(hist: Histories) -> dict[str, NDArray[np.float64] | NDArray[np.object_]]:
    """Repeat each unique row ``counts`` times (the per-customer columns, in sorted order)."""
    reps = hist.counts.astype(np.int64)
    out: dict[str, NDArray[np.float64] | NDArray[np.object_]] = {
        name: np.repeat(arr, reps) for name, arr in hist.segments.items()
    }
    out.update({name: np.repeat(arr, reps) for name, arr in hist.values.items()})
    return out


def _to_histories(result: pa.Table, by: tuple[str, ...], key: tuple[str, ...]) -> Histories:
    values = {name: result[name].to_numpy().astype(np.float64) for name in key}
    segments = {name: np.asarray(result[name].to_pylist(), dtype=object) for name in by}
    counts = result[COUNT].to_numpy().astype(np.float64)
    return Histories(key=key, values=values, counts=counts, segments=segments)


def _require_columns(table: ir.Table, columns: Sequence[str]) -> None:
    missing = [c for c in dict.fromkeys(columns) if c not in table.columns]
    if missing:
        raise InvalidInput(
            f"summary has no column(s) {', '.join(missing)}",
            errors=[FieldError(c, "column is missing from the summary") for c in missing],
        )
