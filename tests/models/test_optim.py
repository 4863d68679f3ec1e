"""The shared optimiser: convergence is decided by our checks, not by L-BFGS-B's flag."""

from __future__ import annotations

import numpy as np

from models._optim import maximize_likelihood


def _quadratic(center: np.ndarray, scale: float):  # type: ignore[no-untyped-def]
    """-log L of a normal likelihood in log(theta), minimum at ``center`` (natural scale)."""

    def neg_loglik(theta: np.ndarray) -> tuple[float, np.ndarray]:
        z = np.log(theta) - np.log(center)
        return float(scale * (z @ z)), 2 * scale * z / theta

    return neg_loglik


def test_converged_at_an_interior_optimum_with_standard_errors() -> None:
    center = np.array([2.0, 0.5])
    result = maximize_likelihood(_quadratic(center, 50.0), [np.array([1.0, 1.0])], scale=100.0)
    assert result.converged
    np.testing.assert_allclose(result.theta, center, rtol=1e-6)
    # -log L = 50 |log theta - log c|^2: the variance of log(theta_j) is 1/100, so se = theta/10.
    np.testing.assert_allclose(result.standard_errors, center / 10, rtol=1e-3)


def test_optimum_at_the_search_bound_is_reported_not_converged() -> None:
    result = maximize_likelihood(
        _quadratic(np.array([1e9, 1.0]), 1.0), [np.array([1.0, 1.0])], scale=1.0
    )
    assert not result.converged
    assert "bound" in result.message


def test_later_starts_are_a_fallback_only() -> None:
    calls: list[int] = []
    inner = _quadratic(np.array([3.0]), 10.0)

    def counting(theta: np.ndarray) -> tuple[float, np.ndarray]:
        calls.append(1)
        return inner(theta)

    maximize_likelihood(counting, [np.array([1.0])], scale=1.0)
    one_start = len(calls)
    calls.clear()
    maximize_likelihood(counting, [np.array([1.0]), np.array([50.0])], scale=1.0)
    assert len(calls) == one_start  # the first start converged: the second is never run
