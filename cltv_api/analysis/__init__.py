"""From a per-customer summary to fitted models, scored customers and segment tables.

The one place where the engine (``cltv_api.engine``) meets the models (``models``); the CLI and
the HTTP service both call it, so each step of the flow lives here once:

    summary table --histories--> fit (models on unique histories)
                  --valuation--> per-history pieces --attach--> scored customers (engine)
                                                   --aggregate--> segment table
"""

from .fitting import FitRequest, FittedModels, fit_models
from .scoring import Valuation, score_customers, segment_table

__all__ = [
    "FitRequest",
    "FittedModels",
    "Valuation",
    "fit_models",
    "score_customers",
    "segment_table",
]
