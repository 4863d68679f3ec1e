"""Already summarised data (one row per customer) and contractual data."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from cltv_api.errors import InvalidInput
from cltv_api.ingest import ColumnMapping
from tests.cltv_api.ingest.helpers import ingest, rows, write_text


def test_cdnow_summary_from_lifetimes_round_trips(tmp_path: Path) -> None:
    # The CDNOW summary shipped with lifetimes (Fader, Hardie & Lee 2005 data set): 2357
    # customers with frequency, recency, T (weeks) and monetary value.
    from lifetimes.datasets import load_cdnow_summary_data_with_monetary_value

    from tests.conftest import quiet_reference

    with quiet_reference():
        df = load_cdnow_summary_data_with_monetary_value()
    path = tmp_path / "cdnow.csv"
    df.reset_index().to_csv(path, index=False)
    result = ingest(path, tmp_path / "data", kind="summary")
    stored = pq.read_table(result.path)
    assert result.layout == "summary"
    assert (result.stored_rows, result.customer_count) == (2357, 2357)
    assert stored.schema.names == [
        "customer_id",
        "frequency",
        "recency",
        "T",
        "monetary_value",
        "weight",
    ]
    assert str(stored.schema.field("frequency").type) == "int64"
    assert sum(stored.column("frequency").to_pylist()) == int(df["frequency"].sum())
    assert sum(stored.column("T").to_pylist()) == pytest.approx(float(df["T"].sum()), rel=1e-12)
    assert set(stored.column("weight").to_pylist()) == {1.0}


SUMMARY = (
    "id;частота;давность;T;средний чек;вес\n"
    "a;2;10,5;30;12,5;3\n"
    "b;0;0;30;;1\n"  # no repeat purchases: monetary value may be empty
    "c;1,5;3;30;4;1\n"  # 4: frequency not a whole number
    "d;1;40;30;4;1\n"  # 5: recency after T
    "a;1;2;30;4;1\n"  # 6: customer a again
)


def test_summary_checks_report_impossible_rows(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput) as info:
        ingest(write_text(tmp_path / "s.csv", SUMMARY), tmp_path / "data", kind="summary")
    found = sorted((e.row, e.field) for e in info.value.errors)
    assert found == [(2, "id"), (4, "частота"), (5, "давность"), (6, "id")]


def test_summary_with_weights_and_drop_policy(tmp_path: Path) -> None:
    result = ingest(
        write_text(tmp_path / "s.csv", SUMMARY), tmp_path / "data", kind="summary", on_error="drop"
    )
    assert rows(result) == [
        {
            "customer_id": "b",
            "frequency": 0,
            "recency": 0.0,
            "T": 30.0,
            "monetary_value": None,
            "weight": 1.0,
        }
    ]
    assert result.report.counts == {
        "duplicate_customer_id": 2,
        "frequency_not_count": 1,
        "recency_after_T": 1,
    }


# Fader & Hardie (2007), "How to project customer retention", Table 1: survivors of 1000
# "regular" and 1000 "high end" customers at the start of years 0-4.
COHORTS = (
    "cohort,period,survivors\n"
    + "".join(f"regular,{t},{s}\n" for t, s in enumerate([1000, 631, 468, 382, 326]))
    + "".join(f"high end,{t},{s}\n" for t, s in enumerate([1000, 869, 743, 653, 593]))
)


def test_cohort_survivor_table_is_stored_sorted(tmp_path: Path) -> None:
    result = ingest(write_text(tmp_path / "c.csv", COHORTS), tmp_path / "data", kind="contractual")
    stored = rows(result)
    assert result.layout == "cohort"
    assert result.customer_count == 2000  # period-0 survivors of both cohorts
    assert stored[0] == {"cohort": "high end", "period": 0, "survivors": 1000}
    assert [r["survivors"] for r in stored if r["cohort"] == "regular"] == [
        1000,
        631,
        468,
        382,
        326,
    ]


def test_cohort_consistency_errors(tmp_path: Path) -> None:
    # Survivors cannot grow; a cohort needs its period 0 and consecutive periods.
    text = (
        "cohort,period,survivors\n"
        "a,0,100\na,1,120\n"  # line 3: increase
        "b,1,50\nb,2,40\n"  # line 4: no period 0
        "c,0,10\nc,2,5\n"  # line 7: gap
        "d,0,9\nd,1,8\n"
    )
    path = write_text(tmp_path / "c.csv", text)
    with pytest.raises(InvalidInput) as info:
        ingest(path, tmp_path / "data", kind="contractual")
    assert sorted((e.row, e.message.split(" ")[0]) for e in info.value.errors) == [
        (3, "survivors"),
        (4, "the"),
        (7, "periods"),
    ]
    dropped = ingest(path, tmp_path / "data", kind="contractual", on_error="drop")
    assert {r["cohort"] for r in rows(dropped)} == {"d"}  # whole bad cohorts are dropped


def test_customer_start_end_dates(tmp_path: Path) -> None:
    text = (
        "customer_id;дата начала;дата окончания;тариф\n"
        "a;01.02.2023;15.03.2024;basic\n"
        "b;13.05.2023;;pro\n"  # still active
    )
    result = ingest(
        write_text(tmp_path / "p.csv", text),
        tmp_path / "data",
        kind="contractual",
        mapping=ColumnMapping(segments=("тариф",)),
    )
    assert result.layout == "customer"
    assert rows(result) == [
        {
            "customer_id": "a",
            "start": datetime(2023, 2, 1),
            "end": datetime(2024, 3, 15),
            "тариф": "basic",
        },
        {"customer_id": "b", "start": datetime(2023, 5, 13), "end": None, "тариф": "pro"},
    ]
    assert (result.date_min, result.date_max, result.customer_count) == (
        datetime(2023, 2, 1),
        datetime(2024, 3, 15),
        2,
    )


def test_customer_end_before_start_is_an_error(tmp_path: Path) -> None:
    text = "customer_id,start,end\na,2023-05-01,2023-04-01\nb,2023-01-01,\n"
    with pytest.raises(InvalidInput, match="end before start") as info:
        ingest(write_text(tmp_path / "p.csv", text), tmp_path / "data", kind="contractual")
    assert [(e.row, e.field, e.value) for e in info.value.errors] == [(2, "end", "2023-04-01")]


def test_summary_without_required_columns_names_them(tmp_path: Path) -> None:
    path = write_text(tmp_path / "s.csv", "id,frequency,recency\na,1,2\n")
    with pytest.raises(InvalidInput, match="T column"):
        ingest(path, tmp_path / "data", kind="summary")
