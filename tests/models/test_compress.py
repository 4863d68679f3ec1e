"""Compression of histories into unique rows with counts."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from models import _compress
from models._compress import compress


def test_unique_rows_counts_and_inverse_on_a_small_example() -> None:
    x = np.array([1.0, 0.0, 1.0, 1.0, -0.0])
    t = np.array([2.0, 0.0, 2.0, 3.0, 0.0])
    comp = compress(x, t, weights=np.array([1.0, 2.0, 3.0, 4.0, 5.0]))
    rows = list(zip(*comp.columns, strict=True))
    assert rows == [(0.0, 0.0), (1.0, 2.0), (1.0, 3.0)]
    np.testing.assert_array_equal(comp.weights, [7.0, 4.0, 4.0])  # -0.0 and 0.0 are one value
    np.testing.assert_array_equal(comp.inverse, [1, 0, 1, 2, 0])


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(0, 5), st.sampled_from([0.0, 0.5, 1.25, 7.0]), st.integers(0, 3)),
        min_size=1,
        max_size=60,
    )
)
def test_expanding_the_unique_rows_gives_back_the_input(rows: list[tuple[int, float, int]]) -> None:
    a, b, c = (np.array(col, dtype=float) for col in zip(*rows, strict=True))
    comp = compress(a, b, c)
    for original, unique in zip((a, b, c), comp.columns, strict=True):
        np.testing.assert_array_equal(unique[comp.inverse], original)
    assert comp.weights.sum() == len(rows)
    assert len(set(zip(*comp.columns, strict=True))) == comp.n_unique


def test_key_overflow_falls_back_to_byte_rows() -> None:
    rng = np.random.default_rng(0)
    cols = [rng.normal(size=3000) for _ in range(6)]  # 3000^6 > 2^62 distinct codes possible
    fast = _compress._compress_bytes(tuple(cols), np.ones(3000))
    comp = compress(*cols)
    assert comp.n_unique == fast.n_unique == 3000
    for original, unique in zip(cols, comp.columns, strict=True):
        np.testing.assert_array_equal(unique[comp.inverse], original)


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.sampled_from([0.0, -0.0, 1.0, 2.0]),
            st.sampled_from([0.0, 0.5, 3.0]),
            st.floats(0, 1e6, allow_nan=False),
        ),
        min_size=2,
        max_size=60,
    ),
    st.booleans(),
)
def test_sorted_input_fast_path_gives_what_sorting_gives(
    rows: list[tuple[float, float, float]], presort: bool
) -> None:
    if presort:
        rows = sorted(rows)
    cols = tuple(np.array(col, dtype=float) for col in zip(*rows, strict=True))
    weights = np.arange(1.0, len(rows) + 1.0)
    comp = compress(*cols, weights=weights)
    # numpy's row-wise unique: rows in ascending lexicographic order, like the sorting path
    unique, inverse = np.unique(np.column_stack(cols) + 0.0, axis=0, return_inverse=True)
    for j, ours in enumerate(comp.columns):
        np.testing.assert_array_equal(ours, unique[:, j])
    np.testing.assert_array_equal(comp.inverse, inverse.ravel())
    np.testing.assert_array_equal(comp.weights, np.bincount(inverse.ravel(), weights=weights))


def test_fast_path_is_taken_only_for_sorted_rows() -> None:
    x = np.array([0.0, 0.0, 1.0, 1.0, 2.0])
    t = np.array([0.0, 0.0, 3.0, 4.0, 1.0])
    assert _compress._compress_sorted((x, t), np.ones(5)) is not None
    assert _compress._compress_sorted((x[::-1], t[::-1]), np.ones(5)) is None
    assert _compress._compress_sorted((x, np.array([0, 0, 4.0, 3, 1])), np.ones(5)) is None
    assert _compress._compress_sorted((np.array([0.0, np.nan]), np.zeros(2)), np.ones(2)) is None


def test_whole_number_codes_and_sorted_codes_agree() -> None:
    # x: small whole numbers (their own codes); T: one value past 2**20 and a negative one
    # (coded by a sort); rows deliberately out of order.
    x = np.array([3.0, 0.0, 3.0, 1.0, -0.0, 1.0])
    T = np.array([2.0**21, 5.0, 2.0**21, -4.0, 5.0, 7.0])
    comp = compress(x, T)
    unique, inverse = np.unique(np.column_stack([x, T]) + 0.0, axis=0, return_inverse=True)
    np.testing.assert_array_equal(np.column_stack(comp.columns), unique)
    np.testing.assert_array_equal(comp.inverse, inverse.ravel())
    np.testing.assert_array_equal(comp.weights, [2.0, 1.0, 1.0, 2.0])
