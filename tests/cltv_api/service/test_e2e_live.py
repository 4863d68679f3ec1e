"""End to end over real HTTP: a uvicorn process serving the app, driven with httpx — upload a
CSV, fit it, export the segment table and every customer as CSV."""

from __future__ import annotations

import csv
import io
import signal

import httpx
import pytest

from cltv_api.storage.db import Database
from tests.cltv_api.service.conftest import LiveServer, new_workspace
from tests.cltv_api.service.test_datasets import csv_bytes, transactions

CUSTOMERS = 500


@pytest.mark.slow
def test_upload_fit_and_csv_exports_over_http(live_server: LiveServer) -> None:
    db = Database(f"sqlite:///{live_server.data_dir / 'cltv.sqlite3'}")
    try:
        headers = new_workspace(db, "live").headers
    finally:
        db.dispose()
    with httpx.Client(base_url=live_server.base_url, headers=headers, timeout=60) as http:
        uploaded = http.post(
            "/v1/datasets",
            files={"file": ("orders.csv", csv_bytes(transactions(customers=CUSTOMERS, seed=8)))},
            data={"segment_cols": "channel", "currency": "EUR"},
        )
        assert uploaded.status_code == 201, uploaded.text
        dataset = uploaded.json()
        assert dataset["customer_count"] == CUSTOMERS

        fitted = http.post(
            "/v1/fits",
            json={
                "dataset_id": dataset["id"],
                "purchase_model": "bgnbd",
                "segment_by": ["channel"],
            },
        )
        assert fitted.status_code == 201, fitted.text
        fit = fitted.json()
        assert fitted.headers["location"] == fit["url"]
        assert fit["result"]["fits"][0]["purchase"]["converged"]

        exported = http.get(fit["url"] + "/segments", params={"margin": "0.3", "format": "csv"})
        assert exported.status_code == 200
        assert exported.headers["content-type"] == "text/csv; charset=utf-8"
        rows = list(csv.DictReader(io.StringIO(exported.text)))
        assert [r["channel"] for r in rows] == ["Online", "Partner", "Retail", "(all)"]
        assert sum(int(r["customers"]) for r in rows[:-1]) == int(rows[-1]["customers"])
        assert sum(float(r["clv_total"]) for r in rows[:-1]) == pytest.approx(
            float(rows[-1]["clv_total"]), rel=1e-9
        )

        with http.stream(
            "GET", fit["url"] + "/customers", headers={"Accept": "text/csv"}
        ) as streamed:
            assert streamed.status_code == 200
            assert streamed.headers.get("transfer-encoding") == "chunked"
            body = b"".join(streamed.iter_bytes()).decode("utf-8")
        customers = list(csv.DictReader(io.StringIO(body)))
        assert len(customers) == CUSTOMERS
        assert sum(float(c["clv"]) for c in customers) == pytest.approx(
            float(http.get(fit["url"] + "/segments").json()["total"]["clv_total"]), rel=1e-9
        )
    # uvicorn re-raises SIGTERM after a graceful shutdown (see test_live_server.py)
    assert live_server.stop() in (0, -signal.SIGTERM)
    log = live_server.log()
    assert "Application shutdown complete." in log and "Traceback" not in log
