"""Summary engine: per-customer RFM statistics computed in a query engine through Ibis.

Typical flow (no step pulls all transactions or all customers into Python)::

    engine = Engine.duckdb(memory_limit="4GB", temp_dir="/tmp/cltv-spill")
    tx = engine.table("transactions.parquet")
    summary = engine.persist(summarize(tx, "weeks", segment_cols=["region"]), "summary.parquet")
    # or, computed in customer partitions (bounded memory) into a temp table and a file:
    summary = engine.store(summarize_parts(tx, "weeks"), path="summary.parquet")
    hist = histories(summary)                       # unique (x, t_x, T) with counts: numpy
    p_alive = model.conditional_probability_alive(hist["frequency"], hist["recency"], hist["T"])
    scored = attach(summary, hist.with_predictions(p_alive=p_alive))
    report = engine.to_pyarrow(segment_aggregates(scored, ["p_alive"], by=["region"]))

The statistics match ``lifetimes.utils.summary_data_from_transaction_data`` and
``calibration_and_holdout_data`` (see :mod:`.summary` for the definitions).
"""

from .backends import Engine
from .compress import (
    CALIBRATION_HISTORY_KEY,
    HISTORY_KEY,
    SPEND_KEY,
    Histories,
    expand,
    histories,
    history_counts,
    spend_histories,
)
from .join import attach, segment_aggregates
from .periods import TimeUnit, parse_time_unit
from .summary import CALIBRATION_COLUMNS, SUMMARY_COLUMNS, summarize, summarize_parts

__all__ = [
    "CALIBRATION_COLUMNS",
    "CALIBRATION_HISTORY_KEY",
    "HISTORY_KEY",
    "SPEND_KEY",
    "SUMMARY_COLUMNS",
    "Engine",
    "Histories",
    "TimeUnit",
    "attach",
    "expand",
    "histories",
    "history_counts",
    "parse_time_unit",
    "segment_aggregates",
    "spend_histories",
    "summarize",
    "summarize_parts",
]
