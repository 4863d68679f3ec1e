"""The summary engine reading a PostgreSQL warehouse table through an Ibis URL
(``Engine.from_url("postgres://...")``) gives exactly the DuckDB results on the same rows.

The rows are the engine tests' synthetic transactions (tests/cltv_api/engine/_data.py); the
comparison is the one the Spark tests use (test_spark.assert_same: counts identical, sums equal
up to summation order).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

import ibis.expr.types as ir
import pandas as pd
import pyarrow as pa
import pytest

from cltv_api.analysis import FitRequest, Valuation, fit_models, segment_table
from cltv_api.engine import Engine, summarize
from cltv_api.errors import NotFound
from tests.cltv_api.engine._data import in_memory, make_transactions
from tests.cltv_api.engine.test_spark import assert_same, frame
from tests.cltv_api.postgres.cluster import PostgresCluster

pytestmark = pytest.mark.xdist_group("postgres")

SCHEMA = "sales"


@pytest.fixture(scope="module")
def transactions() -> pd.DataFrame:
    return make_transactions()


@pytest.fixture(scope="module")
def warehouse_url(
    pg_cluster: PostgresCluster, pg_url: str, transactions: pd.DataFrame
) -> Iterator[str]:
    """Ibis URL of the module's database, holding the rows twice: ``public.transactions``
    (``date`` a plain timestamp) and ``sales.orders`` (``date`` a timestamptz, the instants of
    the same wall-clock times in UTC, in a schema of its own)."""
    url = pg_cluster.url(pg_url.rsplit("/", 1)[-1], driver="postgres")
    with Engine.from_url(url) as loader:
        loader.backend.create_table(
            "transactions", pa.Table.from_pandas(transactions, preserve_index=False)
        )
        loader.backend.raw_sql(
            f"CREATE SCHEMA {SCHEMA}; CREATE TABLE {SCHEMA}.orders AS SELECT customer_id, "
            "date AT TIME ZONE 'UTC' AS date, amount, region FROM transactions"
        ).close()
    yield url


@pytest.fixture(scope="module")
def warehouse(warehouse_url: str) -> Iterator[Engine]:
    with Engine.from_url(warehouse_url) as engine:
        yield engine


@pytest.fixture(scope="module")
def duck() -> Iterator[Engine]:
    with Engine.duckdb(memory_limit="512MB", threads=1) as engine:
        yield engine


@pytest.fixture
def duck_tx(duck: Engine, transactions: pd.DataFrame) -> ir.Table:
    return in_memory(transactions)


def test_the_table_is_read_with_its_types(warehouse: Engine, transactions: pd.DataFrame) -> None:
    tx = warehouse.table("transactions")
    assert warehouse.name == "postgres"
    assert {name: str(dtype) for name, dtype in tx.schema().items()} == {
        "customer_id": "string",
        "date": "timestamp(6)",
        "amount": "float64",
        "order_id": "string",
        "region": "string",
        "channel": "string",
    }
    assert tx.count().execute() == len(transactions) == 1179  # rows _data.make_transactions makes


@pytest.mark.parametrize("unit", ["days", "weeks", "months"])
def test_postgres_summary_equals_duckdb(
    warehouse: Engine, duck_tx: ir.Table, transactions: pd.DataFrame, unit: str
) -> None:
    end = "2023-01-04 15:30"
    options = {"observation_end": end, "segment_cols": ["region", "channel"]}
    from_postgres = frame(summarize(warehouse.table("transactions"), unit, **options))
    assert_same(from_postgres, frame(summarize(duck_tx, unit, **options)))
    if unit == "days":  # one row per customer who first bought by the observation end
        first_purchase = transactions.groupby("customer_id")["date"].min()
        assert len(from_postgres) == (first_purchase <= pd.Timestamp(end)).sum() == 177


def test_postgres_calibration_holdout_equals_duckdb(warehouse: Engine, duck_tx: ir.Table) -> None:
    options = {"calibration_end": "2022-10-05", "observation_end": "2023-03-01 10:00"}
    from_postgres = frame(summarize(warehouse.table("transactions"), "W", **options))
    assert_same(from_postgres, frame(summarize(duck_tx, "W", **options)))
    assert from_postgres["frequency_holdout"].sum() > 0  # the split leaves purchases on both sides


def test_a_schema_in_the_url_and_timestamptz_dates_give_the_same_summary(
    warehouse_url: str, duck_tx: ir.Table
) -> None:
    # postgres://.../db/sales: Ibis puts the schema first on the search path. Ibis also sets the
    # session time zone to UTC, so timestamptz values are bucketed by their UTC wall-clock time
    # (the database's own default zone here is UTC-03:30, see conftest.DATABASE_TIMEZONE).
    with Engine.from_url(f"{warehouse_url}/{SCHEMA}") as engine:
        orders = engine.table("orders")
        assert str(orders.schema()["date"]) == "timestamp('UTC', 6)"
        from_postgres = frame(summarize(orders, "D", segment_cols=["region"]))
    assert_same(from_postgres, frame(summarize(duck_tx, "D", segment_cols=["region"])))


def test_the_summary_streams_into_parquet_that_duckdb_reads_back(
    warehouse: Engine, duck: Engine, duck_tx: ir.Table, tmp_path: Path
) -> None:
    # What `cltv summarize --out` does with its engine. PostgreSQL cannot read Parquet, so the
    # persisted table is a temporary table of the database; the file holds the same rows.
    target = tmp_path / "summary.parquet"
    persisted = warehouse.persist(summarize(warehouse.table("transactions"), "W"), target)
    expected = frame(summarize(duck_tx, "W"))
    assert_same(frame(persisted), expected)
    assert_same(frame(duck.table(target)), expected)
    assert len(expected) == 300  # every customer of _data.make_transactions


def test_a_missing_table_is_not_found(warehouse: Engine) -> None:
    with pytest.raises(NotFound, match="no table named 'orders' in the postgres database"):
        warehouse.table("orders")  # it lives in the sales schema, not on the search path


def test_the_integration_guide_example_gives_the_duckdb_segment_table(
    warehouse: Engine, duck: Engine, duck_tx: ir.Table, tmp_path: Path
) -> None:
    # docs/integration.md, "A DuckDB database file or a warehouse": table, summary, persist,
    # fit, segment table. The fit runs on the persisted summary's distinct histories, so the
    # same rows must give the same parameters and segment values on both engines.
    results = []
    for name, engine, tx in (
        ("postgres", warehouse, warehouse.table("transactions")),
        ("duckdb", duck, duck_tx),
    ):
        summary = engine.persist(
            summarize(tx, "weeks", segment_cols=["channel"]), tmp_path / f"{name}.parquet"
        )
        fitted = fit_models(summary, FitRequest(purchase_model="bgnbd", segment_by=("channel",)))
        rows = segment_table(summary, fitted, Valuation(horizon=12, margin=0.3, currency="EUR"))
        results.append((fitted.to_dict(), [asdict(row) for row in rows]))
    (pg_fit, pg_rows), (duck_fit, duck_rows) = results
    (pg_models,), (duck_models,) = pg_fit["fits"], duck_fit["fits"]
    # Counts are identical, so the purchase model sees the same histories: the same fit, bit
    # for bit.
    assert pg_models["purchase"] == duck_models["purchase"]
    # Mean spends differ in the last bits (the engines add amounts in different orders, see
    # assert_same): Gamma-Gamma's estimates then agree to about 3e-11, its covariance (entries
    # up to 7e6 here: ill-conditioned) to about 2e-6, and the CLTV intervals built from it to
    # about 3e-8 (all measured on these rows).
    pg_spend, duck_spend = pg_models["spend"], duck_models["spend"]
    assert pg_spend["params"] == pytest.approx(duck_spend["params"], rel=1e-9)
    assert pg_spend["log_likelihood"] == pytest.approx(duck_spend["log_likelihood"], rel=1e-12)
    assert [row["segment"] for row in pg_rows] == [
        {"channel": "store"},
        {"channel": "web"},
        {},  # all customers
    ]
    for pg_row, duck_row in zip(pg_rows, duck_rows, strict=True):
        numbers = {k for k, v in duck_row.items() if isinstance(v, float)}
        assert pg_row["customers"] == duck_row["customers"]
        assert {k: pg_row[k] for k in numbers} == pytest.approx(
            {k: duck_row[k] for k in numbers}, rel=1e-6
        )
