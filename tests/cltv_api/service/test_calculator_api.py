"""The quick calculator over HTTP: ``POST /v1/calculator`` (JSON) and ``GET /v1/calculator``
(query parameters), hand-worked values, and 422 problems naming the offending field.

The client runs the application WITHOUT its lifespan: no database, no data directory, no job
worker exist, so every answer here also shows that the calculator is stateless.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cltv_api.main import create_app
from cltv_api.problems import PROBLEM_MEDIA_TYPE
from tests.cltv_api.service.conftest import TestClient, make_settings

URL = "/v1/calculator"

# v = 1000 x 1 x 1 = 1000 a month, r = 0.8, no discounting, margin at the start of each month,
# unlimited horizon: CLTV = v / (1 - r) = 5000 and lifetime 1 / (1 - r) = 5 months.
HAND_WORKED: dict[str, Any] = {
    "average_order_value": 1000,
    "purchases_per_period": 1,
    "gross_margin": 1,
    "retention_rate": 0.8,
    "annual_discount_rate": 0,
    "period": "month",
    "timing": "start",
}


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    data_dir: Path = tmp_path_factory.mktemp("calculator") / "data"
    app = create_app(make_settings(data_dir))
    # Not entered as a context manager: the lifespan (database, worker) never runs.
    yield TestClient(app, raise_server_exceptions=False)
    assert not data_dir.exists(), "the calculator must not create the data directory"


def problem_fields(response: Any) -> dict[str, str]:
    """{field: message} of a 422 problem response."""
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    return {error["field"]: error["message"] for error in response.json()["errors"]}


def test_hand_worked_example_without_discounting_is_margin_over_churn(client: TestClient) -> None:
    response = client.post(URL, json=HAND_WORKED)  # no API key: the calculator needs none
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["clv"] == pytest.approx(5000.0, rel=1e-12)
    assert body["expected_lifetime_periods"] == pytest.approx(5.0, rel=1e-12)
    assert body["margin_per_period"] == 1000.0
    assert body["discount_rate_per_period"] == 0.0
    assert body["ltv_to_cac"] is None  # no acquisition cost given
    assert body["cac_payback_periods"] == 0
    # Survival r^(t-1) = 1, 0.8, 0.64; cumulative value 1000, 1000 + 800, 1800 + 640.
    curve = body["curve"]
    assert curve["period"][:3] == [1, 2, 3]
    assert curve["survival"][:3] == pytest.approx([1.0, 0.8, 0.64], rel=1e-12)
    assert curve["cumulative_value"][:3] == pytest.approx([1000.0, 1800.0, 2440.0], rel=1e-12)
    # An unlimited horizon is summed in closed form; the curve stops at 600 periods.
    assert curve["truncated"] is True
    assert len(curve["period"]) == 600


def test_answer_echoes_inputs_and_conventions(client: TestClient) -> None:
    body = client.post(URL, json={**HAND_WORKED, "gross_margin": 0.3, "currency": "EUR"}).json()
    assert body["inputs"] == {
        **HAND_WORKED,
        "gross_margin": 0.3,
        "churn_rate": pytest.approx(0.2, rel=1e-12),
        "horizon_periods": None,
        "acquisition_cost": 0.0,
        "currency": "EUR",
    }
    conventions = body["conventions"]
    assert conventions["period"] == "month"
    assert conventions["currency"] == "EUR"
    assert conventions["timing"] == "start"
    assert conventions["first_period_included"] is True
    assert conventions["horizon_periods"] is None
    assert conventions["horizon_description"].startswith("unlimited")
    assert conventions["value_basis"] == "margin"  # gross_margin < 1: margin, not revenue
    assert conventions["formula"].startswith("CLTV = v (1+d) / (1+d-r)")
    assert "Gupta & Lehmann (2003)" in conventions["source"]


def test_revenue_basis_when_margin_is_one(client: TestClient) -> None:
    conventions = client.post(URL, json=HAND_WORKED).json()["conventions"]
    assert conventions["value_basis"] == "revenue"


def test_get_with_query_parameters_answers_like_post(client: TestClient) -> None:
    params = {**HAND_WORKED, "horizon_periods": 24, "annual_discount_rate": 0.1}
    posted = client.post(URL, json=params)
    got = client.get(URL, params=params)
    assert got.status_code == 200, got.text
    assert got.json() == posted.json()
    assert len(got.json()["curve"]["period"]) == 24
    assert got.json()["curve"]["truncated"] is False


def test_end_timing_finite_horizon_by_hand(client: TestClient) -> None:
    # v = 100 x 2 x 0.5 = 100 a year, r = 0.9, d = 12% a year, margin at the end of each year,
    # 3 years: 100/1.12 + 90/1.12^2 + 81/1.12^3 = 89.2857 + 71.7474 + 57.6543 = 218.6874.
    body = client.post(
        URL,
        json={
            "average_order_value": 100,
            "purchases_per_period": 2,
            "gross_margin": 0.5,
            "retention_rate": 0.9,
            "annual_discount_rate": 0.12,
            "horizon_periods": 3,
            "acquisition_cost": 150,
            "period": "year",
            "timing": "end",
        },
    ).json()
    clv = 100 / 1.12 + 90 / 1.12**2 + 81 / 1.12**3
    assert body["clv"] == pytest.approx(clv, rel=1e-12)
    assert body["clv"] == pytest.approx(218.6874, abs=1e-4)
    assert body["ltv_to_cac"] == pytest.approx(clv / 150, rel=1e-12)
    # Cumulative 89.29 after year 1, 161.03 after year 2 >= 150: paid back in year 2.
    assert body["cac_payback_periods"] == 2
    assert body["simple_payback_periods"] == pytest.approx(1.5)  # 150 / 100, no churn
    # Lifetime within 3 years, undiscounted: 1 + 0.9 + 0.81.
    assert body["expected_lifetime_periods"] == pytest.approx(2.71, rel=1e-12)
    assert body["conventions"]["formula"].startswith(
        "CLTV = sum over t=1..H of v r^(t-1) / (1+d)^t"
    )


def test_gupta_lehmann_margin_multiple(client: TestClient) -> None:
    # Gupta & Lehmann (2005), Managing Customers as Investments, Table 2.2: retention 80% and a
    # 12% annual discount rate give the margin multiple r / (1 + i - r) = 2.5. End-of-period
    # CLTV counts year 1 for sure, so CLTV x r = 2.5 x v (v = 1000 here).
    body = client.get(
        URL, params={**HAND_WORKED, "annual_discount_rate": 0.12, "period": "year", "timing": "end"}
    ).json()
    assert body["clv"] * 0.8 == pytest.approx(2500.0, rel=1e-12)


def test_monthly_discount_rate_is_converted_from_the_annual_rate(client: TestClient) -> None:
    body = client.post(URL, json={**HAND_WORKED, "annual_discount_rate": 0.1}).json()
    # (1 + 10%)^(1/12) - 1 = 0.7974% a month (effective, not 10% / 12 = 0.8333%).
    assert body["discount_rate_per_period"] == pytest.approx(1.1 ** (1 / 12) - 1, rel=1e-12)
    assert body["discount_rate_per_period"] == pytest.approx(0.0079741, abs=1e-7)


def test_churn_rate_is_equivalent_to_retention_rate(client: TestClient) -> None:
    with_retention = {**HAND_WORKED, "annual_discount_rate": 0.1, "acquisition_cost": 2000}
    with_churn = {k: v for k, v in with_retention.items() if k != "retention_rate"}
    retained = client.post(URL, json=with_retention).json()
    churned = client.post(URL, json={**with_churn, "churn_rate": 0.2}).json()
    for name in ("clv", "ltv_to_cac", "expected_lifetime_periods", "simple_payback_periods"):
        assert churned[name] == pytest.approx(retained[name], rel=1e-12), name
    assert churned["cac_payback_periods"] == retained["cac_payback_periods"] == 3
    assert churned["inputs"]["retention_rate"] == pytest.approx(0.8, rel=1e-12)
    assert churned["inputs"]["churn_rate"] == pytest.approx(0.2, rel=1e-12)


def test_infinite_lifetime_is_null_not_infinity(client: TestClient) -> None:
    # Retention 1 with discounting: finite value v (1+d) / d, but an infinite expected lifetime.
    response = client.post(
        URL, json={**HAND_WORKED, "retention_rate": 1, "annual_discount_rate": 0.1}
    )
    assert response.status_code == 200, response.text
    body = response.json()
    d = 1.1 ** (1 / 12) - 1
    assert body["clv"] == pytest.approx(1000 * (1 + d) / d, rel=1e-9)
    assert body["expected_lifetime_periods"] is None


@pytest.mark.parametrize("method", ["POST", "GET"])
def test_retention_above_one_names_the_field(client: TestClient, method: str) -> None:
    params = {**HAND_WORKED, "retention_rate": 1.5}
    response = client.post(URL, json=params) if method == "POST" else client.get(URL, params=params)
    location = "body" if method == "POST" else "query"
    assert problem_fields(response) == {
        f"{location}.retention_rate": "must be between 0 and 1 (a share, not a percent)"
    }
    assert response.json()["errors"][0]["value"] == "1.5"


def test_churn_above_one_names_churn_rate_with_its_value(client: TestClient) -> None:
    params = {k: v for k, v in HAND_WORKED.items() if k != "retention_rate"}
    response = client.get(URL, params={**params, "churn_rate": 1.5})
    assert list(problem_fields(response)) == ["query.churn_rate"]
    assert response.json()["errors"][0]["value"] == "1.5"  # not the derived retention -0.5


def test_both_rates_given_names_both(client: TestClient) -> None:
    response = client.post(URL, json={**HAND_WORKED, "churn_rate": 0.2})
    fields = problem_fields(response)
    assert set(fields) == {"body.retention_rate", "body.churn_rate"}
    assert all("not both" in message for message in fields.values())


def test_neither_rate_given_names_both(client: TestClient) -> None:
    params = {k: v for k, v in HAND_WORKED.items() if k != "retention_rate"}
    fields = problem_fields(client.get(URL, params=params))
    assert set(fields) == {"query.retention_rate", "query.churn_rate"}
    assert all(message.startswith("required") for message in fields.values())


def test_nan_and_infinity_are_rejected(client: TestClient) -> None:
    # Python's json module writes NaN and Infinity literals; the API must not accept them.
    body = json.dumps({**HAND_WORKED, "retention_rate": math.nan, "acquisition_cost": math.inf})
    response = client.post(URL, content=body, headers={"Content-Type": "application/json"})
    fields = problem_fields(response)
    assert set(fields) == {"body.retention_rate", "body.acquisition_cost"}
    assert all("finite" in message for message in fields.values())
    for text in ("nan", "inf", "-inf"):
        fields = problem_fields(client.get(URL, params={**HAND_WORKED, "gross_margin": text}))
        assert list(fields) == ["query.gross_margin"], text


def test_every_impossible_field_is_reported_at_once(client: TestClient) -> None:
    response = client.post(
        URL,
        json={**HAND_WORKED, "gross_margin": 30, "purchases_per_period": -1, "horizon_periods": 0},
    )
    fields = problem_fields(response)
    assert set(fields) == {"body.gross_margin", "body.purchases_per_period", "body.horizon_periods"}
    assert response.json()["type"] == "https://cltv.dev/problems/invalid-input"


def test_unlimited_horizon_without_retention_loss_or_discount_is_rejected(
    client: TestClient,
) -> None:
    # Retention 1 and no discounting: the sum v + v + ... has no limit.
    response = client.get(URL, params={**HAND_WORKED, "retention_rate": 1})
    assert list(problem_fields(response)) == ["query.horizon_periods"]


def test_negative_discount_rate_that_makes_the_sum_diverge_is_rejected(client: TestClient) -> None:
    # -50% a year is d = 0.5^(1/12) - 1 = -5.6% a month; r / (1 + d) = 0.99 / 0.944 > 1.
    params = {**HAND_WORKED, "retention_rate": 0.99, "annual_discount_rate": -0.5}
    fields = problem_fields(client.post(URL, json=params))
    assert set(fields) == {"body.horizon_periods", "body.annual_discount_rate"}
    # With a horizon the sum is finite and answered.
    finite = client.post(URL, json={**params, "horizon_periods": 12})
    assert finite.status_code == 200, finite.text


def test_value_too_large_for_floating_point_is_422_not_500(client: TestClient) -> None:
    # -90% a year over 10,000 months: r / (1 + d) = 0.9 / 0.825 = 1.09, and 1.09^10000 overflows.
    params = {
        **HAND_WORKED,
        "retention_rate": 0.9,
        "annual_discount_rate": -0.9,
        "horizon_periods": 10000,
    }
    fields = problem_fields(client.post(URL, json=params))
    assert list(fields) == ["body.annual_discount_rate"]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"period": "day"}, "query.period"),
        ({"timing": "middle"}, "query.timing"),
        ({"horizon_periods": "12.5"}, "query.horizon_periods"),
        ({"average_order_value": "abc"}, "query.average_order_value"),
        ({"currency": "X" * 13}, "query.currency"),
        ({"retention": "0.8"}, "query.retention"),  # unknown parameter (a typo)
    ],
)
def test_malformed_query_parameters_name_the_field(
    client: TestClient, params: dict[str, str], field: str
) -> None:
    assert field in problem_fields(client.get(URL, params={**HAND_WORKED, **params}))


def test_openapi_documents_both_forms_without_auth(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    operations = schema["paths"]["/v1/calculator"]
    assert set(operations) == {"get", "post"}
    for operation in operations.values():
        assert "security" not in operation
        assert "application/problem+json" in operation["responses"]["422"]["content"]
    request = schema["components"]["schemas"]["CalculatorRequest"]
    assert request["examples"][0]["retention_rate"] == 0.8
