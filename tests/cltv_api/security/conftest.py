"""Fixtures of the security tests: two workspaces, A and B, each owning one resource of every
kind (data set, fit, retention fit, business case, share token, job, API keys), in one started
app on a temporary data directory (real SQLite file)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from cltv_api.main import create_app
from cltv_api.services.jobs import (
    ProgressReporter,
    enqueue_job,
    register_job_kind,
    unregister_job_kind,
)
from cltv_api.services.workspaces import issue_key
from cltv_api.settings import Settings
from cltv_api.storage.db import Database
from tests.cltv_api.service.conftest import (
    Credentials,
    TestClient,
    make_settings,
    new_workspace,
)
from tests.cltv_api.service.test_business_cases_api import HAND_CASE
from tests.cltv_api.service.test_churn_api import fit_transactions
from tests.cltv_api.service.test_retention_api import REGULAR

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEMS = "https://cltv.dev/problems/"
NOOP_JOB_KIND = "security-test-noop"


def security_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Test settings without rate limiting: these tests send hundreds of requests per key."""
    return make_settings(data_dir, rate_limit_per_second=0, **overrides)


def noop_job(payload: dict[str, Any], report: ProgressReporter) -> str | None:
    """A job that finishes at once (the security tests only need one to exist)."""
    report(1.0, "done")
    return None


@dataclass(frozen=True)
class Tenant:
    """A workspace, its admin key, narrower keys and one resource id of every kind."""

    admin: Credentials
    read: Credentials
    write: Credentials
    dataset_id: str
    fit_id: str
    customer_id: str
    retention_fit_id: str
    case_id: str
    share_token_id: str
    share_token: str
    job_id: str


@dataclass(frozen=True)
class World:
    app: FastAPI
    client: TestClient
    a: Tenant
    b: Tenant


def _narrow_key(db: Database, workspace_id: str, scopes: tuple[str, ...]) -> Credentials:
    with db.session() as session:
        issued = issue_key(session, workspace_id, f"{'+'.join(scopes)} key", scopes)
        return Credentials(workspace_id, issued.api_key.id, issued.plaintext)


def _created(response: Any) -> dict[str, Any]:
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def make_tenant(client: TestClient, db: Database, name: str) -> Tenant:
    """A workspace with one resource of every kind, created through the API (the job through
    the service layer: only fits of large data sets queue one)."""
    admin = new_workspace(db, name)
    headers = admin.headers
    fit_id = fit_transactions(client, headers, customers=150)
    fit = client.get(f"/v1/fits/{fit_id}", headers=headers).json()
    customers = client.get(f"/v1/fits/{fit_id}/customers?limit=1", headers=headers).json()
    retention = _created(
        client.post(
            "/v1/retention/fits",
            headers=headers,
            json={
                "cohorts": [{"name": "year 0", "survivors": REGULAR}],
                "value_per_period": 100.0,
                "discount_rate": 0.1,
                "currency": "USD",
            },
        )
    )
    case = _created(client.post("/v1/business-cases", headers=headers, json=HAND_CASE))
    token = _created(
        client.post(
            "/v1/share-tokens",
            headers=headers,
            json={"resource_type": "fit", "resource_id": fit_id},
        )
    )
    with db.session() as session:
        job_id = enqueue_job(session, admin.workspace_id, NOOP_JOB_KIND, {}).id
    return Tenant(
        admin=admin,
        read=_narrow_key(db, admin.workspace_id, ("read",)),
        write=_narrow_key(db, admin.workspace_id, ("write",)),
        dataset_id=fit["dataset_id"],
        fit_id=fit_id,
        customer_id=customers["items"][0]["customer_id"],
        retention_fit_id=retention["id"],
        case_id=case["id"],
        share_token_id=token["id"],
        share_token=token["token"],
        job_id=job_id,
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    register_job_kind(NOOP_JOB_KIND, noop_job, replace=True)
    app = create_app(security_settings(tmp_path_factory.mktemp("security") / "data"))
    try:
        with TestClient(app, raise_server_exceptions=False) as client:
            db: Database = app.state.db
            yield World(app, client, make_tenant(client, db, "A"), make_tenant(client, db, "B"))
    finally:
        unregister_job_kind(NOOP_JOB_KIND)
