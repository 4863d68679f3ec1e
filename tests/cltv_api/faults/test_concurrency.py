"""Concurrency against one real uvicorn process on SQLite: fits of one data set at the same
time, uploads of identical and of different files at the same time, and bursts of writes give
the same results as one after the other, and no request fails with a 5xx (SQLite's "database is
locked" must be waited out, never reported).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest

from tests.cltv_api.faults.conftest import (
    api_key,
    integrity_check,
    kill,
    start_server,
    upload_csv,
    wait_for,
    write_transactions_csv,
)
from tests.cltv_api.faults.test_crash import case_body
from tests.cltv_api.service.conftest import LiveServer

pytestmark = pytest.mark.slow

T = TypeVar("T")
# Fits of data sets with more customers than this run as background jobs.
SYNC_LIMIT = 4_000


@dataclass
class Env:
    server: LiveServer
    headers: dict[str, str]
    data_dir: Path
    files: dict[str, Path]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.server.base_url, headers=self.headers, timeout=120)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("concurrency")
    data_dir = tmp / "data"
    headers = api_key(data_dir)
    files = {
        # generated transactions; different seeds give different files
        "small": write_transactions_csv(tmp / "small.csv", customers=2_000, seed=1),
        "other": write_transactions_csv(tmp / "other.csv", customers=2_000, seed=2),
        "large": write_transactions_csv(tmp / "large.csv", customers=6_000, seed=3),
    }
    server = start_server(
        data_dir, tmp / "uvicorn.log", {"CLTV_SYNC_FIT_MAX_CUSTOMERS": str(SYNC_LIMIT)}
    )
    try:
        yield Env(server, headers, data_dir, files)
    finally:
        kill(server)
    log = server.log()
    assert "database is locked" not in log
    assert integrity_check(data_dir / "cltv.sqlite3") == ["ok"]


def at_once(calls: list[Callable[[], T]]) -> list[T]:
    """Run the calls on as many threads, all at the same time; results in order."""
    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        return list(pool.map(lambda call: call(), calls))


def fit_body(dataset_id: str) -> dict[str, Any]:
    return {
        "dataset_id": dataset_id,
        "purchase_model": "bgnbd",
        "segment_by": ["channel"],
        "time_unit": "weeks",
    }


def finished_fit(client: httpx.Client, response: httpx.Response) -> dict[str, Any]:
    """The fit of a 201 (fitted in the request) or 202 (queued job) answer, once it finished."""
    assert response.status_code in (201, 202), response.text
    url = f"/v1/fits/{response.json()['id']}"
    fit: dict[str, Any] = wait_for(
        lambda: client.get(url).json(),
        lambda fit: fit["status"] not in ("queued", "running"),
        timeout=120,
        interval=0.1,
        what=f"{url} finished",
    )
    assert fit["status"] == "succeeded", fit
    return fit


def estimates(fit: dict[str, Any], what: str = "estimate") -> dict[str, float]:
    """Every segment's purchase and spend estimates and log-likelihoods, or (``what=
    "std_error"``) the estimates' standard errors."""
    values: dict[str, float] = {}
    for f in fit["result"]["fits"]:
        label = ",".join(f"{k}={v}" for k, v in sorted(f["segment"].items()))
        for part in ("purchase", "spend"):
            model = f[part] or {"parameters": [], "log_likelihood": None}
            if what == "estimate":
                values[f"{label}/{part}/loglik"] = model["log_likelihood"]
            for p in model["parameters"]:
                values[f"{label}/{part}/{p['name']}"] = p[what]
    return values


@pytest.mark.parametrize(("file", "status"), [("small", 201), ("large", 202)])
def test_concurrent_fits_of_one_data_set_equal_the_sequential_fit(
    env: Env, file: str, status: int
) -> None:
    with env.client() as client:
        dataset = upload_csv(client, env.files[file], f"fit {file}")
        body = fit_body(dataset["id"])
        sequential = finished_fit(client, client.post("/v1/fits", json=body))
        responses = at_once([lambda: client.post("/v1/fits", json=body)] * 3)
        assert [r.status_code for r in responses] == [status] * 3  # in the request / as jobs
        fits = [finished_fit(client, r) for r in responses]
    assert len({f["id"] for f in fits}) == 3
    for fit in fits:
        # The same numbers. Not bit for bit: DuckDB sums spend in parallel in no fixed order,
        # so the Gamma-Gamma estimates differ by about 1e-12 (relative) and their standard
        # errors (from the observed information) by about 1e-8 even between two sequential
        # fits; interference would show at the scale of the standard errors themselves.
        assert estimates(fit) == pytest.approx(estimates(sequential), rel=1e-9)
        assert estimates(fit, "std_error") == pytest.approx(
            estimates(sequential, "std_error"), rel=1e-6
        )
        assert fit["result"]["customers"] == sequential["result"]["customers"]


def test_concurrent_uploads_of_identical_and_different_files_equal_sequential_uploads(
    env: Env,
) -> None:
    def upload(file: str, name: str) -> Callable[[], dict[str, Any]]:
        def call() -> dict[str, Any]:
            with env.client() as client:
                return upload_csv(client, env.files[file], name)

        return call

    with env.client() as client:
        sequential = {file: upload(file, f"seq {file}")() for file in ("small", "other")}
        for dataset in sequential.values():
            assert client.delete(f"/v1/datasets/{dataset['id']}").status_code == 204
    stored_before = {p.name for p in (env.data_dir / "datasets").glob("*.parquet")}
    calls = [upload("small", f"same {i}") for i in range(3)] + [upload("other", "other")]
    concurrent = at_once(calls)
    kept = ("sha256", "row_count", "stored_rows", "customer_count", "transaction_count")
    for dataset, file in zip(concurrent, ["small"] * 3 + ["other"], strict=True):
        assert {k: dataset[k] for k in kept} == {k: sequential[file][k] for k in kept}
    assert len({d["id"] for d in concurrent}) == 4
    # identical content is stored once: one file per distinct content
    stored = {p.name for p in (env.data_dir / "datasets").glob("*.parquet")}
    assert stored == stored_before | {
        f"{sequential['small']['sha256']}.parquet",
        f"{sequential['other']['sha256']}.parquet",
    }


def test_bursts_of_writes_and_reads_never_surface_a_locked_database(env: Env) -> None:
    """Business cases written and read by 8 clients at once while an upload and a fit run."""

    def writer(index: int) -> Callable[[], list[int]]:
        def call() -> list[int]:
            statuses = []
            with env.client() as client:
                for version in range(5):
                    body = case_body(f"burst {index}", 500.0 + version)
                    statuses.append(client.post("/v1/business-cases", json=body).status_code)
                    statuses.append(client.get("/v1/business-cases").status_code)
            return statuses

        return call

    def upload_and_fit() -> list[int]:
        with env.client() as client:
            dataset = upload_csv(client, env.files["other"], "during burst")
            fit = client.post("/v1/fits", json=fit_body(dataset["id"]))
            return [201, fit.status_code]

    results = at_once([writer(i) for i in range(8)] + [upload_and_fit])
    assert [status for statuses in results for status in statuses if status >= 300] == []
    with env.client() as client:
        listed = client.get("/v1/business-cases", params={"limit": 200}).json()["items"]
    bursts = {item["name"]: item["version"] for item in listed if item["name"].startswith("burst")}
    assert bursts == {f"burst {i}": 5 for i in range(8)}
