"""Machinery shared by the beta-geometric/NBD family: BG/NBD and MBG/NBD.

Both models tell the same story (Fader, Hardie & Lee 2005, "Counting Your Customers the Easy
Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284, Sec. 3):

- while alive, a customer buys according to a Poisson process with rate ``lambda``;
  ``lambda ~ gamma(shape r, rate alpha)`` across customers (``alpha`` is in time units);
- after each repeat purchase the customer drops out for good with probability ``p``;
  ``p ~ beta(a, b)`` across customers.

MBG/NBD (Batislam, Denizel & Filiztekin 2007, "Empirical validation and comparison of models
for customer base analysis", IJRM 24(3), 201-209; corrected by Wagner & Hoppe 2008, "Erratum
on the MBG/NBD model", IJRM 25(3), 225-226) adds one more coin flip right after the FIRST
purchase, so a customer with no repeat purchase may already be gone. Writing ``m`` for the
number of dropout opportunities a customer survives beyond its repeat purchases (``m = 0``
for BG/NBD, ``m = 1`` for MBG/NBD) every formula of both models follows from one template,
which is what this module implements. A customer with ``x`` repeat purchases who is still
alive has survived ``x + m`` flips, so given alive ``p ~ beta(a, b + x + m)``.

Data conventions: ``x`` repeat purchases, ``t_x`` the time of the last repeat purchase and
``T`` the time since the first purchase, both in the same time unit as ``alpha``. A customer
with ``x = 0`` has ``t_x = 0`` by definition (the last purchase is the first one); any other
value some exports store there is replaced by 0.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import special

from ._base import BaseModel, Transform
from ._compress import compress
from ._errors import ModelFitError
from ._optim import OptimResult, maximize_likelihood
from ._validation import (
    FloatArray,
    as_float_array,
    check_broadcastable,
    check_identifiable,
    validate_rfm,
    validate_time,
    validate_weights,
)

PARAM_NAMES = ("r", "alpha", "a", "b")

NegLogLik = Callable[[FloatArray], tuple[float, FloatArray]]


# --------------------------------------------------------------------------- data layout
@dataclass(frozen=True)
class NBDData:
    """Compressed customer histories laid out for a fast likelihood.

    The log-likelihood of a row splits into a part that depends on ``x`` only (gamma and beta
    functions), a part that depends on ``T`` only (``log(alpha + T)``) and the dropout term
    that needs ``(x, t_x, T)``. The first two are evaluated once per distinct ``x`` and per
    distinct ``T`` with summed weights; only the third runs over rows, and it reads the logs
    of ``alpha + T`` and ``alpha + t_x`` from per-distinct-value tables.
    """

    shift: int
    """``m``: dropout flips survived beyond the repeat purchases (0 = BG/NBD, 1 = MBG/NBD)."""
    ux: FloatArray
    """Distinct frequencies."""
    wx: FloatArray
    """Total weight (customers) per distinct frequency."""
    ages: FloatArray
    """Distinct ages T."""
    age_w: FloatArray
    """Total weight per distinct T."""
    age_xw: FloatArray
    """Weighted sum of x per distinct T."""
    ut: FloatArray
    """Distinct recencies among rows with a dropout term."""
    row_ix: NDArray[np.intp]
    """Dropout rows: index into ``ux``."""
    row_iage: NDArray[np.intp]
    """Dropout rows: index into ``ages``."""
    row_it: NDArray[np.intp]
    """Dropout rows: index into ``ut``."""
    row_x: FloatArray
    row_w: FloatArray
    total_weight: float

    @property
    def n_rows(self) -> int:
        return int(self.row_w.shape[0])


def _codes(values: FloatArray) -> tuple[FloatArray, NDArray[np.intp]]:
    """Distinct values and the index of each element into them (``np.unique`` semantics).

    Whole numbers in a modest range (counts, ages in whole days) are coded with a lookup
    table in O(n); anything else is sorted.
    """
    n = values.shape[0]
    if n and values.min() >= 0 and values.max() <= 4 * n + 100_000:
        as_int = values.astype(np.int64)
        if np.array_equal(as_int, values):
            present = np.bincount(as_int) > 0
            lookup = np.cumsum(present) - 1
            return np.flatnonzero(present).astype(np.float64), lookup[as_int].astype(np.intp)
    uniq, inverse = np.unique(values, return_inverse=True)
    return uniq, inverse.ravel().astype(np.intp)


def _distinct_rows(
    *columns: FloatArray,
) -> tuple[tuple[FloatArray, ...], NDArray[np.intp] | None]:
    """Distinct rows of equal-length columns and the inverse index (None: no reduction).

    Rows are keyed by the combined integer codes of the columns; when the key could overflow
    or the input is small, the columns are returned unchanged.
    """
    n = columns[0].shape[0]
    if n < _DEDUPE_MIN:
        return columns, None
    coded = [_codes(c) for c in columns]
    sizes = [float(u.shape[0]) for u, _ in coded]
    if float(np.prod(sizes)) >= 2.0**62:
        return columns, None
    key = np.zeros(n, dtype=np.int64)
    for (_values, idx), size in zip(coded, sizes, strict=True):
        key = key * int(size) + idx
    ukey, inverse = _codes_int(key)
    if ukey.shape[0] > 0.5 * n:
        return columns, None
    # Decode each distinct key back into its columns' values (last column varies fastest).
    out = []
    rest = ukey
    for (values, _idx), size in zip(reversed(coded), reversed(sizes), strict=True):
        rest, code = np.divmod(rest, int(size))
        out.append(values[code])
    return tuple(reversed(out)), inverse


def _codes_int(key: NDArray[np.int64]) -> tuple[NDArray[np.int64], NDArray[np.intp]]:
    """Distinct non-negative integer keys (sorted) and each element's index into them.

    A presence table when the key range is modest (O(n), no sort), else ``np.unique``.
    """
    n = key.shape[0]
    if n and int(key.max()) <= 4 * n + 100_000:
        present = np.bincount(key) > 0
        lookup = np.cumsum(present) - 1
        return np.flatnonzero(present).astype(np.int64), lookup[key].astype(np.intp)
    ukey, inverse = np.unique(key, return_inverse=True)
    return ukey.astype(np.int64), inverse.ravel().astype(np.intp)


def _group_rows(
    ix: NDArray[np.intp], iage: NDArray[np.intp], t_x: FloatArray, weights: FloatArray
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.intp], FloatArray, FloatArray]:
    """Merge rows with identical (x, T, t_x) codes, summing weights.

    The same compression as :func:`models._compress.compress`, done on one integer key per
    row (x code, T code, t_x code), which sorts far faster than rows of bytes.
    Returns (x code, T code, t_x code, distinct t_x, weight) per distinct row.
    """
    ut, it = _codes(t_x)
    n_age = int(iage.max()) + 1 if iage.shape[0] else 1
    n_t = ut.shape[0] if ut.shape[0] else 1
    n_x = int(ix.max()) + 1 if ix.shape[0] else 1
    if float(n_x) * n_age * n_t < 2.0**62:
        key = (ix.astype(np.int64) * n_age + iage) * n_t + it
        ukey, inverse = np.unique(key, return_inverse=True)
        w = np.bincount(inverse.ravel(), weights=weights, minlength=ukey.shape[0])
        rest, row_it = np.divmod(ukey, n_t)
        row_ix, row_iage = np.divmod(rest, n_age)
        return (
            row_ix.astype(np.intp),
            row_iage.astype(np.intp),
            row_it.astype(np.intp),
            ut,
            w.astype(np.float64),
        )
    comp = compress(ix.astype(np.float64), iage.astype(np.float64), t_x, weights=weights)
    cix, ciage, ct = comp.columns
    ut, it = _codes(ct)
    return cix.astype(np.intp), ciage.astype(np.intp), it, ut, comp.weights


def prepare_data(
    x: FloatArray, t_x: FloatArray, age: FloatArray, weights: FloatArray, shift: int
) -> NBDData:
    """Compress identical histories and build the per-value tables of :class:`NBDData`.

    Only the dropout term needs individual rows, and only for customers who can have dropped
    out (x > 0 under BG/NBD, everyone under MBG/NBD); identical (x, t_x, T) rows are merged
    with summed weights, so the cost grows with the number of distinct histories.
    """
    keep = weights > 0
    if not keep.all():
        x, t_x, age, weights = x[keep], t_x[keep], age[keep], weights[keep]
    ux, ix = _codes(x)
    ages, iage = _codes(age)
    wx = np.bincount(ix, weights=weights, minlength=ux.shape[0]).astype(np.float64)
    age_w = np.bincount(iage, weights=weights, minlength=ages.shape[0]).astype(np.float64)
    age_xw = np.bincount(iage, weights=weights * x, minlength=ages.shape[0]).astype(np.float64)
    # BG/NBD: a customer with x = 0 cannot have dropped out (FHL 2005 eq. 6, delta_{x>0}).
    if shift == 0:
        rows = x > 0
        ix_r, iage_r, t_r, w_r = ix[rows], iage[rows], t_x[rows], weights[rows]
    else:
        ix_r, iage_r, t_r, w_r = ix, iage, t_x, weights
    row_ix, row_iage, row_it, ut, row_w = _group_rows(ix_r, iage_r, t_r, w_r)
    return NBDData(
        shift=shift,
        ux=ux,
        wx=wx,
        ages=ages,
        age_w=age_w,
        age_xw=age_xw,
        ut=ut,
        row_ix=row_ix,
        row_iage=row_iage,
        row_it=row_it,
        row_x=np.ascontiguousarray(ux[row_ix]),
        row_w=row_w,
        total_weight=float(weights.sum()),
    )


# --------------------------------------------------------------------------- likelihood
def _dot(u: FloatArray, v: FloatArray) -> float:
    """Inner product without BLAS (multi-threaded BLAS is slow for this on busy machines)."""
    return float(np.einsum("i,i->", u, v))


def _softplus_and_sigmoid(d: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``log(1 + e^d)`` and ``1 / (1 + e^-d)`` from a single exponential, stable for any d."""
    e = np.exp(-np.abs(d))
    one_plus = 1.0 + e
    # log(1 + e) for e in (0, 1]: absolute error below 1e-16 and np.log is much faster than
    # np.log1p; only sums of these terms are used.
    softplus = np.log(one_plus)
    softplus += np.maximum(d, 0.0)
    sigmoid = np.where(d >= 0, 1.0, e)
    sigmoid /= one_plus
    return softplus, sigmoid


def neg_log_likelihood(theta: FloatArray, data: NBDData) -> tuple[float, FloatArray]:
    """Summed -log L of the BG/NBD (``shift=0``) or MBG/NBD (``shift=1``) model, and gradient.

    Per customer, with ``m = data.shift`` (FHL 2005 eq. 6 for m = 0; the MBG/NBD likelihood of
    Batislam et al. 2007, Sec. 2, for m = 1)::

        log L = log G(r+x) - log G(r) + r log(alpha)                     [x only]
              + log B(a, b+x+m) - log B(a, b)                             [x only]
              - (r+x) log(alpha+T)                                        [T and x]
              + delta * log(1 + exp(D)),                                  [row]
        D     = log(a) - log(b+x+m-1) + (r+x) (log(alpha+T) - log(alpha+t_x)),

    where ``delta = 1[x > 0]`` for BG/NBD and 1 for MBG/NBD. The last term is
    ``log(1 + A4/A3)`` of FHL's ``A3 + delta A4`` in log space, so it never overflows.

    The gradient is analytic: d/dr, d/dalpha, d/da, d/db of each term, with
    ``d log(1 + e^D) = sigmoid(D) dD``. Returns ``(-sum_i w_i log L_i, -gradient)`` on the
    natural parameter scale, as :func:`models._optim.maximize_likelihood` expects.
    """
    r, alpha, a, b = (float(v) for v in theta)
    m = data.shift
    ux, wx = data.ux, data.wx
    log_alpha = np.log(alpha)

    # ---- terms that depend on x only, once per distinct x
    bxm = b + ux + m
    abxm = a + bxm
    value = _dot(
        wx,
        special.gammaln(r + ux)
        + special.betaln(a, bxm)
        + (r * log_alpha - special.gammaln(r) - special.betaln(a, b)),
    )
    psi_abxm = special.digamma(abxm)
    psi_ab = special.digamma(a + b)
    total = data.total_weight
    g_r = _dot(wx, special.digamma(r + ux)) + total * (log_alpha - special.digamma(r))
    g_alpha = total * r / alpha
    g_a = _dot(wx, psi_ab - psi_abxm)
    g_b = _dot(wx, special.digamma(bxm) - psi_abxm) + total * (psi_ab - special.digamma(b))

    # ---- -(r + x) log(alpha + T), once per distinct T
    alpha_T = alpha + data.ages
    log_alpha_T = np.log(alpha_T)
    inv_alpha_T = 1.0 / alpha_T
    coef_T = r * data.age_w + data.age_xw
    value -= _dot(coef_T, log_alpha_T)
    g_r -= _dot(data.age_w, log_alpha_T)
    g_alpha -= _dot(coef_T, inv_alpha_T)

    # ---- dropout term log(1 + e^D), per row
    if data.n_rows:
        alpha_t = alpha + data.ut
        gap = np.take(log_alpha_T, data.row_iage) - np.take(np.log(alpha_t), data.row_it)
        d_gap = np.take(inv_alpha_T, data.row_iage) - np.take(1.0 / alpha_t, data.row_it)
        # b + x + m - 1 > 0 on every dropout row; x = 0 under BG/NBD has no such row.
        log_bx = np.log(np.where(ux + m > 0, b + ux + (m - 1), 1.0))
        rx = r + data.row_x
        d = np.take(np.log(a) - log_bx, data.row_ix) + rx * gap
        softplus, sigmoid = _softplus_and_sigmoid(d)
        ws = data.row_w * sigmoid
        value += _dot(data.row_w, softplus)
        g_r += _dot(ws, gap)
        g_alpha += float(np.einsum("i,i,i->", ws, rx, d_gap))
        g_a += float(ws.sum()) / a
        ws_by_x = np.bincount(data.row_ix, weights=ws, minlength=ux.shape[0]).astype(np.float64)
        g_b -= _dot(ws_by_x, np.exp(-log_bx))

    grad = np.array([g_r, g_alpha, g_a, g_b])
    return -value, -grad


# --------------------------------------------------------------------------- starting values
def starting_values(x: FloatArray, age: FloatArray, weights: FloatArray) -> list[FloatArray]:
    """Starting points for (r, alpha, a, b), the data-driven one first.

    The purchase part comes from the moments of the counts ``x`` given ``T`` under a
    gamma-Poisson (NBD) model, ignoring dropout: the mean rate ``mu = sum x / sum T`` and the
    rate variance ``v = (sum (x - mu T)^2 - sum mu T) / sum T^2`` give ``r = mu^2 / v``,
    ``alpha = r / mu`` (clipped to sensible ranges). The dropout part starts at a mean
    dropout probability of 1/4, then the fallbacks move both halves of the model.
    """
    w = weights
    mu = max(_dot(w, x) / max(_dot(w, age), 1e-12), 1e-8)
    resid = _dot(w, (x - mu * age) ** 2) - mu * _dot(w, age)
    var = resid / max(_dot(w, age**2), 1e-12)
    r0 = float(np.clip(mu * mu / var, 0.05, 20.0)) if var > 0 else 1.0
    alpha0 = r0 / mu
    return [
        np.array([r0, alpha0, 1.0, 3.0]),
        np.array([r0, alpha0, 0.5, 1.0]),
        np.array([1.0, 1.0 / mu, 1.0, 1.0]),
        np.array([0.5, 0.5 / mu, 2.0, 10.0]),
        np.array([2.0, 2.0 / mu, 0.3, 3.0]),
        np.array([r0, alpha0, 5.0, 5.0]),
    ]


# ------------------------------------------------------- expected purchases while alive
_AGREE_RTOL = 1e-9
_NEAR_ONE = 1e-4
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(16)
_N_PANELS = 32
_CHUNK = 2048
_SERIES_TERMS = 60
_SERIES_MAX = 0.5
_DEDUPE_MIN = 1000


def _closed_forms(a: float, B: FloatArray, s: FloatArray, u: FloatArray) -> FloatArray:
    """Closed form of :func:`expected_alive_purchases`, NaN where it cannot be trusted.

    FHL 2005 eq. (10) without the P(alive) factor: with ``c = a + B - 1`` and
    ``z = u / (1 + u)``::

        G = c / (a - 1) * [1 - (1 - z)^s  2F1(s, B; c; z)]                         (FHL form)
          = c / (a - 1) * [1 - (1 - z)^(a-1) 2F1(c - s, a - 1; c; z)]              (Euler form)

    the second by Euler's transformation 2F1(A, B; C; z) = (1-z)^(C-A-B) 2F1(C-A, C-B; C; z)
    (Abramowitz & Stegun 15.3.3). scipy's ``hyp2f1`` fails in different corners for the two
    (overflow for large s or B with z near 1, cancellation for large c - s), so both are
    evaluated and a value is kept only where the two agree to ``_AGREE_RTOL`` and lie in the
    range ``0 <= G <= s u`` that every expectation here must respect.
    """
    c = a + B - 1.0
    z = u / (1.0 + u)
    log1mz = -np.log1p(u)
    with np.errstate(all="ignore"):
        lead = c / (a - 1.0)
        fhl = lead * -np.expm1(s * log1mz + np.log(special.hyp2f1(s, B, c, z)))
        f_euler = special.hyp2f1(c - s, a - 1.0, c, z)
        euler = lead * (
            -np.expm1((a - 1.0) * log1mz) - np.exp((a - 1.0) * log1mz) * (f_euler - 1.0)
        )
        bound = s * u * (1.0 + 1e-9)
        good = (
            np.isfinite(fhl)
            & np.isfinite(euler)
            & (np.abs(fhl - euler) <= _AGREE_RTOL * np.abs(euler))
            & (euler >= 0.0)
            & (euler <= bound)
        )
    return np.where(good, euler, np.nan)


def _series(a: float, B: FloatArray, s: FloatArray, u: FloatArray) -> FloatArray:
    """:func:`expected_alive_purchases` by its power series in u, for small ``u`` and ``s u``.

    Expanding ``(1 - (1 + p u)^-s) / p`` in powers of u and using the beta moments
    ``E[p^(k-1)] = (a)_(k-1) / (a+B)_(k-1)`` gives ``G = sum_{k>=1} (-1)^(k+1) (s)_k u^k / k!
    * (a)_(k-1) / (a+B)_(k-1)``. Consecutive terms shrink by at least ``max(u, s u)`` (kept
    below 1/2 by the caller), so 60 terms reach double precision with no cancellation, where
    the closed form loses digits to ``1 - (...)``.
    """
    term = s * u
    total = term.copy()
    for k in range(1, _SERIES_TERMS):
        term = term * (-(s + k) * u * (a + k - 1) / ((k + 1) * (a + B + k - 1)))
        total += term
    return total


def _log_sigmoid(y: FloatArray) -> FloatArray:
    """log(1 / (1 + e^-y)), stable for any y."""
    return -np.logaddexp(0.0, -y)


def _beta_logit_window(
    a: FloatArray, B: FloatArray, drop: FloatArray, lo: FloatArray, hi: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Where the beta(a, B) log-density in y = logit(p) lies within ``drop`` of its maximum.

    ``a log sigmoid(y) + B log sigmoid(-y)`` is concave with its maximum at ``log(a / B)``, so
    each side has one crossing; it is found by bisection inside ``[lo, hi]``.
    """

    def phi(y: FloatArray) -> FloatArray:
        return np.asarray(a * _log_sigmoid(y) + B * _log_sigmoid(-y), dtype=np.float64)

    mode = np.clip(np.log(a) - np.log(B), lo, hi)
    level = phi(mode) - drop
    bounds = []
    for outer in (lo, hi):
        inside = mode.copy()
        far = outer.copy()
        reaches = phi(outer) >= level
        for _ in range(64):
            mid = 0.5 * (inside + far)
            above = phi(mid) >= level
            inside = np.where(above, mid, inside)
            far = np.where(above, far, mid)
        bounds.append(np.where(reaches, outer, far))
    return bounds[0], bounds[1]


def _quadrature(a: FloatArray, B: FloatArray, s: FloatArray, u: FloatArray) -> FloatArray:
    """:func:`expected_alive_purchases` by quadrature over the beta distribution of p.

    In ``y = logit(p)`` the integrand ``g(p) p^a (1-p)^B / B(a, B)`` with
    ``g(p) = (1 - (1 + p u)^-s) / p`` is smooth and decays exponentially on both sides. Far
    tails (where ``g`` and ``(1-p)^B`` are constant to 1e-9) are integrated in closed form;
    the rest runs over the window where the beta density is within ``40 + log(max g / min g)``
    of its maximum, split into 32 panels of 16-point Gauss-Legendre.
    """
    log_beta = special.betaln(a, B)
    su = s * u
    g_one = -np.expm1(-s * np.log1p(u))  # g(1)
    y_left = np.log(1e-9) - np.log1p((s + 1.0) * u + B)
    y_right = -(np.log(1e-9) - np.log1p(a + s))
    drop = 40.0 + np.log(su) - np.log(g_one)
    lo, hi = _beta_logit_window(a, B, drop, y_left, y_right)
    hi = np.maximum(hi, lo + 1e-12)
    tails = su * np.exp(a * y_left - log_beta) / a + g_one * np.exp(-B * y_right - log_beta) / B

    edges = np.linspace(0.0, 1.0, _N_PANELS + 1)
    half = 0.5 * (edges[1:] - edges[:-1])
    centre = 0.5 * (edges[1:] + edges[:-1])
    frac = (centre[:, None] + half[:, None] * _GL_NODES[None, :]).ravel()
    wts = (half[:, None] * _GL_WEIGHTS[None, :]).ravel()
    width = (hi - lo)[:, None]
    y = lo[:, None] + width * frac[None, :]
    log_p = _log_sigmoid(y)
    log_q = _log_sigmoid(-y)
    p = np.exp(log_p)
    s_col, u_col = s[:, None], u[:, None]
    with np.errstate(divide="ignore"):
        log_g = np.log(-np.expm1(-s_col * np.log1p(p * u_col))) - log_p
    # p underflows to 0 only where g = s u to double precision.
    log_g = np.where(p > 0, log_g, np.log(su)[:, None])
    log_f = log_g + a[:, None] * log_p + B[:, None] * log_q - log_beta[:, None]
    body = (np.exp(log_f) @ wts) * width[:, 0]
    return np.asarray(body + tails, dtype=np.float64)


def _quadrature_chunked(a: float, B: FloatArray, s: FloatArray, u: FloatArray) -> FloatArray:
    out = np.empty_like(B)
    a_vec = np.full_like(B, a)
    for start in range(0, B.shape[0], _CHUNK):
        sl = slice(start, start + _CHUNK)
        out[sl] = _quadrature(a_vec[sl], B[sl], s[sl], u[sl])
    return out


def _expected_alive_purchases_direct(
    a: float, B: FloatArray, s: FloatArray, u: FloatArray
) -> FloatArray:
    out = np.zeros_like(B)
    pos = u > 0
    if not pos.any():
        return out
    B_p, s_p, u_p = B[pos], s[pos], u[pos]
    small = (u_p <= _SERIES_MAX) & (s_p * u_p <= _SERIES_MAX)
    value = np.empty_like(B_p)
    value[small] = _series(a, B_p[small], s_p[small], u_p[small])
    value[~small] = _closed_forms(a, B_p[~small], s_p[~small], u_p[~small])
    bad = ~np.isfinite(value)
    if bad.any():
        value[bad] = _quadrature_chunked(a, B_p[bad], s_p[bad], u_p[bad])
    out[pos] = value
    return out


def expected_alive_purchases(a: float, B: ArrayLike, s: ArrayLike, u: ArrayLike) -> FloatArray:
    """Expected purchases in the next ``t`` time units of a customer alive now.

    ``G = E[(1 - (1 + p u)^-s) / p]`` with ``p ~ beta(a, B)``, where ``s`` and ``u`` are the
    shape and scaled horizon of the gamma posterior of lambda (``lambda ~ gamma(s, alpha')``,
    ``u = t / alpha'``). Given ``lambda`` and ``p`` the customer drops out at rate
    ``lambda p``, so purchases in ``(0, t]`` have mean ``(1 - exp(-lambda p t)) / p``;
    averaging over lambda gives ``(1 - (1 + p u)^-s) / p``. This is the bracketed factor of
    FHL 2005 eq. (10) (and of eq. 9 with B = b, s = r, u = t / alpha).

    The closed form (:func:`_closed_forms`) is used where it is reliable; elsewhere (a near
    1, ``a + B - 1`` near 0, large arguments where scipy's ``hyp2f1`` overflows) a quadrature
    over p takes over. ``a`` within 1e-4 of 1, a removable singularity of the closed form, is
    handled by linear interpolation between ``a = 1 -+ 1e-4``. Always finite, ``0 <= G <= s u``.
    """
    B_arr, s_arr, u_arr = (
        np.ascontiguousarray(v, dtype=np.float64) for v in np.broadcast_arrays(B, s, u)
    )
    shape = B_arr.shape
    B_arr, s_arr, u_arr = B_arr.ravel(), s_arr.ravel(), u_arr.ravel()
    # Customers share (x, T) and the horizon: evaluate each distinct triple once.
    (B_u, s_u, u_u), inverse = _distinct_rows(B_arr, s_arr, u_arr)
    if abs(a - 1.0) < _NEAR_ONE:
        below = _expected_alive_purchases_direct(1.0 - _NEAR_ONE, B_u, s_u, u_u)
        above = _expected_alive_purchases_direct(1.0 + _NEAR_ONE, B_u, s_u, u_u)
        weight = (a - (1.0 - _NEAR_ONE)) / (2.0 * _NEAR_ONE)
        out = below + weight * (above - below)
    else:
        out = _expected_alive_purchases_direct(a, B_u, s_u, u_u)
    out = np.clip(out, 0.0, s_u * u_u)
    return (out if inverse is None else out[inverse]).reshape(shape)


# --------------------------------------------------------------------------- predictions
def _theta_values(theta: ArrayLike) -> tuple[float, float, float, float]:
    r, alpha, a, b = (float(v) for v in np.asarray(theta, dtype=np.float64))
    return r, alpha, a, b


def _as_arrays(*values: ArrayLike) -> list[FloatArray]:
    arrays = np.broadcast_arrays(*(np.asarray(v, dtype=np.float64) for v in values))
    return [np.atleast_1d(np.ascontiguousarray(v)) for v in arrays]


def log_odds_dead(
    theta: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, shift: int
) -> FloatArray:
    """``log(P(dead) / P(alive))`` given a history; -inf where the customer must be alive.

    ``D = log(a) - log(b + x + m - 1) + (r + x) log((alpha + T) / (alpha + t_x))``
    (Fader, Hardie & Lee, note "Computing P(alive) using the BG/NBD model", 2008, for
    m = 0, where x = 0 means alive; Batislam et al. 2007 with Wagner & Hoppe 2008 for m = 1).
    The log-ratio uses ``log1p((T - t_x) / (alpha + t_x))`` so it stays exact for huge T.
    """
    r, alpha, a, b = _theta_values(theta)
    x_arr, t_arr, T_arr = _as_arrays(x, t_x, T)
    t_arr = np.where(x_arr == 0, 0.0, t_arr)
    gap = np.log1p((T_arr - t_arr) / (alpha + t_arr))
    if shift > 0:
        return np.asarray(
            np.log(a) - np.log(b + x_arr + (shift - 1)) + (r + x_arr) * gap, dtype=np.float64
        )
    with np.errstate(divide="ignore"):
        d = np.log(a) - np.log(np.maximum(b + x_arr - 1.0, 1e-300)) + (r + x_arr) * gap
    return np.where(x_arr > 0, d, -np.inf)


def prob_alive(
    theta: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, shift: int
) -> FloatArray:
    """P(alive at T | x, t_x, T) = 1 / (1 + exp(D)), see :func:`log_odds_dead`."""
    return np.asarray(special.expit(-log_odds_dead(theta, x, t_x, T, shift)), dtype=np.float64)


def conditional_expected_purchases(
    theta: ArrayLike, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike, shift: int
) -> FloatArray:
    """E[X(T, T + t) | x, t_x, T] = P(alive) * G(a, b + x + m, r + x, t / (alpha + T)).

    Given the history, lambda ~ gamma(r + x, alpha + T) and, if alive, p ~ beta(a, b + x + m);
    FHL 2005 eq. (10) for m = 0, Batislam et al. 2007 / Wagner & Hoppe 2008 for m = 1.
    """
    r, alpha, a, b = _theta_values(theta)
    t_arr, x_arr, tx_arr, T_arr = _as_arrays(t, x, t_x, T)
    alive = prob_alive(theta, x_arr, tx_arr, T_arr, shift)
    g = expected_alive_purchases(a, b + x_arr + shift, r + x_arr, t_arr / (alpha + T_arr))
    return np.asarray(alive * g, dtype=np.float64)


def expected_purchases(theta: ArrayLike, t: ArrayLike, shift: int) -> FloatArray:
    """E[X(t)] for a customer whose first purchase is at time 0.

    BG/NBD (FHL 2005 eq. 9): ``G(a, b, r, t / alpha)``. MBG/NBD (Batislam et al. 2007):
    the customer first survives the initial flip, probability ``b / (a + b)``, after which
    ``p ~ beta(a, b + 1)``: ``b / (a + b) G(a, b + 1, r, t / alpha)``.
    """
    r, alpha, a, b = _theta_values(theta)
    (t_arr,) = _as_arrays(t)
    g = expected_alive_purchases(a, b + shift, r, t_arr / alpha)
    if shift > 0:
        return np.asarray(np.exp(np.log(b) - np.log(a + b)) * g, dtype=np.float64)
    return g


def prob_purchases(theta: ArrayLike, n: ArrayLike, t: ArrayLike, shift: int) -> FloatArray:
    """P(X(t) = n) for a customer whose first purchase is at time 0.

    BG/NBD (FHL 2005 eq. 8) and MBG/NBD (Batislam et al. 2007) in one template::

        P = B(a, b+n+m)/B(a, b) NB(n; r, alpha/(alpha+t))
          + 1[n+m > 0] B(a+1, b+n+m-1)/B(a, b) P(NB >= n),

    the first term "alive after n purchases", the second "dropped out at the n-th flip".
    ``NB`` is the gamma-Poisson count; its upper tail ``1 - (alpha/(alpha+t))^r sum_{j<n} ...``
    of eq. (8) is the regularised incomplete beta ``I_{t/(alpha+t)}(n, r)``, which stays
    accurate for large n (no finite sum).
    """
    r, alpha, a, b = _theta_values(theta)
    n_arr, t_arr = _as_arrays(n, t)
    log_beta_ab = special.betaln(a, b)
    q = t_arr / (alpha + t_arr)
    log_nb = (
        special.gammaln(r + n_arr)
        - special.gammaln(r)
        - special.gammaln(n_arr + 1.0)
        - r * np.log1p(t_arr / alpha)
        + special.xlogy(n_arr, q)
    )
    alive = np.exp(special.betaln(a, b + n_arr + shift) - log_beta_ab + log_nb)
    tail = np.where(n_arr > 0, special.betainc(np.maximum(n_arr, 1.0), r, q), 1.0)
    dead_b = b + n_arr + (shift - 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        dropped = np.exp(special.betaln(a + 1.0, np.maximum(dead_b, 1e-300)) - log_beta_ab) * tail
    dropped = np.where(n_arr + shift > 0, dropped, 0.0)
    return np.asarray(np.clip(alive + dropped, 0.0, 1.0), dtype=np.float64)


# --------------------------------------------------------------------------- simulation
def _validated_params(params: Mapping[str, float], model: str) -> tuple[float, float, float, float]:
    missing = [k for k in PARAM_NAMES if k not in params]
    if missing:
        raise ValueError(f"{model} parameters are missing {missing}")
    values = tuple(float(params[k]) for k in PARAM_NAMES)
    if not all(np.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"{model} parameters must be finite and > 0, got {dict(params)}")
    r, alpha, a, b = values
    return r, alpha, a, b


def simulate(
    params: Mapping[str, float],
    T: ArrayLike,
    rng: np.random.Generator | int | None,
    shift: int,
    model: str,
) -> tuple[FloatArray, FloatArray]:
    """Simulate (frequency, recency) for customers observed ``T`` time units after purchase 1.

    Per customer: ``lambda ~ gamma(r, rate alpha)``, ``p ~ beta(a, b)``. The number of
    purchases ``N`` after which the customer drops out is geometric: ``P(N = k) = (1-p)^(k-1)
    p`` for k >= 1 (BG/NBD, flips after repeat purchases only) or ``(1-p)^k p`` for k >= 0
    (MBG/NBD, one more flip right after the first purchase). The Poisson process of would-be
    purchases has ``K ~ Poisson(lambda T)`` events in ``(0, T]``; the customer makes
    ``x = min(K, N)`` of them, and the x-th of K uniform arrival times is ``T * beta(x, K-x+1)``.
    """
    r, alpha, a, b = _validated_params(params, model)
    age = as_float_array(T, "T")
    if (age < 0).any():
        raise ValueError("T must be >= 0")
    gen = np.random.default_rng(rng)
    n = age.shape[0]
    lam = gen.gamma(r, 1.0 / alpha, size=n)
    p = gen.beta(a, b, size=n)
    # Geometric by inversion in floating point: exact for p -> 0 (N -> inf) and p = 1.
    u = 1.0 - gen.random(n)
    with np.errstate(all="ignore"):  # p -> 0 gives +inf (never drops out), handled below
        n_before_drop = np.floor(np.log(u) / np.log1p(-p)) + (1 - shift)
    n_before_drop = np.where(np.isnan(n_before_drop), np.inf, n_before_drop)
    k = gen.poisson(lam * age).astype(np.float64)
    x = np.minimum(k, n_before_drop)
    has = x > 0
    x_safe = np.where(has, x, 1.0)
    recency = np.where(has, age * gen.beta(x_safe, np.where(has, k - x + 1.0, 1.0)), 0.0)
    return x, recency


# --------------------------------------------------------------------------- the model
class BetaGeometricNBD(BaseModel):
    """Fitting, predictions and intervals shared by :class:`BGNBD` and :class:`MBGNBD`.

    Subclasses set ``shift`` (see the module docstring) and document their paper.
    """

    param_names: ClassVar[tuple[str, ...]] = PARAM_NAMES
    expectation_factorises: ClassVar[bool] = True
    """E[X(t) | x, t_x, T] = P(alive | x, t_x, T) * E[X(t) | alive, x, T]: used by models.clv."""
    interval_transforms: ClassVar[Mapping[str, Transform]] = {
        "prob_alive": "logit",
        "prob_purchases": "logit",
        "conditional_expected_purchases": "log",
        "expected_purchases": "log",
    }
    shift: ClassVar[int] = 0
    model_name: ClassVar[str] = "beta-geometric/NBD"

    # ------------------------------------------------------------------ fitting
    def neg_log_likelihood(self, theta: FloatArray, data: NBDData) -> tuple[float, FloatArray]:
        """Summed -log L and its gradient; see :func:`neg_log_likelihood`."""
        return neg_log_likelihood(theta, data)

    def _validated(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None,
    ) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        x, t_x, age = validate_rfm(frequency, recency, T)
        w = validate_weights(weights, x.shape[0])
        check_identifiable(x, w, age, self.model_name)
        return x, np.where(x == 0, 0.0, t_x), age, w

    def prepare(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> NBDData:
        """Validate and compress the data (x, t_x, T in one time unit; weights = customers)."""
        x, t_x, age, w = self._validated(frequency, recency, T, weights)
        return prepare_data(x, t_x, age, w, self.shift)

    def fit(
        self,
        frequency: ArrayLike,
        recency: ArrayLike,
        T: ArrayLike,
        weights: ArrayLike | None = None,
    ) -> Self:
        """Maximum-likelihood fit; returns ``self``.

        ``frequency`` x = repeat purchases, ``recency`` t_x = time of the last repeat
        purchase and ``T`` = time since the first purchase, in one time unit (``alpha`` comes
        out in that unit); ``weights`` = number of identical customers per row. Identical rows
        are compressed first, so the cost grows with the number of distinct histories.

        The optimiser starts from the moment-based values of :func:`starting_values`; if that
        run does not converge, up to ``n_starts`` starting values are tried and the best
        optimum is kept. Raises ``ModelFitError`` when the data cannot identify the model.
        """
        x, t_x, age, w = self._validated(frequency, recency, T, weights)
        data = prepare_data(x, t_x, age, w, self.shift)
        starts = starting_values(x, age, w)

        def objective(theta: FloatArray) -> tuple[float, FloatArray]:
            return self.neg_log_likelihood(theta, data)

        result = self._optimise(objective, starts, data.total_weight)
        self._set_result(result, n_obs=data.total_weight)
        return self

    def _optimise(
        self, objective: NegLogLik, starts: list[FloatArray], scale: float
    ) -> OptimResult:
        kwargs: dict[str, Any] = {"scale": scale, "maxiter": self.maxiter, "model": self.model_name}
        first = maximize_likelihood(objective, starts[:1], **kwargs)
        if first.converged or self.n_starts <= 1:
            return first
        others = [first.theta, *starts[1 : self.n_starts]]
        try:
            second = maximize_likelihood(objective, others, **kwargs)
        except ModelFitError:
            return first
        return second if second.log_likelihood > first.log_likelihood else first

    # ------------------------------------------------------------- public predictions
    def prob_alive(self, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike) -> FloatArray:
        """Probability that a customer with history (x, t_x, T) is still alive at T."""
        x, t_x, age = validate_rfm(frequency, recency, T)
        return self._prob_alive(self._theta(), x, t_x, age)

    def conditional_expected_purchases(
        self, t: ArrayLike, frequency: ArrayLike, recency: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        """Expected repeat purchases in ``(T, T + t]`` given the history (x, t_x, T)."""
        x, t_x, age = validate_rfm(frequency, recency, T)
        horizon = validate_time(t, "t")
        check_broadcastable(t=horizon, frequency=x)
        return self._conditional_expected_purchases(self._theta(), horizon, x, t_x, age)

    def expected_purchases(self, t: ArrayLike) -> FloatArray:
        """Expected repeat purchases in ``(0, t]`` by a customer whose first purchase is at 0."""
        return self._expected_purchases(self._theta(), validate_time(t, "t"))

    def prob_purchases(self, n: ArrayLike, t: ArrayLike) -> FloatArray:
        """P(X(t) = n): probability of exactly ``n`` repeat purchases in ``(0, t]``."""
        counts = as_float_array(n, "n")
        if (counts < 0).any() or (counts != np.floor(counts)).any():
            raise ValueError("n must be whole numbers >= 0")
        horizon = validate_time(t, "t")
        check_broadcastable(n=counts, t=horizon)
        return self._prob_purchases(self._theta(), counts, horizon)

    # ---------------------------------------------- parameter-explicit predictions
    def _prob_alive(
        self, theta: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        return prob_alive(theta, x, t_x, T, self.shift)

    def _conditional_expected_purchases(
        self, theta: ArrayLike, t: ArrayLike, x: ArrayLike, t_x: ArrayLike, T: ArrayLike
    ) -> FloatArray:
        return conditional_expected_purchases(theta, t, x, t_x, T, self.shift)

    def _expected_purchases(self, theta: ArrayLike, t: ArrayLike) -> FloatArray:
        return expected_purchases(theta, t, self.shift)

    def _prob_purchases(self, theta: ArrayLike, n: ArrayLike, t: ArrayLike) -> FloatArray:
        return prob_purchases(theta, n, t, self.shift)
