"""Bad transaction tables and options raise InvalidInput naming the column or option."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cltv_api.engine import summarize
from cltv_api.errors import InvalidInput

from ._data import in_memory


def small() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "a", "b"],
            "date": pd.to_datetime(["2023-01-02", "2023-02-10", "2023-03-01"]),
            "amount": [10.0, 20.0, 5.0],
            "region": ["n", "n", "s"],
        }
    )


def fields(info: pytest.ExceptionInfo[InvalidInput]) -> list[str]:
    return [e.field for e in info.value.errors]


@pytest.mark.parametrize("column", ["customer_id", "date", "amount"])
def test_missing_required_column_is_named(column: str) -> None:
    with pytest.raises(InvalidInput, match=column) as info:
        summarize(in_memory(small().drop(columns=column)), "D")
    assert fields(info) == [column]


def test_missing_segment_column_is_named() -> None:
    with pytest.raises(InvalidInput, match="channel") as info:
        summarize(in_memory(small()), "D", segment_cols=["region", "channel"])
    assert fields(info) == ["channel"]


def test_segment_column_may_not_shadow_an_output_column() -> None:
    df = small().assign(T="x")
    with pytest.raises(InvalidInput) as info:
        summarize(in_memory(df), "D", segment_cols=["T"])
    assert fields(info) == ["T"]


def test_non_numeric_amount_is_rejected() -> None:
    df = small().assign(amount=["10", "20", "5"])
    with pytest.raises(InvalidInput, match="amount") as info:
        summarize(in_memory(df), "D")
    assert fields(info) == ["amount"]


def test_non_date_date_column_is_rejected() -> None:
    df = small().assign(date=[1, 2, 3])
    with pytest.raises(InvalidInput) as info:
        summarize(in_memory(df), "D")
    assert fields(info) == ["date"]


def test_empty_transactions_are_rejected() -> None:
    with pytest.raises(InvalidInput, match="empty"):
        summarize(in_memory(small().iloc[:0]), "W")


@pytest.mark.parametrize(
    ("column", "value"), [("customer_id", None), ("date", pd.NaT), ("amount", np.nan)]
)
def test_null_values_are_counted_and_named(column: str, value: object) -> None:
    df = small()
    df[column] = df[column].astype(object)
    df.loc[1, column] = value
    with pytest.raises(InvalidInput, match=rf"{column} has 1 ") as info:
        summarize(in_memory(df.astype({"amount": float})), "D")
    assert fields(info) == [column]


def test_infinite_amount_is_rejected() -> None:
    df = small()
    df.loc[0, "amount"] = np.inf
    with pytest.raises(InvalidInput, match="infinite") as info:
        summarize(in_memory(df), "D")
    assert fields(info) == ["amount"]


def test_observation_end_before_first_purchase_is_rejected() -> None:
    with pytest.raises(InvalidInput) as info:
        summarize(in_memory(small()), "D", observation_end="2022-12-31")
    assert fields(info) == ["observation_end"]


def test_purchase_later_in_the_observation_end_week_counts_like_lifetimes() -> None:
    # lifetimes keeps every transaction in the observation end's period: a purchase on Wed
    # 4 Jan 2023 counts for an observation end of Mon 2 Jan in weeks (same week), not in days.
    df = small().assign(date=pd.to_datetime(["2023-01-04", "2023-02-10", "2023-03-01"]))
    out = summarize(in_memory(df), "W", observation_end="2023-01-02").to_pyarrow()
    assert out["customer_id"].to_pylist() == ["a"]
    assert out["T"].to_pylist() == [0.0]
    with pytest.raises(InvalidInput, match="no transactions on or before observation_end"):
        summarize(in_memory(df), "D", observation_end="2023-01-02")


@pytest.mark.parametrize(
    ("calibration_end", "observation_end", "match"),
    [
        ("2023-03-01", "2023-02-01", "must be before"),
        ("2023-03-01", None, "must be before observation_end"),  # default end: last date
        ("2022-12-01", None, "no transactions on or before calibration_end"),
        ("2023-02-11", "2023-02-20", "no transactions after"),
    ],
)
def test_bad_calibration_windows_are_rejected(
    calibration_end: str, observation_end: str | None, match: str
) -> None:
    with pytest.raises(InvalidInput, match=match) as info:
        summarize(
            in_memory(small()),
            "D",
            calibration_end=calibration_end,
            observation_end=observation_end,
        )
    assert fields(info) == ["calibration_end"]


def test_unparseable_date_option_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="cannot read"):
        summarize(in_memory(small()), "D", observation_end="not a date")
