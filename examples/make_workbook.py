"""Build ``examples/cltv_pull.xlsx``: a workbook that pulls CLTV per segment and a business case's
NPV from a running ``cltv`` service with ``WEBSERVICE`` formulas, and uses them in a small
campaign calculation.

Run from the repository root (the committed workbook must equal this script's output; a test
checks it)::

    .venv/bin/python examples/make_workbook.py            # writes examples/cltv_pull.xlsx
    .venv/bin/python examples/make_workbook.py -o my.xlsx

Sheets:

* **Settings**: the service's URL, the two share tokens and the valuation (yellow input cells);
  the URLs every other sheet uses are built there by concatenation (named ``FitValueURL``,
  ``CaseValueURL``, ``SegmentsCsvURL``, ``CashflowsCsvURL``).
* **CLTV by segment**: customers, mean CLTV and share of value for each segment typed in column A
  and for all customers, one ``WEBSERVICE`` call per cell on ``/v1/share/{token}/value``.
* **Business case**: a retention campaign on one segment valued with the pulled numbers (CLTV
  gained = contacted customers x mean CLTV x uplift, minus the campaign's cost), next to the NPV
  of the business case stored in the service.
* **Google Sheets**: the same pulls written for Google Sheets (``IMPORTDATA``), as text.

The formulas use functions that Excel 2013 added (``WEBSERVICE``, ``ENCODEURL``, ``NUMBERVALUE``);
Office Open XML stores them with the ``_xlfn.`` prefix, without which Excel and LibreOffice show
``#NAME?``. ``NUMBERVALUE(text, ".")`` reads the service's plain number (``1234.5``) the same way
in every locale, so a Russian or German Excel needs no ``decimal=comma``.

The file is deterministic: fixed document dates, fixed ZIP timestamps and member order.
"""

from __future__ import annotations

import argparse
import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font, PatternFill
from openpyxl.workbook.defined_name import DefinedName
from openpyxl.worksheet.worksheet import Worksheet

OUTPUT = Path(__file__).with_name("cltv_pull.xlsx")
FIXED_DATE = datetime(2025, 1, 1)  # document properties: created / modified
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date a ZIP entry can carry
CORE_PROPERTIES = "docProps/core.xml"
MODIFIED = re.compile(rb"(<dcterms:modified[^>]*>)[^<]*(</dcterms:modified>)")

SETTINGS = "Settings"
SEGMENTS = "CLTV by segment"
CASE = "Business case"
GOOGLE = "Google Sheets"

# Settings: input cells (yellow) and the URLs built from them.
SERVICE_URL_CELL = "B4"
FIT_TOKEN_CELL = "B5"
CASE_TOKEN_CELL = "B6"
VALUATION_CELL = "B7"
DEFAULT_SERVICE_URL = "http://127.0.0.1:8000"
DEFAULT_FIT_TOKEN = "cltv_share_PASTE_THE_FIT_TOKEN_HERE"
DEFAULT_CASE_TOKEN = "cltv_share_PASTE_THE_CASE_TOKEN_HERE"
DEFAULT_VALUATION = "horizon=12&horizon_unit=months&discount_rate=0.1&margin=0.3"

# CLTV by segment: metric keys in row 3, headers in row 4, segments from row 5, total after.
METRICS: tuple[tuple[str, str, str], ...] = (
    ("customers", "Customers", "#,##0"),
    ("clv_mean", "Mean CLTV", "#,##0.00"),
    ("share_of_value", "Share of value", "0.0%"),
)
DEFAULT_SEGMENTS = ("Online", "Partner", "Retail")  # `python -m cltv_api.demo --generated N`
FIRST_SEGMENT_ROW = 5
TOTAL_ROW = FIRST_SEGMENT_ROW + len(DEFAULT_SEGMENTS)
TOTAL_LABEL = "All customers"

# Business case: the campaign's inputs (yellow) and what follows from them.
TARGET_SEGMENT = "Online"
CONTACTED_SHARE = 0.4
COST_PER_CONTACT = 4.0
CLTV_UPLIFT = 0.05

INPUT_FILL = PatternFill("solid", start_color="FFF2CC", end_color="FFF2CC")
BOLD = Font(bold=True)
TITLE = Font(bold=True, size=14)
NOTE = Font(italic=True, color="666666")
WRAP = Alignment(wrap_text=True, vertical="top")


@dataclass(frozen=True)
class Row:
    """One labelled row of a two-column block: label in A, value or formula in B, note in C."""

    label: str
    value: str | float
    note: str = ""
    number_format: str | None = None
    is_input: bool = False
    name: str | None = None  # a workbook-level defined name for column B


def pull(url: str) -> str:
    """A formula body that fetches ``url`` and reads the answer as a number in any locale."""
    return f'_xlfn.NUMBERVALUE(_xlfn.WEBSERVICE({url}),".")'


def _write_rows(sheet: Worksheet, workbook: Workbook, first_row: int, rows: Sequence[Row]) -> None:
    for offset, row in enumerate(rows):
        r = first_row + offset
        sheet.cell(r, 1, row.label)
        cell = sheet.cell(r, 2, row.value)
        if row.number_format:
            cell.number_format = row.number_format
        if row.is_input:
            cell.fill = INPUT_FILL
        if row.note:
            sheet.cell(r, 3, row.note).font = NOTE
        if row.name:
            ref = f"'{sheet.title}'!$B${r}" if " " in sheet.title else f"{sheet.title}!$B${r}"
            workbook.defined_names[row.name] = DefinedName(row.name, attr_text=ref)


def _title(sheet: Worksheet, title: str, subtitle: str) -> None:
    sheet["A1"] = title
    sheet["A1"].font = TITLE
    sheet["A2"] = subtitle
    sheet["A2"].font = NOTE


def _widths(sheet: Worksheet, widths: dict[str, float]) -> None:
    for column, width in widths.items():
        sheet.column_dimensions[column].width = width


def settings_sheet(workbook: Workbook, sheet: Worksheet) -> None:
    """Inputs: the service, the tokens, the valuation; below them the URLs built from them."""
    sheet.title = SETTINGS
    _title(
        sheet,
        "CLTV pull: settings",
        "Paste your service's address and share tokens into the yellow cells; every sheet "
        "builds its URLs from them. Create tokens with POST /v1/share-tokens "
        "(docs/spreadsheets.md).",
    )
    _write_rows(
        sheet,
        workbook,
        4,
        [
            Row(
                "Service URL",
                DEFAULT_SERVICE_URL,
                "https:// for any server but your own machine",
                is_input=True,
            ),
            Row(
                "Fit share token",
                DEFAULT_FIT_TOKEN,
                'a token with resource_type "fit"',
                is_input=True,
            ),
            Row(
                "Business case share token",
                DEFAULT_CASE_TOKEN,
                'a token with resource_type "business_case"',
                is_input=True,
            ),
            Row(
                "Valuation (query string)",
                DEFAULT_VALUATION,
                "CLTV horizon and its unit (days, weeks, months), annual discount rate, "
                "margin (share of revenue counted as value); written with a point",
                is_input=True,
            ),
        ],
    )
    sheet["A9"] = "Built from the cells above (do not edit)"
    sheet["A9"].font = BOLD
    base = "Base_URL"
    # TRIM(CLEAN()): a token or URL copied from a terminal may bring spaces or a line break
    fit_share = f'{base}&"/v1/share/"&TRIM(CLEAN({FIT_TOKEN_CELL}))'
    case_share = f'{base}&"/v1/share/"&TRIM(CLEAN({CASE_TOKEN_CELL}))'
    url = f"TRIM(CLEAN({SERVICE_URL_CELL}))"
    _write_rows(
        sheet,
        workbook,
        10,
        [
            Row(
                "Base URL",
                f'=IF(RIGHT({url},1)="/",LEFT({url},LEN({url})-1),{url})',
                "the service URL without a trailing slash",
                name=base,
            ),
            Row(
                "Fit value URL",
                f'={fit_share}&"/value?"&{VALUATION_CELL}&"&metric="',
                "+ a metric (customers, clv_mean, share_of_value...) and &segment=...",
                name="FitValueURL",
            ),
            Row(
                "Business case value URL",
                f'={case_share}&"/value?metric="',
                "+ a metric (npv, roi, payback_periods, pv_benefits, pv_costs, break_even)",
                name="CaseValueURL",
            ),
            Row(
                "Segment table CSV",
                f'={fit_share}&"/segments.csv?"&{VALUATION_CELL}',
                "for Power Query or IMPORTDATA; add &sep=;&decimal=comma for Russian Excel",
                name="SegmentsCsvURL",
            ),
            Row(
                "Cash flows CSV",
                f'={case_share}&"/cashflows.csv"',
                "the business case's periods (latest version)",
                name="CashflowsCsvURL",
            ),
        ],
    )
    _widths(sheet, {"A": 28, "B": 72, "C": 70})


def _segment_formula(metric_cell: str, row: int | None) -> str:
    """``=NUMBERVALUE(WEBSERVICE(FitValueURL & metric [& "&segment=" & segment]), ".")``."""
    url = f"FitValueURL&{metric_cell}"
    if row is not None:
        url += f'&"&segment="&_xlfn.ENCODEURL($A{row})'
    return "=" + pull(url)


def segments_sheet(sheet: Worksheet) -> None:
    """One row per segment (values typed in column A), one column per metric (key in row 3)."""
    _title(
        sheet,
        "CLTV by segment, pulled from the service",
        "Type the segment values of your fit in column A (as in its segment table); columns B-D "
        "ask the service (metric keys in row 3). CLTV is in the data's currency.",
    )
    sheet.cell(3, 1, "metric key").font = NOTE
    sheet.cell(4, 1, "Segment").font = BOLD
    for j, (key, header, _) in enumerate(METRICS, start=2):
        sheet.cell(3, j, key).font = NOTE
        sheet.cell(4, j, header).font = BOLD
    for r, label in enumerate([*DEFAULT_SEGMENTS, TOTAL_LABEL], start=FIRST_SEGMENT_ROW):
        is_total = r == TOTAL_ROW
        label_cell = sheet.cell(r, 1, label)
        if is_total:
            label_cell.font = BOLD
        else:
            label_cell.fill = INPUT_FILL
        for j, (_, _, number_format) in enumerate(METRICS, start=2):
            metric_cell = f"{sheet.cell(3, j).column_letter}$3"
            cell = sheet.cell(r, j, _segment_formula(metric_cell, None if is_total else r))
            cell.number_format = number_format
    _widths(sheet, {"A": 22, "B": 14, "C": 14, "D": 16})


def _segment_range(column: str) -> str:
    return f"'{SEGMENTS}'!${column}${FIRST_SEGMENT_ROW}:${column}${TOTAL_ROW}"


def _lookup(column: str) -> str:
    """The target segment's (B4) value in a column of the segment sheet (INDEX/MATCH on A)."""
    return f"=INDEX({_segment_range(column)},MATCH(B4,{_segment_range('A')},0))"


def case_sheet(workbook: Workbook, sheet: Worksheet) -> None:
    """A retention campaign on one segment, valued with the pulled CLTV, against the NPV of the
    business case stored in the service."""
    _title(
        sheet,
        "Retention campaign: does it pay?",
        "Change the yellow cells. Customers, mean CLTV and the stored case's NPV come from the "
        "service, so the answer follows the latest fit.",
    )
    _write_rows(
        sheet,
        workbook,
        4,
        [
            Row(
                "Target segment",
                TARGET_SEGMENT,
                "one of the segments of the CLTV sheet",
                is_input=True,
            ),
            Row("Share of the segment contacted", CONTACTED_SHARE, "", "0%", is_input=True),
            Row(
                "Cost per contacted customer",
                COST_PER_CONTACT,
                "currency of the data",
                "#,##0.00",
                is_input=True,
            ),
            Row(
                "CLTV uplift of contacted customers",
                CLTV_UPLIFT,
                "relative, e.g. 5% more value",
                "0.0%",
                is_input=True,
            ),
        ],
    )
    sheet["A9"] = "From the service"
    sheet["A9"].font = BOLD
    _write_rows(
        sheet,
        workbook,
        10,
        [
            Row("Customers in the segment", _lookup("B"), "CLTV by segment", "#,##0"),
            Row("Mean CLTV in the segment", _lookup("C"), "CLTV by segment", "#,##0.00"),
            Row(
                "NPV of the stored business case",
                "=" + pull('CaseValueURL&"npv"'),
                "the case shared by the business case token",
                "#,##0.00",
            ),
        ],
    )
    sheet["A14"] = "Campaign"
    sheet["A14"].font = BOLD
    _write_rows(
        sheet,
        workbook,
        15,
        [
            Row("Customers contacted", "=B10*B5", "customers x share contacted", "#,##0"),
            Row("CLTV gained", "=B15*B11*B7", "contacted x mean CLTV x uplift", "#,##0.00"),
            Row("Campaign cost", "=B15*B6", "contacted x cost per contact", "#,##0.00"),
            Row("Net value of the campaign", "=B16-B17", "CLTV gained - cost", "#,##0.00"),
            Row("Break-even uplift", "=B6/B11", "cost per contact / mean CLTV", "0.00%"),
            Row(
                "Better use of the money",
                '=IF(B18>=B12,"this campaign","the stored business case")',
                "net value of the campaign vs the stored case's NPV",
            ),
        ],
    )
    for r in (18, 20):
        sheet.cell(r, 1).font = BOLD
    _widths(sheet, {"A": 36, "B": 18, "C": 52})


GOOGLE_ROWS: tuple[tuple[str, str], ...] = (
    (
        "Customers in Online",
        f'=IMPORTDATA({SETTINGS}!$B$11&"customers&segment="&ENCODEURL("Online"), ",", "en_US")',
    ),
    (
        "Mean CLTV in Online",
        f'=IMPORTDATA({SETTINGS}!$B$11&"clv_mean&segment="&ENCODEURL("Online"), ",", "en_US")',
    ),
    ("Mean CLTV, all customers", f'=IMPORTDATA({SETTINGS}!$B$11&"clv_mean", ",", "en_US")'),
    ("NPV of the business case", f'=IMPORTDATA({SETTINGS}!$B$12&"npv", ",", "en_US")'),
    ("Whole segment table", f"=IMPORTDATA({SETTINGS}!$B$13)"),
    ("Cash flows of the case", f"=IMPORTDATA({SETTINGS}!$B$14)"),
    (
        "Segment table, Russian locale",
        f'=IMPORTDATA({SETTINGS}!$B$13&"&sep=%3B&decimal=comma", ";", "ru_RU")',
    ),
)


def google_sheet(sheet: Worksheet) -> None:
    """The pulls written for Google Sheets, as text (Excel and LibreOffice lack IMPORTDATA)."""
    _title(
        sheet,
        "The same pulls in Google Sheets",
        "Upload this workbook to Google Drive, open it with Google Sheets and type these "
        "formulas (they are text here). IMPORTDATA runs on Google's servers: the service must "
        "be reachable from the internet.",
    )
    sheet.cell(4, 1, "What").font = BOLD
    sheet.cell(4, 2, "Formula for Google Sheets").font = BOLD
    for i, (label, formula) in enumerate(GOOGLE_ROWS, start=5):
        sheet.cell(i, 1, label)
        cell = sheet.cell(i, 2, formula)
        cell.data_type = "s"  # shown as text: a formula would be #NAME? outside Google Sheets
        cell.quotePrefix = True
        cell.alignment = WRAP
    _widths(sheet, {"A": 30, "B": 110})


def build() -> Workbook:
    """The example workbook (see the module docstring)."""
    workbook = Workbook()
    first = workbook.active
    assert first is not None
    settings_sheet(workbook, first)
    segments_sheet(workbook.create_sheet(SEGMENTS))
    case_sheet(workbook, workbook.create_sheet(CASE))
    google_sheet(workbook.create_sheet(GOOGLE))
    workbook.properties.creator = "cltv examples/make_workbook.py"
    workbook.properties.created = FIXED_DATE
    workbook.properties.modified = FIXED_DATE
    workbook.calculation.fullCalcOnLoad = True
    return workbook


def _fixed_modified(core_xml: bytes) -> bytes:
    """``docProps/core.xml`` with the modification date openpyxl stamps at save replaced by
    :data:`FIXED_DATE`."""
    stamp = FIXED_DATE.strftime("%Y-%m-%dT%H:%M:%SZ").encode()
    return MODIFIED.sub(rb"\g<1>" + stamp + rb"\g<2>", core_xml)


def deterministic_zip(data: bytes) -> bytes:
    """The same XLSX with every entry dated :data:`ZIP_DATE` and a fixed modification date
    (openpyxl stamps the current time on both)."""
    out = io.BytesIO()
    with (
        zipfile.ZipFile(io.BytesIO(data)) as source,
        zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as target,
    ):
        for info in source.infolist():
            content = source.read(info.filename)
            if info.filename == CORE_PROPERTIES:
                content = _fixed_modified(content)
            entry = zipfile.ZipInfo(info.filename, date_time=ZIP_DATE)
            entry.compress_type = zipfile.ZIP_DEFLATED
            entry.external_attr = 0o644 << 16
            target.writestr(entry, content)
    return out.getvalue()


def workbook_bytes() -> bytes:
    """The example workbook as XLSX bytes, identical on every run."""
    buffer = io.BytesIO()
    build().save(buffer)
    return deterministic_zip(buffer.getvalue())


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("-o", "--output", type=Path, default=OUTPUT, help="where to write")
    args = parser.parse_args(argv)
    args.output.write_bytes(workbook_bytes())
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
