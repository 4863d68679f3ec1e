"""``/v1/retention/fits``: the sBG fit on Fader & Hardie's (2007) "Regular" cohort, given as counts,
as customer dates and as a stored contractual data set; forecasts against the published years
8-12; values against the model's closed forms; churn cost; invalid input and workspace isolation."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pytest

from cltv_api.main import create_app
from models import SBG
from tests.cltv_api.service.conftest import Credentials, TestClient, make_settings, new_workspace

# Fader & Hardie (2007), "How to Project Customer Retention", Table 1, "Regular": a cohort of
# 1,000 customers followed for 7 years; years 8-12 (% surviving) are the holdout they project.
REGULAR = [1000, 631, 468, 382, 326, 289, 262, 241]
REGULAR_HOLDOUT_PCT = [22.3, 20.7, 19.4, 18.3, 17.3]
PROBLEMS = "https://cltv.dev/problems/"


@dataclass
class Env:
    client: TestClient
    mine: Credentials
    other: Credentials

    def post(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post(
            "/v1/retention/fits", headers=headers or self.mine.headers, json=body
        )

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(path, headers=headers or self.mine.headers)


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    app = create_app(make_settings(tmp_path_factory.mktemp("retention") / "data"))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(client, new_workspace(app.state.db, "mine"), new_workspace(app.state.db, "other"))


def economics(**extra: Any) -> dict[str, Any]:
    return {"value_per_period": 100.0, "discount_rate": 0.10, "currency": "USD", **extra}


@pytest.fixture(scope="module")
def regular(env: Env) -> dict[str, Any]:
    response = env.post(
        {
            "name": "regular",
            "cohorts": [{"name": "year 0", "survivors": REGULAR}],
            "period": "year",
            "forecast_periods": 12,
            "max_renewals": 10,
            **economics(),
        }
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def params(body: dict[str, Any]) -> dict[str, float]:
    return {p["name"]: p["estimate"] for p in body["model"]["parameters"]}


def test_regular_cohort_gives_the_published_parameters_with_standard_errors(
    env: Env, regular: dict[str, Any]
) -> None:
    est = params(regular)
    # FH 2007 report alpha = 0.704, beta = 1.182 for the Regular segment.
    assert est["alpha"] == pytest.approx(0.704, abs=5e-4)
    assert est["beta"] == pytest.approx(1.182, abs=5e-4)
    direct = SBG().fit(REGULAR)  # the model library on the same counts
    assert regular["model"]["log_likelihood"] == pytest.approx(direct.log_likelihood_, rel=1e-9)
    for p in regular["model"]["parameters"]:
        assert p["std_error"] == pytest.approx(direct.standard_errors_[p["name"]], rel=1e-6)
        assert p["lower_95"] < p["estimate"] < p["upper_95"]
    assert regular["model"]["converged"] is True
    assert regular["conventions"]["period"] == "year"
    assert regular["conventions"]["currency"] == "USD"
    assert env.get(regular["url"]).json() == regular  # stored: GET gives the same document


def test_forecast_matches_the_published_holdout_years_with_intervals(
    regular: dict[str, Any],
) -> None:
    forecast = regular["forecast"]
    projected = 100 * np.array(forecast["survival"][7:12])
    # FH 2007 show the sBG projection within about a third of a point of years 8-12.
    np.testing.assert_allclose(projected, REGULAR_HOLDOUT_PCT, atol=0.35)
    s, lo, hi = (np.array(forecast[k]) for k in ("survival", "survival_lower", "survival_upper"))
    assert np.all(lo < s) and np.all(s < hi)
    r = np.array(forecast["retention"])
    assert np.all(np.diff(r) > 0)  # retention rises with tenure under heterogeneity (FH 2007)
    # r(t) = S(t) / S(t - 1)
    np.testing.assert_allclose(r[1:], s[1:] / s[:-1], rtol=1e-10)
    fitted = regular["source"]["cohorts"][0]
    assert fitted["survivors"] == REGULAR and fitted["periods_observed"] == 7
    assert fitted["expected_survivors"][1] == pytest.approx(1000 * s[0])


def test_values_follow_the_closed_form_derl_and_del(regular: dict[str, Any]) -> None:
    model = SBG.from_params(params(regular))
    value = regular["value"]
    d = 0.10
    assert value["new_customer_value"] == pytest.approx(100 * model.del_(d)[0], rel=1e-9)
    table = value["by_tenure"]
    assert [row["renewals"] for row in table] == list(range(11))
    for row in table:
        assert row["derl"] == pytest.approx(model.derl(d, row["renewals"])[0], rel=1e-9)
        assert row["residual_value"] == pytest.approx(100 * row["derl"], rel=1e-12)
        assert row["residual_value_minus_point"] < row["residual_value"]
        assert row["residual_value"] < row["residual_value_plus_point"]
    residual = [row["residual_value"] for row in table]
    assert residual == sorted(residual)  # long-tenured customers are worth more (FH 2010)
    # default active base: the cohort's 241 survivors, who have made 7 renewals
    assert value["active_customers"] == 241
    assert value["value_lost_per_churner"] == pytest.approx(table[7]["residual_value"])
    assert value["residual_value_total"] == pytest.approx(241 * table[7]["residual_value"])
    assert value["value_of_one_point_more_retention"] == pytest.approx(
        241 * (table[7]["residual_value_plus_point"] - table[7]["residual_value"])
    )


def test_churn_cost_recomputes_with_other_economics(env: Env, regular: dict[str, Any]) -> None:
    stored = env.get(f"{regular['url']}/churn-cost").json()
    assert stored["value"]["by_tenure"] == regular["value"]["by_tenure"]
    assert stored["value"]["residual_value_total"] == regular["value"]["residual_value_total"]
    doubled = env.get(f"{regular['url']}/churn-cost?value_per_period=200").json()
    # values are linear in the margin per period
    assert doubled["value"]["residual_value_total"] == pytest.approx(
        2 * regular["value"]["residual_value_total"], rel=1e-12
    )
    assert doubled["conventions"]["value_per_period"] == 200
    five = env.get(f"{regular['url']}/churn-cost?points=0.05&max_renewals=2").json()["value"]
    assert five["points"] == 0.05 and len(five["by_tenure"]) == 3 + 1  # 0..2 and the base's 7
    assert (
        five["value_of_one_point_more_retention"]
        > regular["value"]["value_of_one_point_more_retention"]
    )


def spells(start: date) -> list[dict[str, Any]]:
    """The Regular cohort as customer dates: the customers who leave in year k leave half-way
    through it (end = start + (k - 0.5) years); the 241 survivors have no end."""
    out = []
    for k in range(1, 8):
        leaving = REGULAR[k - 1] - REGULAR[k]
        end = start + timedelta(days=round((k - 0.5) * 365.25))
        out += [{"start": start.isoformat(), "end": end.isoformat()}] * leaving
    return out + [{"start": start.isoformat(), "end": None}] * REGULAR[-1]


def test_customer_dates_give_the_same_fit_as_the_counts(env: Env, regular: dict[str, Any]) -> None:
    customers = spells(date(2010, 3, 1))
    # a cohort that started a few weeks before the end is observed for less than a year
    customers += [{"start": "2017-02-01", "end": None}] * 5
    response = env.post(
        {"customers": customers, "observation_end": "2017-03-05", "period": "year", **economics()}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source"]["kind"] == "customers"
    assert [c["name"] for c in body["source"]["cohorts"]] == ["2010"]
    assert body["source"]["cohorts"][0]["survivors"] == REGULAR
    assert body["source"]["dropped_cohorts"] == [
        {"name": "2017", "reason": "observed for less than one full period"}
    ]
    assert params(body) == pytest.approx(params(regular), rel=1e-9)
    # active base: 241 customers with 7 renewals and 5 new ones with none
    assert body["value"]["active_customers"] == 246
    assert env.get(body["url"]).status_code == 200


def test_a_stored_contractual_dataset_can_be_fitted(env: Env, regular: dict[str, Any]) -> None:
    rows = "cohort,period,survivors\n" + "".join(f"2010,{k},{s}\n" for k, s in enumerate(REGULAR))
    upload = env.client.post(
        "/v1/datasets",
        headers=env.mine.headers,
        files={"file": ("cohorts.csv", rows.encode())},
        data={"kind": "contractual"},
    )
    assert upload.status_code == 201, upload.text
    response = env.post({"dataset_id": upload.json()["id"], **economics()})
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["source"]["kind"] == "dataset"
    assert params(body) == pytest.approx(params(regular), rel=1e-9)
    # the customer layout (one row per contract) gives the same cohort
    lines = [f"c{i},{c['start']},{c['end'] or ''}" for i, c in enumerate(spells(date(2010, 3, 1)))]
    contracts = env.client.post(
        "/v1/datasets",
        headers=env.mine.headers,
        files={"file": ("contracts.csv", "\n".join(["customer_id,start,end", *lines]).encode())},
        data={"kind": "contractual"},
    )
    assert contracts.status_code == 201, contracts.text
    by_customer = env.post(
        {"dataset_id": contracts.json()["id"], "observation_end": "2017-03-05", **economics()}
    ).json()
    assert by_customer["source"]["cohorts"][0]["survivors"] == REGULAR
    assert params(by_customer) == pytest.approx(params(regular), rel=1e-9)
    # another workspace cannot fit this data set
    foreign = env.post({"dataset_id": upload.json()["id"], **economics()}, env.other.headers)
    assert foreign.status_code == 404


def fields_of(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in response.json()["errors"]}


def test_impossible_inputs_are_422_problems_naming_the_field(env: Env) -> None:
    rising = env.post({"cohorts": [{"name": "a", "survivors": [100, 120, 90]}], **economics()})
    assert fields_of(rising) == {"body.cohorts.0.survivors"}
    assert "increase" in rising.json()["errors"][0]["message"]
    both = env.post(
        {
            "cohorts": [{"name": "a", "survivors": REGULAR}],
            "customers": [{"start": "2020-01-01"}],
            **economics(),
        }
    )
    assert fields_of(both) == {"body.cohorts", "body.customers"}
    assert fields_of(env.post({"cohorts": [{"name": "a", "survivors": REGULAR}], **economics(discount_rate=-0.1)})) == {"body.discount_rate"}  # fmt: skip
    backwards = env.post(
        {"customers": [{"start": "2020-01-01", "end": "2019-01-01"}], **economics()}
    )
    assert fields_of(backwards) == {"body.customers"}
    no_churn = env.post({"cohorts": [{"name": "a", "survivors": [100, 100, 100]}], **economics()})
    assert no_churn.status_code == 422
    assert no_churn.json()["type"] == PROBLEMS + "fit-failed"


def test_list_delete_and_other_workspaces_get_404(env: Env) -> None:
    created = env.post({"cohorts": [{"name": "a", "survivors": REGULAR}], **economics()}).json()
    listed = env.get("/v1/retention/fits?limit=200").json()
    assert created["id"] in {item["id"] for item in listed["items"]}
    other = env.other.headers
    for path in (created["url"], f"{created['url']}/churn-cost"):
        response = env.get(path, other)
        assert response.status_code == 404
        assert response.json()["type"] == PROBLEMS + "not-found"
    assert env.client.delete(created["url"], headers=other).status_code == 404
    assert env.get("/v1/retention/fits", other).json()["total"] == 0
    assert env.client.delete(created["url"], headers=env.mine.headers).status_code == 204
    assert env.get(created["url"]).status_code == 404
