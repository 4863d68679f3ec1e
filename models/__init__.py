"""Probability models of customer purchasing, retention and spend.

Pure numpy/scipy. Every model follows the scikit-learn convention: configure in the
constructor, ``fit(...)`` returns ``self``, learned attributes end with ``_``.

- :class:`BGNBD`: Fader, Hardie & Lee (2005), "Counting Your Customers the Easy Way".
- :class:`MBGNBD`: Batislam, Denizel & Filiztekin (2007).
- :class:`ParetoNBD`: Schmittlein, Morrison & Colombo (1987); Fader & Hardie (2005) note.
- :class:`BGBB`: Fader, Hardie & Shang (2010), discrete opportunities.
- :class:`SBG`: Fader & Hardie (2007), "How to Project Customer Retention"; DERL (2010).
- :class:`GammaGamma`: Fader, Hardie & Lee (2005) "RFM and CLV"; Fader & Hardie (2013) note.
- :mod:`models.clv`: discounted CLTV over a horizon with explicit units, and its uncertainty.
"""

from ._errors import ModelFitError, NotFittedError
from .bgbb import BGBB
from .bgnbd import BGNBD
from .gammagamma import GammaGamma
from .mbgnbd import MBGNBD
from .paretonbd import ParetoNBD
from .sbg import SBG

__all__ = [
    "BGBB",
    "BGNBD",
    "MBGNBD",
    "SBG",
    "GammaGamma",
    "ModelFitError",
    "NotFittedError",
    "ParetoNBD",
]
