"""``GET /v1/fits/{id}/churn-cost`` against the fit's own segment table and customer list, and the
stateless ``POST /v1/economics/nps`` and ``/complaints`` against hand-worked numbers."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from cltv_api.main import create_app
from tests.cltv_api.service.conftest import Credentials, TestClient, make_settings, new_workspace
from tests.cltv_api.service.test_datasets import csv_bytes, transactions

PROBLEMS = "https://cltv.dev/problems/"
VALUATION = "horizon=12&horizon_unit=months&discount_rate=0.1&margin=0.3"


@dataclass
class Env:
    client: TestClient
    mine: Credentials
    other: Credentials
    fit_id: str

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(path, headers=headers or self.mine.headers)

    def post(self, path: str, body: dict[str, Any]) -> Any:
        return self.client.post(path, headers=self.mine.headers, json=body)


def fit_transactions(
    client: TestClient, headers: dict[str, str], customers: int = 400, model: str = "bgnbd"
) -> str:
    """Upload generated transactions (channel, region segments; USD) and fit ``model`` (weekly)
    with Gamma-Gamma, reported by channel; returns the fit id."""
    upload = client.post(
        "/v1/datasets",
        headers=headers,
        files={"file": ("tx.csv", csv_bytes(transactions(customers=customers, seed=5)))},
        data={"segment_cols": "channel,region", "currency": "USD"},
    )
    assert upload.status_code == 201, upload.text
    fit = client.post(
        "/v1/fits",
        headers=headers,
        json={
            "dataset_id": upload.json()["id"],
            "purchase_model": model,
            "segment_by": ["channel"],
            "time_unit": "weeks",
        },
    )
    assert fit.status_code == 201, fit.text
    fit_id: str = fit.json()["id"]
    return fit_id


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    app = create_app(make_settings(tmp_path_factory.mktemp("churn") / "data"))
    with TestClient(app, raise_server_exceptions=False) as client:
        mine = new_workspace(app.state.db, "mine")
        fit_id = fit_transactions(client, mine.headers)
        yield Env(client, mine, new_workspace(app.state.db, "other"), fit_id)


@pytest.fixture(scope="module")
def churn(env: Env) -> dict[str, Any]:
    response = env.get(
        f"/v1/fits/{env.fit_id}/churn-cost?{VALUATION}&at_risk_low=0.2&at_risk_high=0.7&by=channel"
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def test_residual_cltv_per_segment_equals_the_fits_segment_table(
    env: Env, churn: dict[str, Any]
) -> None:
    # The segment table sums per-history group totals; the churn table sums scored customers:
    # two routes to the same expected residual CLTV.
    table = env.get(f"/v1/fits/{env.fit_id}/segments?{VALUATION}&by=channel").json()
    assert [s["segment"] for s in churn["segments"]] == [s["segment"] for s in table["segments"]]
    for mine, theirs in zip(churn["segments"], table["segments"], strict=True):
        assert mine["clv_total"] == pytest.approx(theirs["clv_total"], rel=1e-9)
        assert mine["customers"] == theirs["customers"]
        assert mine["active_customers"] == pytest.approx(
            theirs["share_active"] * theirs["customers"], rel=1e-9
        )
    assert churn["total"]["clv_total"] == pytest.approx(table["total"]["clv_total"], rel=1e-9)
    assert churn["total"]["customers"] == 400
    conventions = churn["conventions"]
    assert conventions["currency"] == "USD" and conventions["margin"] == 0.3
    assert conventions["horizon"] == 12 and conventions["horizon_unit"] == "months"
    assert set(conventions["definitions"]) >= {"value_lost_per_churner", "revenue_at_risk"}


def test_churn_figures_follow_their_definitions(churn: dict[str, Any]) -> None:
    for row in [*churn["segments"], churn["total"]]:
        assert row["currency"] == "USD"
        assert row["clv_mean"] == pytest.approx(row["clv_total"] / row["customers"])
        assert row["value_lost_per_churner"] == pytest.approx(
            row["clv_total"] / row["active_customers"]
        )
        # one point of the active customers, each worth E[CLTV | alive]: 0.01 x total
        assert row["cost_of_one_point_more_churn"] == pytest.approx(0.01 * row["clv_total"])
        assert row["value_of_one_point_less_churn"] == row["cost_of_one_point_more_churn"]
        # an extra point of dropout in each of 12 monthly steps costs less than the whole value
        # and more than the one-off point
        per_period = row["cost_of_one_point_more_churn_per_period"]
        assert row["cost_of_one_point_more_churn"] < per_period < row["clv_total"]
        assert row["value_of_one_point_less_churn_per_period"] > 0
    totals = churn["total"]
    for name in ("clv_total", "revenue_at_risk", "cost_of_one_point_more_churn_per_period"):
        assert sum(s[name] for s in churn["segments"]) == pytest.approx(totals[name], rel=1e-9)


def test_revenue_at_risk_matches_the_scored_customers(env: Env, churn: dict[str, Any]) -> None:
    text = env.get(f"/v1/fits/{env.fit_id}/customers?{VALUATION}&format=csv").text
    risk: dict[str, float] = {}
    count: dict[str, int] = {}
    for row in csv.DictReader(io.StringIO(text)):
        p = float(row["p_alive"])
        if 0.2 <= p < 0.7:
            revenue = float(row["expected_revenue"]) * (1 - p) / p
            risk[row["channel"]] = risk.get(row["channel"], 0.0) + revenue
            count[row["channel"]] = count.get(row["channel"], 0) + 1
    for segment in churn["segments"]:
        channel = segment["segment"]["channel"]
        assert segment["revenue_at_risk"] == pytest.approx(risk.get(channel, 0.0), rel=1e-9)
        assert segment["customers_at_risk"] == count.get(channel, 0)
        assert segment["share_at_risk"] == pytest.approx(
            segment["customers_at_risk"] / segment["customers"]
        )


def test_a_wider_band_holds_more_revenue_at_risk(env: Env, churn: dict[str, Any]) -> None:
    wide = env.get(
        f"/v1/fits/{env.fit_id}/churn-cost?{VALUATION}&at_risk_low=0.05&at_risk_high=0.95"
    )
    assert wide.status_code == 200
    total = wide.json()["total"]
    assert total["customers_at_risk"] >= churn["total"]["customers_at_risk"]
    assert total["revenue_at_risk"] >= churn["total"]["revenue_at_risk"]
    assert wide.json()["segments"] and wide.json()["by"] == ["channel"]  # the fit's segments


def test_churn_cost_problems_name_the_query_field(env: Env) -> None:
    band = env.get(f"/v1/fits/{env.fit_id}/churn-cost?at_risk_low=0.8&at_risk_high=0.7")
    assert band.status_code == 422
    assert {e["field"] for e in band.json()["errors"]} == {"query.at_risk_low"}
    column = env.get(f"/v1/fits/{env.fit_id}/churn-cost?by=colour")
    assert column.status_code == 422
    assert column.json()["errors"][0]["field"] == "query.by"
    assert env.get("/v1/fits/fit_missing/churn-cost").status_code == 404
    foreign = env.get(f"/v1/fits/{env.fit_id}/churn-cost", env.other.headers)
    assert foreign.status_code == 404
    assert foreign.json()["type"] == PROBLEMS + "not-found"


def test_bgbb_fits_need_a_whole_number_of_opportunities_per_step(env: Env) -> None:
    # BG/BB (Fader, Hardie & Shang 2010) counts one purchase opportunity per week here: a month
    # is 4.35 weeks, so monthly steps are refused; weekly steps work.
    fit_id = fit_transactions(env.client, env.mine.headers, model="bgbb")
    monthly = env.get(f"/v1/fits/{fit_id}/churn-cost?horizon=12&horizon_unit=months")
    assert monthly.status_code == 422
    assert monthly.json()["errors"][0]["field"] == "query.horizon_unit"
    weekly = env.get(f"/v1/fits/{fit_id}/churn-cost?horizon=12&horizon_unit=weeks")
    assert weekly.status_code == 200, weekly.text
    total = weekly.json()["total"]
    assert total["value_lost_per_churner"] == pytest.approx(
        total["clv_total"] / total["active_customers"]
    )


# ------------------------------------------------------------------------------ NPS
NPS_BODY: dict[str, Any] = {
    "counts": {"promoters": 300, "passives": 400, "detractors": 300},
    "promoters": {"retention": 0.9, "margin_per_period": 100.0},
    "passives": {"retention": 0.8, "margin_per_period": 80.0},
    "detractors": {"retention": 0.6, "margin_per_period": 60.0},
    "annual_discount_rate": 0.0,
    "period": "year",
    "timing": "start",
    "currency": "EUR",
}


def test_nps_group_values_and_a_shift_by_hand(env: Env) -> None:
    response = env.post("/v1/economics/nps", {**NPS_BODY, "shift": {"points": 10}})
    assert response.status_code == 200, response.text
    body = response.json()
    # No discounting, unlimited horizon, margin at the start: CLTV = m / (1 - r):
    # promoter 100 / 0.1 = 1000, passive 80 / 0.2 = 400, detractor 60 / 0.4 = 150.
    values = {g["group"]: g["total_value"] for g in body["groups"]}
    assert values == pytest.approx({"promoters": 1000, "passives": 400, "detractors": 150})
    assert body["nps"] == 0.0  # 30% promoters - 30% detractors
    assert body["value_detractor_to_passive"] == pytest.approx(250)
    assert body["value_detractor_to_promoter"] == pytest.approx(850)
    # new-customer value: 0.3 x 1000 + 0.4 x 400 + 0.3 x 150 = 505
    assert body["new_customer_value"] == pytest.approx(505)
    # 10 points of 1,000 respondents: 100 detractors become passives, 100 x 250 = 25,000
    shift = body["shift"]
    assert shift["detractor_to_passive"] == pytest.approx(100)
    assert shift["value_gained"] == pytest.approx(25_000)
    assert shift["nps_after"] == pytest.approx(10)
    assert body["conventions"]["currency"] == "EUR" and body["conventions"]["period"] == "year"


def test_nps_from_raw_scores_and_its_problems(env: Env) -> None:
    scores = [10, 9, 8, 7, 6, 0]  # 2 promoters, 2 passives, 2 detractors
    body = {k: v for k, v in NPS_BODY.items() if k != "counts"}
    response = env.post("/v1/economics/nps", {**body, "scores": scores})
    assert response.status_code == 200, response.text
    assert response.json()["counts"] == {"promoters": 2, "passives": 2, "detractors": 2}
    bad = env.post("/v1/economics/nps", {**body, "scores": [11]})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "body.scores"
    retention = {**NPS_BODY, "promoters": {"retention": 1.5, "margin_per_period": 1.0}}
    problem = env.post("/v1/economics/nps", retention)
    assert problem.status_code == 422
    assert {e["field"] for e in problem.json()["errors"]} == {"body.promoters.retention"}
    too_far = env.post("/v1/economics/nps", {**NPS_BODY, "shift": {"points": 150}})
    assert too_far.json()["errors"][0]["field"] == "body.shift.points"


# ------------------------------------------------------------------------------ complaints
def test_complaint_economics_by_hand_with_cited_defaults(env: Env) -> None:
    response = env.post(
        "/v1/economics/complaints",
        {
            "customers": 100_000,
            "problem_share": 0.2,
            "satisfied_share": 0.6,
            "customer_value": 1000.0,
            "currency": "RUB",
            "improvement": {"satisfied_share": 0.8},
        },
    )
    assert response.status_code == 200, response.text
    body = response.json()
    groups = {g["group"]: g for g in body["result"]["groups"]}
    # 20,000 with a problem; 1 in 27 complains (TARP default); small-ticket repurchase rates
    # 37% / 46% / 70% (non-complainers / unsatisfied / satisfied complainers).
    complainers = 20_000 / 27
    assert groups["non_complainer"]["customers"] == pytest.approx(20_000 * 26 / 27)
    assert groups["non_complainer"]["customers_lost"] == pytest.approx(20_000 * 26 / 27 * 0.63)
    assert groups["satisfied_complainer"]["customers_lost"] == pytest.approx(
        complainers * 0.6 * 0.3
    )
    assert groups["unsatisfied_complainer"]["customers_lost"] == pytest.approx(
        complainers * 0.4 * 0.54
    )
    lost = 20_000 * 26 / 27 * 0.63 + complainers * (0.6 * 0.3 + 0.4 * 0.54)
    assert body["result"]["customers_lost_with_problem"] == pytest.approx(lost)
    assert body["result"]["value_at_risk_with_problem"] == pytest.approx(1000 * lost)
    # 20 more points of complainers satisfied keep complainers x 0.2 x (0.54 - 0.30) customers
    kept = complainers * 0.2 * (0.54 - 0.30)
    assert body["improvement"]["customers_kept"] == pytest.approx(kept)
    assert body["improvement"]["value_gained"] == pytest.approx(1000 * kept)
    assert body["inputs"]["complain_share"] == pytest.approx(1 / 27)
    assert body["inputs"]["retention_source"] == "TARP small ticket"
    figures = {s["figure"] for s in body["result"]["sources"]}
    assert "share of customers with a problem who complain" in figures
    assert all(s["citation"] for s in body["result"]["sources"])


def test_complaint_problems_name_the_field(env: Env) -> None:
    response = env.post(
        "/v1/economics/complaints",
        {
            "customers": 10,
            "problem_share": 1.5,
            "satisfied_share": 0.5,
            "customer_value": 1.0,
            "currency": "RUB",
            "improvement": {"satisfied_share": 2.0},
        },
    )
    assert response.status_code == 422
    assert {e["field"] for e in response.json()["errors"]} == {"body.problem_share"}
    unsatisfied = env.post(
        "/v1/economics/complaints",
        {
            "customers": 10,
            "problem_share": 0.5,
            "satisfied_share": 0.5,
            "customer_value": 1.0,
            "currency": "RUB",
            "improvement": {"satisfied_share": 2.0},
        },
    )
    assert {e["field"] for e in unsatisfied.json()["errors"]} == {
        "body.improvement.satisfied_share"
    }
    anonymous = env.client.post("/v1/economics/complaints", json={})
    assert anonymous.status_code == 401
