"""``GET /metrics``: the Prometheus text exposition of one app (request latency by route
template, requests in progress, fits, job run times, upload bytes), parsed as Prometheus would;
disabled or token-protected by settings."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample

from cltv_api.main import create_app
from cltv_api.metrics import Metrics, current_metrics, record_fit
from tests.cltv_api.service.conftest import Api, TestClient, make_settings, new_workspace
from tests.cltv_api.service.test_datasets import csv_bytes, transactions
from tests.cltv_api.service.test_fits import ONE_PURCHASE_EACH

PROBLEMS = "https://cltv.dev/problems/"


def scrape(client: TestClient, headers: dict[str, str] | None = None) -> list[Sample]:
    """Every sample of the app's exposition, parsed by prometheus-client's own parser."""
    response = client.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return [
        sample
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    ]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    """The value of the one sample called ``name`` whose labels include ``labels`` (0 if none)."""
    found = [s for s in samples if s.name == name and labels.items() <= s.labels.items()]
    assert len(found) <= 1, found
    return found[0].value if found else 0.0


def test_request_latency_is_counted_by_method_route_template_and_status_class(api: Api) -> None:
    token = "cltv_share_" + "T" * 40
    for _ in range(3):
        api.client.get("/v1/jobs/job_secretid0000000000", headers=api.headers)  # 404
    api.client.get(f"/v1/share/{token}/value?metric=clv_mean")  # 404: unknown token
    api.client.get("/no/such/path/123")  # no route
    api.client.get("/v1/workspace", headers=api.headers)
    samples = scrape(api.client)
    latency = "cltv_http_request_duration_seconds_count"
    assert value(samples, latency, method="GET", route="/v1/jobs/{job_id}", status_class="4xx") == 3
    assert (
        value(samples, latency, method="GET", route="/v1/share/{token}/value", status_class="4xx")
        == 1
    )
    assert value(samples, latency, route="<unmatched>", status_class="4xx") == 1
    assert value(samples, latency, route="/v1/workspace", status_class="2xx") == 1
    # No raw path, id or token in any label.
    label_values = {v for s in samples for v in s.labels.values()}
    assert not any("secretid" in v or token in v or "/123" in v for v in label_values)
    # Buckets are cumulative: the +Inf bucket holds every request of the series.
    assert (
        value(
            samples,
            "cltv_http_request_duration_seconds_bucket",
            route="/v1/jobs/{job_id}",
            le="+Inf",
        )
        == 3
    )


def test_the_scrape_itself_is_the_one_request_in_progress(api: Api) -> None:
    api.client.get("/healthz")
    samples = scrape(api.client)
    assert value(samples, "cltv_http_requests_in_progress", method="GET") == 1


def test_each_app_has_its_own_registry(tmp_path: Path) -> None:
    first = create_app(make_settings(tmp_path / "one"))
    second = create_app(make_settings(tmp_path / "two"))
    with TestClient(first) as one, TestClient(second) as two:
        for _ in range(4):
            one.get("/healthz")
        two.get("/healthz")
        healthz = {"route": "/healthz", "status_class": "2xx"}
        assert value(scrape(one), "cltv_http_request_duration_seconds_count", **healthz) == 4
        assert value(scrape(two), "cltv_http_request_duration_seconds_count", **healthz) == 1


@pytest.fixture
def fitting_app(tmp_path: Path) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """An app whose fits of more than 100 customers run as jobs."""
    app = create_app(make_settings(tmp_path / "data", sync_fit_max_customers=100))
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client, new_workspace(app.state.db, "metrics").headers


def upload_csv(client: TestClient, headers: dict[str, str], body: bytes) -> str:
    response = client.post(
        "/v1/datasets", headers={**headers, "Content-Type": "text/csv"}, content=body
    )
    assert response.status_code == 201, response.text
    dataset_id: str = response.json()["id"]
    return dataset_id


def wait_for_job(client: TestClient, headers: dict[str, str], job_url: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        job: dict[str, Any] = client.get(job_url, headers=headers).json()
        if job["status"] not in {"queued", "running"} or time.monotonic() > deadline:
            return job
        time.sleep(0.05)


def test_fits_jobs_and_upload_bytes_are_counted(
    fitting_app: tuple[TestClient, dict[str, str]],
) -> None:
    client, headers = fitting_app
    small = csv_bytes(transactions(customers=40, seed=1))  # fitted inside the request
    large = csv_bytes(transactions(customers=150, seed=2))  # fitted by a job
    once = ONE_PURCHASE_EACH.encode()  # 40 customers, no repeat purchase: cannot be fitted
    small_id, large_id, once_id = (
        upload_csv(client, headers, body) for body in (small, large, once)
    )
    fit = {"purchase_model": "bgnbd"}
    assert client.post("/v1/fits", headers=headers, json={"dataset_id": small_id, **fit}).is_success
    failed = client.post("/v1/fits", headers=headers, json={"dataset_id": once_id, **fit})
    assert failed.status_code == 422 and failed.json()["type"] == PROBLEMS + "fit-failed"
    queued = client.post(
        "/v1/fits", headers=headers, json={"dataset_id": large_id, "purchase_model": "pnbd"}
    )
    assert queued.status_code == 202, queued.text
    assert wait_for_job(client, headers, queued.json()["job"]["url"])["status"] == "succeeded"

    samples = scrape(client)
    assert value(samples, "cltv_fits_total", model="bgnbd", outcome="succeeded") == 1
    assert value(samples, "cltv_fits_total", model="bgnbd", outcome="failed") == 1
    assert value(samples, "cltv_fits_total", model="pnbd", outcome="succeeded") == 1
    job_count = value(samples, "cltv_job_duration_seconds_count", kind="fit", outcome="succeeded")
    job_seconds = value(samples, "cltv_job_duration_seconds_sum", kind="fit", outcome="succeeded")
    assert job_count == 1 and 0 < job_seconds < 60
    # Exactly the bytes of the three raw uploads (nothing else is an upload).
    assert value(samples, "cltv_upload_bytes_total") == len(small) + len(large) + len(once)


def test_record_fit_outside_of_a_request_or_job_is_a_no_op() -> None:
    metrics = Metrics()
    record_fit("bgnbd", "succeeded")  # no current metrics: nothing to count, no error
    token = current_metrics.set(metrics)
    try:
        record_fit("bgnbd", "succeeded")
    finally:
        current_metrics.reset(token)
    counted = metrics.registry.get_sample_value(
        "cltv_fits_total", {"model": "bgnbd", "outcome": "succeeded"}
    )
    assert counted == 1


def test_metrics_can_be_disabled(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data", metrics_enabled=False))
    with TestClient(app) as test_client:
        response = test_client.get("/metrics")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"


def test_a_metrics_token_protects_the_endpoint(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data", metrics_token="scrape-secret-1"))
    with TestClient(app) as test_client:
        anonymous = test_client.get("/metrics")
        wrong = test_client.get("/metrics", headers={"Authorization": "Bearer nope"})
        samples = scrape(test_client, headers={"Authorization": "Bearer scrape-secret-1"})
    for response in (anonymous, wrong):
        assert response.status_code == 401
        assert response.json()["type"] == PROBLEMS + "unauthorized"
        assert response.headers["www-authenticate"] == 'Bearer realm="cltv"'
    assert value(samples, "cltv_http_requests_in_progress", method="GET") == 1


def test_an_empty_metrics_token_in_the_environment_means_none(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLTV_METRICS_TOKEN", "")
    assert make_settings(tmp_path).metrics_token is None
