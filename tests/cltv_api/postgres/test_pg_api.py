"""The service with its metadata on PostgreSQL: one flow through the real app (workspace, CSV
upload, a fit run by the background worker, segments, a versioned business case, share-token
pulls) gives exactly the numbers the same flow gives on SQLite."""

from __future__ import annotations

import csv
import io
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pytest

from cltv_api.main import create_app
from cltv_api.services.workspaces import bootstrap_workspace
from cltv_api.settings import Settings
from tests.cltv_api.service.conftest import TestClient, make_settings
from tests.cltv_api.service.test_business_cases_api import HAND_CASE, HAND_NET, HAND_NPV
from tests.cltv_api.service.test_datasets import csv_bytes, transactions

pytestmark = [pytest.mark.xdist_group("postgres"), pytest.mark.slow]

VALUATION = {"horizon": "12", "horizon_unit": "months", "discount_rate": "0.1", "margin": "0.3"}


@dataclass(frozen=True)
class FlowResult:
    """What the flow read back, free of ids and timestamps (those differ between runs)."""

    fit_result: dict[str, Any]
    segments: dict[str, Any]
    latest_version: int
    npv_by_version: list[float]
    clv_total_pulled: float
    cash_flows_pulled: list[float]
    job_backend_states: list[str]


def wait_for_job(client: TestClient, headers: dict[str, str], path: str) -> dict[str, Any]:
    deadline = time.monotonic() + 120
    states: list[str] = []
    while time.monotonic() < deadline:
        body: dict[str, Any] = client.get(path, headers=headers).json()
        if not states or states[-1] != body["status"]:
            states.append(body["status"])
        if body["status"] in {"succeeded", "failed", "cancelled"}:
            return {**body, "seen": states}
        time.sleep(0.02)
    raise AssertionError(f"{path} did not finish: {states}")


def run_flow(settings: Settings) -> FlowResult:
    """Workspace (as `make run` creates it), upload, fit as a job, segments, a case with two
    versions and share-token pulls of both."""
    _, key = bootstrap_workspace("flow", settings)
    headers = {"Authorization": f"Bearer {key}"}
    with TestClient(create_app(settings), raise_server_exceptions=False) as client:
        upload = client.post(
            "/v1/datasets",
            headers=headers,
            files={"file": ("tx.csv", csv_bytes(transactions(customers=300, seed=11)))},
            data={"segment_cols": "channel", "currency": "EUR"},
        )
        assert upload.status_code == 201, upload.text
        fit = client.post(
            "/v1/fits",
            headers=headers,
            json={"dataset_id": upload.json()["id"], "segment_by": ["channel"]},
        )
        # sync_fit_max_customers=0: every fit is a background job, claimed by the worker
        assert fit.status_code == 202, fit.text
        job = wait_for_job(client, headers, fit.headers["Location"])
        assert job["status"] == "succeeded", job
        fit_path = job["result_url"]
        fitted = client.get(fit_path, headers=headers).json()
        segments = client.get(f"{fit_path}/segments", headers=headers, params=VALUATION).json()

        first = client.post("/v1/business-cases", headers=headers, json=HAND_CASE)
        assert first.status_code == 201, first.text
        case_id = first.json()["id"]
        cheaper = {**HAND_CASE, "initiative": {**HAND_CASE["initiative"], "one_off_cost": 400.0}}
        second = client.put(f"/v1/business-cases/{case_id}", headers=headers, json=cheaper)
        assert second.status_code == 200, second.text
        latest = client.get(f"/v1/business-cases/{case_id}", headers=headers).json()
        npv = [
            client.get(f"/v1/business-cases/{case_id}/versions/{n}", headers=headers).json()
            for n in (1, 2)
        ]

        fit_token = _share(client, headers, "fit", fitted["id"])
        case_token = _share(client, headers, "business_case", case_id)
        total = client.get(
            f"/v1/share/{fit_token}/value", params={"metric": "clv_total", **VALUATION}
        )
        flows = client.get(f"/v1/share/{case_token}/cashflows.csv")
        assert total.status_code == 200 and flows.status_code == 200, (total.text, flows.text)
    return FlowResult(
        fit_result=fitted["result"],
        segments={k: segments[k] for k in ("segments", "total")},
        latest_version=latest["version"],
        npv_by_version=[version["result"]["npv"] for version in npv],
        clv_total_pulled=float(total.text),
        cash_flows_pulled=[
            float(row["net_cash_flow"]) for row in csv.DictReader(io.StringIO(flows.text))
        ],
        job_backend_states=job["seen"],
    )


def assert_same_numbers(actual: Any, expected: Any, rel: float, path: str = "") -> None:
    """Same structure and values; floats equal up to the relative tolerance ``rel``."""
    if isinstance(expected, dict):
        assert isinstance(actual, dict) and actual.keys() == expected.keys(), path
        for key, value in expected.items():
            assert_same_numbers(actual[key], value, rel, f"{path}.{key}")
    elif isinstance(expected, list):
        assert isinstance(actual, list) and len(actual) == len(expected), path
        for index, (got, want) in enumerate(zip(actual, expected, strict=True)):
            assert_same_numbers(got, want, rel, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert actual == pytest.approx(expected, rel=rel, abs=1e-12), path
    else:
        assert actual == expected, path


def _share(client: TestClient, headers: dict[str, str], kind: str, resource_id: str) -> str:
    body = {"resource_type": kind, "resource_id": resource_id}
    created = client.post("/v1/share-tokens", headers=headers, json=body)
    assert created.status_code == 201, created.text
    token: str = created.json()["token"]
    return token


def test_the_service_flow_on_postgres_gives_the_sqlite_numbers(pg_url: str, tmp_path: Path) -> None:
    on_postgres = run_flow(
        make_settings(tmp_path / "pg-data", database_url=pg_url, sync_fit_max_customers=0)
    )
    on_sqlite = run_flow(make_settings(tmp_path / "sqlite-data", sync_fit_max_customers=0))
    # Metadata only lives in the database: the same results on both backends. The summary
    # adds amounts as exact decimals, so the data and every fitted figure are the same bit
    # for bit (float sums in DuckDB's parallel order once moved Gamma-Gamma's flat optimum
    # here by 5e-6 and its standard errors by 1%); 1e-12 leaves room for JSON round trips.
    assert_same_numbers(asdict(on_postgres), asdict(on_sqlite), rel=1e-12)
    # and they are right: the second version costs 100 less today, so NPV is 100 higher than
    # the hand-worked first version's (test_business_cases_api.py); flows -400, -20, 480, 905
    assert on_postgres.latest_version == 2
    assert on_postgres.npv_by_version == pytest.approx([HAND_NPV, HAND_NPV + 100], rel=1e-12)
    assert on_postgres.cash_flows_pulled == pytest.approx([-400.0, *HAND_NET[1:]], abs=1e-9)
    assert on_postgres.clv_total_pulled == on_postgres.segments["total"]["clv_total"]
    assert on_postgres.job_backend_states[-1] == "succeeded"
