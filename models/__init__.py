"""Probability models of customer purchasing, retention and spend.

Pure numpy/scipy. Every model follows the scikit-learn convention: configure in the
constructor, ``fit(...)`` returns ``self``, learned attributes end with ``_``.
"""

from ._errors import ModelFitError, NotFittedError

__all__ = ["ModelFitError", "NotFittedError"]
