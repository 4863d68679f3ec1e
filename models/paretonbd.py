"""Pareto/NBD model of repeat purchasing in a non-contractual setting.

References
----------
- Schmittlein, D. C., Morrison, D. G. & Colombo, R. (1987), "Counting Your Customers: Who Are
  They and What Will They Do Next?", Management Science 33(1), 1-24 (SMC 1987).
- Fader, P. S. & Hardie, B. G. S. (2005), "A Note on Deriving the Pareto/NBD Model and Related
  Expressions", http://brucehardie.com/notes/009/ (the 2005 note). Equation numbers below are
  those the 2005 note uses as cited by lifetimes 0.11.3: likelihood eq. 18 with the A0 term of
  eqs. 19-22 (branches alpha >= beta and alpha < beta), E[X(t)] eq. 27, P(alive) eqs. 36-37,
  conditional expectation eq. 41.
- Fader, P. S. & Hardie, B. G. S. (2006, rev. 2020), "Deriving an Expression for P(X(t) = x)
  Under the Pareto/NBD Model", http://brucehardie.com/notes/012/ (the 2006 note).

The story (SMC 1987; 2005 note, Sec. 2): while alive a customer buys as a Poisson process with
rate lambda; he dies (becomes inactive, unobserved) after an exponential lifetime with rate mu.
Across customers lambda ~ gamma(shape r, rate alpha) and mu ~ gamma(shape s, rate beta),
independently. ``alpha`` and ``beta`` are in the time unit of the data (days, weeks, ...).

Data per customer: ``frequency`` x (number of repeat purchases), ``recency`` t_x (time of the
last repeat purchase, measured from the first purchase; 0 when x = 0) and age ``T`` (time from
the first purchase to the end of observation), all in one time unit.

Numerics. The 2005 note writes the likelihood with 2F1(r+s+x, s+1 or r+x; r+s+x+1; z), a
difference of two such terms, and a branch on alpha >= beta. Here the same quantity is written as
the integral

    L = Gamma(r+x) alpha^r beta^s / Gamma(r)
        * [ (alpha+T)^-(r+x) (beta+T)^-s + s int_{t_x}^T (alpha+y)^-(r+x) (beta+y)^-(s+1) dy ],

(SMC 1987: death at y between t_x and T, or alive at T), and int_{t_x}^T = J(t_x) - J(T) with
J(y) = int_y^inf, evaluated with its gradient by :func:`models._hyp2f1.log_power_tail`, which
picks the note's branch (m = min(alpha, beta)) and a convergent series or a split quadrature.
Because s J(T) <= (alpha+T)^-(r+x) (beta+T)^-s, the bracket is a sum of non-negative terms
that never cancels catastrophically.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ._base import BaseModel, Transform
from ._compress import compress
from ._hyp2f1 import log_concave_quadrature, log_power_tail
from ._optim import maximize_likelihood
from ._validation import (
    FloatArray,
    as_float_array,
    as_theta,
    broadcast,
    check_identifiable,
    validate_rfm,
    validate_time,
    validate_weights,
)

PARAM_NAMES = ("r", "alpha", "s", "beta")
LOG_MAX_FLOAT = float(np.log(np.finfo(np.float64).max))


def _as_theta(params: Mapping[str, float] | Sequence[float] | FloatArray) -> FloatArray:
    """Parameters as a vector in ``PARAM_NAMES`` order, all finite and > 0."""
    return as_theta(params, PARAM_NAMES, "Pareto/NBD")


# --------------------------------------------------------------------------- data layout
@dataclass(frozen=True)
class _Histories:
    """Rows (x, t_x, T) with weights, laid out so that each costly term is computed once.

    The likelihood needs the tail integral J at (x, t_x) and at (x, T), and the alive term at
    (x, T); many rows share these pairs (whole-day data, x = 0 with t_x = 0). ``pair_*`` are the
    distinct (x, y) pairs, sorted by x so that rows sharing the series exponents form the groups
    ``bounds``; ``age_*`` are the distinct (x, T) pairs; ``x_values`` the distinct frequencies.
    """

    x: FloatArray
    t_x: FloatArray
    T: FloatArray
    weights: FloatArray
    pair_y: FloatArray
    group_x: FloatArray
    bounds: NDArray[np.intp]
    row_recency_pair: NDArray[np.intp]
    age_x: FloatArray
    age: FloatArray
    row_age: NDArray[np.intp]
    age_pair: NDArray[np.intp]
    x_values: FloatArray
    x_index: NDArray[np.intp]
    weight_per_x: FloatArray

    @classmethod
    def build(
        cls, x: FloatArray, t_x: FloatArray, T: FloatArray, weights: FloatArray | None = None
    ) -> _Histories:
        n = x.shape[0]
        w = np.ones(n) if weights is None else weights
        pairs = compress(np.concatenate([x, x]), np.concatenate([t_x, T]))
        order = np.argsort(pairs.columns[0], kind="stable")  # make each x one block of rows
        rank = np.empty_like(order)
        rank[order] = np.arange(order.shape[0])
        pair_x, pair_y = pairs.columns[0][order], pairs.columns[1][order]
        pair_of = rank[pairs.inverse]
        starts = np.flatnonzero(np.diff(pair_x)) + 1
        bounds = np.concatenate([[0], starts, [pair_x.shape[0]]]).astype(np.intp)
        ages = compress(x, T)
        age_x, age = ages.columns
        age_pair = np.empty(ages.n_unique, dtype=np.intp)
        age_pair[ages.inverse] = pair_of[n:]
        x_values, x_index = np.unique(x, return_inverse=True)
        return cls(
            x=x,
            t_x=t_x,
            T=T,
            weights=w,
            pair_y=pair_y,
            group_x=pair_x[bounds[:-1]],
            bounds=bounds,
            row_recency_pair=pair_of[:n],
            age_x=age_x,
            age=age,
            row_age=ages.inverse,
            age_pair=age_pair,
            x_values=x_values,
            x_index=x_index.ravel().astype(np.intp),
            weight_per_x=np.bincount(
                x_index.ravel(), weights=w, minlength=x_values.shape[0]
            ).astype(np.float64),
        )


# --------------------------------------------------------------------------- the tail integral
def _log_tail(theta: FloatArray, h: _Histories) -> tuple[FloatArray, FloatArray]:
    """log J(y) = log int_y^inf (alpha+u)^-(r+x) (beta+u)^-(s+1) du per (x, y) pair, and its
    gradient with respect to (r, alpha, s, beta), shape (pairs, 4).

    The branch is the 2005 note's for its A0 term: for alpha >= beta the smaller rate is beta
    with exponent s+1, for alpha < beta it is alpha with exponent r+x.
    """
    r, alpha, s, beta = theta
    group_s = np.full_like(h.group_x, s + 1.0)
    if alpha >= beta:
        tail = log_power_tail(group_s, r + h.group_x, beta, alpha, h.pair_y, h.bounds)
        grad = np.column_stack([tail.d_ep, tail.d_high, tail.d_e, tail.d_low])
    else:
        tail = log_power_tail(r + h.group_x, group_s, alpha, beta, h.pair_y, h.bounds)
        grad = np.column_stack([tail.d_e, tail.d_low, tail.d_ep, tail.d_high])
    return tail.value, grad


# --------------------------------------------------------------------------- likelihood
@dataclass(frozen=True)
class _Evaluation:
    """The Pareto/NBD likelihood at ``theta`` for every row of ``h``, with what its gradient needs.

    2005 note eq. 18 (SMC 1987), written as in the module docstring:
        log L = log Gamma(r+x) - log Gamma(r) + r log alpha + s log beta
                + log[ A - s J(T) + s J(t_x) ],   A = (alpha+T)^-(r+x) (beta+T)^-s.
    With rho = s J(T)/A in [0, 1], the bracket is A (1 - rho) + s J(t_x): a sum of non-negative
    terms. ``alive`` and ``dead`` are A/bracket and s J(t_x)/bracket (so alive = P(alive), the
    2005 note eqs. 36-37, also kept as ``log_p_alive``); the gradient of log(bracket) is
        alive d log A - alive rho (d log s + d log J(T)) + dead (d log s + d log J(t_x)).
    """

    theta: FloatArray
    h: _Histories
    log_lik: FloatArray
    log_p_alive: FloatArray
    alive: FloatArray
    dead: FloatArray
    rho: FloatArray
    log_a_age: FloatArray
    log_b_age: FloatArray
    tail_grad: FloatArray

    @classmethod
    def at(cls, theta: FloatArray, h: _Histories) -> _Evaluation:
        r, alpha, s, beta = theta
        log_j, tail_grad = _log_tail(theta, h)
        log_a_age = np.log(alpha + h.age)
        log_b_age = np.log(beta + h.age)
        log_s = np.log(s)
        log_alive_age = -(r + h.age_x) * log_a_age - s * log_b_age
        rho_age = np.exp(np.minimum(log_s + log_j[h.age_pair] - log_alive_age, 0.0))
        log_alive = log_alive_age[h.row_age]
        log_dead = log_s + log_j[h.row_recency_pair]
        gap = log_alive - log_dead
        smaller = np.exp(-np.abs(gap))
        alive = np.where(gap >= 0, 1.0, smaller)
        dead = np.where(gap >= 0, smaller, 1.0)
        rho = rho_age[h.row_age]
        bracket = alive * (1.0 - rho) + dead
        log_bracket = np.log(bracket)
        base_x = special.gammaln(r + h.x_values) - special.gammaln(r)
        base = base_x[h.x_index] + r * np.log(alpha) + s * np.log(beta)
        return cls(
            theta=theta,
            h=h,
            log_lik=base + np.maximum(log_alive, log_dead) + log_bracket,
            log_p_alive=np.minimum(gap, 0.0) - log_bracket,
            alive=alive / bracket,
            dead=dead / bracket,
            rho=rho,
            log_a_age=log_a_age,
            log_b_age=log_b_age,
            tail_grad=tail_grad,
        )

    def _d_log_alive_age(self) -> FloatArray:
        """d log A / d(r, alpha, s, beta) per (x, T) pair, shape (ages, 4)."""
        r, alpha, s, beta = self.theta
        h = self.h
        return np.column_stack(
            [
                -self.log_a_age,
                -(r + h.age_x) / (alpha + h.age),
                -self.log_b_age,
                -s / (beta + h.age),
            ]
        )

    def _d_base_x(self) -> FloatArray:
        """d/d(r, alpha, s, beta) of log Gamma(r+x) - log Gamma(r) + r log alpha + s log beta."""
        r, alpha, s, beta = self.theta
        out = np.tile(
            np.array([0.0, r / alpha, np.log(beta), s / beta]), (self.h.x_values.shape[0], 1)
        )
        out[:, 0] = special.digamma(r + self.h.x_values) - special.digamma(r) + np.log(alpha)
        return out

    def row_gradient(self) -> FloatArray:
        """d log L / d(r, alpha, s, beta) per row, shape (n, 4)."""
        h = self.h
        d_log_s = np.array([0.0, 0.0, 1.0 / self.theta[2], 0.0])
        alive_rho = (self.alive * self.rho)[:, None]
        return (
            self._d_base_x()[h.x_index]
            + self.alive[:, None] * self._d_log_alive_age()[h.row_age]
            - alive_rho * (d_log_s + self.tail_grad[h.age_pair[h.row_age]])
            + self.dead[:, None] * (d_log_s + self.tail_grad[h.row_recency_pair])
        )

    def weighted_gradient(self) -> FloatArray:
        """sum over rows of weight * d log L / d(r, alpha, s, beta): the same terms as
        :meth:`row_gradient`, summed per (x, T) pair, per (x, y) pair and per x first."""
        h = self.h
        n_ages = h.age_x.shape[0]
        n_pairs = self.tail_grad.shape[0]
        alive = h.weights * self.alive
        dead = h.weights * self.dead
        alive_per_age = np.bincount(h.row_age, weights=alive, minlength=n_ages)
        alive_rho_per_age = np.bincount(h.row_age, weights=alive * self.rho, minlength=n_ages)
        per_pair = np.bincount(h.row_recency_pair, weights=dead, minlength=n_pairs) - np.bincount(
            h.age_pair, weights=alive_rho_per_age, minlength=n_pairs
        )
        d_s = (dead.sum() - alive_rho_per_age.sum()) / self.theta[2]
        gradient: FloatArray = (
            h.weight_per_x @ self._d_base_x()
            + alive_per_age @ self._d_log_alive_age()
            + per_pair @ self.tail_grad
            + np.array([0.0, 0.0, d_s, 0.0])
        )
        return gradient


def log_likelihood_terms(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """Per-customer Pareto/NBD log-likelihood (2005 note, eq. 18) at theta = (r, alpha, s, beta)."""
    return _Evaluation.at(_as_theta(theta), _Histories.build(x, t_x, T)).log_lik


def log_likelihood_gradient(
    theta: FloatArray, x: FloatArray, t_x: FloatArray, T: FloatArray
) -> FloatArray:
    """d log L / d(r, alpha, s, beta) per customer, shape (n, 4); see :class:`_Evaluation`."""
    return _Evaluation.at(_as_theta(theta), _Histories.build(x, t_x, T)).row_gradient()


# --------------------------------------------------------------------------- simulation
def simulate(
    params: Mapping[str, float] | Sequence[float] | FloatArray,
    T: ArrayLike,
    rng: np.random.Generator | int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Draw (frequency, recency) for customers observed for ages ``T`` under the Pareto/NBD.

    For each customer (SMC 1987, assumptions i-v): lambda ~ gamma(r, rate alpha), mu ~
    gamma(s, rate beta), lifetime tau ~ exponential(mu); purchases follow a Poisson process
    with rate lambda on [0, min(tau, T)]. Given the count x on a window of length w, the purchase
    times are uniform on the window, so recency (the last of them) is w U^(1/x); it is 0 when
    x = 0. Returns (x, t_x) in the time unit of ``T``.
    """
    r, alpha, s, beta = _as_theta(params)
    age = as_float_array(T, "T")
    if (age < 0).any():
        raise ValueError("T must be >= 0")
    generator = np.random.default_rng(rng)
    n = age.shape[0]
    lam = generator.gamma(shape=r, scale=1.0 / alpha, size=n)
    mu = generator.gamma(shape=s, scale=1.0 / beta, size=n)
    # A dropout rate that underflows to 0 (tiny s) means the customer never leaves.
    draws = generator.exponential(size=n)
    lifetime = np.divide(draws, mu, out=np.full(n, np.inf), where=mu > 0)
    window = np.minimum(lifetime, age)
    x = generator.poisson(lam * window).astype(np.float64)
    u = generator.uniform(size=n)
    recency = np.where(x > 0, window * u ** (1.0 / np.maximum(x, 1.0)), 0.0)
    return x, recency


# --------------------------------------------------------------------------- fitting
COARSE_MIN_ROWS = 20_000
"""Above this many distinct histories, starting values are first refined on a coarsened copy."""
COARSE_LEVELS = 24
"""Grid steps (of max T / COARSE_LEVELS) onto which the coarsened copy rounds t_x and T."""


def _objective(h: _Histories) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """theta -> (-sum of weighted log-likelihoods, -gradient), for :func:`maximize_likelihood`."""

    def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
        evaluation = _Evaluation.at(theta, h)
        return -float(h.weights @ evaluation.log_lik), -evaluation.weighted_gradient()

    return neg_loglik


def _coarsen(h: _Histories) -> _Histories:
    """The same customers with t_x and T rounded to a grid of COARSE_LEVELS steps.

    Only used to find good starting values quickly on large data: its optimum is close to the
    data's, and it has far fewer distinct histories. The final fit always uses the data itself.
    """
    step = float(h.T.max()) / COARSE_LEVELS
    age = np.round(h.T / step) * step
    recency = np.minimum(np.round(h.t_x / step) * step, age)
    comp = compress(h.x, recency, age, weights=h.weights)
    x_c, t_x_c, age_c = comp.columns
    return _Histories.build(x_c, t_x_c, age_c, comp.weights)


# --------------------------------------------------------------------------- the model
class ParetoNBD(BaseModel):
    """Pareto/NBD model (SMC 1987; Fader & Hardie 2005 note).

    Parameters: ``r`` and ``alpha`` (shape and rate of the gamma distribution of purchase rates;
    mean rate r/alpha purchases per time unit) and ``s`` and ``beta`` (shape and rate of the
    gamma distribution of dropout rates; mean s/beta). ``alpha`` and ``beta`` carry the time
    unit of the data.
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    expectation_factorises: ClassVar[bool] = True
    """E[X(t) | x, t_x, T] = P(alive | x, t_x, T) * E[X(t) | alive, x, T]: used by models.clv."""
    interval_transforms: ClassVar[Mapping[str, Transform]] = {
        "conditional_expected_purchases": "log",
        "prob_alive": "logit",
        "expected_purchases": "log",
        "prob_purchases": "logit",
    }

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> ParetoNBD:
        """Maximum-likelihood fit (2005 note, eq. 18) with an analytic gradient.

        ``frequency`` x, ``recency`` t_x and age ``T`` per row (one time unit throughout);
        ``weights`` the number of customers per row. Identical rows are compressed first. With
        more than COARSE_MIN_ROWS distinct histories the multi-start search runs on a copy with
        t_x and T rounded to COARSE_LEVELS steps (:func:`_coarsen`), and the fit on the data
        itself starts from that optimum: the same maximum, found with far fewer evaluations.
        ``n_iter_`` counts the iterations of that final run.
        """
        x, t_x, age = validate_rfm(frequency, recency, T)
        w = validate_weights(weights, x.shape[0])
        keep = w > 0
        check_identifiable(x[keep], w[keep], age[keep], "ParetoNBD")
        comp = compress(x[keep], t_x[keep], age[keep], weights=w[keep])
        x_c, t_x_c, age_c = comp.columns
        histories = _Histories.build(x_c, t_x_c, age_c, comp.weights)
        total = float(comp.weights.sum())
        starts = self._starts(histories)
        if comp.n_unique > COARSE_MIN_ROWS:
            # Multi-start on a coarsened copy, then one run on the data from its optimum.
            rough = maximize_likelihood(
                _objective(_coarsen(histories)),
                starts,
                scale=total,
                maxiter=self.maxiter,
                model="ParetoNBD",
            )
            starts = [rough.theta]
        result = maximize_likelihood(
            _objective(histories), starts, scale=total, maxiter=self.maxiter, model="ParetoNBD"
        )
        self._set_result(result, n_obs=total)
        return self

    def _starts(self, h: _Histories) -> list[FloatArray]:
        """Starting values: a grid of shapes (r, s) and lifetime scales.

        Each start sets alpha = r / rate so that the mean purchase rate r/alpha equals the
        observed sum(x)/sum(T), and beta = s * scale * mean(T) so that the mean lifetime
        scale beta/s is a multiple (0.3 to 3) of the mean observation period.
        """
        w = h.weights
        mean_age = float(np.average(h.T, weights=w))
        rate = max(float(w @ h.x) / max(float(w @ h.T), 1e-12), 1e-8)
        starts = []
        for r, s, life in ((1.0, 1.0, 1.0), (0.5, 0.5, 0.3), (2.0, 1.0, 3.0), (0.3, 2.0, 1.0)):
            starts.append(np.array([r, r / rate, s, s * life * mean_age]))
        return starts[: max(self.n_starts, 1)]

    # ------------------------------------------------------------------ predictions
    def prob_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """P(alive at T | x, t_x, T): probability that the customer is still active at age T.

        2005 note eqs. 36-37: (alpha+T)^-(r+x) (beta+T)^-s Gamma(r+x) alpha^r beta^s / Gamma(r)
        divided by the likelihood, i.e. A / (A - s J(T) + s J(t_x)) in this module's terms.
        """
        return self._prob_alive(self._theta(), frequency, recency, T)

    def _prob_alive(
        self, theta: FloatArray, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        x, t_x, age = validate_rfm(frequency, recency, T)
        return _Evaluation.at(theta, _Histories.build(x, t_x, age)).alive

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """E[Y(t) | x, t_x, T]: expected purchases in (T, T + t] (t in the data's time unit).

        2005 note eq. 41:
            (r+x)(beta+T) / ((alpha+T)(s-1)) [1 - ((beta+T)/(beta+T+t))^(s-1)] P(alive),
        with the bracket over (s-1) evaluated as (1 - e^-(s-1)L)/(s-1), L = log(1 + t/(beta+T)),
        which is smooth through s = 1 (where it is L).
        """
        return self._conditional_expected_purchases(self._theta(), t, frequency, recency, T)

    def _conditional_expected_purchases(
        self,
        theta: FloatArray,
        t: ArrayLike,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
    ) -> FloatArray:
        horizon = validate_time(t)
        x, t_x, age = validate_rfm(frequency, recency, T)
        horizon, x, t_x, age = broadcast(t=horizon, frequency=x, recency=t_x, T=age)
        r, alpha, s, beta = theta
        log_p_alive = _Evaluation.at(theta, _Histories.build(x, t_x, age)).log_p_alive
        log_scale = np.log(r + x) + np.log(beta + age) - np.log(alpha + age) + log_p_alive
        return _scaled_growth(log_scale, s - 1.0, np.log1p(horizon / (beta + age)))

    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """E[X(t)]: expected repeat purchases of a new customer in (0, t] (2005 note, eq. 27).

            E[X(t)] = r beta / (alpha (s-1)) [1 - (beta/(beta+t))^(s-1)],
        evaluated stably through s = 1 as for :meth:`conditional_expected_purchases`.
        """
        return self._expected_purchases(self._theta(), t)

    def _expected_purchases(self, theta: FloatArray, t: ArrayLike) -> FloatArray:
        horizon = validate_time(t)
        r, alpha, s, beta = theta
        log_scale = np.full_like(horizon, np.log(r) + np.log(beta) - np.log(alpha))
        return _scaled_growth(log_scale, s - 1.0, np.log1p(horizon / beta))

    def prob_purchases(self, n: ArrayLike, t: ArrayLike) -> FloatArray:
        """P(X(t) = n): probability that a new customer makes n repeat purchases in (0, t].

        2006 note (Fader & Hardie), by conditioning on death before or after t:
            P(X(t) = n) = Gamma(r+n)/(Gamma(r) n!) [ (alpha/(alpha+t))^r (t/(alpha+t))^n
                          (beta/(beta+t))^s + s alpha^r beta^s I ],
            I = int_0^t tau^n (alpha+tau)^-(r+n) (beta+tau)^-(s+1) d tau,
        which equals the note's closed form in 2F1 functions (checked in the tests). I is a
        log-concave integral in log tau, evaluated by windowed Gauss-Legendre quadrature.
        """
        return self._prob_purchases(self._theta(), n, t)

    def _prob_purchases(self, theta: FloatArray, n: ArrayLike, t: ArrayLike) -> FloatArray:
        count = as_float_array(n, "n")
        if ((count < 0) | (count != np.floor(count))).any():
            raise ValueError("n must contain whole numbers >= 0")
        count, horizon = broadcast(n=count, t=validate_time(t))
        return _pmf(theta, count, horizon)


# --------------------------------------------------------------------------- prediction helpers
def _scaled_growth(log_scale: FloatArray, nu: float, log_ratio: FloatArray) -> FloatArray:
    """exp(log_scale) (1 - exp(-nu L)) / nu for L = ``log_ratio`` >= 0, continuous at nu = 0.

    The factor (1 - e^(-nu L))/nu (= L at nu = 0) is the integral of e^(-nu l) over l in [0, L]
    behind 2005 note eqs. 27 and 41. It is formed in log space, log(-expm1(-v)) - log|nu| with
    v = |nu| L, plus v when nu < 0, so it neither cancels nor overflows; L = 0 gives 0. A result
    beyond the largest double (only for absurd horizons) is returned as that largest double.
    """
    out = np.zeros_like(log_ratio)
    live = log_ratio > 0
    length = log_ratio[live]
    if nu == 0.0:
        log_factor = np.log(length)
    else:
        v = abs(nu) * length
        log_factor = np.log(-np.expm1(-v)) - np.log(abs(nu)) + (v if nu < 0 else 0.0)
    out[live] = np.exp(np.minimum(log_scale[live] + log_factor, LOG_MAX_FLOAT))
    return out


def _pmf(theta: FloatArray, n: FloatArray, t: FloatArray) -> FloatArray:
    """P(X(t) = n) for arrays n, t of one shape (see :meth:`ParetoNBD.prob_purchases`)."""
    r, alpha, s, beta = theta
    out: FloatArray = np.where(n == 0, 1.0, 0.0)  # t = 0: no purchases for sure
    live = t > 0
    if not np.any(live):
        return out
    n_l, t_l = n[live], t[live]
    log_t = np.log(t_l)
    log_coef = special.gammaln(r + n_l) - special.gammaln(r) - special.gammaln(n_l + 1.0)
    log_first = (
        log_coef
        - r * np.log1p(t_l / alpha)
        + n_l * (log_t - np.log(alpha + t_l))
        - s * np.log1p(t_l / beta)
    )
    log_second = (
        log_coef
        + np.log(s)
        + r * np.log(alpha)
        + s * np.log(beta)
        + _log_pmf_integral(theta, n_l, log_t)
    )
    out[live] = np.clip(np.exp(log_first) + np.exp(log_second), 0.0, 1.0)
    return out


def _log_pmf_integral(theta: FloatArray, n: FloatArray, log_t: FloatArray) -> FloatArray:
    """log int_0^t tau^n (alpha+tau)^-(r+n) (beta+tau)^-(s+1) d tau, by quadrature in w = log tau.

    The integrand in w, exp((n+1) w - (r+n) log(alpha+e^w) - (s+1) log(beta+e^w)), is
    log-concave; its mode solves (n+1) = (r+n) sigma_alpha(w) + (s+1) sigma_beta(w) with
    sigma_c(w) = e^w/(c+e^w) and is found by bisection, then
    :func:`models._hyp2f1.log_concave_quadrature` integrates it with breaks at log alpha, log beta.
    """
    r, alpha, s, beta = theta
    log_alpha, log_beta = np.log(alpha), np.log(beta)
    rate_a = (r + n)[:, None]
    rate_b = s + 1.0
    grow = (n + 1.0)[:, None]

    def log_density(w: FloatArray) -> tuple[FloatArray, FloatArray]:
        soft_a = np.logaddexp(log_alpha, w)
        soft_b = np.logaddexp(log_beta, w)
        value = grow * w - rate_a * soft_a - rate_b * soft_b
        slope = grow - rate_a * np.exp(w - soft_a) - rate_b * np.exp(w - soft_b)
        return value, slope

    # Far left of min(log alpha, log beta) the slope is ~ n + 1 > 0; at +inf it is -(r+s) < 0.
    left = np.minimum(min(log_alpha, log_beta), log_t) - 40.0 - np.log1p(r + s + n)
    lo, hi = left.copy(), log_t.copy()
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        rising = log_density(mid[:, None])[1][:, 0] > 0
        lo = np.where(rising, mid, lo)
        hi = np.where(rising, hi, mid)
    _, slope_at_t = log_density(log_t[:, None])
    mode = np.where(slope_at_t[:, 0] >= 0, log_t, 0.5 * (lo + hi))
    breaks = np.column_stack([np.full_like(log_t, log_alpha), np.full_like(log_t, log_beta)])
    quad = log_concave_quadrature(log_density, left - 50.0, log_t, mode, breaks)
    return quad.log_value
