"""Tests for the synthetic transaction generator (benchmarks/generate.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest
from scipy.special import hyp2f1

from benchmarks.generate import (
    BLOCK_SIZE,
    CHANNELS,
    NPS_GROUPS,
    REGIONS,
    SCHEMA,
    BGNBDParams,
    GeneratorConfig,
    SpendParams,
    generate_table,
    main,
    write_transactions,
)
from tests.conftest import quiet_reference

LAST_DAY = dt.date(1997, 1, 1) + dt.timedelta(days=545)  # 78 weeks of data, days 0..545


@pytest.fixture(scope="module")
def small() -> pa.Table:
    return generate_table(GeneratorConfig(n_customers=10_000, seed=7))


def _bgnbd_expected_repeats(t: np.ndarray, bg: BGNBDParams) -> np.ndarray:
    """E[X(t)] of the BG/NBD (Fader, Hardie & Lee 2005, Marketing Science, eq. 7)."""
    r, alpha, a, b = bg.r, bg.alpha, bg.a, bg.b
    z = t / (alpha + t)
    tail = (alpha / (alpha + t)) ** r * hyp2f1(r, b, a + b - 1, z)
    return np.asarray((a + b - 1) / (a - 1) * (1 - tail), dtype=np.float64)


def _repeat_summary(table: pa.Table) -> pd.DataFrame:
    """frequency / recency / T in days per customer, computed by lifetimes (the reference)."""
    from lifetimes.utils import summary_data_from_transaction_data

    frame = table.select(["customer_id", "date"]).to_pandas()
    with quiet_reference():
        return summary_data_from_transaction_data(
            frame, "customer_id", "date", observation_period_end=pd.Timestamp(LAST_DAY)
        )


def _fit_bgnbd(summary: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    from lifetimes import BetaGeoFitter

    with quiet_reference():
        fitter = BetaGeoFitter().fit(summary["frequency"], summary["recency"], summary["T"])
        return fitter.params_, fitter.standard_errors_


# --------------------------------------------------------------------------- determinism
@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_same_seed_writes_identical_bytes(tmp_path: Path, suffix: str) -> None:
    config = GeneratorConfig(n_customers=6_000, seed=3)
    first, second = tmp_path / f"a{suffix}", tmp_path / f"b{suffix}"
    write_transactions(first, config)
    write_transactions(second, config)
    assert first.read_bytes() == second.read_bytes()


def test_different_seeds_give_different_logs(small: pa.Table) -> None:
    other = generate_table(GeneratorConfig(n_customers=10_000, seed=8))
    assert not other.equals(small)


def test_rows_do_not_depend_on_chunk_size(tmp_path: Path) -> None:
    config = GeneratorConfig(n_customers=3 * BLOCK_SIZE + 123, seed=11)
    reference = generate_table(config)
    for chunk in (1, BLOCK_SIZE, 2 * BLOCK_SIZE + 5):
        assert generate_table(config, chunk_customers=chunk).equals(reference), chunk
    path = tmp_path / "chunked.parquet"
    write_transactions(path, config, chunk_customers=BLOCK_SIZE)
    assert pq.ParquetFile(path).metadata.num_row_groups == 4  # one row group per chunk
    assert pq.read_table(path).equals(reference)


def test_first_customers_of_a_larger_log_are_the_smaller_log() -> None:
    smaller = generate_table(GeneratorConfig(n_customers=5_000, seed=5))
    larger = generate_table(GeneratorConfig(n_customers=12_000, seed=5))
    assert larger.slice(0, smaller.num_rows).equals(smaller)
    assert larger.column("customer_id")[smaller.num_rows].as_py() == "C0000005000"


# ------------------------------------------------------------------------------- schema
def test_parquet_schema_and_column_contents(tmp_path: Path, small: pa.Table) -> None:
    path = tmp_path / "tx.parquet"
    stats = write_transactions(path, GeneratorConfig(n_customers=10_000, seed=7))
    table = pq.read_table(path)
    assert table.schema.equals(SCHEMA)
    assert table.equals(small)
    assert stats.transactions == table.num_rows
    frame = table.to_pandas()
    assert frame["customer_id"].str.fullmatch(r"C\d{10}").all()
    assert frame["order_id"].str.fullmatch(r"O\d{12}").all()
    assert frame["order_id"].is_unique
    assert frame["customer_id"].nunique() == 10_000
    assert set(frame["channel"]) == set(CHANNELS)
    assert set(frame["region"]) == set(REGIONS)
    assert set(frame["nps_group"]) == set(NPS_GROUPS)
    # Day resolution, inside the 78-week window; first purchases inside the first 12 weeks.
    assert (frame["date"] == frame["date"].dt.normalize()).all()
    assert frame["date"].min() >= pd.Timestamp("1997-01-01")
    assert frame["date"].max() <= pd.Timestamp(LAST_DAY)
    firsts = frame.groupby("customer_id")["date"].min()
    assert firsts.max() < pd.Timestamp("1997-01-01") + pd.Timedelta(days=84)
    # Rows are grouped by customer, dates non-decreasing within a customer.
    same_customer = frame["customer_id"].to_numpy()[1:] == frame["customer_id"].to_numpy()[:-1]
    assert (np.diff(frame["date"].to_numpy())[same_customer] >= np.timedelta64(0)).all()
    # Each customer keeps one segment in every row.
    assert (frame.groupby("customer_id")[["channel", "region", "nps_group"]].nunique() == 1).all(
        axis=None
    )


def test_amounts_are_positive_cents(small: pa.Table) -> None:
    amount = small.column("amount").to_numpy()
    assert (amount > 0).all()
    np.testing.assert_array_equal(np.round(amount, 2), amount)


def test_csv_holds_the_same_rows_with_calendar_dates(tmp_path: Path, small: pa.Table) -> None:
    path = tmp_path / "tx.csv"
    write_transactions(path, GeneratorConfig(n_customers=10_000, seed=7))
    read = pa_csv.read_csv(
        path,
        convert_options=pa_csv.ConvertOptions(
            column_types={"customer_id": pa.string(), "order_id": pa.string()}
        ),
    )
    assert read.column_names == SCHEMA.names
    assert read.column("date").type == pa.date32()
    assert read.column("date").equals(small.column("date").cast(pa.date32()))
    for name in ("customer_id", "order_id", "amount", "channel", "region", "nps_group"):
        assert read.column(name).equals(small.column(name)), name


def test_cli_writes_file_and_reports_orders_per_customer(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.parquet"
    assert main(["--customers", "2000", "--seed", "9", "--out", str(out)]) == 0
    rows = pq.read_metadata(out).num_rows
    expected = generate_table(GeneratorConfig(n_customers=2000, seed=9)).num_rows
    assert rows == expected
    assert f"wrote {rows:,} orders for 2,000 customers" in capsys.readouterr().out


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ValueError, match="n_customers"):
        GeneratorConfig(n_customers=-1)
    with pytest.raises(ValueError, match="finite and > 0"):
        GeneratorConfig(n_customers=10, purchase=BGNBDParams(r=0.0))
    with pytest.raises(ValueError, match="acquisition_days"):
        GeneratorConfig(n_customers=10, acquisition_days=600.0)
    with pytest.raises(ValueError, match="chunk_customers"):
        generate_table(GeneratorConfig(n_customers=10), chunk_customers=0)


# ------------------------------------------------------------------------------ the model
def test_orders_per_customer_match_the_bgnbd_expectation() -> None:
    # Exact BG/NBD population: orders per customer = 1 + E[X(T)] with T uniform over
    # (546 - 84, 546] days, E[X(t)] from FHL 2005 eq. 7 at the weekly CDNOW fit scaled to days.
    # Analytic value: 2.7719 orders per customer.
    config = GeneratorConfig(n_customers=100_000, seed=21, segment_effects=False)
    table = generate_table(config)
    counts = pc.value_counts(table.column("customer_id")).field("counts").to_numpy()
    ages = np.linspace(546 - 84, 546, 4001)
    expected = 1 + float(np.mean(_bgnbd_expected_repeats(ages, config.purchase)))
    assert expected == pytest.approx(2.7719, abs=1e-4)
    se = counts.std() / np.sqrt(counts.size)
    assert abs(counts.mean() - expected) < 4 * se


def test_lifetimes_recovers_the_generating_bgnbd_parameters() -> None:
    # 20k customers of the exact BG/NBD population. lifetimes' BetaGeoFitter on the daily
    # repeat-purchase summary must land within 3.5 of its own standard errors of the
    # generating values (r=0.243, alpha=30.898 days, a=0.793, b=2.426). Day rounding of the
    # dates biases recency and T by under a day, negligible against alpha = 31 days.
    truth = BGNBDParams()
    table = generate_table(GeneratorConfig(n_customers=20_000, seed=1, segment_effects=False))
    params, errors = _fit_bgnbd(_repeat_summary(table))
    for name in ("r", "alpha", "a", "b"):
        assert abs(params[name] - getattr(truth, name)) < 3.5 * errors[name], name


def test_segment_mixture_stays_close_to_cdnow_and_segments_differ() -> None:
    # With segment effects the population is a mixture of BG/NBDs; the fitted BG/NBD must still
    # be near the CDNOW values: within 15% for r and alpha, 25% for a and b (dropout is the
    # dimension the NPS groups shift).
    table = generate_table(GeneratorConfig(n_customers=20_000, seed=2))
    params, _ = _fit_bgnbd(_repeat_summary(table))
    truth = BGNBDParams()
    for name, rel in (("r", 0.15), ("alpha", 0.15), ("a", 0.25), ("b", 0.25)):
        assert params[name] == pytest.approx(getattr(truth, name), rel=rel), name
    frame = table.select(["customer_id", "channel", "nps_group"]).to_pandas()
    per_customer = frame.groupby("customer_id").agg(
        orders=("channel", "size"), channel=("channel", "first"), nps=("nps_group", "first")
    )
    by_nps = per_customer.groupby("nps")["orders"].mean()
    by_channel = per_customer.groupby("channel")["orders"].mean()
    assert by_nps["promoter"] > by_nps["passive"] > by_nps["detractor"]
    assert by_channel["Online"] > by_channel["Retail"]
    # Channel shares of customers: 55% / 30% / 15% (binomial sd < 0.4% at 20k customers).
    shares = per_customer["channel"].value_counts(normalize=True)
    np.testing.assert_allclose(shares[list(CHANNELS)], [0.55, 0.30, 0.15], atol=0.015)


def test_mean_amount_matches_the_gamma_gamma_mean() -> None:
    # Gamma-Gamma population mean spend p*gamma/(q-1) = 6.25*15.44/2.74 = 35.219 (Fader & Hardie
    # 2013 note, eq. 4); spend is independent of the order count, so the mean over orders is the
    # same. Customers' means are i.i.d.; test their average within 4 standard errors.
    spend = SpendParams()
    table = generate_table(GeneratorConfig(n_customers=50_000, seed=4))
    frame = table.select(["customer_id", "amount"]).to_pandas()
    # First order per customer: one independent gamma-gamma draw per customer.
    first_amounts = frame.drop_duplicates("customer_id")["amount"].to_numpy()
    expected = spend.p * spend.gamma / (spend.q - 1)
    se = first_amounts.std() / np.sqrt(first_amounts.size)
    assert abs(first_amounts.mean() - expected) < 4 * se
