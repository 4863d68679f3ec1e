"""Beta-geometric/beta-Bernoulli (BG/BB) model for discrete-time, non-contractual settings.

Reference: Fader, P. S., Hardie, B. G. S. & Shang, J. (2010), "Customer-Base Analysis in a
Discrete-Time Noncontractual Setting", Marketing Science 29(6), 1086-1108 (FHS 2010).

The story (FHS 2010): there are discrete transaction opportunities 1, 2, ... after
the first purchase (e.g. yearly fund-raising drives). While alive, a customer transacts at each
opportunity with probability p; a living customer becomes inactive at the beginning of each
opportunity with probability theta, so she is alive at opportunity t with probability
(1 - theta)^t. Across customers p ~ beta(alpha, beta) and theta ~ beta(gamma, delta),
independently.

Data, per customer: frequency x = number of repeat transactions, recency t_x = the opportunity
of the last transaction (0 when x = 0), n = number of opportunities observed; all whole
numbers with 0 <= x <= t_x <= n.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ._base import BaseModel, Transform
from ._compress import compress
from ._optim import maximize_likelihood
from ._validation import (
    FloatArray,
    as_float_array,
    as_theta,
    broadcast,
    check_identifiable,
    validate_rfm,
    validate_weights,
)
from .sbg import hyp2f1_discounted

PARAM_NAMES = ("alpha", "beta", "gamma", "delta")

_BLOCK_CELLS = 2**20
"""Rows x opportunities evaluated at once in the finite sums (bounds memory for huge n)."""


# --------------------------------------------------------------------------- validation
def _validate_data(
    frequency: ArrayLike, recency: ArrayLike, n: ArrayLike
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Whole numbers with 0 <= x <= t_x <= n, and t_x = 0 when x = 0 (no transaction)."""
    x, t_x, n_arr = validate_rfm(frequency, recency, n, discrete=True)
    return x, t_x, n_arr


def _whole(values: ArrayLike, name: str) -> FloatArray:
    arr = as_float_array(values, name)
    if ((arr < 0) | (arr != np.floor(arr))).any():
        raise ValueError(f"{name} must be whole numbers >= 0")
    return arr


def _as_theta(params: Mapping[str, float] | Sequence[float] | FloatArray) -> FloatArray:
    """Parameters as a vector in ``PARAM_NAMES`` order, all finite and > 0."""
    return as_theta(params, PARAM_NAMES, "BG/BB")


# --------------------------------------------------------------------------- likelihood
def _alive_term(theta: FloatArray, x: FloatArray, n: FloatArray) -> FloatArray:
    """log P(x transactions in n opportunities and alive at n): the first term of eq. (5)."""
    alpha, beta, gamma, delta = theta
    return np.asarray(
        special.betaln(alpha + x, beta + n - x)
        - special.betaln(alpha, beta)
        + special.betaln(gamma, delta + n)
        - special.betaln(gamma, delta),
        dtype=np.float64,
    )


def _alive_term_gradient(theta: FloatArray, x: FloatArray, n: FloatArray) -> FloatArray:
    """d/d(alpha, beta, gamma, delta) of :func:`_alive_term`, shape (rows, 4)."""
    alpha, beta, gamma, delta = theta
    psi = special.digamma
    psi_abn = psi(alpha + beta + n)
    psi_gdn = psi(gamma + delta + n)
    return np.column_stack(
        [
            psi(alpha + x) - psi_abn - psi(alpha) + psi(alpha + beta),
            psi(beta + n - x) - psi_abn - psi(beta) + psi(alpha + beta),
            psi(gamma + delta) - psi_gdn,
            psi(delta + n) - psi_gdn - psi(delta) + psi(gamma + delta),
        ]
    )


def individual_log_likelihood(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, n: FloatArray
) -> FloatArray:
    """log L(alpha, beta, gamma, delta | x, t_x, n) per customer (FHS 2010, eq. 5); see
    :func:`_streaming_log_likelihood` for the formula and the numerics."""
    return _streaming_log_likelihood(theta, x, t_x, n, gradient=False)[0]


def log_likelihood_and_gradient(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, n: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Per-customer log-likelihood (eq. 5) and its gradient wrt (alpha, beta, gamma, delta),
    shape (rows, 4); see :func:`_streaming_log_likelihood`."""
    loglik, grad = _streaming_log_likelihood(theta, x, t_x, n, gradient=True)
    assert grad is not None
    return loglik, grad


def _streaming_log_likelihood(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, n: FloatArray, *, gradient: bool
) -> tuple[FloatArray, FloatArray | None]:
    """log L(alpha, beta, gamma, delta | x, t_x, n) per customer (FHS 2010, eq. 5), and its
    gradient (rows x 4) when asked.

        L = B(alpha + x, beta + n - x) / B(alpha, beta) * B(gamma, delta + n) / B(gamma, delta)
          + sum_{i=0}^{n - t_x - 1} B(alpha + x, beta + t_x - x + i) / B(alpha, beta)
                                  * B(gamma + 1, delta + t_x + i) / B(gamma, delta)

    The first term: alive through all n opportunities; term i: alive at t_x + i and inactive
    from opportunity t_x + i + 1 on. All terms are combined with a streaming log-sum-exp over
    blocks of i (memory stays bounded for huge n). The gradient is the softmax-weighted mean of
    the terms' gradients, with psi the digamma function and j = t_x + i:
        d term_i / d alpha = psi(alpha + x) - psi(alpha + beta + j) - psi(alpha) + psi(alpha + beta)
        d term_i / d beta  = psi(beta + j - x) - psi(alpha + beta + j) - psi(beta)
                             + psi(alpha + beta)
        d term_i / d gamma = 1/gamma - psi(gamma + delta + j + 1) + psi(gamma + delta)
        d term_i / d delta = psi(delta + j) - psi(gamma + delta + j + 1) - psi(delta)
                             + psi(gamma + delta)
    """
    alpha, beta, gamma, delta = theta
    log_max = _alive_term(theta, x, n)
    scaled_sum = np.ones_like(log_max)
    grad = _alive_term_gradient(theta, x, n) if gradient else None
    n_terms = n - t_x
    longest = int(n_terms.max()) if n_terms.size else 0
    block = max(1, min(longest, _BLOCK_CELLS // max(1, x.shape[0])))
    base_ab = special.betaln(alpha, beta)
    base_gd = special.betaln(gamma, delta)
    for start in range(0, longest, block):
        i = np.arange(start, min(start + block, longest), dtype=np.float64)[None, :]
        valid = i < n_terms[:, None]
        j = t_x[:, None] + i
        xc = x[:, None]
        term = (
            special.betaln(alpha + xc, beta + j - xc)
            - base_ab
            + special.betaln(gamma + 1.0, delta + j)
            - base_gd
        )
        term = np.where(valid, term, -np.inf)
        new_max = np.maximum(log_max, term.max(axis=1))
        rescale = np.exp(log_max - new_max)
        weight = np.exp(term - new_max[:, None])
        scaled_sum = scaled_sum * rescale + weight.sum(axis=1)
        if grad is not None:
            for k, part in enumerate(_dropout_term_gradient(theta, xc, j)):
                grad[:, k] = grad[:, k] * rescale + np.sum(weight * part, axis=1)
        log_max = new_max
    loglik = log_max + np.log(scaled_sum)
    if grad is not None:
        grad = grad / scaled_sum[:, None]
    return np.asarray(loglik, dtype=np.float64), grad


def _dropout_term_gradient(
    theta: FloatArray, x: FloatArray, j: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
    """d/d(alpha, beta, gamma, delta) of the eq. (5) term for "last alive at opportunity j"."""
    alpha, beta, gamma, delta = theta
    psi = special.digamma
    psi_abj = psi(alpha + beta + j)
    psi_gdj = psi(gamma + delta + j + 1.0)
    return (
        psi(alpha + x) - psi_abj - psi(alpha) + psi(alpha + beta),
        psi(beta + j - x) - psi_abj - psi(beta) + psi(alpha + beta),
        1.0 / gamma - psi_gdj + psi(gamma + delta),
        psi(delta + j) - psi_gdj - psi(delta) + psi(gamma + delta),
    )


def _expected_alive_count(gamma: float, delta: FloatArray, m: FloatArray) -> FloatArray:
    """sum_{t=1}^{m} B(gamma, delta + t) / B(gamma, delta): expected number of the next m
    opportunities at which a customer alive now (dropout beta(gamma, delta)) is still alive.

    Closed form (FHS 2010, eqs. 9 and 13):
        delta / (gamma - 1) * [1 - Gamma(gamma + delta) Gamma(1 + delta + m)
                                   / (Gamma(1 + delta) Gamma(gamma + delta + m))].
    For |gamma - 1| < 1e-5 the ratio is replaced by its second-order expansion in gamma - 1
    (digamma and trigamma), which avoids the 0/0.
    """
    eps = gamma - 1.0
    if abs(eps) < 1e-5:
        l1 = special.digamma(1.0 + delta) - special.digamma(1.0 + delta + m)
        l2 = special.polygamma(1, 1.0 + delta) - special.polygamma(1, 1.0 + delta + m)
        return np.asarray(delta * (-l1 - eps * (l2 + l1 * l1) / 2.0), dtype=np.float64)
    log_ratio = (
        special.gammaln(gamma + delta)
        - special.gammaln(1.0 + delta)
        + special.gammaln(1.0 + delta + m)
        - special.gammaln(gamma + delta + m)
    )
    return np.asarray(delta / eps * -np.expm1(log_ratio), dtype=np.float64)


# --------------------------------------------------------------------------- simulation
def simulate(
    params: Mapping[str, float] | Sequence[float] | FloatArray,
    n: ArrayLike,
    rng: np.random.Generator | int | None = None,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Simulate (frequency, recency, n) for customers with ``n`` opportunities each.

    Each customer draws p ~ beta(alpha, beta) and theta ~ beta(gamma, delta) (the FHS 2010
    assumptions); she is alive for the first m = min(n, tau - 1) opportunities, tau ~
    geometric(theta) being the opportunity at whose beginning she becomes inactive. Her
    transactions are Bernoulli(p) at those m opportunities; instead of drawing all m, the number
    of trailing opportunities without a transaction is drawn as a geometric count (so t_x = m -
    that count, or 0 when it reaches m), and the transactions before t_x as binomial(t_x - 1, p)
    plus the one at t_x. The cost does not grow with n. Probabilities are clipped to [1e-12, 1].
    Returns float arrays (frequency, recency, n).
    """
    alpha, beta, gamma, delta = _as_theta(params)
    n_arr = _whole(n, "n")
    generator = np.random.default_rng(rng)
    size = n_arr.shape[0]
    p = np.clip(generator.beta(alpha, beta, size=size), 1e-12, 1.0)
    theta = np.clip(generator.beta(gamma, delta, size=size), 1e-12, 1.0)
    alive = np.minimum(n_arr, generator.geometric(theta) - 1.0)
    trailing = generator.geometric(p) - 1.0
    bought = trailing < alive
    recency = np.where(bought, alive - trailing, 0.0)
    earlier = generator.binomial(np.maximum(recency - 1.0, 0.0).astype(np.int64), p)
    frequency = np.where(bought, 1.0 + earlier, 0.0)
    return frequency.astype(np.float64), recency.astype(np.float64), n_arr


# --------------------------------------------------------------------------- the model
def _moment_start(x: FloatArray, t_x: FloatArray, n: FloatArray, w: FloatArray) -> FloatArray:
    """Rough start: mean p from the buying rate up to the last purchase, mean theta from the
    share of opportunities after the last purchase; both with a beta "sample size" of 2."""
    buyers = (x > 0) & (t_x > 0)
    mean_p = float(np.average(x[buyers] / t_x[buyers], weights=w[buyers])) if buyers.any() else 0.5
    gap = float(np.average((n - t_x) / np.maximum(n, 1.0), weights=w))
    mean_theta = min(max(gap / max(float(np.average(n, weights=w)), 1.0), 0.02), 0.9)
    mean_p = min(max(mean_p, 0.05), 0.95)
    return np.array([2 * mean_p, 2 * (1 - mean_p), 2 * mean_theta, 2 * (1 - mean_theta)])


class BGBB(BaseModel):
    """Beta-geometric/beta-Bernoulli model (Fader, Hardie & Shang 2010).

    ``fit(frequency, recency, n, weights=None)``: whole-number histories; identical histories
    are compressed, so the cost grows with the number of distinct (x, t_x, n), not customers.
    Predictions: :meth:`conditional_expected_purchases` (eq. 13), :meth:`prob_alive` (eq. 11),
    :meth:`expected_purchases` (eq. 9), :meth:`prob_purchases` (eq. 8) and
    :meth:`discounted_expected_residual_transactions` (DERT, eq. 14; aliases :meth:`dert`,
    :meth:`derp`). All work with :meth:`predict_interval`.
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    expectation_factorises: ClassVar[bool] = True
    """E[X(t) | x, t_x, T] = P(alive | x, t_x, T) * E[X(t) | alive, x, T]: used by models.clv."""
    interval_transforms: ClassVar[Mapping[str, Transform]] = {
        "conditional_expected_purchases": "log",
        "prob_alive": "logit",
        "expected_purchases": "log",
        "prob_purchases": "logit",
        "discounted_expected_residual_transactions": "log",
        "dert": "log",
        "derp": "log",
    }

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        n: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> BGBB:
        """Maximum-likelihood fit of (alpha, beta, gamma, delta) to eq. (5), summed over
        customers (FHS 2010, eq. 7), each row weighted by ``weights`` (customer counts)."""
        x, t_x, n_arr = _validate_data(frequency, recency, n)
        w = validate_weights(weights, x.shape[0])
        check_identifiable(x, w, n_arr, "BGBB")
        packed = compress(x, t_x, n_arr, weights=w)
        keep = packed.weights > 0
        xu, tu, nu = (c[keep] for c in packed.columns)
        wu = packed.weights[keep]

        def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            loglik, grad = log_likelihood_and_gradient(theta, xu, tu, nu)
            return -float(np.dot(wu, loglik)), -(wu @ grad)

        starts = [
            _moment_start(xu, tu, nu, wu),
            np.array([1.0, 1.0, 1.0, 1.0]),
            np.array([1.0, 1.0, 0.5, 3.0]),
            np.array([0.5, 0.5, 2.0, 10.0]),
        ][: max(1, self.n_starts)]
        total = float(wu.sum())
        result = maximize_likelihood(
            neg_loglik, starts, scale=total, maxiter=self.maxiter, model="BGBB"
        )
        self._set_result(result, n_obs=total)
        return self

    # ------------------------------------------------------------------ predictions
    def conditional_expected_purchases(
        self, n_star: ArrayLike, frequency: ArrayLike, recency: ArrayLike, n: ArrayLike
    ) -> FloatArray:
        """E[X(n, n + n_star) | x, t_x, n]: expected transactions in the next ``n_star``
        opportunities of a customer with history (x, t_x, n) (FHS 2010, eq. 13).

        Computed as P(alive at n | data) * (alpha + x)/(alpha + beta + n) * expected number of
        the next n_star opportunities at which she is alive, which is eq. (13) rearranged.
        """
        x, t_x, n_arr = _validate_data(frequency, recency, n)
        future = _whole(n_star, "n_star")
        return self._conditional_expected_purchases(self._theta(), future, x, t_x, n_arr)

    def _conditional_expected_purchases(
        self, theta: FloatArray, n_star: ArrayLike, x: ArrayLike, t_x: ArrayLike, n: ArrayLike
    ) -> FloatArray:
        future, xa, ta, na = broadcast(n_star=n_star, frequency=x, recency=t_x, n=n)
        alpha, beta, gamma, delta = theta
        log_alive = _log_prob_alive_now(theta, xa, ta, na)
        mean_p = (alpha + xa) / (alpha + beta + na)
        alive_count = _expected_alive_count(gamma, delta + na, future)
        return np.asarray(np.exp(log_alive) * mean_p * alive_count, dtype=np.float64)

    def prob_alive(self, frequency: ArrayLike, recency: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(alive at opportunity n + 1 | x, t_x, n) (FHS 2010, eq. 11):

        B(alpha + x, beta + n - x) / B(alpha, beta) * B(gamma, delta + n + 1) / B(gamma, delta)
        / L(alpha, beta, gamma, delta | x, t_x, n).
        """
        x, t_x, n_arr = _validate_data(frequency, recency, n)
        return self._prob_alive(self._theta(), x, t_x, n_arr)

    def _prob_alive(
        self, theta: FloatArray, x: ArrayLike, t_x: ArrayLike, n: ArrayLike
    ) -> FloatArray:
        xa, ta, na = broadcast(frequency=x, recency=t_x, n=n)
        gamma, delta = theta[2], theta[3]
        survive_next = (delta + na) / (gamma + delta + na)
        return np.asarray(np.exp(_log_prob_alive_now(theta, xa, ta, na)) * survive_next)

    def expected_purchases(self, n: ArrayLike) -> FloatArray:
        """E[X(n)]: expected repeat transactions of a new customer in her first n opportunities
        (FHS 2010, eq. 9): alpha/(alpha + beta) * delta/(gamma - 1)
        * [1 - Gamma(gamma + delta) Gamma(1 + delta + n)
               / (Gamma(1 + delta) Gamma(gamma + delta + n))].
        """
        return self._expected_purchases(self._theta(), _whole(n, "n"))

    def _expected_purchases(self, theta: FloatArray, n: ArrayLike) -> FloatArray:
        alpha, beta, gamma, delta = theta
        n_arr = np.asarray(n, dtype=np.float64)
        mean_p = alpha / (alpha + beta)
        return np.asarray(mean_p * _expected_alive_count(gamma, delta, n_arr), dtype=np.float64)

    def prob_purchases(self, x: ArrayLike, n: ArrayLike) -> FloatArray:
        """P(X(n) = x): probability that a new customer makes x repeat transactions in her first
        n opportunities (FHS 2010, eq. 8); 0 when x > n.

            P = C(n, x) B(alpha + x, beta + n - x)/B(alpha, beta)
                        B(gamma, delta + n)/B(gamma, delta)
              + sum_{i=x}^{n-1} C(i, x) B(alpha + x, beta + i - x)/B(alpha, beta)
                                B(gamma + 1, delta + i)/B(gamma, delta)
        """
        xa, na = broadcast(x=_whole(x, "x"), n=_whole(n, "n"))
        return self._prob_purchases(self._theta(), xa, na)

    def _prob_purchases(self, theta: FloatArray, x: ArrayLike, n: ArrayLike) -> FloatArray:
        xa, na = broadcast(x=x, n=n)
        shape = xa.shape
        xf, nf = xa.ravel(), na.ravel()
        possible = xf <= nf
        xs, ns = np.where(possible, xf, 0.0), np.where(possible, nf, 0.0)
        alpha, beta, gamma, delta = theta
        base = special.betaln(alpha, beta) + special.betaln(gamma, delta)
        first = _log_choose(ns, xs) + _alive_term(theta, xs, ns)

        def dropout_term(i: FloatArray) -> FloatArray:
            xc = xs[:, None]
            return np.asarray(
                _log_choose(i, xc)
                + special.betaln(alpha + xc, beta + i - xc)
                + special.betaln(gamma + 1.0, delta + i)
                - base,
                dtype=np.float64,
            )

        total = _logsumexp_over_range(first, xs, ns, dropout_term)
        return np.asarray(np.where(possible, np.exp(total), 0.0).reshape(shape), dtype=np.float64)

    def discounted_expected_residual_transactions(
        self, discount_rate: ArrayLike, frequency: ArrayLike, recency: ArrayLike, n: ArrayLike
    ) -> FloatArray:
        """DERT: present value, in transactions, of a customer's future transactions
        (FHS 2010, eq. 14):

            DERT = B(alpha + x + 1, beta + n - x)/B(alpha, beta)
                   * B(gamma, delta + n + 1) / (B(gamma, delta) (1 + d))
                   * 2F1(1, delta + n + 1; gamma + delta + n + 1; 1/(1 + d))
                   / L(alpha, beta, gamma, delta | x, t_x, n).

        Timing: the transaction at opportunity n + k is discounted by (1 + d)^-k, k >= 1, to
        the time of opportunity n; ``discount_rate`` d > 0 per opportunity. Equals
        sum_k (1+d)^-k (E[X(n, n+k)] - E[X(n, n+k-1)]) with E from eq. (13) (tested).
        Multiply by the value per transaction to get the residual value.
        """
        d = as_float_array(discount_rate, "discount_rate")
        if (d <= 0).any():
            raise ValueError("discount_rate must be > 0 (per opportunity)")
        x, t_x, n_arr = _validate_data(frequency, recency, n)
        return self._discounted_expected_residual_transactions(self._theta(), d, x, t_x, n_arr)

    def _discounted_expected_residual_transactions(
        self,
        theta: FloatArray,
        discount_rate: ArrayLike,
        x: ArrayLike,
        t_x: ArrayLike,
        n: ArrayLike,
    ) -> FloatArray:
        d, xa, ta, na = broadcast(discount_rate=discount_rate, frequency=x, recency=t_x, n=n)
        alpha, beta, gamma, delta = theta
        log_alive = _log_prob_alive_now(theta, xa, ta, na)
        mean_p = (alpha + xa) / (alpha + beta + na)
        survive_next = (delta + na) / (gamma + delta + na)
        series = hyp2f1_discounted(delta + na + 1.0, gamma, d)
        return np.asarray(
            np.exp(log_alive) * mean_p * survive_next * series / (1.0 + d), dtype=np.float64
        )

    dert = discounted_expected_residual_transactions
    derp = discounted_expected_residual_transactions
    _dert = _discounted_expected_residual_transactions
    _derp = _discounted_expected_residual_transactions


# --------------------------------------------------------------------------- helpers
def _log_prob_alive_now(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, n: FloatArray
) -> FloatArray:
    """log P(alive at opportunity n | x, t_x, n) = first term of eq. (5) - log L."""
    shape = x.shape
    xf, tf, nf = x.ravel(), t_x.ravel(), n.ravel()
    packed = compress(xf, tf, nf)
    xu, tu, nu = packed.columns
    loglik = individual_log_likelihood(theta, xu, tu, nu)
    log_alive = np.minimum(_alive_term(theta, xu, nu) - loglik, 0.0)
    return np.asarray(log_alive[packed.inverse].reshape(shape), dtype=np.float64)


def _log_choose(n: FloatArray, k: FloatArray) -> FloatArray:
    return np.asarray(
        special.gammaln(n + 1.0) - special.gammaln(k + 1.0) - special.gammaln(n - k + 1.0),
        dtype=np.float64,
    )


def _logsumexp_over_range(
    first: FloatArray, lo: FloatArray, hi: FloatArray, term: Callable[[FloatArray], FloatArray]
) -> FloatArray:
    """log(exp(first) + sum_{i=lo}^{hi-1} exp(term(i))) per row, in blocks of i."""
    log_max = first.copy()
    scaled_sum = np.ones_like(first)
    if first.size == 0:
        return first
    start_all, stop_all = int(lo.min()), int(hi.max())
    block = max(1, _BLOCK_CELLS // max(1, first.shape[0]))
    for start in range(start_all, stop_all, block):
        i = np.arange(start, min(start + block, stop_all), dtype=np.float64)[None, :]
        valid = (i >= lo[:, None]) & (i < hi[:, None])
        values = np.where(valid, term(np.where(valid, i, lo[:, None])), -np.inf)
        new_max = np.maximum(log_max, values.max(axis=1))
        scaled_sum = scaled_sum * np.exp(log_max - new_max) + np.exp(values - new_max[:, None]).sum(
            axis=1
        )
        log_max = new_max
    return np.asarray(log_max + np.log(scaled_sum), dtype=np.float64)
