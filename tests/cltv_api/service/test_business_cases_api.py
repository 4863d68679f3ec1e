"""``/v1/business-cases``: a hand-worked manual case, versions, baselines from a stored fit and
from a retention fit, break-even, tornado and seeded Monte Carlo, safe CSV with locale options,
the XLSX workbook's formulas, 422 problems naming the field and workspace isolation."""

from __future__ import annotations

import copy
import csv
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import openpyxl
import pytest

from cltv_api.exports.csv_safe import UTF8_BOM
from cltv_api.main import create_app
from tests.cltv_api.service.conftest import Credentials, TestClient, make_settings, new_workspace
from tests.cltv_api.service.test_churn_api import fit_transactions

PROBLEMS = "https://cltv.dev/problems/"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
INJECTION = '=HYPERLINK("http://evil.example","click me")'

# A case small enough to do by hand: yearly periods, 10% a year, cash at the end of each year,
# 1,000 customers with margin 10 and retention 0.9; the initiative lifts retention to 0.95.
HAND_CASE: dict[str, Any] = {
    "name": "loyalty call",
    "initiative": {
        "name": "call detractors",
        "currency": "EUR",
        "one_off_cost": 500.0,
        "running_cost_per_period": 20.0,
        "horizon_periods": 3,
        "annual_discount_rate": 0.10,
        "period": "year",
    },
    "baseline": {
        "kind": "manual",
        "segments": [
            {"name": "mass", "customers": 1000, "margin_per_customer": 10, "retention": 0.9}
        ],
    },
    "effects": {"mass": {"churn_reduction_points": 0.05}},
}
# Survival without / with: 1, 0.9, 0.81 / 1, 0.95, 0.9025; value = 1000 x 10 x S_t:
# baseline 10000, 9000, 8100; with 10000, 9500, 9025; incremental 0, 500, 925.
# Net cash flow: -500 (today), -20, 480, 905.
HAND_NET = [-500.0, -20.0, 480.0, 905.0]
HAND_NPV = -500 - 20 / 1.1 + 480 / 1.1**2 + 905 / 1.1**3
HAND_PV_BENEFITS = 500 / 1.1**2 + 925 / 1.1**3
HAND_PV_COSTS = 500 + 20 / 1.1 + 20 / 1.1**2 + 20 / 1.1**3
# cumulative net: -500, -520, -40, 865: reached in year 3, 2 + 40 / 905 years
HAND_PAYBACK = 2 + 40 / 905


@dataclass
class Env:
    client: TestClient
    mine: Credentials
    other: Credentials
    fit_id: str

    def post(self, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
        return self.client.post(
            "/v1/business-cases", headers=headers or self.mine.headers, json=body
        )

    def get(self, path: str, headers: dict[str, str] | None = None, **extra: str) -> Any:
        return self.client.get(path, headers={**(headers or self.mine.headers), **extra})


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    app = create_app(make_settings(tmp_path_factory.mktemp("cases") / "data"))
    with TestClient(app, raise_server_exceptions=False) as client:
        mine = new_workspace(app.state.db, "mine")
        fit_id = fit_transactions(client, mine.headers)
        yield Env(client, mine, new_workspace(app.state.db, "other"), fit_id)


def case(**changes: Any) -> dict[str, Any]:
    body = copy.deepcopy(HAND_CASE)
    body.update(changes)
    return body


@pytest.fixture(scope="module")
def hand(env: Env) -> dict[str, Any]:
    response = env.post(case(name="hand-worked"))
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


def test_manual_case_matches_the_hand_worked_npv(hand: dict[str, Any]) -> None:
    result = hand["result"]
    assert result["npv"] == pytest.approx(HAND_NPV, rel=1e-12)
    assert result["pv_benefits"] == pytest.approx(HAND_PV_BENEFITS, rel=1e-12)
    assert result["pv_costs"] == pytest.approx(HAND_PV_COSTS, rel=1e-12)
    assert result["roi"] == pytest.approx((HAND_PV_BENEFITS - HAND_PV_COSTS) / HAND_PV_COSTS)
    assert result["payback_periods"] == pytest.approx(HAND_PAYBACK, rel=1e-12)
    assert [p["net_cash_flow"] for p in result["periods"]] == pytest.approx(HAND_NET)
    # customers kept: 1000 x (0.95 - 0.9) and 1000 x (0.9025 - 0.81)
    retained = [p["incremental_customers_retained"] for p in result["periods"]]
    assert retained == pytest.approx([0, 0, 50, 92.5])
    assert result["conventions"]["currency"] == "EUR"
    assert result["conventions"]["period"] == "year"
    assert result["conventions"]["discount_rate_per_period"] == pytest.approx(0.10)
    assert hand["version"] == 1 and hand["latest_version"] == 1


def test_break_even_effect_gives_zero_npv(env: Env, hand: dict[str, Any]) -> None:
    effect = hand["result"]["break_even"]["effects"][0]
    assert effect["input"] == "segments[0].effects.churn_reduction_points"
    at_break_even = case(
        name="at break-even",
        effects={"mass": {"churn_reduction_points": effect["break_even_value"]}},
    )
    npv = env.post(at_break_even).json()["result"]["npv"]
    assert abs(npv) < 1e-6 * HAND_PV_COSTS


def test_tornado_puts_the_widest_swing_first_and_ends_at_the_base(hand: dict[str, Any]) -> None:
    tornado = hand["result"]["tornado"]
    swings = [bar["swing"] for bar in tornado["bars"]]
    assert swings == sorted(swings, reverse=True)
    assert tornado["base_npv"] == pytest.approx(HAND_NPV)
    cost = next(b for b in tornado["bars"] if b["input"] == "one_off_cost")
    # a one-off cost 20% higher lowers the NPV by exactly 100 (paid today, undiscounted)
    assert cost["npv_low"] - HAND_NPV == pytest.approx(100)
    assert HAND_NPV - cost["npv_high"] == pytest.approx(100)


def test_monte_carlo_is_seeded_and_reports_percentiles(env: Env) -> None:
    body = case(
        name="simulated",
        monte_carlo={
            "draws": 2000,
            "seed": 7,
            "distributions": [
                {
                    "input": "segments[0].effects.churn_reduction_points",
                    "kind": "uniform",
                    "low": 0.01,
                    "high": 0.09,
                }
            ],
        },
    )
    first = env.post(body).json()["result"]["monte_carlo"]
    again = env.post(body).json()["result"]["monte_carlo"]
    assert first["percentiles"] == again["percentiles"]  # same seed, same draws
    p = first["percentiles"]
    assert p["5"] < p["25"] < p["50"] < p["75"] < p["95"]
    # NPV is increasing in the effect; a uniform effect on [0.01, 0.09] has its median at 0.05,
    # the hand-worked case, so the median NPV is close to it
    assert p["50"] == pytest.approx(HAND_NPV, rel=0.05)
    assert 0 < first["probability_positive"] < 1
    assert first["n_draws"] == 2000 and first["currency"] == "EUR"


def test_versions_by_name_put_get_and_delete(env: Env) -> None:
    v1 = env.post(case(name="versioned")).json()
    cheaper = case(name="versioned")
    cheaper["initiative"]["one_off_cost"] = 100.0
    v2 = env.post(cheaper).json()
    assert v2["id"] == v1["id"] and v2["version"] == 2
    assert v2["result"]["npv"] == pytest.approx(v1["result"]["npv"] + 400)
    latest = env.get(v1["url"]).json()
    assert latest["version"] == 2 and latest["latest_version"] == 2
    old = env.get(f"{v1['url']}/versions/1").json()
    assert old["result"]["npv"] == v1["result"]["npv"] and old["version_id"] == v1["version_id"]
    # any version's own id finds the case too
    assert env.get(f"/v1/business-cases/{v2['version_id']}").json()["id"] == v1["id"]
    put = env.client.put(v1["url"], headers=env.mine.headers, json=case(name="versioned"))
    assert put.status_code == 200 and put.json()["version"] == 3
    renamed = env.client.put(v1["url"], headers=env.mine.headers, json=case(name="other name"))
    assert renamed.status_code == 422
    assert renamed.json()["errors"][0]["field"] == "body.name"
    assert env.get(f"{v1['url']}/versions/9").status_code == 404
    listed = env.get("/v1/business-cases?limit=200").json()
    mine = [item for item in listed["items"] if item["name"] == "versioned"]
    assert len(mine) == 1 and mine[0]["version"] == 3 and mine[0]["id"] == v1["id"]
    assert env.client.delete(v1["url"], headers=env.mine.headers).status_code == 204
    assert env.get(v1["url"]).status_code == 404
    assert env.get(f"{v1['url']}/versions/1").status_code == 404


def test_csv_neutralises_formula_injection_and_keeps_numbers(env: Env) -> None:
    created = env.post(case(name=INJECTION)).json()
    response = env.get(f"{created['url']}?format=csv")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][:5] == ["case", "version", "currency", "period_unit", "period"]
    assert rows[1][0] == "'" + INJECTION  # text, not a formula
    net = [float(r[rows[0].index("net_cash_flow")]) for r in rows[1:]]
    assert net == pytest.approx(HAND_NET)
    assert rows[1][2] == "EUR" and rows[1][3] == "year"
    by_accept = env.get(created["url"], Accept="text/csv")
    assert by_accept.text == response.text


def test_csv_locale_options(env: Env, hand: dict[str, Any]) -> None:
    response = env.get(f"{hand['url']}?format=csv&sep=;&decimal=comma&bom=true")
    assert response.status_code == 200
    text = response.content.decode("utf-8")
    assert text.startswith(UTF8_BOM)
    rows = list(csv.reader(io.StringIO(text.removeprefix(UTF8_BOM)), delimiter=";"))
    factor = rows[2][rows[0].index("discount_factor")]
    assert factor == "0,9090909090909091"  # 1 / 1.1 with a decimal comma
    bad = env.get(f"{hand['url']}?format=csv&sep=,&decimal=comma")
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "query.sep"


def test_xlsx_has_named_inputs_and_formula_cash_flows(env: Env) -> None:
    created = env.post(case(name=INJECTION)).json()
    response = env.get(f"{created['url']}?format=xlsx")
    assert response.status_code == 200
    assert response.headers["content-type"] == XLSX
    assert env.get(created["url"], Accept=XLSX).content[:2] == b"PK"
    book = openpyxl.load_workbook(io.BytesIO(response.content))
    assert book.sheetnames[:3] == ["Inputs", "Cash flows", "Results"]
    inputs = book["Inputs"]
    title = inputs["A1"]
    assert title.data_type == "s" and INJECTION in str(title.value)  # text, not a formula
    names = book.defined_names
    assert "in_one_off_cost" in names and "in_s1_retention" in names
    sheet, cell = next(iter(names["in_one_off_cost"].destinations))
    assert sheet == "Inputs" and book[sheet][cell.replace("$", "")].value == 500.0
    flows = book["Cash flows"]
    header = [c.value for c in flows[1]]
    net_col = header.index("Net cash flow") + 1
    for row in range(2, 2 + 4):  # periods 0..3
        assert flows.cell(row, net_col).data_type == "f"
    assert "in_running_cost" in str(flows.cell(3, header.index("Costs") + 1).value)
    results = book["Results"]
    assert results["A2"].value == "NPV" and results["B2"].data_type == "f"


def test_baseline_from_a_stored_fit_values_each_segment_as_the_segment_table(env: Env) -> None:
    body = case(
        name="from the fit",
        baseline={"kind": "fit", "fit_id": env.fit_id, "margin": 0.3},
        effects={"*": {"churn_reduction_share": 0.1}},
    )
    body["initiative"].update(period="month", horizon_periods=12)
    response = env.post(body)
    assert response.status_code == 201, response.text
    result = response.json()["result"]
    table = env.get(
        f"/v1/fits/{env.fit_id}/segments?horizon=12&horizon_unit=months&discount_rate=0.1"
        "&margin=0.3&by=channel"
    ).json()
    # The baseline discounted with the plan's monthly factors is the segment's 12-month CLTV
    # (both cash at the end of each month, 10% a year).
    expected = {f"channel={s['segment']['channel']}": s["clv_total"] for s in table["segments"]}
    got = {s["name"]: s["pv_baseline_value"] for s in result["segments"]}
    assert got == pytest.approx(expected, rel=1e-9)
    assert all(
        b["kind"] == "curve" and len(b["value_per_period"]) == 12 for b in result["baselines"]
    )
    assert result["total_incremental_value"] > 0
    only_online = case(
        name="online only",
        baseline={"kind": "fit", "fit_id": env.fit_id, "segments": ["channel=Online"]},
    )
    only_online["effects"] = {"channel=Online": {"spend_uplift": 0.05}}
    response = env.post(only_online)
    assert response.status_code == 201, response.text
    assert [s["name"] for s in response.json()["result"]["segments"]] == ["channel=Online"]


def test_a_bgbb_baseline_needs_plan_periods_of_whole_opportunities(env: Env) -> None:
    # BG/BB counts one purchase opportunity per week of the fit: a month (4.35 weeks) cannot be
    # a plan period, a week can.
    fit_id = fit_transactions(env.client, env.mine.headers, model="bgbb")
    body = case(name="discrete", baseline={"kind": "fit", "fit_id": fit_id})
    body["initiative"].update(period="month", horizon_periods=6)
    assert fields(env.post(body)) == {"body.initiative.period"}
    body["initiative"].update(period="week", horizon_periods=12)
    body["effects"] = {"*": {"churn_reduction_share": 0.1}}
    response = env.post(body)
    assert response.status_code == 201, response.text
    assert response.json()["result"]["total_incremental_value"] > 0


def test_baseline_from_a_retention_fit(env: Env) -> None:
    fit = env.client.post(
        "/v1/retention/fits",
        headers=env.mine.headers,
        json={
            "cohorts": [
                {"name": "regular", "survivors": [1000, 631, 468, 382, 326, 289, 262, 241]}
            ],
            "value_per_period": 100.0,
            "discount_rate": 0.1,
            "currency": "USD",
        },
    ).json()
    body = case(
        name="contractual",
        baseline={"kind": "retention_fit", "retention_fit_id": fit["id"], "renewals": 0},
        effects={"*": {"churn_reduction_share": 0.1}},
    )
    result = env.post(body).json()["result"]
    alpha, beta = (p["estimate"] for p in fit["model"]["parameters"])
    # 241 customers paying 100 a year; without the initiative, year 2 keeps r(1) of them:
    # r(1) = beta / (alpha + beta) (FH 2007)
    assert result["periods"][1]["baseline_value"] == pytest.approx(241 * 100)
    assert result["periods"][2]["baseline_value"] == pytest.approx(
        241 * 100 * beta / (alpha + beta), rel=1e-9
    )
    assert result["baselines"][0]["sbg"]["renewals"] == 0


def fields(response: Any) -> set[str]:
    assert response.status_code == 422, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return {e["field"] for e in response.json()["errors"]}


def test_impossible_inputs_are_422_problems_naming_the_field(env: Env) -> None:
    over = case()
    over["baseline"]["segments"][0]["retention"] = 1.2
    assert fields(env.post(over)) == {"body.baseline.segments.0.retention"}
    negative = case()
    negative["initiative"]["horizon_periods"] = -3
    assert fields(env.post(negative)) == {"body.initiative.horizon_periods"}
    larger = case(effects={"mass": {"churn_reduction_points": 0.2}})  # churn is only 0.1
    response = env.post(larger)
    assert fields(response) == {"body.effects.mass.churn_reduction_points"}
    assert "larger than the current churn" in response.json()["errors"][0]["message"]
    draws = case(monte_carlo={"draws": 10**9})
    response = env.post(draws)
    assert fields(response) == {"body.monte_carlo.draws"}
    assert "100,000" in response.json()["errors"][0]["message"]
    unknown = case(effects={"vip": {"spend_uplift": 0.1}})
    assert fields(env.post(unknown)) == {"body.effects.vip"}
    start = case()
    start["initiative"]["start_period"] = 3
    assert fields(env.post(start)) == {"body.initiative.start_period"}
    bad_range = case(sensitivity={"ranges": [{"input": "no_such_input", "low": 0, "high": 1}]})
    assert fields(env.post(bad_range)) == {"body.sensitivity.ranges.0"}


def test_other_workspaces_get_404_on_every_case_route(env: Env, hand: dict[str, Any]) -> None:
    other = env.other.headers
    for path in (hand["url"], f"{hand['url']}/versions/1", f"{hand['url']}?format=xlsx"):
        response = env.get(path, other)
        assert response.status_code == 404
        assert response.json()["type"] == PROBLEMS + "not-found"
    assert (
        env.client.put(hand["url"], headers=other, json=case(name="hand-worked")).status_code == 404
    )
    assert env.client.delete(hand["url"], headers=other).status_code == 404
    assert env.get("/v1/business-cases", other).json()["total"] == 0
    # nor can they build a case on this workspace's fits
    fitted = case(name="theft", baseline={"kind": "fit", "fit_id": env.fit_id})
    assert env.post(fitted, other).status_code == 404
    assert env.get(hand["url"]).status_code == 200  # still there for its owner
