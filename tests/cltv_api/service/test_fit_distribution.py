"""``GET /v1/fits/{id}/distribution``: histograms of P(alive), CLTV and expected purchases, on a
small hand-made transaction log whose P(alive) values can be checked by hand from the fitted
BG/NBD parameters, and against the fit's own customer list."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import numpy as np
import pyarrow as pa
import pytest

from cltv_api.engine.backends import Engine
from cltv_api.main import create_app
from tests.cltv_api.service.conftest import Credentials, TestClient, make_settings, new_workspace
from tests.cltv_api.service.test_datasets import PROBLEMS

START = date(2024, 1, 1)


def purchases() -> list[tuple[str, str, float, str]]:
    """15 customers, weekly purchases from Monday 2024-01-01 (the last one in week 26):

    * ``one-0`` .. ``one-5`` buy once (weeks 0, 3, ..., 15) and ``end`` once in week 26: no
      repeat purchase, so P(alive) = 1 exactly in BG/NBD (a customer can only drop out after a
      purchase; Fader, Hardie & Lee 2005, eq. 6 with x = 0);
    * ``steady-i`` buy every third week from week i to week 24 or 25: alive, high P(alive);
    * ``lapsed-i`` buy every second week up to week 6..10, then stop: low P(alive).

    Channels alternate ``shop`` (even i) and ``web`` (odd i); ``end`` is ``web``.
    """
    rows: list[tuple[str, str, float, str]] = []

    def buy(customer: str, channel: str, weeks: range | list[int], amount: float) -> None:
        rows.extend(
            (customer, (START + timedelta(weeks=w)).isoformat(), amount, channel) for w in weeks
        )

    for i in range(6):
        buy(f"one-{i}", "web" if i % 2 else "shop", [3 * i], 20.0 + i)
    for i in range(4):
        buy(f"steady-{i}", "web" if i % 2 else "shop", range(i, 26, 3), 30.0 + 2 * i)
    for i in range(4):
        buy(f"lapsed-{i}", "web" if i % 2 else "shop", range(0, 8 + i, 2), 25.0 + 3 * i)
    buy("end", "web", [26], 10.0)
    return rows


CUSTOMERS = 15
NO_REPEAT = 7  # one-0 .. one-5 and end
WEB = 8  # one-1, one-3, one-5, steady-1, steady-3, lapsed-1, lapsed-3, end


def purchases_csv() -> bytes:
    lines = ["customer,date,amount,channel"]
    lines += [f"{c},{d},{a},{ch}" for c, d, a, ch in purchases()]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Env:
    client: TestClient
    mine: Credentials
    fit: dict[str, Any]

    @property
    def url(self) -> str:
        return f"/v1/fits/{self.fit['id']}/distribution"

    def get(self, path: str, headers: dict[str, str] | None = None) -> Any:
        return self.client.get(path, headers=headers or self.mine.headers)

    def ok(self, query: str = "") -> dict[str, Any]:
        response = self.get(f"{self.url}?{query}")
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def customers(self, query: str = "") -> list[dict[str, Any]]:
        response = self.get(f"/v1/fits/{self.fit['id']}/customers?limit=1000&{query}")
        assert response.status_code == 200, response.text
        items: list[dict[str, Any]] = response.json()["items"]
        return items


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    app = create_app(make_settings(tmp_path_factory.mktemp("distribution") / "data"))
    with TestClient(app, raise_server_exceptions=False) as client:
        mine = new_workspace(app.state.db, "mine")
        upload = client.post(
            "/v1/datasets",
            headers=mine.headers,
            files={"file": ("tx.csv", purchases_csv())},
            data={"segment_cols": "channel", "currency": "EUR"},
        )
        assert upload.status_code == 201, upload.text
        assert upload.json()["customer_count"] == CUSTOMERS
        fit = client.post(
            "/v1/fits",
            headers=mine.headers,
            json={
                "dataset_id": upload.json()["id"],
                "purchase_model": "bgnbd",
                "segment_by": ["channel"],
                "time_unit": "weeks",
            },
        )
        assert fit.status_code == 201, fit.text
        yield Env(client, mine, fit.json())


def bgnbd_p_alive(params: dict[str, float], x: float, t_x: float, T: float) -> float:
    """P(alive | x, t_x, T) of BG/NBD (Fader, Hardie & Lee 2005, eq. 6; Fader, Hardie & Lee
    2008, "Computing P(alive) using the BG/NBD model"): 1 for x = 0, else
    1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x))."""
    if x == 0:
        return 1.0
    r, alpha, a, b = (params[k] for k in ("r", "alpha", "a", "b"))
    return float(1.0 / (1.0 + a / (b + x - 1.0) * ((alpha + T) / (alpha + t_x)) ** (r + x)))


def parameters(fit: dict[str, Any]) -> dict[str, float]:
    model = fit["result"]["fits"][0]["purchase"]
    return {p["name"]: p["estimate"] for p in model["parameters"]}


def test_p_alive_histogram_matches_the_hand_computed_probabilities(env: Env) -> None:
    body = env.ok("metric=p_alive&bins=4")
    assert body["metric"] == "p_alive"
    assert body["segment"] == {}
    assert body["edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert body["customers"] == CUSTOMERS
    assert body["missing"] == 0
    assert sum(body["counts"]) == CUSTOMERS

    # Each customer's P(alive) from eq. 6 with the fitted parameters, binned by hand.
    params = parameters(env.fit)
    listed = env.customers()
    by_hand = np.array(
        [bgnbd_p_alive(params, c["frequency"], c["recency"], c["T"]) for c in listed]
    )
    np.testing.assert_allclose(by_hand, [c["p_alive"] for c in listed], rtol=1e-9)
    expected, _ = np.histogram(by_hand, bins=body["edges"])  # numpy: last bin closed, as ours
    assert body["counts"] == expected.tolist()
    # The seven customers without a repeat purchase have P(alive) = 1: the top bin, which
    # includes its right edge; the four lapsed customers are far below one half.
    assert sum(by_hand == 1.0) == NO_REPEAT
    assert body["counts"][-1] >= NO_REPEAT
    assert body["counts"][0] == 4
    assert body["mean"] == pytest.approx(by_hand.mean(), rel=1e-12)
    assert body["min"] == pytest.approx(by_hand.min(), rel=1e-12)
    assert body["max"] == 1.0
    assert body["conventions"]["currency"] == "EUR"


@pytest.mark.parametrize("bins", [1, 2, 7, 20, 200])
def test_p_alive_edges_split_zero_to_one_evenly_and_counts_add_up(env: Env, bins: int) -> None:
    body = env.ok(f"bins={bins}")  # p_alive is the default metric
    edges = np.array(body["edges"])
    assert body["bins"] == bins
    assert len(body["counts"]) == bins and edges.shape == (bins + 1,)
    assert edges[0] == 0.0 and edges[-1] == 1.0
    assert np.all(np.diff(edges) > 0)
    np.testing.assert_allclose(np.diff(edges), 1.0 / bins, rtol=1e-12)
    assert sum(body["counts"]) == CUSTOMERS
    assert all(c >= 0 for c in body["counts"])


@pytest.mark.parametrize("metric", ["clv", "expected_purchases"])
def test_value_histograms_span_the_smallest_to_the_largest_value(env: Env, metric: str) -> None:
    body = env.ok(f"metric={metric}&bins=5&horizon=6&margin=0.4")
    values = np.array([c[metric] for c in env.customers("horizon=6&margin=0.4")])
    assert body["edges"][0] == pytest.approx(values.min(), rel=1e-12)
    assert body["edges"][-1] == pytest.approx(values.max(), rel=1e-12)
    assert np.all(np.diff(body["edges"]) > 0)
    expected, _ = np.histogram(values, bins=body["edges"])
    assert body["counts"] == expected.tolist()
    assert body["mean"] == pytest.approx(values.mean(), rel=1e-9)
    assert body["conventions"]["horizon"] == 6
    assert body["conventions"]["margin"] == 0.4


def test_clv_histogram_follows_the_valuation_parameters(env: Env) -> None:
    # Twice the margin doubles every customer's CLTV, so the edges double and counts stay.
    low, high = env.ok("metric=clv&bins=6&margin=0.25"), env.ok("metric=clv&bins=6&margin=0.5")
    np.testing.assert_allclose(high["edges"], 2 * np.array(low["edges"]), rtol=1e-9)
    assert high["counts"] == low["counts"]


def test_a_segment_is_chosen_by_its_label_or_a_column_filter(env: Env) -> None:
    web = env.ok("segment=channel=web&bins=4")
    assert web["segment"] == {"channel": "web"}
    assert web["customers"] == WEB and sum(web["counts"]) == WEB
    assert env.ok("segment.channel=web&bins=4")["counts"] == web["counts"]
    shop = env.ok("segment=channel%3Dshop&bins=4")
    assert [a + b for a, b in zip(web["counts"], shop["counts"], strict=True)] == env.ok("bins=4")[
        "counts"
    ]
    assert env.ok("segment=all customers&bins=4")["segment"] == {}
    # The segment table agrees on how many customers the segment has.
    report = env.get(f"/v1/fits/{env.fit['id']}/segments").json()
    sizes = {row["segment"]["channel"]: row["customers"] for row in report["segments"]}
    assert sizes == {"web": WEB, "shop": CUSTOMERS - WEB}


def test_only_bin_counts_leave_the_engine(env: Env, monkeypatch: pytest.MonkeyPatch) -> None:
    collected: list[int] = []
    original = Engine.to_pyarrow

    def recording(self: Engine, expr: Any, **kwargs: Any) -> pa.Table:
        table = original(self, expr, **kwargs)
        collected.append(table.num_rows)
        return table

    monkeypatch.setattr(Engine, "to_pyarrow", recording)
    env.ok("metric=clv&bins=3")
    # One row of statistics, then one row per non-empty bin; never a row per customer.
    assert collected and collected[0] == 1
    assert max(collected) <= 3


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("metric=revenue", "query.metric"),
        ("bins=0", "query.bins"),
        ("bins=201", "query.bins"),
        ("bins=ten", "query.bins"),
        ("segment=region=north", "query.segment"),
        ("segment=channel", "query.segment"),
        ("segment=channel=phone", "query.segment"),
        ("segment.region=north", "query.segment.region"),
        ("metric=clv&margin=2", "query.margin"),
        ("metric=clv&horizon=9999", "query.horizon"),
    ],
)
def test_bad_parameters_are_422_problems_naming_the_field(env: Env, query: str, field: str) -> None:
    response = env.get(f"{env.url}?{query}")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] in (PROBLEMS + "validation-error", PROBLEMS + "invalid-input")
    assert [e["field"] for e in problem["errors"]] == [field]


def test_unknown_and_foreign_fits_are_404(env: Env) -> None:
    other = new_workspace(env.client.app.state.db, "other").headers  # type: ignore[attr-defined]
    for path, headers in [
        (env.url, other),
        ("/v1/fits/fit_doesnotexist0000000/distribution", env.mine.headers),
    ]:
        response = env.get(path, headers=headers)
        assert response.status_code == 404, path
        assert response.json()["type"] == PROBLEMS + "not-found"
    assert env.get(env.url).status_code == 200
