"""Fixtures of the engine tests: one synthetic transaction set, as pandas and as Parquet."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import ibis.expr.types as ir
import pandas as pd
import pytest

from cltv_api.engine import Engine

from ._data import make_transactions


@pytest.fixture(scope="session")
def transactions() -> pd.DataFrame:
    return make_transactions()


@pytest.fixture(scope="session")
def transactions_parquet(
    transactions: pd.DataFrame, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    path = tmp_path_factory.mktemp("engine") / "transactions.parquet"
    transactions.to_parquet(path, index=False)
    return path


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    with Engine.duckdb(memory_limit="512MB", threads=1) as eng:
        yield eng


@pytest.fixture
def tx(engine: Engine, transactions_parquet: Path) -> ir.Table:
    return engine.table(transactions_parquet)
