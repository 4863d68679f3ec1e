"""BG/NBD model of repeat purchasing in a non-contractual, continuous-time setting.

Reference: Fader, P. S., Hardie, B. G. S. & Lee, K. L. (2005), "'Counting Your Customers'
the Easy Way: An Alternative to the Pareto/NBD Model", Marketing Science 24(2), 275-284
(FHL 2005), and Fader, Hardie & Lee (2008), "Computing P(alive) Using the BG/NBD Model",
http://brucehardie.com/notes/021/ (the P(alive) note).

The story (FHL 2005, Sec. 3): while alive, a customer buys as a Poisson process with rate
``lambda ~ gamma(shape r, rate alpha)``; after each REPEAT purchase the customer drops out for
good with probability ``p ~ beta(a, b)``. A customer with no repeat purchase is alive.

Data: ``frequency`` x = number of repeat purchases, ``recency`` t_x = time of the last repeat
purchase and ``T`` = time since the first purchase, all in one time unit (days, weeks...);
``alpha`` is in that unit. On the CDNOW sample (2357 customers, weeks) FHL 2005 report
r = 0.243, alpha = 4.414, a = 0.793, b = 2.426 and log L = -9582.4.

Equations used: the likelihood eq. (6), E[X(t)] eq. (9), P(X(t) = n) eq. (8), the
conditional expectation eq. (10) and P(alive) from the note; see
:mod:`models._nbd_common` for the implementation shared with MBG/NBD.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np
from numpy.typing import ArrayLike

from . import _nbd_common
from ._nbd_common import BetaGeometricNBD, NBDData
from ._validation import FloatArray

__all__ = ["BGNBD", "bgnbd_neg_log_likelihood", "simulate"]


def bgnbd_neg_log_likelihood(theta: FloatArray, data: NBDData) -> tuple[float, FloatArray]:
    """-log L of the BG/NBD model, FHL 2005 eq. (6), summed over customers, with its gradient.

    ``L(r, alpha, a, b | x, t_x, T) = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
    + delta_{x>0} B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))``,
    evaluated in log space with an analytic gradient by
    :func:`models._nbd_common.neg_log_likelihood` (``data.shift`` must be 0).
    """
    if data.shift != 0:
        raise ValueError("BG/NBD data must be prepared with shift=0")
    return _nbd_common.neg_log_likelihood(theta, data)


class BGNBD(BetaGeometricNBD):
    """BG/NBD model (FHL 2005). Parameters ``r``, ``alpha`` (time units), ``a``, ``b``.

    Example::

        model = BGNBD().fit(x, t_x, T)           # x, t_x, T in weeks
        model.params_                            # CDNOW: r=0.243, alpha=4.414, a=0.793, b=2.426
        model.conditional_expected_purchases(39, x, t_x, T)

    Predictions (all vectorised, inputs validated):

    - :meth:`prob_alive` - P(alive at T | x, t_x, T), from the P(alive) note; 1 when x = 0.
    - :meth:`conditional_expected_purchases` - E[Y(t) | x, t_x, T], FHL 2005 eq. (10).
    - :meth:`expected_purchases` - E[X(t)] for a customer acquired at time 0, eq. (9).
    - :meth:`prob_purchases` - P(X(t) = n), eq. (8).
    """

    shift: ClassVar[int] = 0
    model_name: ClassVar[str] = "BG/NBD"

    def neg_log_likelihood(self, theta: FloatArray, data: NBDData) -> tuple[float, FloatArray]:
        """FHL 2005 eq. (6); see :func:`bgnbd_neg_log_likelihood`."""
        return bgnbd_neg_log_likelihood(theta, data)


def simulate(
    params: Mapping[str, float],
    T: ArrayLike,
    rng: np.random.Generator | int | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Simulate (frequency, recency) under BG/NBD for customers observed ``T`` after purchase 1.

    ``params`` holds r, alpha (in the unit of ``T``), a, b. Each customer draws
    ``lambda ~ gamma(r, alpha)`` and ``p ~ beta(a, b)``, buys as a Poisson process and drops
    out after each repeat purchase with probability p (FHL 2005, Sec. 3). Recency is the time
    of the last repeat purchase (0 without one), in the unit of ``T``.
    """
    return _nbd_common.simulate(params, T, rng, shift=0, model="BG/NBD")
