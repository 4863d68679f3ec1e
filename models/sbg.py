"""Shifted-beta-geometric (sBG) model of contract renewal in a contractual setting.

References
----------
- Fader, P. S. & Hardie, B. G. S. (2007), "How to Project Customer Retention", Journal of
  Interactive Marketing 21(1), 76-90 (FH 2007).
- Fader, P. S. & Hardie, B. G. S. (2007), "Fitting the sBG Model to Multi-Cohort Data",
  http://www.brucehardie.com/notes/017/ (the multi-cohort note).
- Fader, P. S. & Hardie, B. G. S. (2010), "Customer-Base Valuation in a Contractual Setting:
  The Perils of Ignoring Heterogeneity", Marketing Science 29(1), 85-93 (FH 2010).

The story (FH 2007): at the end of each period a customer still under contract renews
with probability 1 - theta (she churns with probability theta), independently of the past; the
churn probability theta varies across customers as beta(alpha, beta). With T the period in
which a customer churns (T = 1, 2, ...):

    P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta)
    S(t)     = P(T > t) = B(alpha, beta + t) / B(alpha, beta)
    r(t)     = S(t) / S(t - 1) = (beta + t - 1) / (alpha + beta + t - 1)

(FH 2007 write P(T = t) in the recursive form alpha/(alpha+beta) for t = 1 and
(beta+t-2)/(alpha+beta+t-1) P(T = t-1) for t > 1, their eq. 7, which is the same function.)

Data: each cohort is a sequence of counts: the cohort size at acquisition followed by the
number of customers still active at the end of each period (non-increasing). Periods are
whole numbers; every unit of time (years, months) is the caller's.

Timing convention for the value measures (FH 2010): payments are made at the START
of each period; the first payment is made at acquisition; ``discount_rate`` d is per period.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ._base import BaseModel, Transform
from ._errors import ModelFitError
from ._optim import maximize_likelihood
from ._validation import FloatArray, as_float_array, as_theta, validate_time, validate_weights

PARAM_NAMES = ("alpha", "beta")

_CF_MAX_TERMS = 3000
"""Continued-fraction terms tried before the quadrature fallback (converges in ~15/sqrt(d))."""

_GAUSS_NODES, _GAUSS_WEIGHTS = np.polynomial.legendre.leggauss(8)


# --------------------------------------------------------------------------- 2F1(1, b; c; z)
def hyp2f1_discounted(b: ArrayLike, excess: ArrayLike, discount_rate: ArrayLike) -> FloatArray:
    """Gauss hypergeometric 2F1(1, b; b + excess; 1/(1+d)) for b > 0, excess > 0, d > 0.

    This is the discounted sum of beta moments that DERL (FH 2010) and DERT (Fader, Hardie &
    Shang 2010) reduce to:

        2F1(1, b; b + e; z) = sum_{k>=0} (b)_k / (b + e)_k z^k = E[1 / (1 - z P)],
        P ~ beta(b, e),  z = 1 / (1 + d).

    ``scipy.special.hyp2f1`` returns NaN for large b or c (e.g. b = 1000, the value of
    beta + renewals for a long-tenured customer), so it is not used. The primary method is
    Gauss's continued fraction for 2F1(1, b; c; z) / 2F1(0, b; c - 1; z) (DLMF 15.7.5 with
    a = 0), evaluated with the modified Lentz algorithm; it converges for every z < 1 in about
    15 / sqrt(d) terms. Near z = 1 (d below ~1e-5 with small parameters) the fraction would need
    too many terms, and the value falls back to the Euler integral (DLMF 15.6.1)
    (1 + d) E[1 / (d + Q)], Q = 1 - P ~ beta(e, b), by composite Gauss-Legendre quadrature in
    log Q (see :func:`_hyp2f1_quadrature`). Both agree to ~1e-10 where both apply (tested).
    Returns an array of the broadcast shape, always >= 1 and finite.
    """
    b_arr, e_arr, d_arr = np.broadcast_arrays(
        np.asarray(b, dtype=np.float64),
        np.asarray(excess, dtype=np.float64),
        np.asarray(discount_rate, dtype=np.float64),
    )
    shape = b_arr.shape
    bf, ef, df = (np.ascontiguousarray(a).ravel() for a in (b_arr, e_arr, d_arr))
    if not (np.all(np.isfinite(bf) & (bf > 0)) and np.all(np.isfinite(ef) & (ef > 0))):
        raise ValueError("hyp2f1_discounted needs finite b > 0 and excess > 0")
    if not np.all(np.isfinite(df) & (df > 0)):
        raise ValueError("hyp2f1_discounted needs a finite discount rate d > 0")
    if bf.size == 0:
        return np.zeros(shape)
    # Evaluate once per distinct (b, excess, d): predictions repeat the same few values.
    unique, inverse = np.unique(np.column_stack([bf, ef, df]), axis=0, return_inverse=True)
    ub, ue, ud = unique[:, 0], unique[:, 1], unique[:, 2]
    value, converged = _hyp2f1_continued_fraction(ub, ue, ud, _CF_MAX_TERMS)
    if not converged.all():
        slow = np.logical_not(converged)
        value[slow] = _hyp2f1_quadrature(ub[slow], ue[slow], ud[slow])
    return np.asarray(value[inverse.ravel()].reshape(shape), dtype=np.float64)


def _hyp2f1_continued_fraction(
    b: FloatArray, excess: FloatArray, d: FloatArray, max_terms: int
) -> tuple[FloatArray, NDArray[np.bool_]]:
    """2F1(1, b; b + excess; 1/(1+d)) by Gauss's continued fraction; returns (value, converged).

    With c' = b + excess - 1 (DLMF 15.7.5, a = 0, c -> c'):
        2F1(1, b; c' + 1; z) = 1 / (1 + k_1 z / (1 + k_2 z / (1 + ...))),
        k_1 = -b / (c' + 1),
        k_{2i+1} = -(c' + i)(b + i) / ((c' + 2i)(c' + 2i + 1)),           i >= 1,
        k_{2i+2} = -(excess + i)(i + 1) / ((c' + 2i + 1)(c' + 2i + 2)),     i >= 0.
    All denominators are > 0 for c' > -1, so no shift of c is needed.
    """
    z = 1.0 / (1.0 + d)
    c1 = b + excess - 1.0
    tiny = 1e-300
    f = np.ones_like(b)
    big_c = np.ones_like(b)
    big_d = np.zeros_like(b)
    converged = np.zeros(b.shape, dtype=bool)
    for j in range(1, max_terms + 1):
        i = (j - 1) // 2
        if j == 1:
            k = -b / (c1 + 1.0)
        elif j % 2 == 1:
            k = -(c1 + i) * (b + i) / ((c1 + 2 * i) * (c1 + 2 * i + 1))
        else:
            k = -(excess + i) * (i + 1) / ((c1 + 2 * i + 1) * (c1 + 2 * i + 2))
        a_j = k * z
        big_d = 1.0 + a_j * big_d
        big_d = np.where(np.abs(big_d) < tiny, tiny, big_d)
        big_c = 1.0 + a_j / big_c
        big_c = np.where(np.abs(big_c) < tiny, tiny, big_c)
        big_d = 1.0 / big_d
        delta = big_c * big_d
        f = np.where(converged, f, f * delta)
        converged |= np.abs(delta - 1.0) < 1e-15
        if converged.all():
            break
    return 1.0 / f, converged


def _hyp2f1_quadrature(b: FloatArray, excess: FloatArray, d: FloatArray) -> FloatArray:
    """2F1(1, b; b + excess; 1/(1+d)) = (1 + d) E[1 / (d + Q)], Q ~ beta(excess, b).

    The Euler integral is split at Q = 1/2. On each half the variable y = -log(2 Q) (resp.
    -log(2 (1 - Q))) turns the endpoint singularities and the near-pole at Q = -d into smooth
    features of width O(1), integrated by 8-point Gauss-Legendre on panels of width <= 1/2.
    Beyond y = Y the integrand is a pure exponential in y and its tail is added in closed form
    (Y is chosen so that the neglected relative error is below e^-36).
    """
    a = excess
    log_norm = -special.betaln(a, b)
    # Lower half, Q = exp(-y)/2: integrand Q^a (1-Q)^(b-1) / (d + Q) dy.
    y1 = 36.0 + np.maximum.reduce([np.zeros_like(d), np.log(0.5 / d), np.log(np.maximum(b, 1.0))])
    q1 = np.exp(-y1) / 2.0
    tail1 = np.exp(a * np.log(q1) - np.log(d) + log_norm) / a

    def lower(y: FloatArray) -> FloatArray:
        q = np.exp(-y) / 2.0
        bc = b[:, None]
        return np.asarray(
            np.exp(
                a[:, None] * np.log(q)
                + (bc - 1.0) * np.log1p(-q)
                - np.log(d[:, None] + q)
                + log_norm[:, None]
            ),
            dtype=np.float64,
        )

    # Upper half, 1 - Q = exp(-y)/2: integrand Q^(a-1) (1-Q)^b / (d + Q) dy.
    y2 = 36.0 + np.log(np.maximum(a, 1.0))
    u2 = np.exp(-y2) / 2.0
    tail2 = np.exp(b * np.log(u2) - np.log1p(d) + log_norm) / b

    def upper(y: FloatArray) -> FloatArray:
        u = np.exp(-y) / 2.0
        return np.asarray(
            np.exp(
                (a[:, None] - 1.0) * np.log1p(-u)
                + b[:, None] * np.log(u)
                - np.log(d[:, None] + 1.0 - u)
                + log_norm[:, None]
            ),
            dtype=np.float64,
        )

    total = _panel_integral(lower, y1) + tail1 + _panel_integral(upper, y2) + tail2
    return np.asarray((1.0 + d) * total, dtype=np.float64)


def _panel_integral(func: Any, upper: FloatArray) -> FloatArray:
    """Integral of ``func`` over [0, upper] (per element) by composite 8-point Gauss-Legendre."""
    n_panels = max(1, int(np.ceil(2.0 * float(upper.max()))))
    width = upper / n_panels
    left = np.arange(n_panels)[None, :, None] * width[:, None, None]
    nodes = left + (_GAUSS_NODES[None, None, :] + 1.0) / 2.0 * width[:, None, None]
    values = func(nodes.reshape(upper.shape[0], -1)).reshape(nodes.shape)
    weighted = values * _GAUSS_WEIGHTS[None, None, :]
    return np.asarray(weighted.sum(axis=(1, 2)) * width / 2.0, dtype=np.float64)


# --------------------------------------------------------------------------- data handling
def _is_sequence_of_sequences(survivors: Any) -> bool:
    """True for a 2-D array or a non-empty collection whose items are all 1-D (ragged is fine)."""
    if isinstance(survivors, np.ndarray):
        return survivors.ndim == 2
    if isinstance(survivors, str | bytes) or not isinstance(survivors, Iterable):
        return False
    items = list(survivors)
    return len(items) > 0 and all(np.ndim(item) == 1 for item in items)


def _validate_cohort(values: Any, index: int) -> FloatArray:
    """One cohort: [size at acquisition, survivors after period 1, ...], non-increasing."""
    name = f"survivors of cohort {index}"
    s = as_float_array(values, name)
    if s.shape[0] < 2:
        raise ValueError(
            f"{name} must hold the cohort size and at least one period's survivors "
            f"(fewer than 2 values given)"
        )
    if (s < 0).any():
        i = int(np.flatnonzero(s < 0)[0])
        raise ValueError(f"{name} must be >= 0 (period {i}: {s[i]})")
    if s[0] <= 0:
        raise ValueError(f"cohort {index} has size 0: the first value (cohort size) must be > 0")
    rising = np.diff(s) > 0
    if rising.any():
        t = int(np.flatnonzero(rising)[0]) + 1
        raise ValueError(
            f"{name} increase at period {t} ({s[t - 1]:g} -> {s[t]:g}): "
            f"survivors must be non-increasing"
        )
    return s


def as_cohorts(survivors: Any) -> list[FloatArray]:
    """Validate one cohort (a flat sequence) or several (a sequence of sequences)."""
    if _is_sequence_of_sequences(survivors):
        return [_validate_cohort(s, i) for i, s in enumerate(survivors)]
    return [_validate_cohort(survivors, 0)]


def sufficient_statistics(
    cohorts: Sequence[FloatArray], weights: FloatArray
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Aggregate cohorts into (t, churned_t, censored_t) for t = 1..max periods.

    ``churned_t`` is the weighted number of customers who churned in period t (over all cohorts)
    and ``censored_t`` the weighted number still active at the end of a cohort observed for t
    periods. The likelihood depends on the data only through these, so the fit costs
    O(max periods) whatever the number of cohorts (as in the multi-cohort note).
    """
    horizon = max(c.shape[0] - 1 for c in cohorts)
    churned = np.zeros(horizon)
    censored = np.zeros(horizon)
    for cohort, w in zip(cohorts, weights, strict=True):
        periods = cohort.shape[0] - 1
        churned[:periods] += w * -np.diff(cohort)
        censored[periods - 1] += w * cohort[-1]
    return np.arange(1.0, horizon + 1.0), churned, censored


# --------------------------------------------------------------------------- likelihood
def log_likelihood(
    theta: FloatArray, t: FloatArray, churned: FloatArray, censored: FloatArray
) -> float:
    """Weighted sBG log-likelihood (FH 2007, eq. B3, summed over cohorts as in the
    multi-cohort note).

    LL = sum_t churned_t log P(T = t) + censored_t log S(t),
    log P(T = t) = ln B(alpha + 1, beta + t - 1) - ln B(alpha, beta),
    log S(t)     = ln B(alpha, beta + t) - ln B(alpha, beta).
    """
    alpha, beta = theta
    log_b = special.betaln(alpha, beta)
    log_p = special.betaln(alpha + 1.0, beta + t - 1.0) - log_b
    log_s = special.betaln(alpha, beta + t) - log_b
    return float(np.sum(churned * log_p) + np.sum(censored * log_s))


def log_likelihood_gradient(
    theta: FloatArray, t: FloatArray, churned: FloatArray, censored: FloatArray
) -> FloatArray:
    """Gradient of :func:`log_likelihood` with respect to (alpha, beta).

    With psi the digamma function and d ln B(p, q)/dp = psi(p) - psi(p + q):
        d log P(T=t)/d alpha = 1/alpha - psi(alpha + beta + t) + psi(alpha + beta)
        d log P(T=t)/d beta  = psi(beta + t - 1) - psi(beta) - psi(alpha + beta + t)
                               + psi(alpha + beta)
        d log S(t)/d alpha   = psi(alpha + beta) - psi(alpha + beta + t)
        d log S(t)/d beta    = psi(beta + t) - psi(beta) - psi(alpha + beta + t)
                               + psi(alpha + beta)
    (psi(alpha + 1) - psi(alpha) = 1/alpha.)
    """
    alpha, beta = theta
    psi_ab = special.digamma(alpha + beta)
    psi_abt = special.digamma(alpha + beta + t)
    psi_b = special.digamma(beta)
    common = psi_ab - psi_abt
    dp_alpha = 1.0 / alpha + common
    dp_beta = special.digamma(beta + t - 1.0) - psi_b + common
    ds_alpha = common
    ds_beta = special.digamma(beta + t) - psi_b + common
    return np.array(
        [
            np.sum(churned * dp_alpha) + np.sum(censored * ds_alpha),
            np.sum(churned * dp_beta) + np.sum(censored * ds_beta),
        ]
    )


# --------------------------------------------------------------------------- simulation
def _as_theta(params: Mapping[str, float] | Sequence[float] | FloatArray) -> FloatArray:
    """Parameters as a vector in ``PARAM_NAMES`` order, all finite and > 0."""
    return as_theta(params, PARAM_NAMES, "sBG")


def simulate(
    params: Mapping[str, float] | Sequence[float] | FloatArray,
    cohort_size: int,
    periods: int,
    rng: np.random.Generator | int | None = None,
) -> FloatArray:
    """Simulate one cohort: returns survivors [cohort_size, S_1, ..., S_periods] (counts).

    Each customer draws theta ~ beta(alpha, beta) and churns in period T ~ geometric(theta),
    T = 1, 2, ... (FH 2007); S_t counts customers with T > t.
    """
    theta = _as_theta(params)
    if cohort_size < 1 or periods < 1:
        raise ValueError("cohort_size and periods must be >= 1")
    generator = np.random.default_rng(rng)
    churn = np.clip(generator.beta(theta[0], theta[1], size=cohort_size), 1e-12, 1.0)
    lifetime = generator.geometric(churn)
    t = np.arange(periods + 1)
    return np.asarray((lifetime[None, :] > t[:, None]).sum(axis=1), dtype=np.float64)


# --------------------------------------------------------------------------- the model
def _moment_start(t: FloatArray, churned: FloatArray, censored: FloatArray) -> FloatArray | None:
    """Start from the churn share in period 1 and the retention rate in period 2.

    P(T=1) = alpha / (alpha + beta) and r(2) = (beta + 1) / (alpha + beta + 1) (FH 2007)
    solve to alpha = (1 - r2) m1 / (r2 - 1 + m1), beta = alpha (1 - m1) / m1.
    """
    at_risk = churned[::-1].cumsum()[::-1] + censored[::-1].cumsum()[::-1]
    if t.shape[0] < 2 or at_risk[1] <= 0:
        return None
    m1 = churned[0] / at_risk[0]
    r2 = 1.0 - churned[1] / at_risk[1]
    if not (0 < m1 < 1 and r2 > 1 - m1 and r2 < 1):
        return None
    alpha = (1.0 - r2) * m1 / (r2 - 1.0 + m1)
    beta = alpha * (1.0 - m1) / m1
    start = np.array([alpha, beta])
    return start if np.all(np.isfinite(start)) and np.all(start > 0) else None


def _check_identifiable(cohorts: Sequence[FloatArray], weights: FloatArray) -> None:
    live = [c for c, w in zip(cohorts, weights, strict=True) if w > 0]
    if not any(c.shape[0] >= 3 for c in live):
        raise ModelFitError(
            "SBG needs at least one cohort observed for 2 or more periods: with a single period "
            "only alpha / (alpha + beta) is identified"
        )
    if not any(c[-1] < c[0] for c in live):
        raise ModelFitError("SBG cannot be fitted: no customer churned in any cohort")
    if not any(c[1] > 0 and c.shape[0] >= 3 for c in live):
        raise ModelFitError(
            "SBG cannot be fitted: no customer is observed at risk in period 2 (every customer "
            "churned in the first period, or was observed for one period only), so the "
            "heterogeneity in churn is not identified"
        )


class SBG(BaseModel):
    """Shifted-beta-geometric model of retention (Fader & Hardie 2007).

    ``fit(survivors)`` takes one cohort ([cohort size, survivors after period 1, ...]) or a list
    of cohorts of possibly different lengths (e.g. later cohorts observed for fewer periods),
    optionally weighted. Counts may be fractional (e.g. percentages of a cohort of 100): the
    estimates are then the same, but standard errors reflect the nominal cohort size.

    Predictions (periods t are whole numbers; ``discount_rate`` is per period):
    :meth:`survival`, :meth:`retention_rate`, :meth:`churn_probability`, :meth:`derl` and
    :meth:`discounted_expected_lifetime` (alias :meth:`del_`). All work with
    :meth:`predict_interval`.
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    interval_transforms: ClassVar[Mapping[str, Transform]] = {
        "survival": "logit",
        "retention_rate": "logit",
        "churn_probability": "logit",
        "derl": "log",
        "discounted_expected_lifetime": "log",
        "del_": "log",
    }

    def fit(self, survivors: Any, weights: ArrayLike | None = None) -> SBG:
        """Maximum-likelihood fit to one or several cohorts' survivor counts.

        ``weights`` (one per cohort, >= 0) multiply each cohort's log-likelihood contribution.
        Raises ``ValueError`` for malformed counts and ``ModelFitError`` for data that cannot
        identify alpha and beta.
        """
        cohorts = as_cohorts(survivors)
        w = validate_weights(weights, len(cohorts))
        _check_identifiable(cohorts, w)
        t, churned, censored = sufficient_statistics(cohorts, w)
        n_customers = float(sum(wi * c[0] for c, wi in zip(cohorts, w, strict=True)))

        def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
            value = log_likelihood(theta, t, churned, censored)
            grad = log_likelihood_gradient(theta, t, churned, censored)
            return -value, -grad

        starts = [
            s
            for s in (
                _moment_start(t, churned, censored),
                np.array([1.0, 1.0]),
                np.array([0.5, 3.0]),
                np.array([3.0, 10.0]),
                np.array([0.2, 0.5]),
            )
            if s is not None
        ][: max(1, self.n_starts)]
        result = maximize_likelihood(
            neg_loglik, starts, scale=n_customers, maxiter=self.maxiter, model="SBG"
        )
        self._set_result(result, n_obs=n_customers)
        return self

    # ------------------------------------------------------------------ predictions
    def survival(self, t: ArrayLike) -> FloatArray:
        """S(t) = B(alpha, beta + t) / B(alpha, beta): share of a cohort still active after t
        periods (FH 2007). ``t`` whole numbers >= 0."""
        return self._survival(self._theta(), _whole(t, "t", minimum=0))

    def _survival(self, theta: FloatArray, t: ArrayLike) -> FloatArray:
        alpha, beta = theta
        t_arr = np.asarray(t, dtype=np.float64)
        return np.asarray(
            np.exp(special.betaln(alpha, beta + t_arr) - special.betaln(alpha, beta)),
            dtype=np.float64,
        )

    def retention_rate(self, t: ArrayLike) -> FloatArray:
        """r(t) = (beta + t - 1) / (alpha + beta + t - 1) = S(t) / S(t - 1): share of the
        customers active at the end of period t - 1 who are still active at the end of period t
        (FH 2007). ``t`` whole numbers >= 1."""
        return self._retention_rate(self._theta(), _whole(t, "t", minimum=1))

    def _retention_rate(self, theta: FloatArray, t: ArrayLike) -> FloatArray:
        alpha, beta = theta
        t_arr = np.asarray(t, dtype=np.float64)
        return np.asarray((beta + t_arr - 1.0) / (alpha + beta + t_arr - 1.0), dtype=np.float64)

    def churn_probability(self, t: ArrayLike) -> FloatArray:
        """P(T = t) = B(alpha + 1, beta + t - 1) / B(alpha, beta): probability that a newly
        acquired customer churns in period t (FH 2007, eq. 7). ``t`` whole numbers >= 1."""
        return self._churn_probability(self._theta(), _whole(t, "t", minimum=1))

    def _churn_probability(self, theta: FloatArray, t: ArrayLike) -> FloatArray:
        alpha, beta = theta
        t_arr = np.asarray(t, dtype=np.float64)
        return np.asarray(
            np.exp(special.betaln(alpha + 1.0, beta + t_arr - 1.0) - special.betaln(alpha, beta)),
            dtype=np.float64,
        )

    def derl(self, discount_rate: ArrayLike, renewals: ArrayLike = 0) -> FloatArray:
        """Discounted expected residual lifetime, in periods (FH 2010, the DERL expression).

        For a customer who has made ``renewals`` = n - 1 renewals (so has been active for n
        periods), valued at the moment of her next renewal decision:

            DERL = sum_{k>=0} S(n + k) / S(n - 1) / (1 + d)^k
                 = (beta + n - 1) / (alpha + beta + n - 1)
                   * 2F1(1, beta + n; alpha + beta + n; 1 / (1 + d)).

        Timing: payments are made at the start of each period; the next payment (made if she
        renews, probability S(n)/S(n-1)) is not discounted, the one after is discounted by
        1/(1+d), and so on. Multiply by the margin per period to get the residual value.
        ``discount_rate`` d > 0 per period; ``renewals`` whole numbers >= 0.
        """
        d = _discount(discount_rate)
        r = _whole(renewals, "renewals", minimum=0)
        return self._derl(self._theta(), d, r)

    def _derl(self, theta: FloatArray, discount_rate: ArrayLike, renewals: ArrayLike) -> FloatArray:
        alpha, beta = theta
        d, r = np.broadcast_arrays(
            np.asarray(discount_rate, dtype=np.float64), np.asarray(renewals, dtype=np.float64)
        )
        first = (beta + r) / (alpha + beta + r)
        return np.asarray(first * hyp2f1_discounted(beta + r + 1.0, alpha, d), dtype=np.float64)

    def discounted_expected_lifetime(self, discount_rate: ArrayLike) -> FloatArray:
        """DEL, in periods, of a just-acquired customer, first payment included (FH 2010, DEL).

            DEL = sum_{t>=0} S(t) / (1 + d)^t = 2F1(1, beta; alpha + beta; 1 / (1 + d)).

        Payments at the start of each period: the first one (at acquisition) undiscounted.
        Equals 1 + DERL(d, renewals=0) / (1 + d). ``discount_rate`` d > 0 per period.
        """
        return self._discounted_expected_lifetime(self._theta(), _discount(discount_rate))

    def _discounted_expected_lifetime(
        self, theta: FloatArray, discount_rate: ArrayLike
    ) -> FloatArray:
        alpha, beta = theta
        d = np.asarray(discount_rate, dtype=np.float64)
        return np.asarray(hyp2f1_discounted(beta, alpha, d), dtype=np.float64)

    del_ = discounted_expected_lifetime
    _del_ = _discounted_expected_lifetime


# --------------------------------------------------------------------------- helpers
def _whole(values: ArrayLike, name: str, *, minimum: int) -> FloatArray:
    arr = validate_time(values, name)
    if (arr != np.floor(arr)).any() or (arr < minimum).any():
        raise ValueError(f"{name} must be whole numbers >= {minimum}")
    return arr


def _discount(discount_rate: ArrayLike) -> FloatArray:
    d = as_float_array(discount_rate, "discount_rate")
    if (d <= 0).any():
        raise ValueError("discount_rate must be > 0 (per period)")
    return d
