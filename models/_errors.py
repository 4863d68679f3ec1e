"""Exceptions raised by the model library (one module for the whole package)."""

from __future__ import annotations


class NotFittedError(RuntimeError):
    """A prediction was asked of a model before ``fit`` (or ``from_params``)."""


class ModelFitError(ValueError):
    """The data cannot identify the model, or the optimiser could not produce a usable fit.

    Subclasses ``ValueError`` so callers that only catch bad-input errors still catch it.
    """
