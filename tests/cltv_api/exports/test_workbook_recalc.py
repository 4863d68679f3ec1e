"""The business-case workbook recalculated by LibreOffice gives the API's numbers.

Every workbook is loaded into LibreOffice Calc (headless, through UNO, by
``tests/cltv_api/exports/recalc_uno.py`` under the system Python), every formula is recomputed
(``calculateAll``) and the Results sheet and the cash-flow columns are compared with the API's
JSON within 1e-6 relative. Three cases cover the three baseline kinds: a manual baseline with
every effect (churn points and share, spend and frequency uplift, an NPS shift, referrals valued
from the baseline and as given, a later start, cash at the start of each period), an sBG
retention fit and a curve fitted from transactions.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from cltv_api.exports import workbook as wb
from cltv_api.main import create_app
from tests.cltv_api.service.conftest import TestClient, make_settings, new_workspace
from tests.cltv_api.service.test_churn_api import fit_transactions

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("libreoffice")]

SYSTEM_PYTHON = "/usr/bin/python3"
SCRIPT = Path(__file__).with_name("recalc_uno.py")
REL = 1e-6

NPS = {
    "counts": {"promoters": 250, "passives": 450, "detractors": 300},
    "promoters": {"retention": 0.97, "margin_per_period": 30.0, "referrals_per_period": 0.02},
    "passives": {"retention": 0.94, "margin_per_period": 25.0, "referrals_per_period": 0.005},
    "detractors": {"retention": 0.88, "margin_per_period": 20.0},
    "detractors_to_passive": 0.2,
    "detractors_to_promoter": 0.1,
}
INITIATIVE = {
    "currency": "RUB",
    "one_off_cost": 150_000.0,
    "running_cost_per_period": 4_000.0,
    "start_period": 2,
    "horizon_periods": 24,
    "annual_discount_rate": 0.12,
    "period": "month",
    "timing": "start",
}
MANUAL = {
    "name": "every effect",
    "initiative": INITIATIVE,
    "baseline": {
        "kind": "manual",
        "segments": [
            {"name": "=mass", "customers": 8000, "margin_per_customer": 22.0, "retention": 0.93},
            {"name": "vip", "customers": 500, "margin_per_customer": 90.0, "retention": 0.97},
        ],
    },
    "effects": {
        "=mass": {
            "churn_reduction_points": 0.01,
            "churn_reduction_share": 0.1,
            "spend_uplift": 0.02,
            "frequency_uplift": 0.01,
            "nps_shift": NPS,
            "referrals": {"new_customers_per_period": 3.0},
        },
        "vip": {
            "churn_reduction_share": 0.2,
            "referrals": {"new_customers_per_period": 0.5, "value_per_new_customer": 800.0},
        },
    },
    "monte_carlo": {"draws": 500, "seed": 3},
}


def recalculate(paths: list[Path]) -> list[dict[str, Any]]:
    if shutil.which("soffice") is None or not Path(SYSTEM_PYTHON).exists():
        pytest.fail(
            "LibreOffice (soffice) with python3-uno is needed to recalculate workbooks; "
            "`make test` installs it (libreoffice-calc-nogui python3-uno)."
        )
    done = subprocess.run(
        [SYSTEM_PYTHON, str(SCRIPT), *map(str, paths)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    out: list[dict[str, Any]] = json.loads(done.stdout)
    return out


@pytest.fixture(scope="module")
def cases(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[dict[str, Any], Path]]:
    """Each case's API JSON and its workbook file."""
    tmp = tmp_path_factory.mktemp("workbooks")
    app = create_app(make_settings(tmp / "data"))
    out = []
    with TestClient(app, raise_server_exceptions=False) as client:
        headers = new_workspace(app.state.db, "books").headers
        fit_id = fit_transactions(client, headers)
        retention = client.post(
            "/v1/retention/fits",
            headers=headers,
            json={
                "cohorts": [{"name": "r", "survivors": [1000, 631, 468, 382, 326, 289, 262, 241]}],
                "value_per_period": 100.0,
                "discount_rate": 0.01,
                "currency": "RUB",
                "period": "month",
            },
        ).json()
        bodies = [
            MANUAL,
            {
                "name": "contractual",
                "initiative": {**INITIATIVE, "timing": "end", "start_period": 0},
                "baseline": {
                    "kind": "retention_fit",
                    "retention_fit_id": retention["id"],
                    "renewals": 3,
                    "customers": 5000,
                },
                "effects": {"*": {"churn_reduction_points": 0.02}},
            },
            {
                "name": "fitted",
                "initiative": {**INITIATIVE, "one_off_cost": 100.0, "running_cost_per_period": 5.0},
                "baseline": {"kind": "fit", "fit_id": fit_id, "margin": 0.3},
                "effects": {"*": {"churn_reduction_share": 0.15, "spend_uplift": 0.03}},
            },
        ]
        for i, body in enumerate(bodies):
            created = client.post("/v1/business-cases", headers=headers, json=body)
            assert created.status_code == 201, created.text
            book = client.get(f"{created.json()['url']}?format=xlsx", headers=headers)
            path = tmp / f"case{i}.xlsx"
            path.write_bytes(book.content)
            out.append((created.json(), path))
    return out


def close(got: Any, want: float | None, scale: float) -> bool:
    if want is None:
        return got in (wb.NOT_REACHED, "no costs", "n/a")
    return isinstance(got, float) and abs(got - want) <= REL * max(abs(want), scale)


def test_libreoffice_recalculates_the_api_numbers(
    cases: list[tuple[dict[str, Any], Path]],
) -> None:
    books = recalculate([path for _, path in cases])
    for (api, _), book in zip(cases, books, strict=True):
        name = api["name"]
        assert book["errors"] == [], name
        result, got = api["result"], book["results"]
        scale = max(abs(result["pv_costs"]), abs(result["pv_benefits"]), 1.0)
        expected = {
            wb.NPV: result["npv"],
            wb.PV_BENEFITS: result["pv_benefits"],
            wb.PV_COSTS: result["pv_costs"],
            wb.TOTAL_INCREMENTAL: result["total_incremental_value"],
            wb.TOTAL_COSTS: result["total_costs"],
            wb.TOTAL_NET: result["total_net_cash_flow"],
        }
        for label, want in expected.items():
            assert close(got[label], want, scale), (name, label, got[label], want)
        assert close(got[wb.ROI], result["roi"], 1e-9), (name, got[wb.ROI], result["roi"])
        for label, key in ((wb.PAYBACK, "payback_periods"), (wb.DISCOUNTED_PAYBACK, "discounted_payback_periods")):  # fmt: skip
            assert close(got[label], result[key], 1e-9), (name, label, got[label], result[key])
        flows = book["sheets"][wb.FLOWS]
        header = flows[0]
        for column, key in (
            ("Baseline value, all segments", "baseline_value"),
            ("Value with initiative, all segments", "value_with_initiative"),
            ("Customers retained by the initiative", "incremental_customers_retained"),
            ("Referred customers", "referred_customers"),
            ("Net cash flow", "net_cash_flow"),
            ("Present value", "present_value"),
        ):
            j = header.index(column)
            values = [row[j] for row in flows[1:]]
            wants = [p[key] for p in result["periods"]]
            size = max(1.0, *(abs(w) for w in wants))
            assert all(close(g, w, size) for g, w in zip(values, wants, strict=True)), (
                name,
                column,
            )


def test_the_cases_exercise_what_they_claim(cases: list[tuple[dict[str, Any], Path]]) -> None:
    # Guards the comparison above: each workbook has a payback to compare and the kinds differ.
    kinds = [api["result"]["baselines"][0]["kind"] for api, _ in cases]
    assert kinds == ["manual", "sbg", "curve"]
    manual = cases[0][0]["result"]
    assert manual["payback_periods"] is not None
    assert any(p["referred_customers"] > 0 for p in manual["periods"])
    assert manual["periods"][3]["incremental_value"] != 0  # effects act from period 3
    assert manual["periods"][2]["incremental_value"] == 0
