"""The same Ibis expressions on Spark (local[2]) give the DuckDB results.

All Spark tests live here and share one session (session-scoped fixture; the xdist group keeps
them on one worker). Starting the JVM takes tens of seconds, hence ``slow``.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import ibis.expr.types as ir
import numpy as np
import pandas as pd
import pytest

from cltv_api.engine import (
    HISTORY_KEY,
    Engine,
    attach,
    histories,
    segment_aggregates,
    summarize,
    summarize_parts,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.xdist_group("spark"),
    # Third-party warnings, not ours: PySpark 4.0 leaves the local socket it collects results
    # through unclosed (pyspark.util._load_from_socket), and PySpark's and Ibis' pandas
    # conversions use options pandas 3 deprecates (copy=, future.infer_string).
    pytest.mark.filterwarnings("ignore:unclosed <socket.socket:ResourceWarning"),
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning:pyspark"),
    pytest.mark.filterwarnings("ignore::pandas.errors.Pandas4Warning:ibis"),
]


@pytest.fixture(scope="session")
def spark() -> Iterator[Engine]:
    pytest.importorskip("pyspark")
    if shutil.which("java") is None and "JAVA_HOME" not in os.environ:
        pytest.skip("Spark needs a Java runtime")
    eng = Engine.spark(master="local[2]", shuffle_partitions=2)
    yield eng
    eng.backend._session.stop()


@pytest.fixture
def spark_tx(spark: Engine, transactions_parquet: Path) -> ir.Table:
    return spark.table(transactions_parquet)


def frame(expr: ir.Table) -> pd.DataFrame:
    return expr.to_pyarrow().to_pandas().sort_values("customer_id").reset_index(drop=True)


def assert_same(spark_df: pd.DataFrame, duck_df: pd.DataFrame) -> None:
    """Counts identical; sums of amounts equal up to summation order (parallel engines)."""
    pd.testing.assert_frame_equal(spark_df, duck_df, check_exact=False, rtol=1e-12, atol=1e-12)
    for col in ("frequency", "recency", "T", "frequency_cal", "T_cal", "frequency_holdout"):
        if col in duck_df:
            np.testing.assert_array_equal(spark_df[col], duck_df[col], err_msg=col)


@pytest.mark.parametrize("unit", ["days", "weeks", "months"])
def test_spark_summary_equals_duckdb(spark_tx: ir.Table, tx: ir.Table, unit: str) -> None:
    options = {"observation_end": "2023-01-04 15:30", "segment_cols": ["region", "channel"]}
    assert_same(frame(summarize(spark_tx, unit, **options)), frame(summarize(tx, unit, **options)))


def test_spark_calibration_holdout_equals_duckdb(spark_tx: ir.Table, tx: ir.Table) -> None:
    options = {"calibration_end": "2022-10-05", "observation_end": "2023-03-01 10:00"}
    assert_same(frame(summarize(spark_tx, "W", **options)), frame(summarize(tx, "W", **options)))


def test_spark_join_back_and_segment_aggregates_equal_duckdb(
    spark_tx: ir.Table, tx: ir.Table
) -> None:
    results = []
    for table in (spark_tx, tx):
        summary = summarize(table, "W", segment_cols=["region"])
        hist = histories(summary, by=["region"])
        value = hist["frequency"] * 10 + hist["T"] / 7
        scored = attach(summary, hist.with_predictions(clv=value), key=["region", *HISTORY_KEY])
        agg = segment_aggregates(scored, ["clv", "monetary_value"], by=["region"])
        results.append((hist, agg.to_pyarrow().to_pandas()))
    (spark_hist, spark_agg), (duck_hist, duck_agg) = results
    for name in HISTORY_KEY:
        np.testing.assert_array_equal(spark_hist[name], duck_hist[name])
    np.testing.assert_array_equal(spark_hist.counts, duck_hist.counts)
    pd.testing.assert_frame_equal(spark_agg, duck_agg, check_exact=False, rtol=1e-12)


def test_spark_stores_summary_parts_like_duckdb(
    spark: Engine, spark_tx: ir.Table, tx: ir.Table
) -> None:
    # Spark's hash differs from DuckDB's: the parts differ, their union does not.
    assert len(summarize_parts(spark_tx, "W")) == 1  # "auto" does not partition on Spark
    stored = spark.store(summarize_parts(spark_tx, "W", segment_cols=["region"], parts=2))
    assert_same(frame(stored), frame(summarize(tx, "W", segment_cols=["region"])))


def test_spark_writes_a_parquet_directory_both_engines_read(
    spark: Engine, spark_tx: ir.Table, engine: Engine, tmp_path: Path
) -> None:
    target = tmp_path / "summary"
    spark.to_parquet(summarize(spark_tx, "D"), target)
    assert target.is_dir()
    from_spark = frame(spark.table(target))
    from_duckdb = frame(engine.table(target))
    pd.testing.assert_frame_equal(from_spark, from_duckdb)
    assert len(from_duckdb) == 300
