"""Share tokens (``/v1/share-tokens``, ``/v1/share/{token}/...``): a spreadsheet pulls one
number or a CSV of one fit or business case with a token in the URL; the numbers are those of
the authenticated endpoints; revoked, expired, foreign and mismatched tokens are refused."""

from __future__ import annotations

import csv
import io
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cltv_api.main import create_app
from cltv_api.services.share import TOKEN_PREFIX
from cltv_api.storage.tables import ShareToken
from tests.cltv_api.service.conftest import Credentials, TestClient, make_settings, new_workspace
from tests.cltv_api.service.test_business_cases_api import HAND_CASE, HAND_NPV
from tests.cltv_api.service.test_churn_api import fit_transactions

PROBLEMS = "https://cltv.dev/problems/"
# Valuation of the pulls: a year at 10 % a year, 30 % margin (any valid values would do; the
# JSON endpoint gets the same ones).
VALUATION = {"horizon": "12", "horizon_unit": "months", "discount_rate": "0.1", "margin": "0.3"}


@dataclass
class Env:
    client: TestClient
    mine: Credentials
    other: Credentials
    fit_id: str
    case_id: str

    def share(self, resource_type: str, resource_id: str, **extra: Any) -> Any:
        body = {"resource_type": resource_type, "resource_id": resource_id, **extra}
        return self.client.post("/v1/share-tokens", headers=self.mine.headers, json=body)

    def token(self, resource_type: str, resource_id: str) -> str:
        response = self.share(resource_type, resource_id)
        assert response.status_code == 201, response.text
        token: str = response.json()["token"]
        return token


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    app = create_app(make_settings(tmp_path_factory.mktemp("share") / "data"))
    with TestClient(app, raise_server_exceptions=False) as client:
        mine = new_workspace(app.state.db, "mine")
        fit_id = fit_transactions(client, mine.headers)
        case = client.post("/v1/business-cases", headers=mine.headers, json=HAND_CASE)
        assert case.status_code == 201, case.text
        other = new_workspace(app.state.db, "other")
        yield Env(client, mine, other, fit_id, case.json()["id"])


@pytest.fixture(scope="module")
def segments_json(env: Env) -> dict[str, Any]:
    response = env.client.get(
        f"/v1/fits/{env.fit_id}/segments", headers=env.mine.headers, params=VALUATION
    )
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def pull(env: Env, token: str, what: str, **params: str) -> Any:
    """An unauthenticated GET, as a spreadsheet sends it (no headers)."""
    return env.client.get(f"/v1/share/{token}/{what}", params=params)


def test_token_is_shown_once_stored_hashed_and_listed_by_prefix(env: Env) -> None:
    created = env.share("fit", env.fit_id)
    assert created.status_code == 201, created.text
    body = created.json()
    token = body["token"]
    assert token.startswith(TOKEN_PREFIX) and token.startswith(body["prefix"])
    assert body["urls"]["segments"] == f"/v1/share/{token}/segments.csv"
    listed = env.client.get("/v1/share-tokens", headers=env.mine.headers).json()["items"]
    mine = [item for item in listed if item["id"] == body["id"]]
    assert len(mine) == 1 and "token" not in mine[0] and mine[0]["prefix"] == body["prefix"]
    with env.client.app.state.db.session() as session:  # type: ignore[attr-defined]
        row = session.get(ShareToken, body["id"])
        assert row is not None and token not in (row.token_hash, row.prefix)
    # the token is no API key
    assert env.client.get("/v1/fits", headers={"X-API-Key": token}).status_code == 401


def test_value_equals_the_json_segment_table(env: Env, segments_json: dict[str, Any]) -> None:
    token = env.token("fit", env.fit_id)
    segment = segments_json["segments"][0]
    name = next(iter(segment["segment"].values()))
    for metric in ("customers", "clv_mean", "clv_total_upper", "share_active"):
        response = pull(env, token, "value", metric=metric, segment=name, **VALUATION)
        assert response.status_code == 200, response.text
        assert response.headers["content-type"].startswith("text/plain")
        assert float(response.text) == segment[metric]  # shortest round-trip digits: exact
    total = pull(env, token, "value", metric="clv_total", **VALUATION)
    assert float(total.text) == segments_json["total"]["clv_total"]


def test_value_with_decimal_comma_has_no_thousands_separator(
    env: Env, segments_json: dict[str, Any]
) -> None:
    token = env.token("fit", env.fit_id)
    response = pull(env, token, "value", metric="clv_total", decimal="comma", **VALUATION)
    text = response.text
    expected = segments_json["total"]["clv_total"]
    # 400 customers' total CLTV is in the thousands: a grouping mark would show here
    assert expected > 1000
    assert text.count(",") == 1 and "." not in text and " " not in text and "e" not in text
    assert float(text.replace(",", ".")) == expected


def test_segments_csv_with_semicolon_and_comma_parses_back(
    env: Env, segments_json: dict[str, Any]
) -> None:
    token = env.token("fit", env.fit_id)
    response = pull(env, token, "segments.csv", sep=";", decimal="comma", **VALUATION)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.text), delimiter=";"))
    expected = [*segments_json["segments"], segments_json["total"]]
    assert len(rows) == len(expected)
    for row, want in zip(rows, expected, strict=True):
        for metric in ("customers", "clv_mean", "clv_total", "clv_total_lower"):
            assert float(row[metric].replace(",", ".")) == want[metric]
    assert rows[-1]["channel"] == "(all)"


def test_business_case_value_and_cash_flows(env: Env) -> None:
    token = env.token("business_case", env.case_id)
    npv = pull(env, token, "value", metric="npv")
    assert float(npv.text) == pytest.approx(HAND_NPV, rel=1e-12)  # hand-worked in that module
    flows = pull(env, token, "cashflows.csv", sep=";", decimal="comma")
    assert flows.status_code == 200, flows.text
    rows = list(csv.DictReader(io.StringIO(flows.text), delimiter=";"))
    # net cash flows of the hand-worked case: -500 today, then -20, 480, 905
    assert [float(r["net_cash_flow"].replace(",", ".")) for r in rows] == pytest.approx(
        [-500, -20, 480, 905], abs=1e-9
    )
    assert pull(env, token, "value", metric="break_even").status_code == 200
    assert pull(env, token, "value", metric="clv_mean").status_code == 422


def test_a_fit_token_cannot_read_cash_flows_nor_a_case_token_segments(env: Env) -> None:
    fit_token = env.token("fit", env.fit_id)
    case_token = env.token("business_case", env.case_id)
    refused = pull(env, fit_token, "cashflows.csv")
    assert refused.status_code == 404
    assert refused.headers["content-type"] == "application/problem+json"
    assert pull(env, case_token, "segments.csv").status_code == 404


def test_unknown_revoked_and_expired_tokens_are_refused(env: Env) -> None:
    unknown = pull(env, TOKEN_PREFIX + "a" * 40, "value", metric="clv_mean")
    assert unknown.status_code == 404 and unknown.json()["type"] == PROBLEMS + "not-found"
    assert pull(env, "garbage", "value", metric="clv_mean").status_code == 404

    created = env.share("fit", env.fit_id).json()
    token = created["token"]
    assert pull(env, token, "value", metric="customers").status_code == 200
    revoked = env.client.delete(f"/v1/share-tokens/{created['id']}", headers=env.mine.headers)
    assert revoked.status_code == 204
    after = pull(env, token, "value", metric="customers")
    assert after.status_code == 401 and "revoked" in after.json()["detail"]
    assert token not in after.json()["detail"]

    soon = datetime.now(UTC) + timedelta(hours=1)
    expiring = env.share("fit", env.fit_id, expires_at=soon.isoformat()).json()
    assert pull(env, expiring["token"], "value", metric="customers").status_code == 200
    with env.client.app.state.db.session() as session:  # type: ignore[attr-defined]
        row = session.get(ShareToken, expiring["id"])
        assert row is not None
        row.expires_at = datetime.now(UTC) - timedelta(seconds=1)
    expired = pull(env, expiring["token"], "segments.csv")
    assert expired.status_code == 401 and "expired" in expired.json()["detail"]
    past = env.share("fit", env.fit_id, expires_at=(datetime.now(UTC) - timedelta(1)).isoformat())
    assert past.status_code == 422


def test_another_workspaces_resources_cannot_be_shared_or_revoked(env: Env) -> None:
    for resource_type, resource_id in (("fit", env.fit_id), ("business_case", env.case_id)):
        body = {"resource_type": resource_type, "resource_id": resource_id}
        response = env.client.post("/v1/share-tokens", headers=env.other.headers, json=body)
        assert response.status_code == 404
    mine = env.share("fit", env.fit_id).json()
    other_delete = env.client.delete(f"/v1/share-tokens/{mine['id']}", headers=env.other.headers)
    assert other_delete.status_code == 404
    listed = env.client.get("/v1/share-tokens", headers=env.other.headers).json()["items"]
    assert listed == []


def test_management_needs_a_key_with_write_scope(env: Env) -> None:
    body = {"resource_type": "fit", "resource_id": env.fit_id}
    assert env.client.post("/v1/share-tokens", json=body).status_code == 401
    reader = new_workspace(env.client.app.state.db, "reader", scopes=("read",))  # type: ignore[attr-defined]
    assert env.client.post("/v1/share-tokens", headers=reader.headers, json=body).status_code == 403


def test_pull_with_impossible_csv_options_is_422(env: Env) -> None:
    token = env.token("fit", env.fit_id)
    response = pull(env, token, "segments.csv", sep=",", decimal="comma")
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["query.sep"]


def test_problem_answers_never_echo_the_token(env: Env) -> None:
    # Regression: the problems' `instance` carried the request path, token included.
    created = env.share("fit", env.fit_id).json()
    token = created["token"]
    answers = [
        pull(env, token, "cashflows.csv"),  # a fit token has no cash flows: 404
        pull(env, token, "value", metric="no such metric"),  # 422
        env.client.post(f"/v1/share/{token}/value"),  # 405
    ]
    env.client.delete(f"/v1/share-tokens/{created['id']}", headers=env.mine.headers)
    answers.append(pull(env, token, "value", metric="customers"))  # revoked: 401
    assert [a.status_code for a in answers] == [404, 422, 405, 401]
    for answer in answers:
        assert token not in answer.text
        assert answer.json()["instance"].startswith("/v1/share/<token>/")


def test_the_token_is_never_logged(env: Env, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    token = env.token("fit", env.fit_id)
    pull(env, token, "value", metric="customers")
    pull(env, token, "cashflows.csv")  # 404
    pull(env, token, "value", metric="no such metric")  # 422
    # the test client (httpx) logs the URLs it requests; the service must log nothing of it
    service_logs = [r.getMessage() for r in caplog.records if r.name.startswith("cltv_api")]
    assert not any(token in message for message in service_logs)


def test_a_deleted_resource_is_404_and_unknown_segments_and_metrics_are_named(env: Env) -> None:
    case = env.client.post(
        "/v1/business-cases", headers=env.mine.headers, json={**HAND_CASE, "name": "short-lived"}
    ).json()
    token = env.token("business_case", case["id"])
    assert pull(env, token, "value", metric="roi").status_code == 200
    env.client.delete(f"/v1/business-cases/{case['id']}", headers=env.mine.headers)
    assert pull(env, token, "value", metric="roi").status_code == 404
    assert pull(env, token, "cashflows.csv").status_code == 404

    fit_token = env.token("fit", env.fit_id)
    missing = pull(env, fit_token, "value", metric="clv_mean", segment="no such channel")
    assert missing.status_code == 404
    assert [e["field"] for e in missing.json()["errors"]] == ["query.segment"]
    wrong = pull(env, fit_token, "value", metric="npv")
    assert wrong.status_code == 422
    assert [e["field"] for e in wrong.json()["errors"]] == ["query.metric"]


def test_share_tokens_are_redacted_from_logged_paths() -> None:
    from cltv_api.problems import redact_path

    assert redact_path("/v1/share/cltv_share_abc123/value") == "/v1/share/<token>/value"
    assert redact_path("/v1/fits/fit_1/segments") == "/v1/fits/fit_1/segments"
