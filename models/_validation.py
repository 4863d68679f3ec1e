"""Input validation at the boundary of the model library.

Every public ``fit`` and prediction method passes its arrays through these helpers once,
so the likelihood code can assume clean, finite, float64 arrays of equal length.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from ._errors import ModelFitError

FloatArray = NDArray[np.float64]


def as_float_array(values: ArrayLike, name: str) -> FloatArray:
    """Return ``values`` as a 1-D float64 array, rejecting non-numeric, NaN and inf."""
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric: {exc}") from exc
    arr = np.atleast_1d(arr)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {arr.shape}")
    bad = ~np.isfinite(arr)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{name} contains a non-finite value ({arr[first]}) at position {first}")
    return arr


def _first_bad(mask: NDArray[np.bool_]) -> int:
    return int(np.flatnonzero(mask)[0])


def broadcast(**arrays: ArrayLike) -> list[FloatArray]:
    """The named inputs broadcast to one shape, as contiguous float64 arrays.

    Raises ValueError naming every input's shape when they cannot be broadcast together.
    """
    values = {name: np.asarray(value, dtype=np.float64) for name, value in arrays.items()}
    check_broadcastable(**values)
    return [np.ascontiguousarray(a) for a in np.broadcast_arrays(*values.values())]


def check_broadcastable(**arrays: FloatArray) -> None:
    """Raise ValueError naming every input's shape unless they broadcast together."""
    try:
        np.broadcast_shapes(*(a.shape for a in arrays.values()))
    except ValueError as exc:
        shapes = ", ".join(f"{name}={a.shape}" for name, a in arrays.items())
        raise ValueError(f"inputs have incompatible lengths: {shapes}") from exc


def validate_weights(weights: ArrayLike | None, n: int) -> FloatArray:
    """Return customer counts per row (all ones when ``weights`` is None)."""
    if weights is None:
        return np.ones(n, dtype=np.float64)
    w = as_float_array(weights, "weights")
    if w.shape[0] != n:
        raise ValueError(f"weights has length {w.shape[0]}, expected {n}")
    if (w < 0).any():
        raise ValueError(f"weights must be non-negative (row {_first_bad(w < 0)})")
    if w.sum() <= 0:
        raise ModelFitError("weights sum to zero: there are no customers to fit")
    return w


def validate_rfm(
    frequency: ArrayLike,
    recency: ArrayLike,
    T: ArrayLike,
    *,
    discrete: bool = False,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate frequency x, recency t_x and age T (or number of opportunities n).

    Rules: all finite; x a whole number >= 0; 0 <= t_x <= T (a relative slack of 1e-9 absorbs
    rounding in exported data). In discrete time (``discrete``) t_x and n are whole numbers,
    x <= t_x, and x = 0 requires t_x = 0. Errors name the first offending row.
    """
    x, t_x, age = broadcast(
        frequency=as_float_array(frequency, "frequency"),
        recency=as_float_array(recency, "recency"),
        T=as_float_array(T, "T"),
    )
    if (x < 0).any():
        raise ValueError(f"frequency must be >= 0 (row {_first_bad(x < 0)}: {x[x < 0][0]})")
    if (x != np.floor(x)).any():
        bad = x != np.floor(x)
        raise ValueError(f"frequency must be a whole number (row {_first_bad(bad)}: {x[bad][0]})")
    if (t_x < 0).any():
        raise ValueError(f"recency must be >= 0 (row {_first_bad(t_x < 0)})")
    if (age < 0).any():
        raise ValueError(f"T must be >= 0 (row {_first_bad(age < 0)})")
    # Allow for rounding in exported data: a relative slack of 1e-9.
    over = t_x > age * (1 + 1e-9) + 1e-12
    if over.any():
        i = _first_bad(over)
        raise ValueError(f"recency exceeds T at row {i} (recency={t_x[i]}, T={age[i]})")
    t_x = np.minimum(t_x, age)
    if discrete:
        if (age != np.floor(age)).any() or (t_x != np.floor(t_x)).any():
            raise ValueError("recency and n must be whole numbers of opportunities")
        if (x > t_x).any():
            i = _first_bad(x > t_x)
            raise ValueError(f"frequency exceeds recency at row {i}: impossible in discrete time")
        if ((x == 0) & (t_x > 0)).any():
            i = _first_bad((x == 0) & (t_x > 0))
            raise ValueError(f"recency must be 0 when frequency is 0 (row {i}: recency {t_x[i]:g})")
    return x, t_x, age


def validate_time(t: ArrayLike, name: str = "t") -> FloatArray:
    """Validate a (vector of) non-negative prediction horizon(s)."""
    arr = as_float_array(t, name)
    if (arr < 0).any():
        raise ValueError(f"{name} must be >= 0")
    return arr


def check_identifiable(x: FloatArray, weights: FloatArray, age: FloatArray, model: str) -> None:
    """Raise ``ModelFitError`` for data that cannot identify a purchase model."""
    total = float(weights.sum())
    if total < 2:
        raise ModelFitError(f"{model} needs at least two customers, got {total:g}")
    if not (weights[x > 0].sum() > 0):
        raise ModelFitError(f"{model} cannot be fitted: no customer made a repeat purchase")
    if not (weights[age > 0].sum() > 0):
        raise ModelFitError(f"{model} cannot be fitted: every customer has T = 0")


def to_jsonable(value: Any) -> Any:
    """Convert numpy scalars/arrays into plain Python types for JSON output."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def as_theta(
    params: Mapping[str, float] | Sequence[float] | FloatArray,
    names: Sequence[str],
    model: str,
) -> FloatArray:
    """Parameters (a mapping by name, or a vector in ``names`` order) as a float vector,
    all finite and > 0; errors name the model and the problem."""
    if isinstance(params, Mapping):
        missing = [k for k in names if k not in params]
        if missing:
            raise ValueError(f"{model} parameters are missing {missing}")
        theta = np.array([float(params[k]) for k in names])
    else:
        theta = np.asarray(params, dtype=np.float64).ravel()
        if theta.shape != (len(names),):
            raise ValueError(
                f"expected {len(names)} parameters ({', '.join(names)}), got {theta.shape[0]}"
            )
    if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
        raise ValueError(f"{model} parameters must be finite and > 0, got {theta.tolist()}")
    return theta
