"""MBG/NBD: the BG/NBD model with dropout possible right after the first purchase.

References: Batislam, E. P., Denizel, M. & Filiztekin, A. (2007), "Empirical validation and
comparison of models for customer base analysis", International Journal of Research in
Marketing 24(3), 201-209 (BDF 2007); Wagner, U. & Hoppe, D. (2008), "Erratum on the MBG/NBD
model", IJRM 25(3), 225-226, which corrects the conditional expectation of BDF 2007.

The story differs from BG/NBD (Fader, Hardie & Lee 2005) in one place: the dropout coin with
probability ``p ~ beta(a, b)`` is also flipped right after the FIRST purchase, so a customer
without repeat purchases may be gone already. A customer with x repeat purchases therefore
survived x + 1 flips (x under BG/NBD), which shifts ``b`` by one in every formula:

- likelihood (BDF 2007, Sec. 2): ``L = G(r+x) alpha^r / G(r) * [B(a, b+x+1)/B(a, b)
  (alpha+T)^-(r+x) + B(a+1, b+x)/B(a, b) (alpha+t_x)^-(r+x)]`` for every x, including 0;
- P(alive) = ``1 / (1 + a/(b+x) ((alpha+T)/(alpha+t_x))^(r+x))`` (BDF 2007, Appendix);
- E[X(t)] = ``b/(a-1) [1 - (alpha/(alpha+t))^r 2F1(r, b+1; a+b; t/(alpha+t))]`` (BDF 2007);
- E[Y(t) | x, t_x, T] = ``(a+b+x)/(a-1) [1 - ((alpha+T)/(alpha+T+t))^(r+x)
  2F1(r+x, b+x+1; a+b+x; t/(alpha+T+t))] * P(alive)`` (Wagner & Hoppe 2008);
- P(X(t) = n) as BG/NBD eq. (8) with b -> b+1 in the beta functions, plus the mass a/(a+b)
  of customers gone at the first flip at n = 0.

Data and units as for :mod:`models.bgnbd`. The implementation is shared with BG/NBD in
:mod:`models._nbd_common`; ``shift = 1`` selects this model there.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from . import _nbd_common
from ._nbd_common import BetaGeometricNBD, NBDData
from ._validation import FloatArray

__all__ = ["MBGNBD", "mbgnbd_neg_log_likelihood", "simulate"]


def mbgnbd_neg_log_likelihood(theta: FloatArray, data: NBDData) -> tuple[float, FloatArray]:
    """-log L of the MBG/NBD model (BDF 2007, Sec. 2), summed over customers, with its gradient.

    Evaluated in log space as ``... - (r+x) log(alpha+T) + log(1 + a/(b+x)
    ((alpha+T)/(alpha+t_x))^(r+x))`` for every customer (the second likelihood term is present
    for x = 0 too) by :func:`models._nbd_common.neg_log_likelihood` (``data.shift`` must be 1).
    """
    if data.shift != 1:
        raise ValueError("MBG/NBD data must be prepared with shift=1")
    return _nbd_common.neg_log_likelihood(theta, data)


class MBGNBD(BetaGeometricNBD):
    """MBG/NBD model (BDF 2007; Wagner & Hoppe 2008). Parameters ``r``, ``alpha``, ``a``, ``b``.

    Same interface as :class:`models.bgnbd.BGNBD`: :meth:`fit`, :meth:`prob_alive`,
    :meth:`conditional_expected_purchases`, :meth:`expected_purchases`,
    :meth:`prob_purchases`, plus the delta-method :meth:`predict_interval`. Unlike BG/NBD,
    P(alive) < 1 for customers without repeat purchases.
    """

    shift: ClassVar[int] = 1
    model_name: ClassVar[str] = "MBG/NBD"

    def neg_log_likelihood(self, theta: FloatArray, data: NBDData) -> tuple[float, FloatArray]:
        """BDF 2007, Sec. 2; see :func:`mbgnbd_neg_log_likelihood`."""
        return mbgnbd_neg_log_likelihood(theta, data)


def simulate(
    params: Mapping[str, float],
    T: ArrayLike,
    rng: np.random.Generator | int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Simulate (frequency, recency) under MBG/NBD for customers observed ``T`` after purchase 1.

    As :func:`models.bgnbd.simulate`, except that the dropout coin (probability p) is also
    flipped right after the first purchase (BDF 2007, Sec. 2).
    """
    return _nbd_common.simulate(params, T, rng, shift=1, model="MBG/NBD")
