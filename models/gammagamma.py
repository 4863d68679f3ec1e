"""Gamma-Gamma model of the mean spend per transaction.

References
----------
- Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "RFM and CLV: Using Iso-Value Curves for
  Customer Base Analysis", Journal of Marketing Research 42(4), 415-430 (FHL 2005), Sec. 2.
- Fader, P. S. & Hardie, B. G. S. (2013), "The Gamma-Gamma Model of Monetary Value",
  http://www.brucehardie.com/notes/025/ (the note).

The story (note, Sec. 2): a customer's spend on each transaction is gamma(p, nu) with shape
``p`` and rate ``nu``, so the customer's true mean spend is ``zeta = p / nu``; across customers
the rate ``nu`` is gamma(q, gamma) (shape ``q``, rate ``gamma``). Spend is independent of the
purchase process, which is what lets CLV be split into "purchases x spend per purchase"; check
that assumption with :func:`spend_frequency_correlation` (FHL 2005, Sec. 2.2).

Data: ``frequency`` x is the number of REPEAT transactions and ``monetary_value`` m_x the mean
spend over those x repeat transactions, in currency units. Customers with x = 0 carry no
information about spend and are ignored by :meth:`GammaGamma.fit` (the note, eq. 6, sums over
customers with x >= 1); predictions for them are the population mean ``p gamma / (q - 1)``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike
from scipy import special

from ._base import BaseModel, Transform
from ._compress import compress
from ._errors import ModelFitError
from ._optim import maximize_likelihood
from ._validation import FloatArray, as_float_array, as_theta, validate_weights

PARAM_NAMES = ("p", "q", "gamma")


# --------------------------------------------------------------------------- validation
def _validate_spend(
    frequency: ArrayLike, monetary_value: ArrayLike
) -> tuple[FloatArray, FloatArray]:
    """Check frequency x (whole, >= 0) and mean repeat spend m_x (> 0 where x > 0, else >= 0).

    Errors name the first offending row. Rows with x = 0 may carry any finite m >= 0 (exports
    usually store 0 there); it is never used.
    """
    x = as_float_array(frequency, "frequency")
    m = as_float_array(monetary_value, "monetary_value")
    if x.shape != m.shape:
        raise ValueError(
            f"frequency and monetary_value have different lengths ({x.shape[0]} and {m.shape[0]})"
        )
    bad_x = (x < 0) | (x != np.floor(x))
    if bad_x.any():
        i = int(np.flatnonzero(bad_x)[0])
        raise ValueError(f"frequency must be a whole number >= 0 (row {i}: {x[i]})")
    bad_m = np.where(x > 0, m <= 0, m < 0)
    if bad_m.any():
        i = int(np.flatnonzero(bad_m)[0])
        raise ValueError(
            f"monetary_value must be > 0 for customers with repeat purchases and >= 0 otherwise "
            f"(row {i}: frequency={x[i]:g}, monetary_value={m[i]})"
        )
    return x, m


def _as_theta(params: Mapping[str, float] | Sequence[float] | FloatArray) -> FloatArray:
    """Parameters as a vector in ``PARAM_NAMES`` order, all finite and > 0."""
    return as_theta(params, PARAM_NAMES, "Gamma-Gamma")


# --------------------------------------------------------------------------- likelihood
def log_likelihood_terms(theta: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """log f(m_x | p, q, gamma; x) per customer, for x >= 1 and m_x > 0.

    The marginal density of the mean spend over x transactions (the note, eq. 1a; FHL 2005,
    eq. 3), a beta distribution of the second kind:

        f = Gamma(px+q) / (Gamma(px) Gamma(q)) * gamma^q m^(px-1) x^px / (gamma + x m)^(px+q)
          = 1 / (m B(px, q)) * (gamma / (gamma + x m))^q * (x m / (gamma + x m))^(px).

    The second form (note, footnote 1) is evaluated in log space with ``log1p`` so that both
    bases, which lie in (0, 1), never overflow for large x or m.
    """
    p, q, g = theta
    px = p * x
    return np.asarray(
        -special.betaln(px, q) - q * np.log1p(x * m / g) - px * np.log1p(g / (x * m)) - np.log(m),
        dtype=np.float64,
    )


def log_likelihood_gradient(theta: FloatArray, x: FloatArray, m: FloatArray) -> FloatArray:
    """d log f / d(p, q, gamma) per customer, shape (n, 3), of :func:`log_likelihood_terms`.

    With psi the digamma function and s = x m:
        d/dp     = x [psi(px+q) - psi(px) - log(1 + gamma/s)]
        d/dq     = psi(px+q) - psi(q) - log(1 + s/gamma)
        d/dgamma = q/gamma - (px+q)/(gamma+s) = x (q m - p gamma) / (gamma (gamma + s)).
    """
    p, q, g = theta
    px = p * x
    s = x * m
    psi_total = special.digamma(px + q)
    d_p = x * (psi_total - special.digamma(px) - np.log1p(g / s))
    d_q = psi_total - special.digamma(q) - np.log1p(s / g)
    d_g = x * (q * m - p * g) / (g * (g + s))
    return np.column_stack([d_p, d_q, d_g])


def _grouped_neg_loglik(
    x: FloatArray, m: FloatArray, w: FloatArray
) -> Callable[[FloatArray], tuple[float, FloatArray]]:
    """-log L and its gradient, the same sums as :func:`log_likelihood_terms` and
    :func:`log_likelihood_gradient` weighted by ``w``, with the terms that depend only on x
    (betaln, digamma) evaluated once per distinct x and the per-row logs precomputed."""
    ux, ix = np.unique(x, return_inverse=True)
    wx = np.bincount(ix.ravel(), weights=w, minlength=ux.shape[0])
    wxx = wx * ux
    s = x * m
    log_s = np.log(s)
    w_x = w * x
    w_log_m = float(w @ np.log(m))
    w_x_log_s = float(w_x @ log_s)
    total_wx = float(w_x.sum())

    def neg_loglik(theta: FloatArray) -> tuple[float, FloatArray]:
        p, q, g = theta
        pux = p * ux
        log_s_g = np.log1p(s / g)  # log((g + s) / g)
        sum_log_s_g = float(w @ log_s_g)
        # sum w x log((g + s) / s) = sum w x [log((g + s) / g) + log g - log s]
        sum_x_log_g_s = float(w_x @ log_s_g) + total_wx * float(np.log(g)) - w_x_log_s
        ll = -float(wx @ special.betaln(pux, q)) - q * sum_log_s_g - p * sum_x_log_g_s - w_log_m
        psi_total = special.digamma(pux + q)
        inv = w / (g + s)
        d_p = float(wxx @ (psi_total - special.digamma(pux))) - sum_x_log_g_s
        d_q = float(wx @ psi_total) - float(wx.sum()) * float(special.digamma(q)) - sum_log_s_g
        # d/dgamma of sum w [q log g - (px + q) log(g + s)] (the other terms do not involve g)
        d_g = q * float(w.sum()) / g - p * float(x @ inv) - q * float(inv.sum())
        return -ll, -np.array([d_p, d_q, d_g])

    return neg_loglik


# --------------------------------------------------------------------------- simulation
def simulate(
    params: Mapping[str, float] | Sequence[float] | FloatArray,
    frequency: ArrayLike,
    rng: np.random.Generator | int | None = None,
) -> FloatArray:
    """Draw each customer's mean spend over ``frequency`` repeat transactions from the model.

    For every customer: nu ~ gamma(shape q, rate gamma), then x spends z_i ~ gamma(shape p,
    rate nu) and their mean. By the gamma convolution and scaling properties used in the note
    (Sec. 2) the mean of x such spends is exactly gamma(shape p x, rate nu x), which is what is
    drawn, so the cost does not grow with x. Customers with x = 0 get 0.0 (no repeat spend;
    the convention of the CDNOW summary data). Returns currency units, shape (n,).
    """
    theta = _as_theta(params)
    x = as_float_array(frequency, "frequency")
    if ((x < 0) | (x != np.floor(x))).any():
        raise ValueError("frequency must contain whole numbers >= 0")
    p, q, g = theta
    generator = np.random.default_rng(rng)
    nu = generator.gamma(shape=q, scale=1.0 / g, size=x.shape[0])
    out = np.zeros_like(x)
    buyers = x > 0
    xb = x[buyers]
    out[buyers] = generator.gamma(shape=p * xb, scale=1.0 / (nu[buyers] * xb))
    return out


# --------------------------------------------------------------------------- diagnostics
def spend_frequency_correlation(
    frequency: ArrayLike, monetary_value: ArrayLike, weights: ArrayLike | None = None
) -> float:
    """Pearson correlation between x and m_x over customers with x >= 1 (optionally weighted).

    The Gamma-Gamma model assumes spend is independent of the purchase process; FHL 2005
    (Sec. 2.2) test it with this correlation, which should be close to 0 (they report 0.11 on
    the 946 CDNOW repeat buyers). A clearly non-zero value means the model's split of CLV into
    purchases x spend is biased for this data.
    """
    x, m = _validate_spend(frequency, monetary_value)
    w = validate_weights(weights, x.shape[0])
    keep = (x > 0) & (w > 0)
    x, m, w = x[keep], m[keep], w[keep]
    if w.sum() < 2:
        raise ValueError("the correlation needs at least two customers with repeat purchases")
    dx = x - np.average(x, weights=w)
    dm = m - np.average(m, weights=w)
    var_x = float(np.sum(w * dx * dx))
    var_m = float(np.sum(w * dm * dm))
    if var_x <= 0 or var_m <= 0:
        raise ValueError(
            "the correlation is undefined: frequency or monetary_value is constant among "
            "customers with repeat purchases"
        )
    return float(np.sum(w * dx * dm) / np.sqrt(var_x * var_m))


# --------------------------------------------------------------------------- the model
def _moment_start(x: FloatArray, m: FloatArray, w: FloatArray) -> FloatArray | None:
    """Method-of-moments start (p, q, gamma), or None when the moments are unusable.

    Under the model E[m | x] = mu = p gamma / (q-1) for every x, and
    E[(m - mu)^2 | x] = A + B / x with A = var(zeta) = mu^2 / (q-2) and B = E[zeta^2] / p
    (the note, eqs. 2-4, plus the within-customer variance zeta^2 / (p x)). A weighted
    least-squares fit of the squared deviations on (1, 1/x) gives A and B.
    """
    mu = float(np.average(m, weights=w))
    dev2 = (m - mu) ** 2
    design = np.column_stack([np.ones_like(x), 1.0 / x]) * np.sqrt(w)[:, None]
    coef, *_ = np.linalg.lstsq(design, dev2 * np.sqrt(w), rcond=None)
    a_var, b_within = float(coef[0]), float(coef[1])
    if not (a_var > 0 and b_within > 0 and mu > 0):
        return None
    p = (a_var + mu * mu) / b_within
    q = 2.0 + mu * mu / a_var
    g = mu * (q - 1.0) / p
    start = np.array([p, q, g])
    return start if np.all(np.isfinite(start)) else None


GRADIENT_TOL = 1e-6
"""Largest accepted max |d log L / d log(theta)| per customer (maximize_likelihood's default)."""


class GammaGamma(BaseModel):
    """Gamma-Gamma spend model (FHL 2005, Sec. 2; Fader & Hardie 2013 note).

    Parameters: ``p`` (shape of the spend per transaction; individual-level coefficient of
    variation 1/sqrt(p)), ``q`` and ``gamma`` (shape and rate of the gamma distribution of the
    per-customer rate nu; ``gamma`` is in currency units). The population mean spend per
    transaction is ``p gamma / (q - 1)`` and exists only for q > 1.
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    interval_transforms: ClassVar[Mapping[str, Transform]] = {
        "conditional_expected_average_value": "log",
        "expected_average_value": "log",
    }

    spend_frequency_correlation = staticmethod(spend_frequency_correlation)

    def fit(
        self,
        frequency: ArrayLike,
        monetary_value: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> GammaGamma:
        """Maximum-likelihood fit on customers with at least one repeat purchase.

        ``frequency``: number of repeat transactions x per customer; ``monetary_value``: mean
        spend m_x over those repeat transactions (currency units, > 0 where x > 0);
        ``weights``: number of customers per row. Rows with x = 0 are dropped (they carry no
        information on spend; the note, eq. 6); ``n_obs_`` counts the customers that remain.
        Identical (x, m_x) rows are compressed before the likelihood is evaluated.
        """
        x, m = _validate_spend(frequency, monetary_value)
        w = validate_weights(weights, x.shape[0])
        keep = (x > 0) & (w > 0)
        total = float(w[keep].sum())
        if total < 2:
            raise ModelFitError(
                f"GammaGamma needs at least two customers with repeat purchases (frequency > 0), "
                f"got {total:g}; customers with frequency = 0 carry no spend information"
            )
        comp = compress(x[keep], m[keep], weights=w[keep])
        if comp.n_unique < 2:
            raise ModelFitError(
                "GammaGamma cannot be fitted: every repeat customer has the same frequency and "
                "monetary_value, so the spread of spend across customers is not identified"
            )
        xu, mu = comp.columns
        wu = comp.weights
        neg_loglik = _grouped_neg_loglik(xu, mu, wu)

        result = maximize_likelihood(
            neg_loglik,
            self._starts(xu, mu, wu),
            scale=total,
            maxiter=self.maxiter,
            model="GammaGamma",
        )
        self._set_result(result, n_obs=total)
        return self

    def _starts(self, x: FloatArray, m: FloatArray, w: FloatArray) -> list[FloatArray]:
        """Moment-based start, then fixed shapes with gamma set to match the mean spend."""
        mean = float(np.average(m, weights=w))
        starts = [] if (mom := _moment_start(x, m, w)) is None else [mom]
        for p, q in ((1.0, 3.0), (5.0, 4.0), (2.0, 10.0), (20.0, 2.5)):
            starts.append(np.array([p, q, mean * (q - 1.0) / p]))
        return starts[: max(self.n_starts, 1)]

    # ------------------------------------------------------------------ predictions
    def conditional_expected_average_value(
        self, frequency: ArrayLike, monetary_value: ArrayLike
    ) -> FloatArray:
        """E(M | p, q, gamma; m_x, x): expected spend per future transaction (currency units).

        FHL 2005 eq. 5 / the note eq. 5:
            E(M | m_x, x) = (q-1)/(px+q-1) * p gamma/(q-1) + px/(px+q-1) * m_x
                          = p (gamma + x m_x) / (px + q - 1),
        a weighted average of the population mean and the customer's observed mean. For x = 0
        it is the population mean, which exists only for q > 1 (ModelFitError otherwise).
        """
        x, m = _validate_spend(frequency, monetary_value)
        return self._conditional_expected_average_value(self._theta(), x, m)

    def _conditional_expected_average_value(
        self, theta: FloatArray, x: FloatArray, m: FloatArray
    ) -> FloatArray:
        p, q, g = theta
        denom = p * x + q - 1.0
        if np.any(denom <= 0):
            i = int(np.flatnonzero(denom <= 0)[0])
            raise ModelFitError(
                f"the expected spend does not exist for row {i} (frequency={x[i]:g}): it needs "
                f"p*frequency + q > 1, but p={p:.4g}, q={q:.4g}"
            )
        m_used = np.where(x > 0, m, 0.0)
        return np.asarray(p * (g + x * m_used) / denom, dtype=np.float64)

    def expected_average_value(self) -> float:
        """Population mean spend per transaction E(Z) = p gamma / (q - 1) (the note, eq. 4).

        Raises ModelFitError when q <= 1: the inverse-gamma distribution of mean spend then has
        no finite mean.
        """
        return float(self._expected_average_value(self._theta())[0])

    def _expected_average_value(self, theta: FloatArray) -> FloatArray:
        p, q, g = theta
        if q <= 1:
            raise ModelFitError(
                f"the population mean spend p*gamma/(q-1) does not exist for q={q:.4g} <= 1"
            )
        return np.array([p * g / (q - 1.0)])

    def log_likelihood(self, frequency: ArrayLike, monetary_value: ArrayLike) -> FloatArray:
        """Per-customer log f(m_x | x) at the fitted parameters (0.0 for rows with x = 0)."""
        x, m = _validate_spend(frequency, monetary_value)
        theta = self._theta()
        out = np.zeros_like(x)
        buyers = x > 0
        out[buyers] = log_likelihood_terms(theta, x[buyers], m[buyers])
        return out
