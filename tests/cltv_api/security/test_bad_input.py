"""A catalogue of hostile and broken input. Each answer is a problem (RFC 9457) with the right
status and type and a detail that names the problem, and nothing is stored: the workspace's data
sets, fits and business cases are unchanged and no file is left in the data directory.

Caps chosen (see the constants named in each test): uploads ``max_upload_bytes``; an .xlsx part
may not expand more than 200 times once over 16 MiB, nor the whole workbook beyond 4 GiB
(:mod:`cltv_api.ingest.sniff`); amounts at most 1e15 in absolute value and customer ids at most
500 characters (:mod:`cltv_api.ingest.layouts`); at most 10,000 distinct values per segment column
(:mod:`cltv_api.ingest.pipeline`); business-case money at most 1e15 per input and customers 1e12
(:mod:`cltv_api.economics.business_case`); Monte Carlo 100,000 draws; horizons: calculator 10,000
periods, business cases 600, valuations 20 years, retention forecasts 1,200 periods.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import re
import struct
import time
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from cltv_api.economics.montecarlo import MAX_DRAWS
from cltv_api.ingest.layouts import MAX_AMOUNT, MAX_CUSTOMER_ID_CHARS
from cltv_api.ingest.pipeline import MAX_SEGMENT_VALUES
from cltv_api.ingest.sniff import MAX_XLSX_RATIO
from cltv_api.main import create_app
from tests.cltv_api.security.conftest import PROBLEM_MEDIA_TYPE, PROBLEMS, security_settings
from tests.cltv_api.service.conftest import Credentials, TestClient, new_workspace
from tests.cltv_api.service.test_business_cases_api import HAND_CASE
from tests.cltv_api.service.test_churn_api import fit_transactions
from tests.cltv_api.service.test_datasets import csv_bytes, transactions

GOOD_ROWS = "a,2024-01-05,10\nb,2024-01-06,12\n"
HEADER = "customer,date,amount\n"
SMALL_LIMIT = 8192


@dataclass
class Env:
    client: TestClient
    key: Credentials
    data_dir: Path
    fit_id: str

    @property
    def headers(self) -> dict[str, str]:
        return self.key.headers

    def upload(self, data: bytes, filename: str = "orders.csv", **fields: Any) -> Any:
        return self.client.post(
            "/v1/datasets", headers=self.headers, files={"file": (filename, data)}, data=fields
        )

    def post_json(self, path: str, raw: bytes) -> Any:
        headers = {**self.headers, "Content-Type": "application/json"}
        return self.client.post(path, headers=headers, content=raw)

    def stored(self) -> tuple[Any, ...]:
        """Everything a refused request must leave as it was."""
        totals = tuple(
            self.client.get(path, headers=self.headers).json()["total"]
            for path in ("/v1/datasets", "/v1/fits", "/v1/business-cases", "/v1/retention/fits")
        )
        files = frozenset(
            str(p.relative_to(self.data_dir))
            for p in self.data_dir.rglob("*")
            if p.is_file() and not p.name.startswith(("cltv.sqlite3", ".migrate", "."))
        )
        return totals, files


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Env]:
    data_dir = tmp_path_factory.mktemp("bad-input") / "data"
    app = create_app(security_settings(data_dir, max_upload_bytes=64 * 1024**2))
    with TestClient(app, raise_server_exceptions=False) as client:
        key = new_workspace(app.state.db, "bad input")
        yield Env(client, key, data_dir, fit_transactions(client, key.headers, customers=150))


def refused(env: Env, before: tuple[Any, ...], response: Any, status: int, slug: str) -> str:
    """Check the problem and that nothing was stored; returns the detail (and field messages)."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    problem = response.json()
    assert problem["type"] == PROBLEMS + slug and problem["status"] == status
    assert env.stored() == before
    messages = [problem["detail"], *(e["message"] for e in problem.get("errors", []))]
    return " | ".join(messages)


# ------------------------------------------------------------------------------ uploads


def test_an_upload_over_the_limit_is_413_and_leaves_nothing(tmp_path: Path) -> None:
    app = create_app(security_settings(tmp_path / "data", max_upload_bytes=SMALL_LIMIT))
    with TestClient(app, raise_server_exceptions=False) as client:
        key = new_workspace(app.state.db, "small")
        env = Env(client, key, tmp_path / "data", "")
        before = env.stored()
        data = (HEADER + GOOD_ROWS * 400).encode()  # 12,800 bytes > 8,192
        detail = refused(env, before, env.upload(data), 413, "payload-too-large")
        assert f"limit of {SMALL_LIMIT} bytes" in detail


def test_a_truncated_multipart_body_is_refused(env: Env) -> None:
    before = env.stored()
    body = (
        b'--XX\r\nContent-Disposition: form-data; name="file"; filename="a.csv"\r\n\r\n'
        + (HEADER + GOOD_ROWS).encode()  # the connection dropped: no "\r\n--XX--"
    )
    response = env.client.post(
        "/v1/datasets",
        headers={**env.headers, "Content-Type": "multipart/form-data; boundary=XX"},
        content=body,
    )
    assert "truncated" in refused(env, before, response, 422, "invalid-input")


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"", "empty"),
        (HEADER.encode(), "no data rows"),
        (bytes(range(256)) * 64, "binary"),
        (b"customer,date,amount," + b"x" * 10 * 1024**2, "first line is longer than"),
    ],
    ids=["empty file", "header only", "binary garbage", "10 MB single line"],
)
def test_unreadable_files_are_422_naming_the_problem(env: Env, data: bytes, expected: str) -> None:
    before = env.stored()
    detail = refused(env, before, env.upload(data), 422, "invalid-input")
    assert expected in detail


def test_a_csv_with_100000_columns_is_refused_for_its_missing_roles(env: Env) -> None:
    before = env.stored()
    names = [f"c{i}" for i in range(100_000)]
    data = (",".join(names) + "\n" + ",".join("1" for _ in names) + "\n").encode()
    started = time.perf_counter()
    detail = refused(env, before, env.upload(data), 422, "invalid-input")
    assert "Could not find the customer_id, date, amount column" in detail
    assert time.perf_counter() - started < 20  # answered, not ground through


def test_a_wrongly_declared_encoding_names_the_encoding(env: Env) -> None:
    before = env.stored()
    data = (HEADER + "Ёлка,2024-01-05,10\n").encode("utf-8")  # odd byte count: not UTF-16
    detail = refused(env, before, env.upload(data, encoding="utf-16"), 422, "invalid-input")
    assert "utf-16" in detail and "encoding" in detail


def _stored_entry(name: str, data: bytes) -> tuple[str, bytes, int, int, int]:
    return name, data, zipfile.ZIP_STORED, zlib.crc32(data), len(data)


def _zip(entries: list[tuple[str, bytes, int, int, int]]) -> bytes:
    """A ZIP archive of (name, data as stored, method, CRC-32, expanded size) entries."""
    out = io.BytesIO()
    directory = []
    for name, data, method, crc, size in entries:
        offset, raw = out.tell(), name.encode()
        sizes = (crc, len(data), size, len(raw))
        out.write(struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, *sizes, 0))
        out.write(raw + data)
        entry = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0, *sizes,
                            0, 0, 0, 0, 0, offset)  # fmt: skip
        directory.append(entry + raw)
    start, central = out.tell(), b"".join(directory)
    out.write(central)
    out.write(struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries), len(entries),
                          len(central), start, 0))  # fmt: skip
    return out.getvalue()


def zip_bomb_xlsx(expanded_bytes: int) -> bytes:
    """A real workbook whose first sheet is replaced by one that inflates to
    ``expanded_bytes`` of valid rows, in a file of a few megabytes.

    After a full flush deflate starts afresh, so the compressed block of one chunk of rows is the
    same every time: the stream is that block repeated (built in milliseconds). The CRC-32 is left
    0: a reader would notice only after inflating everything, which is the attack.
    """
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.append(["customer", "date", "amount"])
    buffer = io.BytesIO()
    book.save(buffer)
    with zipfile.ZipFile(buffer) as original:
        parts = {name: original.read(name) for name in original.namelist()}
    sheet_xml = parts["xl/worksheets/sheet1.xml"].split(b"<sheetData")[0]
    head = re.sub(rb"<dimension[^>]*/>", b"", sheet_xml) + b"<sheetData>"  # no row count
    tail = b"</sheetData></worksheet>"
    row = b'<row><c t="inlineStr"><is><t>a</t></is></c><c><v>1</v></c><c><v>2</v></c></row>'
    chunk = (row + b" " * 65_536) * 16  # 1 MiB: rows apart, as XML allows, for a ~1000x ratio
    repeats = (expanded_bytes - len(head) - len(tail)) // len(chunk)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    start = deflate.compress(head) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.compress(tail) + deflate.flush()
    stream = start + block * repeats + end
    size = len(head) + len(chunk) * repeats + len(tail)
    entries = [_stored_entry(n, d) for n, d in parts.items() if n != "xl/worksheets/sheet1.xml"]
    entries.append(("xl/worksheets/sheet1.xml", stream, zipfile.ZIP_DEFLATED, 0, size))
    return _zip(entries)


def test_a_zip_bomb_disguised_as_xlsx_is_refused_without_inflating_it(env: Env) -> None:
    bomb = zip_bomb_xlsx(3 * 1024**3)  # 3 GiB of rows
    assert len(bomb) < 8 * 1024**2  # in a few megabytes
    with zipfile.ZipFile(io.BytesIO(bomb)) as archive:  # a well-formed archive, as declared
        sheet = archive.getinfo("xl/worksheets/sheet1.xml")
        assert sheet.file_size > 3 * 10**9 and sheet.file_size / sheet.compress_size > 500
    before = env.stored()
    started = time.perf_counter()
    detail = refused(env, before, env.upload(bomb, "orders.xlsx"), 422, "invalid-input")
    assert time.perf_counter() - started < 5  # inflating 3 GiB of XML would take minutes
    assert "ZIP bomb" in detail and f"more than the {MAX_XLSX_RATIO} times" in detail


def test_year_1_and_year_9999_dates_are_out_of_range(env: Env) -> None:
    before = env.stored()
    data = (HEADER + "a,0001-01-01,10\nb,9999-12-31,12\nc,2024-01-02,3\n").encode()
    detail = refused(env, before, env.upload(data, future_dates="keep"), 422, "invalid-input")
    assert "2 date out of range" in detail and "before 1900-01-01 or after 2100-12-31" in detail


def test_nan_infinite_and_huge_amounts_are_refused_with_their_rows(env: Env) -> None:
    before = env.stored()
    data = HEADER + "a,2024-01-01,NaN\nb,2024-01-02,inf\nc,2024-01-03,1e308\n" + GOOD_ROWS
    response = env.upload(data.encode())
    detail = refused(env, before, response, 422, "invalid-input")
    assert "2 non finite amount" in detail and "1 amount out of range" in detail
    assert f"larger than {MAX_AMOUNT:g}" in detail
    # rows 2-4 of the file (line 1 is the header)
    rows = {(e["row"], e["value"]) for e in response.json()["errors"]}
    assert rows == {(2, "NaN"), (3, "inf"), (4, "1e308")}


def test_a_10_kb_customer_id_is_refused(env: Env) -> None:
    before = env.stored()
    data = (HEADER + "x" * 10_240 + ",2024-01-01,10\n" + GOOD_ROWS).encode()
    response = env.upload(data)
    detail = refused(env, before, response, 422, "invalid-input")
    assert f"longer than {MAX_CUSTOMER_ID_CHARS} characters" in detail
    error = response.json()["errors"][0]
    assert error["row"] == 2 and len(error["value"]) == 100  # echoed shortened, not 10 KB


@pytest.mark.slow
def test_a_million_distinct_segments_are_refused(env: Env) -> None:
    before = env.stored()
    lines = [f"c{i % 1000},2024-01-{1 + i % 28:02d},1,s{i}\n" for i in range(1_000_000)]
    data = ("customer,date,amount,store\n" + "".join(lines)).encode()
    response = env.upload(data, segment_cols="store")
    detail = refused(env, before, response, 422, "invalid-input")
    assert "'store' has 1,000,000 distinct values" in detail
    assert f"at most {MAX_SEGMENT_VALUES:,}" in detail


def test_formulas_in_cells_are_stored_as_text_and_neutralised_on_export(env: Env) -> None:
    table = csv_bytes(transactions(customers=120, seed=9)).decode()
    rows = list(csv.reader(io.StringIO(table)))
    payload = "=cmd|' /C calc'!A0"
    for row in rows[1:]:
        if row[0] == rows[1][0]:
            row[0] = payload  # every order of the first customer
    rows[1][4] = '=HYPERLINK("http://evil.example")'  # a channel (segment) value
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    created = env.upload(out.getvalue().encode(), segment_cols="channel")
    assert created.status_code == 201, created.text
    fit = env.client.post(
        "/v1/fits",
        headers=env.headers,
        json={"dataset_id": created.json()["id"], "purchase_model": "bgnbd",
              "segment_by": ["channel"]},
    )  # fmt: skip
    assert fit.status_code == 201, fit.text
    fit_id = fit.json()["id"]
    customer = env.client.get(f"/v1/fits/{fit_id}/customers", headers=env.headers,
                              params={"limit": 1000})  # fmt: skip
    ids = {item["customer_id"] for item in customer.json()["items"]}
    assert payload in ids  # stored and answered as the text it is in JSON
    exported = env.client.get(f"/v1/fits/{fit_id}/customers?format=csv", headers=env.headers)
    segments = env.client.get(f"/v1/fits/{fit_id}/segments?format=csv", headers=env.headers)
    for response in (exported, segments):
        cells = [cell for row in csv.reader(io.StringIO(response.text)) for cell in row]
        assert not any(c.startswith(("=", "@")) for c in cells), response.url
    assert "'" + payload in exported.text
    assert "'=HYPERLINK" in segments.text


# ------------------------------------------------------------------------------ JSON bodies

CALCULATOR = (
    '{"average_order_value": %s, "purchases_per_period": 1, "gross_margin": 0.3, '
    '"retention_rate": 0.8}'
)


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e400"])
def test_non_finite_json_numbers_are_422_naming_the_field(env: Env, literal: str) -> None:
    before = env.stored()
    response = env.post_json("/v1/calculator", (CALCULATOR % literal).encode())
    refused(env, before, response, 422, "validation-error")
    assert response.json()["errors"] == [
        {"field": "body.average_order_value", "message": "Input should be a finite number"}
    ]
    case = json.dumps(HAND_CASE).replace('"one_off_cost": 500.0', f'"one_off_cost": {literal}')
    response = env.post_json("/v1/business-cases", case.encode())
    detail = refused(env, before, response, 422, "validation-error")
    assert response.json()["errors"][0]["field"] == "body.initiative.one_off_cost"
    assert "finite number" in detail


def test_a_10000_level_deep_json_body_is_400_saying_so(env: Env) -> None:
    before = env.stored()
    deep = '{"name": ' + '{"a": ' * 10_000 + "1" + "}" * 10_000 + "}"
    response = env.post_json("/v1/business-cases", deep.encode())
    assert "nested too deeply" in refused(env, before, response, 400, "bad-request")


def test_a_number_with_5000_digits_is_400_saying_so(env: Env) -> None:
    before = env.stored()
    response = env.post_json("/v1/calculator", (CALCULATOR % ("9" * 5000)).encode())
    assert "too many digits" in refused(env, before, response, 400, "bad-request")


def test_huge_but_finite_money_in_a_business_case_is_422_not_an_overflow(env: Env) -> None:
    before = env.stored()
    case = copy.deepcopy(HAND_CASE)
    case["initiative"]["one_off_cost"] = 1e308
    case["initiative"]["running_cost_per_period"] = 1e308
    response = env.client.post("/v1/business-cases", headers=env.headers, json=case)
    detail = refused(env, before, response, 422, "invalid-input")
    assert "<= 1e+15" in detail
    fields = {e["field"] for e in response.json()["errors"]}
    assert fields == {"body.initiative.one_off_cost", "body.initiative.running_cost_per_period"}


def test_a_horizon_of_a_billion_periods_is_refused_everywhere(env: Env) -> None:
    before = env.stored()
    calculator = json.loads(CALCULATOR % "10") | {"horizon_periods": 10**9}
    response = env.client.post("/v1/calculator", json=calculator)
    detail = refused(env, before, response, 422, "invalid-input")
    assert "between 1 and 10000" in detail
    case = copy.deepcopy(HAND_CASE)
    case["initiative"]["horizon_periods"] = 10**9
    response = env.client.post("/v1/business-cases", headers=env.headers, json=case)
    assert "less than or equal to 600" in refused(env, before, response, 422, "validation-error")
    response = env.client.get(
        f"/v1/fits/{env.fit_id}/segments", headers=env.headers, params={"horizon": 10**9}
    )
    assert "at most 20 years" in refused(env, before, response, 422, "invalid-input")
    retention = {
        "cohorts": [{"name": "c", "survivors": [100, 60, 40]}],
        "value_per_period": 1.0,
        "discount_rate": 0.1,
        "currency": "USD",
        "forecast_periods": 10**9,
    }
    response = env.client.post("/v1/retention/fits", headers=env.headers, json=retention)
    assert "less than or equal to 1200" in refused(env, before, response, 422, "validation-error")


def test_a_billion_monte_carlo_draws_is_capped_with_a_clear_message(env: Env) -> None:
    before = env.stored()
    case = copy.deepcopy(HAND_CASE) | {"monte_carlo": {"draws": 10**9}}
    started = time.perf_counter()
    response = env.client.post("/v1/business-cases", headers=env.headers, json=case)
    detail = refused(env, before, response, 422, "invalid-input")
    assert time.perf_counter() - started < 5  # refused, not simulated
    assert f"at most {MAX_DRAWS:,} draws" in detail
    assert response.json()["errors"][0]["field"] == "body.monte_carlo.draws"


@pytest.mark.parametrize("path", ["/v1/datasets", "/v1/business-cases", "/v1/jobs"])
def test_a_huge_list_offset_is_422_not_a_database_overflow(env: Env, path: str) -> None:
    before = env.stored()
    response = env.client.get(path, headers=env.headers, params={"offset": 2**63})
    assert "less than or equal to 1000000000" in refused(env, before, response, 422,
                                                          "validation-error")  # fmt: skip


def test_a_huge_list_offset_of_fits_is_422(env: Env) -> None:
    before = env.stored()
    response = env.client.get("/v1/fits", headers=env.headers, params={"offset": 2**63})
    refused(env, before, response, 422, "validation-error")
