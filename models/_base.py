"""Base class shared by every model: fitted state, diagnostics, serialisation, intervals.

Subclasses declare ``param_names`` and implement ``fit``. Each public prediction method
``name(...)`` delegates to ``_name(theta, ...)`` which takes the parameter vector explicitly;
that lets :meth:`BaseModel.predict_interval` re-evaluate any prediction at perturbed
parameters for the delta method, and :meth:`BaseModel.sample_params` feed Monte Carlo.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar, Literal, Self

import numpy as np
from scipy import special

from ._errors import NotFittedError
from ._optim import OptimResult
from ._validation import FloatArray

Transform = Literal["log", "logit", "identity"]


def _forward(values: FloatArray, transform: Transform) -> FloatArray:
    if transform == "log":
        return np.log(np.maximum(values, 1e-300))
    if transform == "logit":
        v = np.clip(values, 1e-15, 1 - 1e-15)
        return np.log(v) - np.log1p(-v)
    return values


def _backward(values: FloatArray, transform: Transform) -> FloatArray:
    if transform == "log":
        return np.exp(values)
    if transform == "logit":
        return 1.0 / (1.0 + np.exp(-values))
    return values


class BaseModel:
    """Common fitted-state handling. Not used directly."""

    param_names: ClassVar[tuple[str, ...]] = ()
    interval_transforms: ClassVar[Mapping[str, Transform]] = {}
    """How each prediction is mapped before the delta method (keeps intervals in range)."""

    params_: dict[str, float]
    log_likelihood_: float
    standard_errors_: dict[str, float]
    covariance_: FloatArray
    converged_: bool
    n_iter_: int
    convergence_message_: str
    n_obs_: float

    def __init__(self, *, n_starts: int = 4, maxiter: int = 2000) -> None:
        self.n_starts = n_starts
        self.maxiter = maxiter

    # ----------------------------------------------------------------- fitted state
    def _set_result(self, result: OptimResult, n_obs: float) -> None:
        self.params_ = {k: float(v) for k, v in zip(self.param_names, result.theta, strict=True)}
        self.log_likelihood_ = float(result.log_likelihood)
        self.covariance_ = result.covariance
        self.standard_errors_ = {
            k: float(v) for k, v in zip(self.param_names, result.standard_errors, strict=True)
        }
        self.converged_ = result.converged
        self.n_iter_ = result.n_iter
        self.convergence_message_ = result.message
        self.n_obs_ = float(n_obs)

    def _check_fitted(self) -> None:
        if not hasattr(self, "params_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet: call fit() first")

    def _theta(self) -> FloatArray:
        self._check_fitted()
        return np.array([self.params_[k] for k in self.param_names], dtype=np.float64)

    @property
    def n_params(self) -> int:
        return len(self.param_names)

    @property
    def aic_(self) -> float:
        self._check_fitted()
        return 2 * self.n_params - 2 * self.log_likelihood_

    @property
    def bic_(self) -> float:
        self._check_fitted()
        return self.n_params * float(np.log(max(self.n_obs_, 1.0))) - 2 * self.log_likelihood_

    def summary(self) -> dict[str, Any]:
        """Parameters with standard errors and 95% Wald intervals on the log scale, plus fit statistics."""
        self._check_fitted()
        z = float(special.ndtri(0.975))
        rows = {}
        for name in self.param_names:
            est = self.params_[name]
            se = self.standard_errors_[name]
            se_log = se / est if np.isfinite(se) else float("nan")
            rows[name] = {
                "estimate": est,
                "std_error": se,
                "lower_95": est * float(np.exp(-z * se_log)),
                "upper_95": est * float(np.exp(z * se_log)),
            }
        return {
            "model": type(self).__name__,
            "params": rows,
            "log_likelihood": self.log_likelihood_,
            "aic": self.aic_,
            "bic": self.bic_,
            "n_obs": self.n_obs_,
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "message": self.convergence_message_,
        }

    # ------------------------------------------------------------- serialisation
    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON description of the fitted model (parameters, covariance, diagnostics)."""
        self._check_fitted()
        return {
            "model": type(self).__name__,
            "params": dict(self.params_),
            "covariance": [[float(v) for v in row] for row in self.covariance_],
            "log_likelihood": self.log_likelihood_,
            "n_obs": self.n_obs_,
            "converged": self.converged_,
            "n_iter": self.n_iter_,
            "message": self.convergence_message_,
        }

    @classmethod
    def from_params(
        cls,
        params: Mapping[str, float],
        covariance: Any = None,
        *,
        log_likelihood: float = float("nan"),
        n_obs: float = 0.0,
    ) -> Self:
        """Rebuild a fitted model from stored parameters (and optionally their covariance)."""
        missing = set(cls.param_names) - set(params)
        if missing:
            raise ValueError(f"{cls.__name__} needs parameters {sorted(missing)}")
        theta = np.array([float(params[k]) for k in cls.param_names])
        if not np.all(np.isfinite(theta)) or np.any(theta <= 0):
            raise ValueError(
                f"{cls.__name__} parameters must be finite and > 0, got {dict(params)}"
            )
        k = len(cls.param_names)
        cov = np.full((k, k), np.nan) if covariance is None else np.asarray(covariance, dtype=float)
        if cov.shape != (k, k):
            raise ValueError(f"covariance must be {k}x{k}, got {cov.shape}")
        model = cls()
        model._set_result(
            OptimResult(
                theta=theta,
                log_likelihood=log_likelihood,
                converged=True,
                n_iter=0,
                message="parameters supplied",
                covariance=cov,
                standard_errors=np.sqrt(np.abs(np.diag(cov))),
            ),
            n_obs,
        )
        return model

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Self:
        """Inverse of :meth:`to_dict`."""
        model = cls.from_params(
            data["params"],
            data.get("covariance"),
            log_likelihood=float(data.get("log_likelihood", float("nan"))),
            n_obs=float(data.get("n_obs", 0.0)),
        )
        model.converged_ = bool(data.get("converged", True))
        model.n_iter_ = int(data.get("n_iter", 0))
        model.convergence_message_ = str(data.get("message", ""))
        return model

    # ----------------------------------------------------------------- uncertainty
    def _has_covariance(self) -> bool:
        return bool(np.all(np.isfinite(self.covariance_)))

    def sample_params(self, size: int, rng: np.random.Generator | int | None = None) -> FloatArray:
        """Draw parameter vectors from the asymptotic normal distribution of log(theta).

        Returns an array of shape (size, n_params) in ``param_names`` order. Used for parametric
        Monte Carlo of any prediction (and by the business-case simulator).
        """
        theta = self._theta()
        if not self._has_covariance():
            raise ValueError("the model has no covariance matrix: cannot sample parameters")
        generator = np.random.default_rng(rng)
        jac = np.diag(1.0 / theta)
        cov_log = jac @ self.covariance_ @ jac
        draws = generator.multivariate_normal(np.log(theta), cov_log, size=size, method="cholesky")
        return np.exp(draws)

    def predict_interval(
        self, method: str, *args: Any, level: float = 0.95
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Delta-method interval for a prediction: returns (estimate, lower, upper).

        The prediction is mapped to an unbounded scale first (log for counts and values,
        logit for probabilities; see ``interval_transforms``), the gradient with respect to
        log(theta) is taken by central differences, and the interval is mapped back, so it
        always stays inside the prediction's range.
        """
        if not 0 < level < 1:
            raise ValueError("level must be between 0 and 1")
        func: Callable[..., FloatArray] = getattr(self, f"_{method}")
        transform = self.interval_transforms.get(method, "log")
        theta = self._theta()
        estimate = np.asarray(func(theta, *args), dtype=np.float64)
        if not self._has_covariance():
            raise ValueError("the model has no covariance matrix: intervals are undefined")
        g_est = _forward(estimate, transform)
        grads = []
        for j in range(theta.shape[0]):
            step = 1e-5
            up = theta.copy()
            down = theta.copy()
            up[j] *= np.exp(step)
            down[j] *= np.exp(-step)
            f_up = _forward(np.asarray(func(up, *args), dtype=np.float64), transform)
            f_down = _forward(np.asarray(func(down, *args), dtype=np.float64), transform)
            grads.append((f_up - f_down) / (2 * step))
        grad = np.stack(grads, axis=-1)
        jac = np.diag(theta)
        cov_log = np.linalg.solve(jac, np.linalg.solve(jac, self.covariance_).T)
        variance = np.einsum("...i,ij,...j->...", grad, cov_log, grad)
        se = np.sqrt(np.maximum(variance, 0.0))
        z = float(special.ndtri(0.5 + level / 2))
        lower = _backward(g_est - z * se, transform)
        upper = _backward(g_est + z * se, transform)
        return estimate, lower, upper
