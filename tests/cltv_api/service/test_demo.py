"""``python -m cltv_api.demo --no-serve`` on a temporary data directory: workspace and key, the
CDNOW data set and its BG/NBD + Gamma-Gamma fit, and idempotent re-runs."""

from __future__ import annotations

import gzip
import importlib.util
import io
import re
import stat
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select

from cltv_api import demo
from cltv_api.main import create_app
from cltv_api.storage.tables import Dataset, Fit, Workspace
from models import BGNBD
from tests.cltv_api.service.conftest import TestClient, make_settings
from tests.conftest import quiet_reference

# CDNOW master: 23,570 customers and 69,659 purchases (Fader, Hardie & Lee 2005; lifetimes' copy)
CDNOW_CUSTOMERS = 23_570
CDNOW_PURCHASES = 69_659


def lifetimes_cdnow() -> pd.DataFrame:
    """CDNOW_master.txt as shipped by lifetimes (read without importing lifetimes)."""
    spec = importlib.util.find_spec("lifetimes")
    assert spec is not None and spec.origin is not None
    path = Path(spec.origin).parent / "datasets" / "CDNOW_master.txt"
    frame = pd.read_csv(
        path,
        sep=r"\s+",
        header=0,
        names=["customer_id", "date", "cds", "amount"],
        dtype={"customer_id": str, "date": str},
    )
    frame["date"] = pd.to_datetime(frame["date"], format="%Y%m%d")
    return frame


def run_demo(*args: str) -> str:
    out = io.StringIO()
    assert demo.main(["--no-serve", *args], out=out) == 0
    return out.getvalue()


def printed_key(output: str) -> str:
    match = re.search(r"export CLTV_KEY=(cltv_\w+)", output)
    assert match is not None, output
    return match.group(1)


def test_vendored_cdnow_has_the_rows_lifetimes_ships() -> None:
    with gzip.open(demo.cdnow_path(), "rt", encoding="utf-8") as fh:
        vendored = pd.read_csv(fh, dtype={"customer_id": str}, parse_dates=["date"])
    reference = lifetimes_cdnow()
    assert len(vendored) == CDNOW_PURCHASES
    pd.testing.assert_frame_equal(vendored, reference, check_dtype=False)


def test_demo_sets_up_key_dataset_and_fit_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "demo-data"
    monkeypatch.setenv("CLTV_DATA_DIR", str(data_dir))
    output = run_demo()
    key = printed_key(output)
    key_file = data_dir / "demo-key.txt"
    assert key_file.read_text().strip() == key
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert "curl" in output and "/segments" in output and "--no-serve" not in output

    app = create_app(make_settings(data_dir))
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = {"Authorization": f"Bearer {key}"}
        [dataset] = client.get("/v1/datasets", headers=headers).json()["items"]
        assert dataset["customer_count"] == CDNOW_CUSTOMERS
        assert dataset["transaction_count"] == CDNOW_PURCHASES
        reference = lifetimes_cdnow()
        assert dataset["amount_total"] == pytest.approx(reference["amount"].sum(), rel=1e-12)
        assert dataset["currency"] == "USD"
        # customers were acquired in the first quarter of 1997
        assert dataset["segment_columns"] == [{"name": "cohort", "distinct_values": 3}]
        [fit] = client.get("/v1/fits", headers=headers).json()["items"]
        assert fit["id"] in output and fit["status"] == "succeeded"
        assert fit["request"]["purchase_model"] == "bgnbd"
        assert fit["request"]["time_unit"] == "weeks"
        [pooled] = fit["result"]["fits"]
        assert pooled["spend"]["model"] == "gamma_gamma"
        with quiet_reference():
            from lifetimes.utils import summary_data_from_transaction_data

            rfm = summary_data_from_transaction_data(reference, "customer_id", "date", freq="W")
        want = BGNBD().fit(rfm["frequency"], rfm["recency"], rfm["T"]).params_
        got = {p["name"]: p["estimate"] for p in pooled["purchase"]["parameters"]}
        for name, value in want.items():
            assert got[name] == pytest.approx(value, rel=1e-4), name
        segments = client.get(fit["url"] + "/segments?by=cohort", headers=headers).json()
        assert [r["segment"]["cohort"] for r in segments["segments"]] == [
            "1997-01",
            "1997-02",
            "1997-03",
        ]
        db = app.state.db

    # a second run reuses everything and prints the same key
    again = run_demo()
    assert printed_key(again) == key
    with db.session() as session:
        counts = [
            session.scalar(select(func.count()).select_from(t)) for t in (Workspace, Dataset, Fit)
        ]
    assert counts == [1, 1, 1]

    # with the key file lost, the demo workspace gets a new key (and no second workspace)
    key_file.unlink()
    renewed = printed_key(run_demo())
    assert renewed != key and key_file.read_text().strip() == renewed
    with db.session() as session:
        assert session.scalar(select(func.count()).select_from(Workspace)) == 1
    db.dispose()


def test_demo_can_load_generated_customers_instead(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLTV_DATA_DIR", str(tmp_path / "generated"))
    output = run_demo("--generated", "300")
    assert "fit_" in output and "(succeeded)" in output
    assert "by=channel" in output
