"""One maximum-likelihood routine shared by all models.

Parameters are strictly positive, so the optimiser works on ``log(theta)``; each model
supplies the negative log-likelihood and its analytic gradient on the natural scale.
The routine runs L-BFGS-B from several starting points, keeps the best optimum, checks the
gradient at the optimum and derives the observed information matrix by central differences
of the analytic gradient (second derivatives are not needed in closed form).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize

from ._errors import ModelFitError
from ._validation import FloatArray

NegLogLik = Callable[[FloatArray], tuple[float, FloatArray]]
"""theta -> (-log L, -d log L / d theta), both summed over customers."""

LOG_BOUND = 12.0
"""Optimise log(theta) in [-LOG_BOUND, LOG_BOUND]: parameters between 6e-6 and 1.6e5."""


@dataclass(frozen=True)
class OptimResult:
    theta: FloatArray
    log_likelihood: float
    converged: bool
    n_iter: int
    message: str
    covariance: FloatArray
    standard_errors: FloatArray


def _log_objective(
    neg_loglik: NegLogLik, scale: float
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """Wrap a natural-scale objective for log-parameters, divided by ``scale`` for conditioning."""

    def objective(phi: FloatArray) -> tuple[float, FloatArray]:
        theta = np.exp(phi)
        value, grad = neg_loglik(theta)
        if not np.isfinite(value) or not np.all(np.isfinite(grad)):
            return 1e300, np.zeros_like(phi)
        return value / scale, grad * theta / scale

    return objective


def observed_information(neg_loglik: NegLogLik, theta: FloatArray) -> FloatArray:
    """Hessian of -log L at ``theta`` (natural scale) by central differences of the gradient."""
    k = theta.shape[0]
    hess = np.empty((k, k))
    for j in range(k):
        h = 1e-5 * theta[j]
        up = theta.copy()
        down = theta.copy()
        up[j] += h
        down[j] -= h
        hess[:, j] = (neg_loglik(up)[1] - neg_loglik(down)[1]) / (2 * h)
    return 0.5 * (hess + hess.T)


def covariance_from_information(info: FloatArray) -> tuple[FloatArray, bool]:
    """Invert the observed information; report whether it was positive definite."""
    try:
        np.linalg.cholesky(info)
    except np.linalg.LinAlgError:
        k = info.shape[0]
        return np.full((k, k), np.nan), False
    cov = np.linalg.inv(info)
    return 0.5 * (cov + cov.T), True


def _looks_converged(
    res: optimize.OptimizeResult, neg_loglik: NegLogLik, scale: float, gtol: float
) -> bool:
    """Interior optimum with a small gradient (the information matrix is checked at the end)."""
    if np.any(np.abs(res.x) >= LOG_BOUND - 1e-6) or not res.fun < 1e300:
        return False
    theta = np.exp(res.x)
    _, grad = neg_loglik(theta)
    return bool(float(np.max(np.abs(grad * theta))) / scale <= gtol)


def maximize_likelihood(
    neg_loglik: NegLogLik,
    starts: Sequence[FloatArray],
    *,
    scale: float,
    maxiter: int = 1000,
    gtol: float = 1e-6,
    model: str = "model",
) -> OptimResult:
    """Maximise the likelihood on the log scale, trying ``starts`` in order until one converges.

    Later starts are a fallback for when an earlier one stops at a bound or with a large
    gradient; the best optimum found is returned.

    ``scale`` (usually the number of customers) divides the objective so tolerances mean
    the same thing for 100 customers and for 10 million. Convergence requires the optimiser's
    own success flag and a relative gradient norm below ``gtol`` at the optimum.
    """
    objective = _log_objective(neg_loglik, scale)
    bounds = [(-LOG_BOUND, LOG_BOUND)] * len(starts[0])
    best: optimize.OptimizeResult | None = None
    total_iter = 0
    for start in starts:
        phi0 = np.clip(np.log(np.asarray(start, dtype=np.float64)), -LOG_BOUND + 1, LOG_BOUND - 1)
        if not objective(phi0)[0] < 1e300:
            continue
        res = optimize.minimize(
            objective,
            phi0,
            jac=True,
            method="L-BFGS-B",
            bounds=bounds,
            options={"maxiter": maxiter, "ftol": 1e-13, "gtol": 1e-9, "maxcor": 20},
        )
        total_iter += int(res.nit)
        if best is None or res.fun < best.fun:
            best = res
        if _looks_converged(res, neg_loglik, scale, gtol):
            break  # the other starts are a fallback, not a search for other optima
    if best is None or best.fun >= 1e300:
        raise ModelFitError(f"{model}: the likelihood is not finite at any starting value")
    theta = np.exp(best.x)
    value, grad = neg_loglik(theta)
    at_bound = bool(np.any(np.abs(best.x) >= LOG_BOUND - 1e-6))
    grad_norm = float(np.max(np.abs(grad * theta))) / scale
    info = observed_information(neg_loglik, theta)
    cov, positive_definite = covariance_from_information(info)
    messages = [str(best.message)]
    if at_bound:
        messages.append("a parameter reached the bound of the search space (exp(+-12))")
    if grad_norm > gtol:
        messages.append(
            f"gradient at optimum not small (max |dlogL/dlog(theta)|/n = {grad_norm:.2e})"
        )
    if not positive_definite:
        messages.append("observed information is not positive definite: standard errors undefined")
    # L-BFGS-B's own flag is not required: on flat likelihood ridges its line search can stop
    # "ABNORMAL" at the optimum because its internal tolerance is below double precision there.
    # Our checks (small gradient, interior point, positive-definite information) decide.
    converged = not at_bound and grad_norm <= gtol and positive_definite
    return OptimResult(
        theta=theta,
        log_likelihood=-float(value),
        converged=converged,
        n_iter=total_iter,
        message="; ".join(messages),
        covariance=cov,
        standard_errors=np.sqrt(np.diag(cov)),
    )
