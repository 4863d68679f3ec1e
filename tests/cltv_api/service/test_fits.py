"""``/v1/fits``: synchronous and background fits, segment tables (JSON and CSV), scored customers
(paged, filtered, streamed), invalid requests and workspace isolation, on generated data."""

from __future__ import annotations

import contextlib
import csv
import io
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from cltv_api.main import create_app
from cltv_api.services import fits as fit_service
from cltv_api.storage.repositories import FitRepository
from cltv_api.storage.tables import Fit
from models import BGNBD, MBGNBD, ParetoNBD
from tests.cltv_api.service.conftest import (
    Credentials,
    TestClient,
    make_settings,
    new_workspace,
)
from tests.cltv_api.service.test_datasets import PROBLEMS, csv_bytes, transactions
from tests.conftest import quiet_reference

CUSTOMERS = 2000
HOLDOUT_START = "1997-10-01"
DIRECT_MODELS: dict[str, Any] = {"bgnbd": BGNBD, "mbgnbd": MBGNBD, "pnbd": ParetoNBD}
FitBody = dict[str, Any]


@dataclass
class Env:
    client: TestClient
    credentials: Credentials
    data_dir: Path
    table: pa.Table
    dataset: dict[str, Any]

    @property
    def headers(self) -> dict[str, str]:
        return self.credentials.headers

    def get(self, path: str, accept: str | None = None) -> Any:
        headers = self.headers if accept is None else {**self.headers, "Accept": accept}
        return self.client.get(path, headers=headers)

    def batch_upload(self, params: dict[str, Any], **form: str) -> Any:
        """POST the module's transactions to /v1/datasets with batch parameters (``fit=``)."""
        return self.client.post(
            "/v1/datasets",
            headers=self.headers,
            params=params,
            files={"file": ("tx.csv", csv_bytes(self.table))},
            data=form,
        )

    def post_fit(self, **body: Any) -> Any:
        return self.client.post(
            "/v1/fits", headers=self.headers, json={"dataset_id": self.dataset["id"], **body}
        )


def upload_table(client: TestClient, headers: dict[str, str], table: pa.Table) -> dict[str, Any]:
    response = client.post(
        "/v1/datasets",
        headers=headers,
        files={"file": ("tx.csv", csv_bytes(table))},
        data={"segment_cols": "channel,region", "currency": "USD"},
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir = tmp_path_factory.mktemp("fits") / "data"
    app = create_app(make_settings(data_dir))
    with TestClient(app, raise_server_exceptions=False) as client:
        credentials = new_workspace(app.state.db, "fits")
        table = transactions(customers=CUSTOMERS, seed=21)
        dataset = upload_table(client, credentials.headers, table)
        yield Env(client, credentials, data_dir, table, dataset)


@pytest.fixture(scope="module")
def bgnbd_fit(env: Env) -> dict[str, Any]:
    response = env.post_fit(purchase_model="bgnbd", segment_by=["channel"], time_unit="weeks")
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def reference_rfm(table: pa.Table, **kwargs: Any) -> pd.DataFrame:
    """Weekly RFM summary from lifetimes (the reference implementation), independent of ours."""
    from lifetimes.utils import calibration_and_holdout_data, summary_data_from_transaction_data

    frame = table.select(["customer_id", "date", "amount"]).to_pandas()
    with quiet_reference():
        if "calibration_period_end" in kwargs:
            return calibration_and_holdout_data(
                frame, "customer_id", "date", freq="W", monetary_value_col="amount", **kwargs
            )
        return summary_data_from_transaction_data(
            frame, "customer_id", "date", monetary_value_col="amount", freq="W", **kwargs
        )


def direct_params(model: str, rfm: pd.DataFrame) -> dict[str, float]:
    fitted = DIRECT_MODELS[model]().fit(rfm["frequency"], rfm["recency"], rfm["T"])
    return dict(fitted.params_)


def params_of(model: dict[str, Any]) -> dict[str, float]:
    return {p["name"]: p["estimate"] for p in model["parameters"]}


# ------------------------------------------------------------------------------ fitting


def test_sync_bgnbd_fit_matches_the_model_fitted_directly(env: Env, bgnbd_fit: FitBody) -> None:
    fit = bgnbd_fit
    assert fit["status"] == "succeeded" and fit["job"] is None
    assert fit["request"]["purchase_model"] == "bgnbd" and fit["request"]["segment_by"] == [
        "channel"
    ]
    result = fit["result"]
    assert result["customers"] == CUSTOMERS
    assert result["observation_end"] == "1998-06-30"
    assert result["segment_columns"] == ["channel", "region"]
    [pooled] = result["fits"]
    assert pooled["segment"] == {} and pooled["n_customers"] == CUSTOMERS
    purchase = pooled["purchase"]
    want = direct_params("bgnbd", reference_rfm(env.table))
    got = params_of(purchase)
    for name in ("r", "alpha", "a", "b"):
        assert got[name] == pytest.approx(want[name], rel=1e-4), name
    assert purchase["converged"] and purchase["n_iter"] > 0 and purchase["message"]
    for p in purchase["parameters"]:
        assert 0 < p["std_error"] < p["estimate"]
        assert p["lower_95"] < p["estimate"] < p["upper_95"]
    # AIC = 2k - 2 LL and BIC = k ln(n) - 2 LL with k = 4 parameters, n = customers
    ll = purchase["log_likelihood"]
    assert purchase["aic"] == pytest.approx(8 - 2 * ll)
    assert purchase["bic"] == pytest.approx(4 * np.log(CUSTOMERS) - 2 * ll)
    spend = pooled["spend"]
    assert spend["model"] == "gamma_gamma" and {p["name"] for p in spend["parameters"]} == {
        "p",
        "q",
        "gamma",
    }
    stored = env.data_dir / "fits" / fit["id"] / "summary.parquet"
    assert stored.is_file()
    assert env.get(fit["url"]).json() == fit


@pytest.mark.slow
def test_auto_fit_with_holdout_picks_the_lowest_holdout_error(env: Env) -> None:
    response = env.post_fit(purchase_model="auto", holdout={"start": HOLDOUT_START})
    assert response.status_code == 201, response.text
    [segment] = response.json()["result"]["fits"]
    candidates = {c["model"]: c for c in segment["candidates"]}
    assert set(candidates) == {"bgnbd", "mbgnbd", "pnbd"}
    best = min(candidates.values(), key=lambda c: c["holdout_rmse"])
    assert segment["purchase_model"] == best["model"]
    assert "lowest holdout root-mean-square error" in segment["selection_reason"]
    # the final model is refitted on the whole window
    want = direct_params(best["model"], reference_rfm(env.table))
    for name, value in params_of(segment["purchase"]).items():
        assert value == pytest.approx(want[name], rel=1e-3), name
    # holdout: the actual purchases are lifetimes' holdout counts (calibration ends the day
    # before the holdout starts)
    reference = reference_rfm(
        env.table, calibration_period_end="1997-09-30", observation_period_end="1998-06-30"
    )
    holdout = segment["holdout"]
    assert holdout["start"] == HOLDOUT_START and holdout["model"] == best["model"]
    calibration = reference[["frequency_cal", "recency_cal", "T_cal"]].set_axis(
        ["frequency", "recency", "T"], axis=1
    )
    want_cal = direct_params(best["model"], calibration)
    for name, value in holdout["calibration_parameters"].items():
        assert value == pytest.approx(want_cal[name], rel=1e-3), name
    assert holdout["customers"] == len(reference)
    assert holdout["actual_total"] == pytest.approx(reference["frequency_holdout"].sum())
    rows = holdout["by_frequency"]
    assert [r["frequency_cal"] for r in rows][-1] == "7+"
    assert sum(r["customers"] for r in rows) == holdout["customers"]
    predicted = sum(r["predicted_mean"] * r["customers"] for r in rows)
    assert predicted == pytest.approx(holdout["predicted_total"], rel=1e-9)
    assert holdout["mae_per_customer"] == pytest.approx(best["holdout_mae"])
    assert 0 < holdout["mae_per_customer"] <= holdout["rmse_per_customer"]


def test_large_fit_runs_as_a_job_and_its_fit_becomes_readable(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data", sync_fit_max_customers=10))
    table = transactions(customers=300, seed=4)
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = new_workspace(app.state.db, "jobs").headers
        dataset = upload_table(client, headers, table)
        response = client.post(
            "/v1/fits",
            headers=headers,
            json={"dataset_id": dataset["id"], "purchase_model": "bgnbd"},
        )
        assert response.status_code == 202, response.text
        queued = response.json()
        assert queued["status"] in {"queued", "running"} and queued["result"] is None
        job_url = queued["job"]["url"]
        assert response.headers["location"] == job_url
        deadline = time.monotonic() + 60
        job = client.get(job_url, headers=headers).json()
        while job["status"] in {"queued", "running"} and time.monotonic() < deadline:
            time.sleep(0.1)
            job = client.get(job_url, headers=headers).json()
        assert job["status"] == "succeeded", job
        assert (job["kind"], job["progress"], job["stage"]) == ("fit", 1.0, "done")
        assert job["result_url"] == queued["url"]
        fit = client.get(job["result_url"], headers=headers).json()
    assert fit["status"] == "succeeded" and fit["job"] == queued["job"]
    want = direct_params("bgnbd", reference_rfm(table))
    for name, value in params_of(fit["result"]["fits"][0]["purchase"]).items():
        assert value == pytest.approx(want[name], rel=1e-4), name


# Every customer buys once: no repeat purchase, so no purchase model is identifiable.
ONE_PURCHASE_EACH = "customer,date,amount\n" + "".join(
    f"c{i},2024-01-{1 + i % 28:02d},10\n" for i in range(40)
)


@contextlib.contextmanager
def fitting_unfittable(tmp_path: Path, sync_limit: int) -> Iterator[tuple[Any, TestClient, Any]]:
    """A running app whose workspace has the one-purchase-each data set: yields the response to
    fitting BG/NBD to it, the client and the workspace's headers."""
    app = create_app(make_settings(tmp_path / "data", sync_fit_max_customers=sync_limit))
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = new_workspace(app.state.db, "fails").headers
        dataset = client.post(
            "/v1/datasets", headers=headers, files={"file": ("once.csv", ONE_PURCHASE_EACH)}
        ).json()
        body = {"dataset_id": dataset["id"], "purchase_model": "bgnbd"}
        yield client.post("/v1/fits", headers=headers, json=body), client, headers


def test_an_unfittable_request_fit_is_422_and_stores_nothing(tmp_path: Path) -> None:
    with fitting_unfittable(tmp_path, sync_limit=1000) as (response, client, headers):
        assert response.status_code == 422
        assert response.json()["type"] == PROBLEMS + "fit-failed"
        assert "no customer made a repeat purchase" in response.json()["detail"]
        assert client.get("/v1/fits", headers=headers).json()["total"] == 0
    assert not any((tmp_path / "data" / "fits").iterdir())


def test_an_unfittable_job_fit_fails_with_the_problem_and_values_are_409(tmp_path: Path) -> None:
    with fitting_unfittable(tmp_path, sync_limit=1) as (response, client, headers):
        assert response.status_code == 202
        fit_url = response.json()["url"]
        deadline = time.monotonic() + 60
        fit = client.get(fit_url, headers=headers).json()
        while fit["status"] in {"queued", "running"} and time.monotonic() < deadline:
            time.sleep(0.1)
            fit = client.get(fit_url, headers=headers).json()
        job = client.get(fit["job"]["url"], headers=headers).json()
        values = client.get(fit_url + "/segments", headers=headers)
    assert fit["status"] == job["status"] == "failed" and fit["result"] is None
    assert fit["error"]["type"] == job["error"]["type"] == PROBLEMS + "fit-failed"
    assert fit["error"]["instance"] == fit_url
    assert values.status_code == 409 and values.json()["fit_status"] == "failed"
    assert not (tmp_path / "data" / "fits" / fit["id"]).exists()


def test_per_segment_fit_with_an_earlier_observation_end(env: Env) -> None:
    response = env.post_fit(
        purchase_model="bgnbd",
        spend_model="none",
        segment_by=["channel"],
        per_segment=True,
        observation_end="1997-12-31",
    )
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    assert result["observation_end"] == "1997-12-31"
    fits = {f["segment"]["channel"]: f for f in result["fits"]}
    assert sorted(fits) == ["Online", "Partner", "Retail"]
    # everyone was acquired in the first 84 days of 1997, so all are in the shorter window
    assert sum(f["n_customers"] for f in fits.values()) == CUSTOMERS
    # whole periods: the week of Dec 31, 1997 runs to Sunday Jan 4, 1998 (as in lifetimes)
    reference = reference_rfm(env.table, observation_period_end="1997-12-31")
    online = reference.loc[
        env.table.filter(pc.field("channel") == "Online")["customer_id"].unique().to_pylist()
    ]
    want = direct_params("bgnbd", online)
    for name, value in params_of(fits["Online"]["purchase"]).items():
        assert value == pytest.approx(want[name], rel=1e-4), name
    customers = env.get(response.json()["url"] + "/customers?sort=-p_alive&limit=1").json()
    # T is counted in weeks from the first purchase to the week of Dec 31, 1997: at most 52
    assert customers["items"][0]["T"] <= 52


@dataclass
class RecordingReporter:
    """A job's ``report`` that records the stages (the worker's own reporter writes them to the
    jobs table, where a test polling it may miss the short ones)."""

    db: Any
    settings: Any
    workspace_id: str
    job_id: str = "job_recorded"
    stages: list[tuple[float, str]] = field(default_factory=list)

    def __call__(self, progress: float, stage: str) -> None:
        self.stages.append((progress, stage))


_Reporter = TypeVar("_Reporter", bound=RecordingReporter)


def _queued_fit_job(env: Env, reporter: type[_Reporter]) -> tuple[Fit, _Reporter]:
    """A queued BG/NBD fit of the module's data set and a reporter to run its job with."""
    app = env.client.app
    with app.state.db.session() as session:  # type: ignore[attr-defined]
        fit = FitRepository(session, env.credentials.workspace_id).add(
            Fit(
                dataset_id=env.dataset["id"],
                status="queued",
                request={"dataset_id": env.dataset["id"], "purchase_model": "bgnbd"},
            )
        )
    report = reporter(
        app.state.db,  # type: ignore[attr-defined]
        app.state.settings,  # type: ignore[attr-defined]
        env.credentials.workspace_id,
    )
    return fit, report


def test_fit_job_reports_summarise_fit_save_stages(env: Env) -> None:
    fit, report = _queued_fit_job(env, RecordingReporter)
    assert fit_service.run_fit_job({"fit_id": fit.id}, report) == f"/v1/fits/{fit.id}"
    assert [stage for _, stage in report.stages] == ["summarise", "fit", "save"]
    progress = [p for p, _ in report.stages]
    assert progress == sorted(progress) and progress[0] > 0 and progress[-1] < 1
    stored = env.get(f"/v1/fits/{fit.id}").json()
    assert stored["status"] == "succeeded" and stored["job"]["id"] == "job_recorded"
    assert stored["result"]["customers"] == CUSTOMERS


def test_fit_job_reports_each_customer_partition_of_a_large_summary(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cltv_api.engine import summary as summary_module

    # parts = ceil(stored rows / PART_ROWS) = 3
    monkeypatch.setattr(summary_module, "PART_ROWS", env.dataset["stored_rows"] // 3 + 1)
    fit, report = _queued_fit_job(env, RecordingReporter)
    fit_service.run_fit_job({"fit_id": fit.id}, report)
    stages = [stage for _, stage in report.stages]
    assert stages == ["summarise", "summarise 1/3", "summarise 2/3", "summarise 3/3", "fit", "save"]
    progress = [p for p, _ in report.stages]
    assert progress == sorted(progress) and progress[3] == pytest.approx(0.3)
    stored = env.get(f"/v1/fits/{fit.id}").json()
    assert stored["result"]["customers"] == CUSTOMERS


def test_a_fit_cancelled_during_a_partitioned_summary_stops_between_parts(
    env: Env, monkeypatch: pytest.MonkeyPatch
) -> None:
    from cltv_api.engine import summary as summary_module
    from cltv_api.services.jobs import JobCancelled

    monkeypatch.setattr(summary_module, "PART_ROWS", env.dataset["stored_rows"] // 3 + 1)

    @dataclass
    class CancelAfterFirstPart(RecordingReporter):
        def __call__(self, progress: float, stage: str) -> None:
            super().__call__(progress, stage)
            if stage == "summarise 1/3":
                raise JobCancelled(self.job_id)

    fit, report = _queued_fit_job(env, CancelAfterFirstPart)
    with pytest.raises(JobCancelled):
        fit_service.run_fit_job({"fit_id": fit.id}, report)
    assert [stage for _, stage in report.stages] == ["summarise", "summarise 1/3"]
    assert env.get(f"/v1/fits/{fit.id}").json()["status"] == "cancelled"
    settings = env.client.app.state.settings  # type: ignore[attr-defined]
    assert not fit_service.fit_dir(settings, fit.id).exists()


def test_values_of_a_queued_fit_are_409(env: Env) -> None:
    with env.client.app.state.db.session() as session:  # type: ignore[attr-defined]
        fit = FitRepository(session, env.credentials.workspace_id).add(
            Fit(dataset_id=env.dataset["id"], status="queued", request={"dataset_id": "x"})
        )
    shown = env.get(f"/v1/fits/{fit.id}").json()
    assert shown["status"] == "queued" and shown["result"] is None
    for path in ("/segments", "/customers", "/customers?format=csv", "/customers/C1"):
        response = env.get(f"/v1/fits/{fit.id}{path}")
        assert response.status_code == 409, path
        assert response.json()["fit_status"] == "queued"


def test_repeat_customers_whose_purchases_were_all_free_do_not_break_the_spend_fit(
    tmp_path: Path,
) -> None:
    # CDNOW has such customers: repeat purchases of $0.00 give monetary_value 0 with x > 0,
    # which the Gamma-Gamma model (positive spend) cannot take; they are left out of its fit.
    table = transactions(customers=150, seed=12)
    free = pa.table(
        {
            "customer_id": ["FREE"] * 3,
            "date": pa.array(
                [
                    pd.Timestamp("1997-01-06"),
                    pd.Timestamp("1997-03-03"),
                    pd.Timestamp("1997-05-05"),
                ],
                pa.timestamp("us"),
            ),
            "amount": [25.0, 0.0, 0.0],
            "channel": ["Online"] * 3,
            "region": ["North"] * 3,
        }
    )
    both = pa.concat_tables([table.select(free.column_names), free])
    app = create_app(make_settings(tmp_path / "data"))
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = new_workspace(app.state.db, "free").headers
        dataset = upload_table(client, headers, both)
        response = client.post(
            "/v1/fits",
            headers=headers,
            json={"dataset_id": dataset["id"], "purchase_model": "bgnbd"},
        )
        assert response.status_code == 201, response.text
        fit = response.json()
        customer = client.get(fit["url"] + "/customers/FREE", headers=headers).json()
    [pooled] = fit["result"]["fits"]
    # the spend model saw the repeat customers with positive spend only
    assert pooled["spend"]["n_obs"] == pooled["n_repeat_customers"] - 1
    assert (customer["frequency"], customer["monetary_value"]) == (2.0, 0.0)
    assert customer["expected_spend"] > 0 and customer["clv"] > 0


# ------------------------------------------------------------------------------ segments


def test_segment_table_adds_up_and_states_its_conventions(env: Env, bgnbd_fit: FitBody) -> None:
    url = bgnbd_fit["url"] + "/segments?horizon=12&horizon_unit=months&margin=0.3"
    response = env.get(url)
    assert response.status_code == 200, response.text
    table = response.json()
    assert table["by"] == ["channel"]  # the fit's segment_by by default
    rows, total = table["segments"], table["total"]
    assert [r["segment"]["channel"] for r in rows] == ["Online", "Partner", "Retail"]
    assert total["customers"] == CUSTOMERS == sum(r["customers"] for r in rows)
    for key in ("clv_total", "expected_purchases", "expected_revenue"):
        assert sum(r[key] for r in rows) == pytest.approx(total[key], rel=1e-9), key
    assert sum(r["share_of_value"] for r in rows) == pytest.approx(1.0)
    for row in [*rows, total]:
        assert row["clv_total_lower"] < row["clv_total"] < row["clv_total_upper"]
        assert row["clv_mean"] == pytest.approx(row["clv_total"] / row["customers"])
        assert 0 < row["share_active"] < 1
    conventions = table["conventions"]
    assert conventions["time_unit"] == "weeks" and conventions["margin"] == 0.3
    assert conventions["currency"] == "USD"  # from the upload
    # 12 months of 365.25/12 days are 52.18 weeks; 10% a year is (1.1)^(1/12) - 1 a month
    assert conventions["horizon_in_time_units"] == pytest.approx(365.25 / 7)
    assert conventions["discount_rate_per_step"] == pytest.approx(1.1 ** (1 / 12) - 1)
    by_region = env.get(bgnbd_fit["url"] + "/segments?by=region&margin=0.3&currency=EUR").json()
    assert len(by_region["segments"]) == 5 and by_region["conventions"]["currency"] == "EUR"
    assert by_region["total"]["clv_total"] == pytest.approx(total["clv_total"], rel=1e-12)


def test_segment_csv_is_the_same_table_and_repeats_come_from_the_cache(
    env: Env, bgnbd_fit: FitBody
) -> None:
    cache: fit_service.SegmentCache = env.client.app.state.segment_cache  # type: ignore[attr-defined]
    url = bgnbd_fit["url"] + "/segments?margin=0.25&by=channel"
    hits_before, misses_before = cache.hits, cache.misses
    as_json = env.get(url).json()
    as_csv = env.get(url, accept="text/csv")
    by_param = env.get(url + "&format=csv")
    assert (cache.misses - misses_before, cache.hits - hits_before) == (1, 2)
    assert as_csv.headers["content-type"].startswith("text/csv")
    assert as_csv.text == by_param.text
    records = list(csv.DictReader(io.StringIO(as_csv.text)))
    assert [r["channel"] for r in records] == ["Online", "Partner", "Retail", "(all)"]
    for record, row in zip(records, [*as_json["segments"], as_json["total"]], strict=True):
        assert int(record["customers"]) == row["customers"]
        # plain numbers that round-trip exactly
        assert float(record["clv_total"]) == row["clv_total"]
        assert "e" not in record["clv_total_lower"].lower()
    parts = sum(float(r["clv_total"]) for r in records[:-1])
    assert parts == pytest.approx(float(records[-1]["clv_total"]), rel=1e-9)


# ------------------------------------------------------------------------------ customers


def test_customers_are_paged_sorted_and_linked(env: Env, bgnbd_fit: FitBody) -> None:
    base = bgnbd_fit["url"] + "/customers"
    first = env.get(base + "?limit=25").json()
    assert first["total"] == CUSTOMERS and len(first["items"]) == 25
    assert first["next"] == base + "?limit=25&offset=25"
    second = env.get(first["next"]).json()
    clv = [c["clv"] for c in first["items"] + second["items"]]
    assert clv == sorted(clv, reverse=True)  # default sort: -clv
    assert {c["customer_id"] for c in first["items"]}.isdisjoint(
        c["customer_id"] for c in second["items"]
    )
    top = first["items"][0]
    assert set(top["segments"]) == {"channel", "region"}
    assert top["clv_lower"] < top["clv"] < top["clv_upper"]
    assert top["expected_revenue"] == pytest.approx(
        top["expected_spend"] * top["expected_purchases"]
    )
    by_alive = env.get(base + "?sort=p_alive&limit=200").json()["items"]
    alive = [c["p_alive"] for c in by_alive]
    assert alive == sorted(alive)
    last = env.get(base + f"?limit=25&offset={CUSTOMERS - 5}").json()
    assert len(last["items"]) == 5 and last["next"] is None


def test_customer_filters_by_p_alive_and_segment(env: Env, bgnbd_fit: FitBody) -> None:
    base = bgnbd_fit["url"] + "/customers"
    active = env.get(base + "?min_p_alive=0.9&limit=1000").json()
    assert active["total"] >= len(active["items"]) > 0
    assert all(c["p_alive"] >= 0.9 for c in active["items"])
    inactive = env.get(base + "?max_p_alive=0.9&limit=1").json()
    boundary = env.get(base + "?min_p_alive=0.9&max_p_alive=0.9&limit=1").json()
    assert active["total"] + inactive["total"] - boundary["total"] == CUSTOMERS
    online = env.get(base + "?segment.channel=Online&limit=1000").json()
    segments = env.get(bgnbd_fit["url"] + "/segments").json()["segments"]
    assert online["total"] == next(
        r["customers"] for r in segments if r["segment"]["channel"] == "Online"
    )
    assert {c["segments"]["channel"] for c in online["items"]} == {"Online"}
    both = env.get(base + "?segment.channel=Online&segment.region=North&limit=1").json()
    assert 0 < both["total"] < online["total"]
    unknown = env.get(base + "?segment.colour=red")
    assert unknown.status_code == 422
    assert unknown.json()["errors"][0]["field"] == "query.segment.colour"


def test_customer_csv_streams_every_matching_customer_in_chunks(
    env: Env, bgnbd_fit: FitBody, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(fit_service, "CSV_BATCH_ROWS", 300)  # several chunks for 2000 rows
    url = bgnbd_fit["url"] + "/customers?format=csv&margin=0.3"
    with env.client.stream("GET", url, headers=env.headers) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/csv")
        text = response.read().decode("utf-8")
    records = list(csv.DictReader(io.StringIO(text)))
    assert len(records) == CUSTOMERS
    assert len({r["customer_id"] for r in records}) == CUSTOMERS
    assert text.count("customer_id") == 1  # one header, however many chunks
    assert list(records[0])[:3] == ["customer_id", "channel", "region"]
    clv = [float(r["clv"]) for r in records]
    assert clv == sorted(clv, reverse=True)
    total = env.get(bgnbd_fit["url"] + "/segments?margin=0.3").json()["total"]["clv_total"]
    assert sum(clv) == pytest.approx(total, rel=1e-9)
    online = env.get(bgnbd_fit["url"] + "/customers?format=csv&segment.channel=Online").text
    assert {r["channel"] for r in csv.DictReader(io.StringIO(online))} == {"Online"}


def test_one_customer_matches_their_row_and_unknown_ids_are_404(
    env: Env, bgnbd_fit: FitBody
) -> None:
    top = env.get(bgnbd_fit["url"] + "/customers?limit=1").json()["items"][0]
    one = env.get(bgnbd_fit["url"] + f"/customers/{top['customer_id']}")
    assert one.status_code == 200
    detail = one.json()
    assert {k: detail[k] for k in top} == top
    assert detail["conventions"]["horizon"] == 12
    missing = env.get(bgnbd_fit["url"] + "/customers/NOBODY")
    assert missing.status_code == 404 and missing.json()["type"] == PROBLEMS + "not-found"


# ------------------------------------------------------------------------------ errors


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"purchase_model": "weibull"}, "body.purchase_model"),
        ({"per_segment": True}, "body.per_segment"),
        ({"segment_by": ["colour"]}, "body.segment_by.0"),
        ({"holdout": {"start": "1990-01-01"}}, "body.holdout.start"),
        ({"time_unit": "years"}, "body.time_unit"),
    ],
)
def test_invalid_fit_requests_are_422_naming_the_field(
    env: Env, body: dict[str, Any], field: str
) -> None:
    response = env.post_fit(**body)
    assert response.status_code == 422
    assert field in [e["field"] for e in response.json()["errors"]]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("horizon=1000000000", "query.horizon"),
        ("horizon=241&horizon_unit=months", "query.horizon"),
        ("margin=30", "query.margin"),
        ("discount_rate=-0.1", "query.discount_rate"),
        ("by=colour", "query.by"),
    ],
)
def test_invalid_valuation_parameters_are_422_naming_the_field(
    env: Env, bgnbd_fit: FitBody, query: str, field: str
) -> None:
    response = env.get(bgnbd_fit["url"] + "/segments?" + query)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == field


def test_other_workspaces_get_404_on_every_fit_route(env: Env, bgnbd_fit: FitBody) -> None:
    other = new_workspace(env.client.app.state.db, "intruder").headers  # type: ignore[attr-defined]
    url = bgnbd_fit["url"]
    customer = env.get(url + "/customers?limit=1").json()["items"][0]["customer_id"]
    for method, path in [
        ("GET", url),
        ("GET", url + "/segments"),
        ("GET", url + "/segments?format=csv"),
        ("GET", url + "/customers"),
        ("GET", url + "/customers?format=csv"),
        ("GET", url + f"/customers/{customer}"),
        ("DELETE", url),
    ]:
        response = env.client.request(method, path, headers=other)
        assert response.status_code == 404, (method, path)
        assert response.json()["type"] == PROBLEMS + "not-found"
    foreign = env.client.post("/v1/fits", headers=other, json={"dataset_id": env.dataset["id"]})
    assert foreign.status_code == 404
    assert env.client.get("/v1/fits", headers=other).json()["total"] == 0
    assert env.get(url).status_code == 200


def test_list_and_delete_fits_then_dataset_deletion_removes_its_fits(env: Env) -> None:
    fit = env.post_fit(purchase_model="bgnbd", spend_model="none").json()
    listed = env.get(f"/v1/fits?dataset_id={env.dataset['id']}&limit=200").json()
    assert fit["id"] in [f["id"] for f in listed["items"]]
    assert listed["total"] >= 1
    assert fit["result"]["fits"][0]["spend"] is None
    assert env.client.delete(fit["url"], headers=env.headers).status_code == 204
    assert env.get(fit["url"]).status_code == 404
    assert not (env.data_dir / "fits" / fit["id"]).exists()
    # a second data set with its own fit: deleting the data set deletes the fit (404 after)
    small = upload_table(env.client, env.headers, transactions(customers=150, seed=9))
    doomed = env.client.post(
        "/v1/fits", headers=env.headers, json={"dataset_id": small["id"], "purchase_model": "bgnbd"}
    ).json()
    assert env.client.delete(small["url"], headers=env.headers).status_code == 204
    assert env.get(doomed["url"]).status_code == 404
    assert env.get(doomed["url"] + "/segments").status_code == 404
    assert not (env.data_dir / "fits" / doomed["id"]).exists()
    gone = env.client.post("/v1/fits", headers=env.headers, json={"dataset_id": small["id"]})
    assert gone.status_code == 404


def test_csv_exports_neutralise_formulas_from_uploaded_values(env: Env) -> None:
    # Regression: customer ids and segment values come from the user's file and used to reach
    # the segment and customer CSV exports unchanged, where a spreadsheet would run them.
    table = env.table
    ids = pc.binary_join_element_wise("=HYPERLINK(", table["customer_id"], ")", "")
    channel = pc.if_else(
        pc.equal(table["channel"], "Online"), "=cmd|' /C calc'!A0", table["channel"]
    )
    hostile = table.set_column(table.schema.get_field_index("customer_id"), "customer_id", ids)
    hostile = hostile.set_column(hostile.schema.get_field_index("channel"), "channel", channel)
    dataset = upload_table(env.client, env.headers, hostile)
    fit = env.client.post(
        "/v1/fits",
        headers=env.headers,
        json={"dataset_id": dataset["id"], "purchase_model": "bgnbd", "segment_by": ["channel"]},
    )
    assert fit.status_code == 201, fit.text
    fit_id = fit.json()["id"]
    segments = env.get(f"/v1/fits/{fit_id}/segments?format=csv").text
    labels = [row[0] for row in csv.reader(io.StringIO(segments))][1:]
    assert "'=cmd|' /C calc'!A0" in labels
    assert not any(label.startswith("=") for label in labels)
    customers = env.get(f"/v1/fits/{fit_id}/customers?format=csv").text
    ids_out = [row[0] for row in csv.reader(io.StringIO(customers))][1:]
    assert ids_out and all(i.startswith("'=HYPERLINK(") for i in ids_out)


def test_one_call_batch_upload_fits_and_answers_the_segment_table_as_csv(env: Env) -> None:
    # Issue 8: `curl -F file=@export.csv ".../v1/datasets?fit=bgnbd&segment_by=channel"`.
    response = env.batch_upload(
        {"fit": "bgnbd", "segment_by": "channel", "margin": 0.3}, segment_cols="channel,region"
    )
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("text/csv")
    fit_url = response.headers["Location"]
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert [r["channel"] for r in rows][-1] == "(all)"
    # The same numbers as the segment endpoint of the fit it created.
    report = env.get(f"{fit_url}/segments?margin=0.3&by=channel").json()
    assert float(rows[-1]["clv_total"]) == pytest.approx(report["total"]["clv_total"], rel=1e-12)
    assert response.headers["X-Dataset-Id"].startswith("ds_")


def test_batch_upload_keeps_the_report_columns_without_segment_cols(env: Env) -> None:
    # Regression: `?fit=auto&segment_by=channel` alone stored the data set without the channel
    # column, then answered 422 (an orphan data set). The report columns are now kept.
    before = env.get("/v1/datasets").json()["total"]
    response = env.batch_upload({"fit": "bgnbd", "segment_by": "channel"})
    assert response.status_code == 201, response.text
    labels = [r["channel"] for r in csv.DictReader(io.StringIO(response.text))]
    assert labels[-1] == "(all)"
    assert len(labels) == len(set(env.table["channel"].to_pylist())) + 1
    dataset = env.get(f"/v1/datasets/{response.headers['X-Dataset-Id']}").json()
    assert [c["name"] for c in dataset["segment_columns"]] == ["channel"]
    assert env.get("/v1/datasets").json()["total"] == before + 1


def test_batch_upload_with_an_unknown_report_column_stores_nothing(env: Env) -> None:
    before = env.get("/v1/datasets").json()["total"]
    response = env.batch_upload({"fit": "bgnbd", "segment_by": "no_such_column"})
    assert response.status_code == 422, response.text
    assert "no_such_column" in response.json()["detail"]
    assert env.get("/v1/datasets").json()["total"] == before


def test_batch_upload_of_a_large_file_answers_202_with_the_fit_job(tmp_path: Path) -> None:
    app = create_app(make_settings(tmp_path / "data", sync_fit_max_customers=10))
    with TestClient(app) as client:
        credentials = new_workspace(app.state.db, "batch")
        response = client.post(
            "/v1/datasets",
            headers=credentials.headers,
            params={"fit": "bgnbd"},
            files={"file": ("tx.csv", csv_bytes(transactions(customers=200, seed=3)))},
        )
        assert response.status_code == 202, response.text
        assert response.headers["Location"] == response.json()["job"]["url"]
