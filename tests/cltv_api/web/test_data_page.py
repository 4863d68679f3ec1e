"""The "From data" panel in a real browser against a live server: API key, file preview, column
mapping, upload, a fit run as a background job, CLTV per segment (table, bars, CSV download)."""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.csv as pa_csv
import pytest
from playwright.sync_api import Page, Request, expect

from benchmarks.generate import GeneratorConfig, generate_table
from tests.cltv_api.web.conftest import (
    PHONE,
    SYNC_FIT_MAX_CUSTOMERS,
    ConsoleLog,
    WebApp,
    axe_violations,
    formatted,
    has_horizontal_scroll,
    screenshot,
)

pytestmark = pytest.mark.xdist_group("browser")

CUSTOMERS = 300
assert CUSTOMERS > SYNC_FIT_MAX_CUSTOMERS  # so the fit is a background job the page polls


def generated_csv(path: Path, customers: int = CUSTOMERS, seed: int = 3) -> pa.Table:
    """A synthetic transaction log (benchmarks.generate: BG/NBD purchases, Gamma-Gamma spend,
    channel/region/nps_group segments) written as CSV to ``path``."""
    table = generate_table(GeneratorConfig(n_customers=customers, seed=seed))
    pa_csv.write_csv(table, str(path))
    return table


def segment_report(web_app: WebApp, fit_id: str, **params: Any) -> dict[str, Any]:
    with web_app.api() as api:
        response = api.get(f"/v1/fits/{fit_id}/segments", params=params)
    assert response.status_code == 200, response.text
    report: dict[str, Any] = response.json()
    return report


def newest_fit_id(web_app: WebApp) -> str:
    with web_app.api() as api:
        fit_id: str = api.get("/v1/fits", params={"limit": 1}).json()["items"][0]["id"]
    return fit_id


@pytest.mark.slow
def test_upload_fit_and_segment_table_on_a_phone(
    page: Page, console: ConsoleLog, web_app: WebApp, tmp_path: Path
) -> None:
    table = generated_csv(tmp_path / "orders.csv")
    job_polls: list[str] = []

    def record(request: Request) -> None:
        if "/v1/jobs/" in request.url:
            job_polls.append(request.url)

    page.on("request", record)
    page.set_viewport_size(PHONE)
    page.goto("/?lang=en")
    page.get_by_label("API key").fill(web_app.key)
    page.get_by_label("Transactions file (CSV or XLSX)").set_input_files(tmp_path / "orders.csv")

    # Detected columns and the first rows of the file.
    expect(page.locator("#preview")).to_be_visible()
    expect(page.locator("#preview-format")).to_contain_text("CSV file, encoding utf-8")
    expect(page.locator("#preview-table thead th")).to_have_text(table.column_names)
    expect(page.locator("#preview-table tbody tr")).to_have_count(10)
    first_row = page.locator("#preview-table tbody tr").first.locator("td")
    expect(first_row.first).to_have_text(table["customer_id"][0].as_py())
    expect(first_row.nth(3)).to_have_text(str(table["amount"][0].as_py()))
    # The suggested mapping fills the selects; the segment column is chosen by hand.
    expect(page.get_by_label("Customer id")).to_have_value("customer_id")
    expect(page.get_by_label("Date", exact=True)).to_have_value("date")
    expect(page.get_by_label("Amount", exact=True)).to_have_value("amount")
    expect(page.get_by_label("Order id (optional)")).to_have_value("order_id")
    page.get_by_label("channel", exact=True).check()
    page.get_by_role("button", name="Upload and check").click()

    summary = page.locator("#dataset-summary")
    expect(summary).to_contain_text(f"{table.num_rows:,} rows, {CUSTOMERS} customers")
    expect(summary).to_contain_text("0 rows dropped")
    expect(page.get_by_label("channel (3)")).to_be_checked()
    page.get_by_role("button", name="Fit models").click()

    segments = page.locator("#segments")
    expect(segments).to_be_visible(timeout=30_000)
    assert job_polls, "a fit of more customers than the sync limit is a job the page polls"
    expect(page.locator("#progress-box")).to_be_hidden()

    # The table shows the API's numbers (default valuation: 12 months, 10% a year, margin 1).
    fit_id = newest_fit_id(web_app)
    report = segment_report(web_app, fit_id, horizon=12, horizon_unit="months", margin=1)
    rows = page.locator("#segments-table tbody tr")
    expect(rows).to_have_count(3)
    assert [row["segment"]["channel"] for row in report["segments"]] == [
        "Online", "Partner", "Retail"
    ]  # fmt: skip
    for index, row in enumerate(report["segments"]):
        cells = rows.nth(index).locator("td")
        expect(rows.nth(index).locator("th")).to_have_text(row["segment"]["channel"])
        expect(cells.nth(0)).to_have_text(str(row["customers"]))
        expect(cells.nth(3)).to_have_text(formatted(row["clv_mean"], "en", 2))
        expect(cells.nth(5)).to_have_text(formatted(row["clv_total"], "en", 2))
    total = page.locator("#segments-table tfoot tr")
    expect(total.locator("th")).to_have_text("All customers")
    expect(total.locator("td").first).to_have_text(str(CUSTOMERS))
    expect(page.locator("#segments-conventions")).to_contain_text("Horizon 12 months")

    # Sorting by CLTV per customer: descending first, then ascending.
    by_value = sorted(report["segments"], key=lambda row: row["clv_mean"], reverse=True)
    header = page.locator("#segments-table th[data-key='clv_mean']")
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "descending")
    expect(rows.locator("th")).to_have_text([row["segment"]["channel"] for row in by_value])
    header.get_by_role("button").click()
    expect(header).to_have_attribute("aria-sort", "ascending")
    expect(rows.locator("th")).to_have_text([row["segment"]["channel"] for row in by_value[::-1]])

    # The bar chart has one bar per segment; the most valuable one is full width.
    bars = page.locator("#segment-bars li")
    expect(bars).to_have_count(3)
    widths = page.locator("#segment-bars .bar").evaluate_all("els => els.map(e => e.style.width)")
    assert max(float(w.rstrip("%")) for w in widths) == pytest.approx(100.0)

    assert not has_horizontal_scroll(page)  # the wide table scrolls inside its own box
    screenshot(page, "segments-phone")

    # The CSV download is the API's CSV export.
    with page.expect_download() as download:
        page.get_by_role("button", name="Download CSV").click()
    assert download.value.suggested_filename == f"{fit_id}-segments.csv"
    downloaded = Path(download.value.path()).read_bytes().decode("utf-8")  # keep CRLF
    with web_app.api() as api:
        exported = api.get(
            f"/v1/fits/{fit_id}/segments",
            params={"format": "csv", "horizon": 12, "horizon_unit": "months", "margin": 1},
        ).text
    assert downloaded == exported
    assert [r["channel"] for r in csv.DictReader(io.StringIO(downloaded))][:3] == [
        "Online", "Partner", "Retail"
    ]  # fmt: skip

    # A new horizon revalues the segments without refitting.
    page.locator("#fit-form").get_by_label("Horizon, months").fill("24")
    page.locator("#fit-form").get_by_label("Horizon, months").press("Tab")
    longer = segment_report(web_app, fit_id, horizon=24, horizon_unit="months", margin=1)
    expect(page.locator("#segments-conventions")).to_contain_text("Horizon 24 months")
    expect(total.locator("td").nth(5)).to_have_text(
        formatted(longer["total"]["clv_total"], "en", 2)
    )

    assert axe_violations(page) == []

    page.get_by_role("button", name="Русский").click()
    expect(total.locator("th")).to_have_text("Все клиенты")
    expect(total.locator("td").nth(5)).to_have_text(
        formatted(longer["total"]["clv_total"], "ru", 2)
    )
    expect(page.locator("#segments-conventions")).to_contain_text("Горизонт 24 месяца")
    screenshot(page, "segments-phone-ru")


@pytest.mark.slow
def test_missing_or_refused_key_is_shown_next_to_the_key_field(
    page: Page, console: ConsoleLog, web_app: WebApp, tmp_path: Path
) -> None:
    generated_csv(tmp_path / "a.csv", customers=20)
    generated_csv(tmp_path / "b.csv", customers=20, seed=4)
    page.goto("/?lang=en")
    key = page.get_by_label("API key")
    file_input = page.get_by_label("Transactions file (CSV or XLSX)")

    file_input.set_input_files(tmp_path / "a.csv")
    expect(page.locator("#api-key-err")).to_have_text("Enter an API key first.")
    expect(key).to_have_attribute("aria-invalid", "true")
    expect(key).to_be_focused()

    key.fill("cltv_not_a_real_key")
    with page.expect_response(lambda r: "/v1/datasets/preview" in r.url) as refused:
        file_input.set_input_files(tmp_path / "b.csv")
    assert refused.value.status == 401
    expect(page.locator("#api-key-err")).to_contain_text("This API key is not valid")
    expect(page.locator("#preview")).to_be_hidden()

    # A good key is kept for the tab (sessionStorage), not for other tabs or sessions.
    key.fill(web_app.key)
    expect(page.locator("#api-key-err")).to_be_hidden()
    page.reload()
    expect(page.get_by_label("API key")).to_have_value(web_app.key)
    assert page.evaluate("() => localStorage.length") == 0


@pytest.mark.slow
def test_rejected_rows_are_listed_with_their_row_numbers(
    page: Page, console: ConsoleLog, web_app: WebApp, tmp_path: Path
) -> None:
    # Row 3 of the file (line 3, counting the header as line 1) has an amount that is no number.
    bad = tmp_path / "bad.csv"
    bad.write_text(
        "customer,date,amount\nA,2024-01-05,10.5\nA,2024-02-05,abc\nB,2024-01-07,3\n",
        encoding="utf-8",
    )
    page.goto("/?lang=en")
    page.get_by_label("API key").fill(web_app.key)
    page.get_by_label("Transactions file (CSV or XLSX)").set_input_files(bad)
    expect(page.locator("#preview")).to_be_visible()
    with page.expect_response(lambda r: r.url.endswith("/v1/datasets")) as rejected:
        page.get_by_role("button", name="Upload and check").click()
    assert rejected.value.status == 422
    errors = page.locator("#data-errors")
    expect(errors).to_be_visible()
    expect(errors).to_contain_text("The file was rejected: 1 bad amount.")
    expect(errors.locator("li")).to_have_text(
        ["Row 3, amount: cannot read the amount as a number (decimal '.', thousands none) (abc)"]
    )
    expect(page.locator("#dataset")).to_be_hidden()
