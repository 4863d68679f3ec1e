"""The quick calculator in a real browser (Debian's Chromium) against a live uvicorn server:
typed values give the API's numbers, formatted for the locale; API validation errors appear next
to their field; Russian interface; shared links; keyboard, accessibility and phone width."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx
import pytest
from playwright.sync_api import Page, Response, expect

from tests.cltv_api.web.conftest import (
    PHONE,
    ConsoleLog,
    WebApp,
    axe_violations,
    formatted,
    has_horizontal_scroll,
    screenshot,
)

pytestmark = pytest.mark.xdist_group("browser")

# The hand-worked example: v = 1000 x 1 x 100% = 1000 a month, retention 80%, no discounting,
# margin at the start of each month, unlimited horizon -> CLTV = 1000 / (1 - 0.8) = 5000;
# lifetime 1 / 0.2 = 5 months; CAC 2000 -> LTV:CAC 2.5; cumulative value 1000, 1800, 2440, so
# the CAC is paid back in month 3.
SHARED_LINK = (
    "/?lang=en&average_order_value=1000&purchases_per_period=1&gross_margin=1"
    "&retention_rate=0.8&period=month&annual_discount_rate=0&acquisition_cost=2000"
    "&timing=start&currency=RUB"
)


def calculator_response(response: Response) -> bool:
    return "/v1/calculator?" in response.url


def page_query(page: Page) -> dict[str, str]:
    return dict(parse_qsl(urlsplit(page.url).query, keep_blank_values=True))


def api_answer(web_app: WebApp, query: dict[str, str]) -> dict[str, Any]:
    """What the API answers to the calculator inputs in the page's URL."""
    params = {k: v for k, v in query.items() if k != "lang"}
    response = httpx.get(f"{web_app.url}/v1/calculator", params=params, timeout=10)
    assert response.status_code == 200, response.text
    answer: dict[str, Any] = response.json()
    return answer


def expect_results(page: Page, answer: dict[str, Any], lang: str) -> None:
    """The result cards show the API's numbers as Intl.NumberFormat writes them for ``lang``."""
    expect(page.locator("#r-clv")).to_have_text(formatted(answer["clv"], lang, 2))
    expect(page.locator("#r-ltv-cac")).to_have_text(formatted(answer["ltv_to_cac"], lang, 2))
    expect(page.locator("#r-payback")).to_have_text(str(answer["cac_payback_periods"]))
    expect(page.locator("#r-lifetime")).to_have_text(
        formatted(answer["expected_lifetime_periods"], lang, 1)
    )
    expect(page.locator("#r-margin")).to_have_text(formatted(answer["margin_per_period"], lang, 2))
    expect(page.locator("#r-discount")).to_have_text(
        formatted(100 * answer["discount_rate_per_period"], lang, 0, 3)
    )


@pytest.mark.slow
def test_typed_values_show_the_numbers_the_api_returns(
    page: Page, console: ConsoleLog, web_app: WebApp
) -> None:
    response = page.goto("/?lang=en")
    assert response is not None and response.status == 200
    assert "script-src 'self'" in response.headers["content-security-policy"]
    expect(page.locator("#r-clv")).not_to_have_text("–")  # the defaults are computed on load

    form = page.locator("#calc-form")

    form.get_by_label("Average order value").fill("1,500")  # en: comma between thousands
    form.get_by_label("Purchases per period").fill("2")
    form.get_by_label("Gross margin").fill("40")
    form.get_by_label("Retention rate per period").fill("75")
    form.get_by_label("Period", exact=True).select_option("quarter")
    form.get_by_label("Discount rate per year").fill("12")
    form.get_by_label("Horizon").fill("24")
    form.get_by_label("Acquisition cost (CAC)").fill("3000")
    form.get_by_label("Margin arrives at the").select_option("end")
    with page.expect_response(lambda r: calculator_response(r) and "currency=EUR" in r.url) as last:
        form.get_by_label("Currency", exact=True).fill("EUR")
    assert last.value.status == 200

    # The URL holds the inputs in API units (shares, not percent): it is the API's query.
    query = page_query(page)
    assert query == {
        "lang": "en",
        "average_order_value": "1500",
        "purchases_per_period": "2",
        "gross_margin": "0.4",
        "retention_rate": "0.75",
        "period": "quarter",
        "annual_discount_rate": "0.12",
        "horizon_periods": "24",
        "acquisition_cost": "3000",
        "timing": "end",
        "currency": "EUR",
    }
    answer = api_answer(web_app, query)
    # v = 1500 x 2 x 0.4 = 1200 a quarter; cumulative 1166.5, 2016.9, 2637.0, 3089.1 -> quarter 4.
    assert answer["margin_per_period"] == pytest.approx(1200.0)
    assert answer["cac_payback_periods"] == 4
    expect_results(page, answer, "en")
    expect(page.locator("#r-payback-unit")).to_have_text("quarters")
    for unit in page.locator("#results [data-unit='currency']").all():
        expect(unit).to_have_text("EUR")
    conventions = page.locator("#r-conventions")
    expect(conventions).to_contain_text("Horizon: 24 quarters.")
    expect(conventions).to_contain_text("at the end of each quarter")
    expect(conventions).to_contain_text("Discount: 12 % a year = 2.874 % per quarter.")
    expect(page.locator("#r-formula")).to_have_text(answer["conventions"]["formula"])
    expect(page.locator("#calc-chart canvas")).to_have_count(1)
    expect(page.locator("#calc-chart-caption")).to_contain_text(
        f"After 24 quarters: {formatted(100 * 0.75**23, 'en', 0, 1)} % of customers still active"
    )
    screenshot(page, "calculator-en")


@pytest.mark.slow
def test_api_validation_error_is_shown_next_to_the_field(page: Page, console: ConsoleLog) -> None:
    page.goto("/?lang=en")
    expect(page.locator("#r-clv")).not_to_have_text("–")
    rate = page.get_by_label("Retention rate per period")
    with page.expect_response(calculator_response) as rejected:
        rate.fill("150")
    assert rejected.value.status == 422
    problem = rejected.value.json()
    assert [e["field"] for e in problem["errors"]] == ["query.retention_rate"]

    error = page.locator("#in-rate-err")
    expect(error).to_be_visible()
    expect(error).to_have_text("Enter a percentage from 0 to 100.")
    expect(rate).to_have_attribute("aria-invalid", "true")
    expect(rate).to_have_attribute("aria-describedby", re.compile(r"\bin-rate-err\b"))
    expect(page.locator("#calc-status")).to_contain_text("not valid")
    expect(page.locator("#r-clv")).to_have_text("–")  # no stale number next to an error
    screenshot(page, "calculator-validation-error")

    # A value that is not a number is sent as typed. The API checks types before ranges, so
    # this answer names only the order value; the message follows the language.
    with page.expect_response(calculator_response) as unparsed:
        page.get_by_label("Average order value").fill("abc")
    assert [e["field"] for e in unparsed.value.json()["errors"]] == ["query.average_order_value"]
    expect(page.locator("#in-aov-err")).to_have_text("Enter a number.")
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("#in-aov-err")).to_have_text("Введите число.")
    with page.expect_response(calculator_response) as range_checked:
        page.get_by_label("Средний чек").fill("1000")
    assert [e["field"] for e in range_checked.value.json()["errors"]] == ["query.retention_rate"]
    expect(page.locator("#in-aov-err")).to_be_hidden()
    expect(error).to_have_text("Введите процент от 0 до 100.")

    # Fixing the value removes the error and its reference.
    with page.expect_response(calculator_response) as fixed:
        page.get_by_label("Удержание за период").fill("80")
    assert fixed.value.status == 200
    expect(error).to_be_hidden()
    expect(page.locator("#in-rate")).not_to_have_attribute("aria-invalid", "true")
    expect(page.locator("#in-rate")).to_have_attribute("aria-describedby", "in-rate-hint")
    expect(page.locator("#r-clv")).not_to_have_text("–")


@pytest.mark.slow
def test_shared_link_reproduces_the_hand_worked_result(page: Page, console: ConsoleLog) -> None:
    page.goto(SHARED_LINK)
    expect(page.locator("#r-clv")).to_have_text("5,000.00")
    expect(page.locator("#r-ltv-cac")).to_have_text("2.50")
    expect(page.locator("#r-lifetime")).to_have_text("5.0")
    expect(page.locator("#r-payback")).to_have_text("3")
    expect(page.locator("#r-margin")).to_have_text("1,000.00")
    # The inputs are filled from the link, in percent where the form asks for percent.
    expect(page.locator("#in-aov")).to_have_value("1000")
    expect(page.locator("#in-margin")).to_have_value("100")
    expect(page.locator("#in-rate")).to_have_value("80")
    expect(page.locator("#in-discount")).to_have_value("0")
    expect(page.locator("#in-horizon")).to_have_value("")  # unlimited
    expect(page.locator("#r-conventions")).to_contain_text("Value is revenue (margin 100 %).")
    expect(page.locator("#r-conventions")).to_contain_text("Horizon: unlimited")
    # The page keeps the link as it is, so copying the address bar shares the same result.
    assert {k: v for k, v in page_query(page).items()} == dict(
        parse_qsl(urlsplit(SHARED_LINK).query)
    )

    # A link that gives the churn rate instead selects "churn" and shows the same value.
    page.goto(SHARED_LINK.replace("retention_rate=0.8", "churn_rate=0.2"))
    expect(page.get_by_label("churn rate", exact=True)).to_be_checked()
    expect(page.get_by_label("Churn rate per period")).to_have_value("20")
    expect(page.locator("#r-clv")).to_have_text("5,000.00")
    # Switching back to retention converts the value: the same customer, the same CLTV.
    with page.expect_response(calculator_response):
        page.get_by_label("retention rate", exact=True).check()
    expect(page.get_by_label("Retention rate per period")).to_have_value("80")
    expect(page.locator("#r-clv")).to_have_text("5,000.00")
    assert page_query(page)["retention_rate"] == "0.8"
    assert "churn_rate" not in page_query(page)


@pytest.mark.slow
def test_russian_interface_has_russian_labels_and_decimal_comma(
    page: Page, console: ConsoleLog
) -> None:
    page.goto(SHARED_LINK)
    expect(page.locator("#r-clv")).to_have_text("5,000.00")
    page.get_by_role("button", name="Русский").click()

    expect(page.locator("html")).to_have_attribute("lang", "ru")
    expect(page.get_by_role("button", name="Русский")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#calc-title")).to_have_text("Быстрый калькулятор")
    expect(page.get_by_label("Средний чек")).to_have_value("1000")
    expect(page.get_by_label("Удержание за период")).to_have_value("80")
    expect(page.locator("#r-clv")).to_have_text("5 000,00")  # space between thousands
    expect(page.locator("#r-ltv-cac")).to_have_text("2,50")  # decimal comma
    expect(page.locator("#r-lifetime")).to_have_text("5,0")
    expect(page.locator("#r-lifetime-unit")).to_have_text("месяца")  # 5,0 месяца
    expect(page.locator("#r-payback-unit")).to_have_text("месяца")  # 3 месяца
    expect(page.locator("#r-conventions")).to_contain_text("Ценность — выручка (маржа 100 %).")
    assert page_query(page)["lang"] == "ru"

    # A decimal comma typed in the Russian form reaches the API as a decimal point.
    with page.expect_response(calculator_response) as answered:
        page.locator("#calc-form").get_by_label("Валовая маржа").fill("33,5")
    assert answered.value.status == 200
    assert page_query(page)["gross_margin"] == "0.335"
    expect(page.locator("#r-clv")).to_have_text("1 675,00")  # 5000 x 0.335
    expect(page.locator("#in-margin")).to_have_value("33,5")
    screenshot(page, "calculator-ru")

    # The language is part of the link.
    page.reload()
    expect(page.locator("#calc-title")).to_have_text("Быстрый калькулятор")
    expect(page.locator("#r-clv")).to_have_text("1 675,00")
    expect(page.locator("#in-margin")).to_have_value("33,5")


@pytest.mark.slow
def test_every_control_is_reachable_with_the_keyboard(page: Page, console: ConsoleLog) -> None:
    page.goto("/?lang=en")
    expect(page.locator("#r-clv")).not_to_have_text("–")
    page.keyboard.press("Tab")
    expect(page.locator(".skip-link")).to_be_focused()
    reached: list[str] = []
    while "data-file" not in reached and len(reached) < 40:
        page.keyboard.press("Tab")
        reached.append(
            page.evaluate(
                "() => document.activeElement.id || document.activeElement.dataset.lang || ''"
            )
        )
    wanted = [
        "en", "ru", "in-aov", "in-freq", "in-margin", "in-rate", "in-period", "in-discount",
        "in-horizon", "in-cac", "in-timing", "in-currency", "api-key", "data-file",
    ]  # fmt: skip
    assert [item for item in reached if item in wanted] == wanted  # in reading order
    # The language switch works from the keyboard too.
    page.locator("[data-lang='ru']").focus()
    page.keyboard.press("Enter")
    expect(page.locator("html")).to_have_attribute("lang", "ru")


@pytest.mark.slow
def test_no_serious_accessibility_violations(page: Page, console: ConsoleLog) -> None:
    page.goto("/?lang=en")
    expect(page.locator("#r-clv")).not_to_have_text("–")
    assert axe_violations(page) == []
    # With a validation error shown, and in Russian.
    with page.expect_response(calculator_response):
        page.locator("#calc-form").get_by_label("Gross margin").fill("250")
    expect(page.locator("#in-margin-err")).to_be_visible()
    page.get_by_role("button", name="Русский").click()
    expect(page.locator("#in-margin-err")).to_have_text("Введите процент от 0 до 100.")
    assert axe_violations(page) == []


@pytest.mark.slow
def test_phone_width_has_no_horizontal_scroll(page: Page, console: ConsoleLog) -> None:
    page.set_viewport_size(PHONE)
    page.goto(SHARED_LINK)
    expect(page.locator("#r-clv")).to_have_text("5,000.00")
    expect(page.locator("#calc-chart canvas")).to_have_count(1)
    assert not has_horizontal_scroll(page)
    chart_width = page.locator("#calc-chart .uplot").evaluate(
        "el => el.getBoundingClientRect().right"
    )
    assert chart_width <= PHONE["width"]
    # Long Russian labels and an error message still fit.
    page.get_by_role("button", name="Русский").click()
    with page.expect_response(calculator_response):
        page.get_by_label("Удержание за период").fill("-5")
    expect(page.locator("#in-rate-err")).to_be_visible()
    assert not has_horizontal_scroll(page)
    screenshot(page, "calculator-phone-ru")
