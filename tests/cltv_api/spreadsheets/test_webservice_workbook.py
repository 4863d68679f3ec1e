"""The example workbook ``examples/cltv_pull.xlsx`` pulls the service's numbers with
``WEBSERVICE`` in LibreOffice, and is exactly what ``examples/make_workbook.py`` writes.

The live test runs the real thing: a uvicorn process on 127.0.0.1 (free port), a workspace, a
generated data set (500 customers, channels Online/Partner/Retail) uploaded, fitted and turned
into a business case over HTTP, share tokens for the fit and the case; a copy of the example
workbook gets that server's URL and tokens in its Settings cells and is loaded in LibreOffice
(headless, UNO, links updated on load in a trusted folder: ``recalc_uno.py --update-links``),
whose ``WEBSERVICE`` formulas fetch from the server. The pulled numbers must be the API's JSON
and the campaign arithmetic must follow from them. A second copy, whose case token was revoked,
must show an error in the NPV cell and nowhere that does not depend on it.
"""

from __future__ import annotations

import importlib.util
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any
from urllib.parse import parse_qsl

import httpx
import openpyxl
import pytest

from cltv_api.storage.db import Database
from tests.cltv_api.service.conftest import LiveServer, new_workspace, start_live_server
from tests.cltv_api.service.test_datasets import csv_bytes, transactions

REPO_ROOT = Path(__file__).resolve().parents[3]
EXAMPLE = REPO_ROOT / "examples" / "cltv_pull.xlsx"
GENERATOR = REPO_ROOT / "examples" / "make_workbook.py"
RECALC = REPO_ROOT / "tests" / "cltv_api" / "exports" / "recalc_uno.py"
SYSTEM_PYTHON = "/usr/bin/python3"
RECALC_TIMEOUT_S = 240
# LibreOffice reads the service's shortest round-trip decimals (``0.6583894800182115``) to within
# one unit in the last place (it gave ...114 for ...115), so pulled floats are compared to 1e-13.
PULL_REL = 1e-13
CUSTOMERS = 500
CASE: dict[str, Any] = {
    "name": "Loyalty programme",
    "initiative": {
        "currency": "USD",
        "one_off_cost": 300.0,
        "running_cost_per_period": 15.0,
        "horizon_periods": 12,
        "annual_discount_rate": 0.1,
        "period": "month",
    },
    "baseline": {"kind": "fit", "fit_id": "", "margin": 0.3},
    "effects": {"*": {"churn_reduction_share": 0.2, "spend_uplift": 0.05}},
}


def load_generator() -> ModuleType:
    """``examples/make_workbook.py`` as a module (examples/ is not a package)."""
    name = "examples_make_workbook"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, GENERATOR)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


make_workbook = load_generator()


def members(xlsx: bytes) -> dict[str, bytes]:
    """The XLSX's parts, by name, uncompressed (independent of the zlib that packed them)."""
    with zipfile.ZipFile(io.BytesIO(xlsx)) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


# ------------------------------------------------------------------------------ the file itself


def test_committed_workbook_is_the_generators_output() -> None:
    assert EXAMPLE.exists(), "run: .venv/bin/python examples/make_workbook.py"
    committed = members(EXAMPLE.read_bytes())
    generated = members(make_workbook.workbook_bytes())
    assert list(committed) == list(generated)
    stale = [name for name in generated if committed[name] != generated[name]]
    assert stale == [], f"examples/cltv_pull.xlsx is stale ({stale}): rerun make_workbook.py"


def test_generator_writes_identical_bytes_on_every_run() -> None:
    # openpyxl stamps the save time into docProps/core.xml and every ZIP entry; both are fixed.
    first = make_workbook.workbook_bytes()
    assert make_workbook.workbook_bytes() == first
    assert b"2025-01-01T00:00:00Z</dcterms:modified>" in members(first)["docProps/core.xml"]


def test_every_pull_builds_its_url_from_the_settings_cells() -> None:
    # A user pastes their server and tokens once: no formula may carry its own URL or token.
    book = openpyxl.load_workbook(io.BytesIO(make_workbook.workbook_bytes()))
    pulls = [
        cell.value
        for sheet in book.worksheets
        for row in sheet.iter_rows()
        for cell in row
        if cell.data_type == "f" and "WEBSERVICE" in str(cell.value)
    ]
    # 3 metrics x (3 segments + all customers) + the case's NPV
    assert len(pulls) == 13
    assert all("FitValueURL" in p or "CaseValueURL" in p for p in pulls)
    assert not any("http" in p or "cltv_share_" in p for p in pulls)
    assert all(p.startswith("=_xlfn.NUMBERVALUE(_xlfn.WEBSERVICE(") for p in pulls)
    names = {name: book.defined_names[name].attr_text for name in book.defined_names}
    assert names["FitValueURL"] == "Settings!$B$11"
    assert names["CaseValueURL"] == "Settings!$B$12"
    # The Google Sheets formulas are text (IMPORTDATA is unknown outside Google Sheets).
    google = book[make_workbook.GOOGLE]
    texts = [google.cell(r, 2) for r in range(5, 5 + len(make_workbook.GOOGLE_ROWS))]
    assert all(c.data_type == "s" and str(c.value).startswith("=IMPORTDATA(") for c in texts)


# ------------------------------------------------------------------------------ live pull


@dataclass(frozen=True)
class Pulled:
    """What the API answered (JSON and text/plain) and what LibreOffice computed."""

    segments_json: dict[str, Any]
    case_json: dict[str, Any]
    texts: dict[str, str]  # "<metric>/<segment or ''>" -> the share endpoint's text/plain
    book: dict[str, Any]
    revoked_book: dict[str, Any]
    base_url: str
    log: str
    tokens: tuple[str, ...]


def valuation() -> dict[str, str]:
    """The workbook's valuation query (Settings), as the JSON endpoint's parameters."""
    return dict(parse_qsl(make_workbook.DEFAULT_VALUATION))


def libreoffice_or_skip() -> None:
    """Skip when LibreOffice is not installed at all; fail when it is but UNO is unusable."""
    if shutil.which("soffice") is None:
        pytest.skip("LibreOffice (soffice) is not installed; `make test` installs it")
    probe = subprocess.run(
        [SYSTEM_PYTHON, "-c", "import uno"], capture_output=True, text=True, timeout=60, check=False
    )
    assert probe.returncode == 0, f"python3-uno is missing for {SYSTEM_PYTHON}: {probe.stderr}"


def recalculate_with_links(paths: list[Path]) -> list[dict[str, Any]]:
    """``recalc_uno.py --update-links`` in its own process group, killed whole (LibreOffice
    included) if it runs past :data:`RECALC_TIMEOUT_S`."""
    process = subprocess.Popen(
        [SYSTEM_PYTHON, str(RECALC), "--update-links", *map(str, paths)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = process.communicate(timeout=RECALC_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, err = process.communicate()
        pytest.fail(f"LibreOffice did not finish within {RECALC_TIMEOUT_S} s:\n{err}")
    assert process.returncode == 0, err
    books: list[dict[str, Any]] = json.loads(out)
    return books


def write_settings(path: Path, base_url: str, fit_token: str, case_token: str) -> None:
    """A copy of the committed example with the server and tokens pasted into Settings."""
    book = openpyxl.load_workbook(EXAMPLE)
    settings = book[make_workbook.SETTINGS]
    settings[make_workbook.SERVICE_URL_CELL] = base_url
    settings[make_workbook.FIT_TOKEN_CELL] = fit_token
    settings[make_workbook.CASE_TOKEN_CELL] = case_token
    book.save(path)


def set_up_service(http: httpx.Client) -> tuple[str, str]:
    """Upload, fit and value a business case over HTTP; (fit id, case id)."""
    uploaded = http.post(
        "/v1/datasets",
        files={"file": ("orders.csv", csv_bytes(transactions(customers=CUSTOMERS, seed=8)))},
        data={"segment_cols": "channel", "currency": "USD"},
    )
    assert uploaded.status_code == 201, uploaded.text
    fitted = http.post(
        "/v1/fits",
        json={
            "dataset_id": uploaded.json()["id"],
            "purchase_model": "bgnbd",
            "segment_by": ["channel"],
        },
    )
    assert fitted.status_code == 201, fitted.text
    fit_id: str = fitted.json()["id"]
    case = http.post(
        "/v1/business-cases",
        json={**CASE, "baseline": {**CASE["baseline"], "fit_id": fit_id}},
    )
    assert case.status_code == 201, case.text
    return fit_id, case.json()["id"]


def share(http: httpx.Client, resource_type: str, resource_id: str) -> dict[str, Any]:
    created = http.post(
        "/v1/share-tokens", json={"resource_type": resource_type, "resource_id": resource_id}
    )
    assert created.status_code == 201, created.text
    body: dict[str, Any] = created.json()
    return body


def text_pulls(base_url: str, fit_token: str, case_token: str) -> dict[str, str]:
    """The share endpoint's text/plain answers for every cell the workbook pulls."""
    texts = {}
    for segment in [*make_workbook.DEFAULT_SEGMENTS, None]:
        for metric, _, _ in make_workbook.METRICS:
            params = {**valuation(), "metric": metric}
            if segment is not None:
                params["segment"] = segment
            got = httpx.get(f"{base_url}/v1/share/{fit_token}/value", params=params, timeout=30)
            assert got.status_code == 200, got.text
            assert got.headers["content-type"] == "text/plain; charset=utf-8"
            texts[f"{metric}/{segment or ''}"] = got.text
    npv = httpx.get(f"{base_url}/v1/share/{case_token}/value?metric=npv", timeout=30)
    assert npv.status_code == 200, npv.text
    texts["npv/"] = npv.text
    return texts


@pytest.fixture(scope="module")
def pulled(tmp_path_factory: pytest.TempPathFactory) -> Pulled:
    libreoffice_or_skip()
    tmp = tmp_path_factory.mktemp("webservice")
    server: LiveServer = start_live_server(tmp / "data", tmp / "uvicorn.log")
    try:
        db = Database(f"sqlite:///{server.data_dir / 'cltv.sqlite3'}")
        try:
            headers = new_workspace(db, "sheets").headers
        finally:
            db.dispose()
        with httpx.Client(base_url=server.base_url, headers=headers, timeout=60) as http:
            fit_id, case_id = set_up_service(http)
            segments = http.get(f"/v1/fits/{fit_id}/segments", params=valuation())
            assert segments.status_code == 200, segments.text
            case = http.get(f"/v1/business-cases/{case_id}")
            assert case.status_code == 200, case.text
            fit_token = share(http, "fit", fit_id)["token"]
            case_token = share(http, "business_case", case_id)["token"]
            # The second workbook gets its own fit token: LibreOffice sends three requests per
            # cell, and each token may send 100 at once (the service's rate limit).
            second_fit_token = share(http, "fit", fit_id)["token"]
            revoked = share(http, "business_case", case_id)
            assert http.delete(f"/v1/share-tokens/{revoked['id']}").status_code == 204
        texts = text_pulls(server.base_url, fit_token, case_token)
        books = tmp / "books"  # the folder LibreOffice is told to trust
        books.mkdir()
        # A trailing slash as pasted from a browser's address bar, and a token with the line
        # break of a terminal copy: the workbook strips both.
        write_settings(books / "pull.xlsx", server.base_url + "/", fit_token + "\n", case_token)
        write_settings(books / "revoked.xlsx", server.base_url, second_fit_token, revoked["token"])
        book, revoked_book = recalculate_with_links([books / "pull.xlsx", books / "revoked.xlsx"])
    finally:
        server.stop()
    return Pulled(
        segments_json=segments.json(),
        case_json=case.json(),
        texts=texts,
        book=book,
        revoked_book=revoked_book,
        base_url=server.base_url,
        log=server.log(),
        tokens=(fit_token, case_token, second_fit_token, revoked["token"]),
    )


def segment_rows(book: dict[str, Any]) -> dict[str, list[Any]]:
    """The CLTV sheet's rows by label: [customers, mean CLTV, share of value]."""
    rows = book["sheets"][make_workbook.SEGMENTS]
    first = make_workbook.FIRST_SEGMENT_ROW - 1
    return {row[0]: row[1:4] for row in rows[first : make_workbook.TOTAL_ROW]}


def case_cells(book: dict[str, Any]) -> dict[str, Any]:
    """The business-case sheet's column B by its label in column A."""
    return {row[0]: row[1] for row in book["sheets"][make_workbook.CASE] if row and row[0]}


@pytest.mark.slow
@pytest.mark.xdist_group("libreoffice")
def test_text_endpoint_gives_the_json_numbers_exactly(pulled: Pulled) -> None:
    # The value endpoint writes shortest round-trip decimals: parsing them gives the JSON float.
    report = pulled.segments_json
    by_label = {row["segment"]["channel"]: row for row in report["segments"]}
    assert list(by_label) == list(make_workbook.DEFAULT_SEGMENTS)
    for label, row in [*by_label.items(), ("", report["total"])]:
        for metric, _, _ in make_workbook.METRICS:
            assert float(pulled.texts[f"{metric}/{label}"]) == row[metric], (label, metric)
    assert float(pulled.texts["npv/"]) == pulled.case_json["result"]["npv"]


@pytest.mark.slow
@pytest.mark.xdist_group("libreoffice")
def test_libreoffice_pulls_the_api_numbers_into_the_workbook(pulled: Pulled) -> None:
    book = pulled.book
    assert book["errors"] == []
    settings = {row[0]: row[1] for row in book["sheets"][make_workbook.SETTINGS] if row}
    assert settings["Base URL"] == pulled.base_url  # trailing slash stripped
    report = pulled.segments_json
    want = {row["segment"]["channel"]: row for row in report["segments"]}
    want[make_workbook.TOTAL_LABEL] = report["total"]
    got = segment_rows(book)
    assert list(got) == list(want)
    for label, cells in got.items():
        customers, clv_mean, share_of_value = cells
        assert customers == want[label]["customers"], label
        assert clv_mean == pytest.approx(want[label]["clv_mean"], rel=PULL_REL), label
        assert share_of_value == pytest.approx(want[label]["share_of_value"], rel=PULL_REL)
    # (``want`` was valued with the Settings' query, margin 0.3: had the workbook not sent it,
    # the server's default margin 1 would make every CLTV 1 / 0.3 times larger.)
    assert got[make_workbook.TOTAL_LABEL][2] == 1.0  # all customers hold all the value
    npv = case_cells(book)["NPV of the stored business case"]
    assert npv == pytest.approx(pulled.case_json["result"]["npv"], rel=PULL_REL)


@pytest.mark.slow
@pytest.mark.xdist_group("libreoffice")
def test_campaign_cells_follow_from_the_pulled_numbers(pulled: Pulled) -> None:
    cells = case_cells(pulled.book)
    mw = make_workbook
    target = segment_rows(pulled.book)[mw.TARGET_SEGMENT]
    customers, clv_mean = target[0], target[1]
    # Hand arithmetic of the sheet: contacted = customers x share; gained = contacted x mean
    # CLTV x uplift; cost = contacted x cost per contact; net = gained - cost.
    contacted = customers * mw.CONTACTED_SHARE
    net = contacted * clv_mean * mw.CLTV_UPLIFT - contacted * mw.COST_PER_CONTACT
    assert cells["Customers in the segment"] == customers
    assert cells["Mean CLTV in the segment"] == clv_mean
    assert cells["Customers contacted"] == pytest.approx(contacted, rel=1e-12)
    assert cells["Net value of the campaign"] == pytest.approx(net, rel=1e-12)
    assert cells["Break-even uplift"] == pytest.approx(mw.COST_PER_CONTACT / clv_mean, rel=1e-12)
    npv = cells["NPV of the stored business case"]
    better = "this campaign" if net >= npv else "the stored business case"
    assert cells["Better use of the money"] == better
    # with the API's own numbers (not the workbook's) the net value is the same to 1e-12
    rows = pulled.segments_json["segments"]
    api = next(r for r in rows if r["segment"]["channel"] == mw.TARGET_SEGMENT)
    contacted_api = api["customers"] * mw.CONTACTED_SHARE
    net_api = contacted_api * (api["clv_mean"] * mw.CLTV_UPLIFT - mw.COST_PER_CONTACT)
    assert cells["Net value of the campaign"] == pytest.approx(net_api, rel=1e-12)


@pytest.mark.slow
@pytest.mark.xdist_group("libreoffice")
def test_a_revoked_case_token_breaks_only_the_cells_that_use_it(pulled: Pulled) -> None:
    book = pulled.revoked_book
    # Business case sheet: B12 (the NPV pull) and B20 (compares the campaign with it).
    assert [e.split(":")[0] for e in book["errors"]] == [
        f"{make_workbook.CASE}!R12C2",
        f"{make_workbook.CASE}!R20C2",
    ]
    assert segment_rows(book) == segment_rows(pulled.book)


@pytest.mark.slow
@pytest.mark.xdist_group("libreoffice")
def test_the_server_never_logs_the_tokens_the_workbook_sent(pulled: Pulled) -> None:
    assert "/v1/share/<token>/value" in pulled.log  # the pulls were logged, redacted
    assert not any(token in pulled.log for token in pulled.tokens)
    assert "Traceback" not in pulled.log
