"""The "Cost of churn and business case" panel and the P(active) histogram in a real browser
against a live server: the page shows the API's NPV, ROI and payback for the inputs typed, draws
the cash-flow and tornado charts, downloads the XLSX workbook, puts validation errors next to
their fields, writes Russian numbers with a decimal comma, and after an upload and fit shows the
customers' P(active) histogram with the API's counts and a business case on fitted segments."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import openpyxl
import pytest
from playwright.sync_api import Page, expect

from tests.cltv_api.web.conftest import (
    PHONE,
    ConsoleLog,
    WebApp,
    axe_violations,
    formatted,
    has_horizontal_scroll,
    screenshot,
)
from tests.cltv_api.web.test_data_page import generated_csv, newest_fit_id

pytestmark = pytest.mark.xdist_group("browser")

# The calculator's figures: margin 1000 x 1 x 30% = 300 a month per active customer, retention
# 80% a month; the panel's own defaults are replaced by the inputs below.
CALC_LINK = (
    "average_order_value=1000&purchases_per_period=1&gross_margin=0.3&retention_rate=0.8"
    "&period=month&annual_discount_rate=0.1&acquisition_cost=0&timing=end&currency=RUB"
)
PAINTED = """(selector) => {
    const canvas = document.querySelector(selector);
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    let painted = 0;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
    return painted;
}"""


def case_api(web_app: WebApp, body: dict[str, Any]) -> dict[str, Any]:
    """What POST /v1/business-cases answers for ``body`` (stored under its own name)."""
    with web_app.api() as api:
        response = api.post("/v1/business-cases", json=body)
    assert response.status_code == 201, response.text
    case: dict[str, Any] = response.json()
    return case


def calculator_case(name: str, *, churn: float, spend: float) -> dict[str, Any]:
    """The request the page should send for the inputs typed in the tests below (shares, not
    percent: 2 points of churn is 0.02)."""
    return {
        "name": name,
        "initiative": {
            "name": name,
            "currency": "RUB",
            "one_off_cost": 20000,
            "running_cost_per_period": 1000,
            "start_period": 0,
            "horizon_periods": 24,
            "annual_discount_rate": 0.1,
            "period": "month",
        },
        "baseline": {
            "kind": "manual",
            "segments": [
                {
                    "name": "calculator segment",
                    "customers": 1000,
                    "margin_per_customer": 300,
                    "retention": 0.8,
                }
            ],
        },
        "effects": {"*": {"churn_reduction_points": churn, "spend_uplift": spend}},
    }


def fill_case(page: Page, *, name: str, churn: str, spend: str, lang: str = "en") -> None:
    form = page.locator("#case-form")
    thousands = {"en": ("20,000", "1,000"), "ru": ("20 000", "1 000")}[lang]
    form.locator("#case-name").fill(name)
    form.locator("#case-customers").fill(thousands[1])
    form.locator("#case-one-off").fill(thousands[0])
    form.locator("#case-running").fill(thousands[1])
    form.locator("#case-horizon").fill("24")
    form.locator("#case-discount").fill("10")
    form.locator("#case-churn").fill(churn)
    form.locator("#case-spend").fill(spend)


def build(page: Page) -> None:
    with page.expect_response(lambda r: r.url.endswith("/v1/business-cases")) as answered:
        page.locator("#case-button").click()
    assert answered.value.status in (201, 422)


def expect_figures(page: Page, result: dict[str, Any], lang: str) -> None:
    """NPV, ROI, payback and break-even as the page formats the API's numbers."""
    expect(page.locator("#case-npv")).to_have_text(formatted(result["npv"], lang, 2))
    expect(page.locator("#case-roi")).to_have_text(formatted(100 * result["roi"], lang, 0, 1))
    expect(page.locator("#case-payback")).to_have_text(
        formatted(result["payback_periods"], lang, 1)
    )
    expect(page.locator("#case-dpayback")).to_have_text(
        formatted(result["discounted_payback_periods"], lang, 1)
    )
    expect(page.locator("#case-breakeven")).to_have_text(
        formatted(100 * result["break_even"]["scale"], lang, 0, 1)
    )
    expect(page.locator("#case-pv-costs")).to_have_text(formatted(result["pv_costs"], lang, 2))


@pytest.mark.slow
def test_business_case_from_calculator_figures_shows_the_api_numbers_and_charts(
    page: Page, console: ConsoleLog, web_app: WebApp, tmp_path: Path
) -> None:
    page.goto(f"/?lang=en&{CALC_LINK}")
    expect(page.locator("#r-margin")).to_have_text("300.00")
    expect(page.locator("#case-calc-summary")).to_contain_text(
        "margin 300.00 RUB per active customer and month, retention 80 % per month"
    )
    expect(page.locator("#case-period")).to_be_disabled()  # the calculator's period
    page.get_by_label("API key").fill(web_app.key)
    fill_case(page, name="Call-back", churn="2", spend="5")
    build(page)
    expect(page.locator("#case-results")).to_be_visible()

    # The same inputs sent to the API by hand give the numbers on the page.
    expected = case_api(web_app, calculator_case("Call-back twin", churn=0.02, spend=0.05))
    result = expected["result"]
    assert result["npv"] > 0 and result["payback_periods"] is not None  # a case that pays
    expect_figures(page, result, "en")
    expect(page.locator("#case-version")).to_contain_text("“Call-back”, version 1")

    # Break-even effects: every effect scaled by the API's factor k.
    k = result["break_even"]["scale"]
    expect(page.locator("#case-breakeven-list li").first).to_contain_text(
        f"Churn reduction: {formatted(2 * k, 'en', 0, 2)} pp breaks even (expected 2 pp)"
    )

    # Both charts are drawn: uPlot's cash-flow canvas and the tornado canvas have pixels.
    assert page.evaluate(PAINTED, "#case-flow-chart canvas") > 1000
    assert page.evaluate(PAINTED, "#case-tornado") > 1000
    bars = [b for b in result["tornado"]["bars"] if b["swing"] > 0][:8]
    rows = page.locator("#tornado-table tbody tr")
    expect(rows).to_have_count(len(bars))
    expect(rows.first.locator("td").nth(4)).to_have_text(formatted(bars[0]["swing"], "en", 2))
    expect(page.locator("#case-tornado-caption")).to_contain_text("±20 %")

    # The XLSX download is a workbook of the same case.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download the XLSX workbook").click()
    assert download.value.suggested_filename.endswith("-v1.xlsx")
    workbook = openpyxl.load_workbook(io.BytesIO(Path(download.value.path()).read_bytes()))
    assert workbook.sheetnames == ["Inputs", "Cash flows", "Results", "Sensitivity"]
    named = {
        row[3].value: row[1].value
        for row in workbook["Inputs"].iter_rows(min_row=1)
        if len(row) >= 4 and row[3].value
    }
    inputs = result["inputs"]
    assert named["in_one_off_cost"] == inputs["one_off_cost"] == 20000
    assert named["in_running_cost"] == inputs["running_cost_per_period"] == 1000
    assert named["in_horizon"] == inputs["horizon_periods"] == 24
    assert named["in_annual_rate"] == pytest.approx(inputs["annual_discount_rate"])
    results = workbook["Results"]
    assert results["A2"].value == "NPV" and str(results["B2"].value).startswith("=SUM(")

    assert axe_violations(page) == []
    page.locator("#case-panel details.as-table summary").click()
    screenshot(page, "business-case")


@pytest.mark.slow
def test_validation_errors_appear_next_to_their_fields(
    page: Page, console: ConsoleLog, web_app: WebApp
) -> None:
    page.goto(f"/?lang=en&{CALC_LINK}")
    expect(page.locator("#r-margin")).to_have_text("300.00")
    page.get_by_label("API key").fill(web_app.key)
    fill_case(page, name="Too much", churn="30", spend="5")
    page.locator("#case-one-off").fill("-5")
    build(page)
    # The plan's own fields are checked first.
    expect(page.locator("#case-one-off-err")).to_have_text("Must be 0 or more.")
    expect(page.locator("#case-one-off")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#case-status")).to_have_text(
        "Some inputs are not valid: see the highlighted fields."
    )
    expect(page.locator("#case-results")).to_be_hidden()

    # Churn is 20 points a month (retention 80%): 30 points less is impossible.
    page.locator("#case-one-off").fill("20000")
    build(page)
    expect(page.locator("#case-churn-err")).to_have_text(
        "Larger than the current churn per period (20 percentage points): churn cannot fall "
        "below 0."
    )
    expect(page.locator("#case-churn")).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#case-one-off-err")).to_be_hidden()
    expect(page.locator("#case-one-off")).not_to_have_attribute("aria-invalid", "true")

    # A value that is not a number is named by the API's type check.
    page.locator("#case-churn").fill("2")
    page.locator("#case-horizon").fill("two years")
    build(page)
    expect(page.locator("#case-horizon-err")).to_have_text("Enter a whole number.")
    expect(page.locator("#case-churn-err")).to_be_hidden()
    assert axe_violations(page) == []
    screenshot(page, "business-case-errors")


@pytest.mark.slow
def test_russian_case_on_a_phone_uses_decimal_commas(
    page: Page, console: ConsoleLog, web_app: WebApp
) -> None:
    page.set_viewport_size(PHONE)
    page.goto(f"/?lang=ru&{CALC_LINK}")
    expect(page.locator("#r-margin")).to_have_text("300,00")
    expect(page.get_by_role("heading", name="Стоимость оттока и бизнес-кейс")).to_be_visible()
    page.get_by_label("API-ключ").fill(web_app.key)
    fill_case(page, name="Перезвон", churn="1,5", spend="2,5", lang="ru")
    build(page)
    expected = case_api(web_app, calculator_case("Перезвон, проверка", churn=0.015, spend=0.025))
    result = expected["result"]
    expect_figures(page, result, "ru")
    assert "," in page.locator("#case-npv").inner_text()  # decimal comma
    expect(page.locator("#case-payback-unit")).not_to_be_empty()
    assert page.evaluate(PAINTED, "#case-tornado") > 500
    assert not has_horizontal_scroll(page)
    screenshot(page, "business-case-phone-ru")

    # Switching the language rewrites the typed numbers and the results.
    page.get_by_role("button", name="English").click()
    expect(page.locator("#case-churn")).to_have_value("1.5")
    expect(page.locator("#case-npv")).to_have_text(formatted(result["npv"], "en", 2))


@pytest.mark.slow
def test_case_panel_is_reachable_with_the_keyboard(page: Page, console: ConsoleLog) -> None:
    page.goto(f"/?lang=en&{CALC_LINK}")
    expect(page.locator("#r-margin")).to_have_text("300.00")
    page.locator("#case-name").focus()
    reached: list[str] = []
    while "case-button" not in reached and len(reached) < 40:
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id"))
    wanted = [
        "case-one-off", "case-running", "case-horizon", "case-start", "case-discount",
        "case-churn", "case-spend", "case-button",
    ]  # fmt: skip
    assert [item for item in reached if item in wanted] == wanted
    # The NPS shift opens from the keyboard.
    page.locator("#case-nps summary").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_label("Detractors who become promoters")).to_be_visible()


@pytest.mark.slow
def test_p_active_histogram_and_a_case_on_fitted_segments(
    page: Page, console: ConsoleLog, web_app: WebApp, tmp_path: Path
) -> None:
    generated_csv(tmp_path / "orders.csv", customers=80, seed=11)
    page.goto("/?lang=en")
    page.get_by_label("API key").fill(web_app.key)
    page.get_by_label("Transactions file (CSV or XLSX)").set_input_files(tmp_path / "orders.csv")
    expect(page.locator("#preview")).to_be_visible()
    page.get_by_label("channel", exact=True).check()
    page.get_by_role("button", name="Upload and check").click()
    expect(page.locator("#dataset-summary")).to_contain_text("80 customers")
    page.get_by_role("button", name="Fit models").click()
    expect(page.locator("#segments")).to_be_visible(timeout=30_000)
    fit_id = newest_fit_id(web_app)

    # The histogram of P(active) for all customers: the API's counts, bin by bin.
    valuation: dict[str, Any] = {
        "horizon": 12,
        "horizon_unit": "months",
        "margin": 1,
        "discount_rate": 0.1,
    }
    with web_app.api() as api:
        overall = api.get(f"/v1/fits/{fit_id}/distribution", params=valuation).json()
        online = api.get(
            f"/v1/fits/{fit_id}/distribution", params={**valuation, "segment": "channel=Online"}
        ).json()
    assert sum(overall["counts"]) == 80
    page.locator("#distribution summary").click()
    counts = page.locator("#dist-table tbody tr td:nth-child(3)")
    expect(counts).to_have_text([str(n) for n in overall["counts"]])
    expect(page.locator("#dist-table tbody tr").first.locator("td").first).to_have_text("0 %")
    expect(page.locator("#dist-caption")).to_contain_text("P(active) of 80 customers")
    assert page.evaluate(PAINTED, "#dist-chart canvas") > 500

    # One segment's histogram.
    with page.expect_response(lambda r: "/distribution?" in r.url):
        page.get_by_label("Customers", exact=True).select_option(label="Online")
    expect(counts).to_have_text([str(n) for n in online["counts"]])
    expect(page.locator("#dist-caption")).to_contain_text(f"{online['customers']} customers")

    # The cost of churn per segment and a business case on two of the three segments.
    panel = page.locator("#case-panel")
    expect(panel.locator("#case-source-fit")).to_be_checked()
    expect(panel.locator("#churn-table tbody tr")).to_have_count(4)  # 3 segments + all
    boxes = panel.locator("#case-segment-boxes")
    expect(boxes.get_by_label("Online")).to_be_checked()
    boxes.get_by_label("Retail").uncheck()
    panel.locator("#case-name").fill("Fitted segments")
    panel.locator("#case-one-off").fill("100")
    panel.locator("#case-running").fill("5")
    panel.locator("#case-horizon").fill("12")
    panel.locator("#case-churn").fill("1")
    panel.locator("#case-spend").fill("10")
    build(page)
    expect(panel.locator("#case-results")).to_be_visible()
    expected = case_api(
        web_app,
        {
            "name": "Fitted segments twin",
            "initiative": {
                "name": "Fitted segments twin",
                "currency": "RUB",
                "one_off_cost": 100,
                "running_cost_per_period": 5,
                "start_period": 0,
                "horizon_periods": 12,
                "annual_discount_rate": 0.1,
                "period": "month",
            },
            "baseline": {
                "kind": "fit",
                "fit_id": fit_id,
                "by": ["channel"],
                "segments": ["channel=Online", "channel=Partner"],
                "margin": 1,
            },
            "effects": {"*": {"churn_reduction_points": 0.01, "spend_uplift": 0.1}},
        },
    )
    result = expected["result"]
    assert [s["name"] for s in result["segments"]] == ["channel=Online", "channel=Partner"]
    expect(panel.locator("#case-npv")).to_have_text(formatted(result["npv"], "en", 2))
    assert page.evaluate(PAINTED, "#case-flow-chart canvas") > 1000
    assert axe_violations(page) == []
    screenshot(page, "p-active-and-fitted-case")
