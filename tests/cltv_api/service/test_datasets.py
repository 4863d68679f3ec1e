"""``/v1/datasets``: uploads in every supported form, rejection without traces, listing, RFM
summaries, deletion and workspace isolation, against the real app and a real SQLite file."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from datetime import date, datetime
from pathlib import Path
from typing import Any

import openpyxl
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import GeneratorConfig, generate_table
from cltv_api.main import create_app
from tests.cltv_api.service.conftest import (
    Api,
    Credentials,
    TestClient,
    make_settings,
    new_workspace,
)

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
PROBLEMS = "https://cltv.dev/problems/"


# ------------------------------------------------------------------------------ test data


def transactions(customers: int = 400, seed: int = 5) -> pa.Table:
    """Generated transactions: customer_id, order_id, date, amount, channel, region, nps_group."""
    return generate_table(GeneratorConfig(n_customers=customers, seed=seed))


def csv_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pa_csv.write_csv(table, buffer)
    return buffer.getvalue()


def parquet_bytes(table: pa.Table) -> bytes:
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def xlsx_bytes(table: pa.Table) -> bytes:
    workbook = openpyxl.Workbook()
    sheet = workbook.active
    assert sheet is not None
    sheet.title = "orders"
    sheet.append(["Customer", "Order date", "Amount", "Channel"])
    for row in table.select(["customer_id", "date", "amount", "channel"]).to_pylist():
        sheet.append([row["customer_id"], row["date"], row["amount"], row["channel"]])
    buffer = io.BytesIO()
    workbook.save(buffer)
    return buffer.getvalue()


def expected_counts(table: pa.Table) -> dict[str, Any]:
    """What the stored data set must report, computed from the generated table itself."""
    return {
        "customer_count": len(pc.unique(table["customer_id"])),
        "transaction_count": table.num_rows,
        "date_min": pc.min(table["date"]).as_py(),
        "date_max": pc.max(table["date"]).as_py(),
        "amount_total": pc.sum(table["amount"]).as_py(),
    }


def upload(api: Api, data: bytes, filename: str = "orders.csv", **fields: Any) -> Any:
    """Multipart upload of ``data`` with form fields."""
    return api.client.post(
        "/v1/datasets", headers=api.headers, files={"file": (filename, data)}, data=fields
    )


def data_files(data_dir: Path) -> set[str]:
    """Every file under the data directory except the SQLite database and lock files."""
    return {
        str(p.relative_to(data_dir))
        for p in data_dir.rglob("*")
        if p.is_file() and not p.name.startswith(("cltv.sqlite3", ".migrate", ".datasets"))
    }


# ------------------------------------------------------------------------------ uploads


def test_multipart_csv_upload_stores_a_ready_dataset_with_its_counts(
    api: Api, data_dir: Path
) -> None:
    table = transactions()
    response = upload(api, csv_bytes(table), segment_cols="channel,region", currency="USD")
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/v1/datasets/{body['id']}" == body["url"]
    want = expected_counts(table)
    assert body["name"] == "orders.csv" and body["kind"] == "transactions"
    assert body["status"] == "ready" and body["currency"] == "USD"
    assert body["customer_count"] == want["customer_count"] == 400
    assert body["transaction_count"] == body["row_count"] == want["transaction_count"]
    assert datetime.fromisoformat(body["date_min"]) == want["date_min"]
    assert datetime.fromisoformat(body["date_max"]) == want["date_max"]
    assert body["amount_total"] == pytest.approx(want["amount_total"], rel=1e-12)
    # the generator draws 3 channels and 5 regions
    assert body["segment_columns"] == [
        {"name": "channel", "distinct_values": 3},
        {"name": "region", "distinct_values": 5},
    ]
    assert body["format"]["file_type"] == "csv" and body["format"]["delimiter"] == ","
    assert body["mapping"]["customer_id"] == "customer_id"
    assert body["report"]["rows_read"] == table.num_rows and body["report"]["rows_dropped"] == 0
    stored = data_dir / "datasets" / f"{body['sha256']}.parquet"
    assert pq.read_metadata(stored).num_rows == table.num_rows
    assert data_files(data_dir) == {f"datasets/{stored.name}"}  # the upload's temp file is gone
    fetched = api.client.get(body["url"], headers=api.headers)
    assert fetched.status_code == 200 and fetched.json() == body


def test_raw_csv_body_with_filename_and_query_options(api: Api) -> None:
    table = transactions(customers=120)
    response = api.client.post(
        "/v1/datasets?filename=exports/june.csv&segment_cols=channel&segment_cols=region",
        headers={**api.headers, "Content-Type": "text/csv"},
        content=csv_bytes(table),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["name"] == "june.csv"  # the directory part of a file name is dropped
    assert [c["name"] for c in body["segment_columns"]] == ["channel", "region"]
    assert body["transaction_count"] == table.num_rows


def test_xlsx_upload_finds_header_names_and_typed_dates(api: Api) -> None:
    table = transactions(customers=60)
    response = upload(api, xlsx_bytes(table), "orders.xlsx", segment_cols="Channel")
    assert response.status_code == 201, response.text
    body = response.json()
    want = expected_counts(table)
    assert body["format"]["file_type"] == "xlsx" and body["format"]["sheet"] == "orders"
    assert body["mapping"]["customer_id"] == "Customer" and body["mapping"]["date"] == "Order date"
    assert body["customer_count"] == want["customer_count"]
    assert body["transaction_count"] == want["transaction_count"]
    assert datetime.fromisoformat(body["date_max"]) == want["date_max"]
    assert body["amount_total"] == pytest.approx(want["amount_total"], rel=1e-9)


def test_parquet_upload_as_raw_octet_stream(api: Api) -> None:
    table = transactions(customers=150)
    response = api.client.post(
        "/v1/datasets?filename=tx.parquet&order_col=order_id",
        headers={**api.headers, "Content-Type": "application/octet-stream"},
        content=parquet_bytes(table),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["format"]["file_type"] == "parquet"
    assert body["customer_count"] == expected_counts(table)["customer_count"]
    assert body["transaction_count"] == table.num_rows  # one order id per generated row


RUSSIAN_CSV = (
    "Клиент;Дата;Сумма;Канал\n"
    "Иванов;05.01.2024;1 250,50;Розница\n"
    "Иванов;17.02.2024;300,00;Онлайн\n"
    "Петров;23.03.2024;99,90;Онлайн\n"
    "Сидоров;01.04.2024;12 000,00;Розница\n"
)


def test_russian_cp1251_semicolon_decimal_comma_file(api: Api) -> None:
    response = upload(api, RUSSIAN_CSV.encode("cp1251"), "выгрузка.csv", segment_cols="Канал")
    assert response.status_code == 201, response.text
    body = response.json()
    fmt = body["format"]
    assert fmt["encoding"] in {"cp1251", "windows-1251"}
    assert (fmt["delimiter"], fmt["decimal_separator"], fmt["thousands_separator"]) == (
        ";",
        ",",
        " ",
    )
    assert fmt["date_format"] == "%d.%m.%Y"  # 17 and 23 can only be days
    assert body["mapping"]["customer_id"] == "Клиент" and body["mapping"]["amount"] == "Сумма"
    assert body["customer_count"] == 3 and body["transaction_count"] == 4
    assert body["amount_total"] == pytest.approx(1250.50 + 300.00 + 99.90 + 12000.00)
    assert body["date_min"].startswith("2024-01-05") and body["date_max"].startswith("2024-04-01")
    assert body["segment_columns"] == [{"name": "Канал", "distinct_values": 2}]
    assert body["name"] == "выгрузка.csv"


# ------------------------------------------------------------------------------ rejections


@pytest.fixture
def small_limit_client(tmp_path: Path) -> Iterator[tuple[TestClient, Credentials, Path]]:
    data_dir = tmp_path / "small"
    app = create_app(make_settings(data_dir, max_upload_bytes=4096))
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, new_workspace(app.state.db, "small"), data_dir


def test_oversize_upload_is_413_and_leaves_no_file(
    small_limit_client: tuple[TestClient, Credentials, Path],
) -> None:
    client, credentials, data_dir = small_limit_client
    data = csv_bytes(transactions(customers=200))
    assert len(data) > 4096
    multipart = client.post(
        "/v1/datasets", headers=credentials.headers, files={"file": ("big.csv", data)}
    )
    raw = client.post(
        "/v1/datasets",
        headers={**credentials.headers, "Content-Type": "text/csv"},
        content=data,
    )
    for response in (multipart, raw):
        assert response.status_code == 413
        problem = response.json()
        assert problem["type"] == PROBLEMS + "payload-too-large"
        assert problem["max_upload_bytes"] == 4096
    assert data_files(data_dir) == set()
    listed = client.get("/v1/datasets", headers=credentials.headers).json()
    assert listed["total"] == 0
    small = client.post(
        "/v1/datasets", headers=credentials.headers, files={"file": ("ok.csv", RUSSIAN_CSV)}
    )
    assert small.status_code == 201  # under the limit the same client stores files


def test_rejected_file_is_422_with_rows_and_stores_nothing(api: Api, data_dir: Path) -> None:
    text = "customer,date,amount\na,2024-01-05,10\nb,2024-01-06,abc\nc,2024-01-07,12\n"
    response = upload(api, text.encode(), "bad.csv")
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == PROBLEMS + "invalid-input"
    # "abc" is on line 3 of the file (the header is line 1)
    assert {"field": "amount", "row": 3, "value": "abc"}.items() <= problem["errors"][0].items()
    assert "Nothing was stored" in problem["detail"]
    # regression: the report said rows_kept 2 although nothing was kept
    report = problem["report"]
    assert (report["rows_read"], report["rows_kept"], report["rows_dropped"]) == (3, 0, 3)
    assert api.client.get("/v1/datasets", headers=api.headers).json()["total"] == 0
    assert data_files(data_dir) == set()


def test_ambiguous_dates_are_an_ambiguous_format_problem_until_a_format_is_given(
    api: Api,
) -> None:
    # 01/03 and 02/03 read as dd/mm and as mm/dd alike
    text = b"customer,date,amount\na,01/03/2024,1\nb,02/03/2024,2\n"
    refused = upload(api, text)
    assert refused.status_code == 422
    assert refused.json()["type"] == PROBLEMS + "ambiguous-format"
    assert "date_format" in refused.json()["detail"]
    accepted = upload(api, text, date_format="%d/%m/%Y")
    assert accepted.status_code == 201
    assert accepted.json()["date_min"].startswith("2024-03-01")


def test_invalid_options_and_bodies_are_problems_naming_the_field(api: Api) -> None:
    bad_query = api.client.post(
        "/v1/datasets?kind=ledger",
        headers={**api.headers, "Content-Type": "text/csv"},
        content=RUSSIAN_CSV.encode("cp1251"),
    )
    assert bad_query.status_code == 422
    assert bad_query.json()["errors"][0]["field"] == "query.kind"
    bad_form = upload(api, RUSSIAN_CSV.encode("cp1251"), on_error="ignore")
    assert bad_form.status_code == 422
    assert bad_form.json()["errors"][0]["field"] == "form.on_error"
    form_only = api.client.post("/v1/datasets", headers=api.headers, data={"name": "x"})
    assert form_only.status_code == 415  # urlencoded: no file can be in it
    no_file = api.client.post(
        "/v1/datasets", headers=api.headers, files={"name": (None, "x")}, data={"kind": "summary"}
    )
    assert no_file.status_code == 422
    assert no_file.json()["errors"][0]["field"] == "form.file"
    json_body = api.client.post("/v1/datasets", headers=api.headers, json={"rows": []})
    assert json_body.status_code == 415
    assert json_body.json()["type"] == PROBLEMS + "unsupported-media-type"


def test_preview_shows_columns_mapping_and_rows_and_stores_nothing(
    api: Api, data_dir: Path
) -> None:
    response = api.client.post(
        "/v1/datasets/preview",
        headers=api.headers,
        files={"file": ("x.csv", RUSSIAN_CSV.encode("cp1251"))},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["columns"] == ["Клиент", "Дата", "Сумма", "Канал"]
    mapping = body["suggested_mapping"]
    assert (mapping["customer_id"], mapping["date"], mapping["amount"]) == (
        "Клиент",
        "Дата",
        "Сумма",
    )
    assert body["rows"][0] == ["Иванов", "05.01.2024", "1 250,50", "Розница"]
    assert body["format"]["delimiter"] == ";" and body["mapping_problem"] is None
    assert data_files(data_dir) == set()
    assert api.client.get("/v1/datasets", headers=api.headers).json()["total"] == 0


# ------------------------------------------------------------------------------ reading


def test_list_is_paged_newest_first_with_a_next_link(api: Api) -> None:
    ids = [upload(api, RUSSIAN_CSV.encode("cp1251"), f"f{i}.csv").json()["id"] for i in range(3)]
    first = api.client.get("/v1/datasets?limit=2", headers=api.headers).json()
    assert first["total"] == 3 and [d["id"] for d in first["items"]] == ids[::-1][:2]
    assert first["next"] == "/v1/datasets?limit=2&offset=2"
    second = api.client.get(first["next"], headers=api.headers).json()
    assert [d["id"] for d in second["items"]] == [ids[0]] and second["next"] is None


# Hand-worked summary in days (lifetimes' definitions): the last transaction is on Jan 29, so
# A (Jan 1, Jan 10 for 20, Jan 20 for 40): frequency 2, recency 19, T 28, monetary (20+40)/2;
# B (Jan 15 only): frequency 0, recency 0, T 14, monetary 0; C (Jan 29 twice, 5 + 7): one
# purchase day, so frequency 0, T 0.
SUMMARY_CSV = (
    "customer,date,amount\n"
    "A,2024-01-01,10\nA,2024-01-10,20\nA,2024-01-20,40\n"
    "B,2024-01-15,99\n"
    "C,2024-01-29,5\nC,2024-01-29,7\n"
)


def test_summary_preview_matches_hand_worked_rfm(api: Api) -> None:
    dataset = upload(api, SUMMARY_CSV.encode()).json()
    response = api.client.get(
        f"/v1/datasets/{dataset['id']}/summary?time_unit=days&limit=2", headers=api.headers
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["observation_end"] == "2024-01-29" and body["time_unit"] == "days"
    rows = [
        (c["customer_id"], c["frequency"], c["recency"], c["T"], c["monetary_value"])
        for c in body["customers"]
    ]
    assert rows == [("A", 2.0, 19.0, 28.0, 30.0), ("B", 0.0, 0.0, 14.0, 0.0)]
    stats = body["stats"]
    assert stats["customers"] == 3 and stats["repeat_customers"] == 1
    assert stats["share_repeat"] == pytest.approx(1 / 3)
    assert stats["frequency"]["mean"] == pytest.approx(2 / 3)
    assert stats["T"] == {"mean": pytest.approx(14.0), "median": 14.0, "min": 0.0, "max": 28.0}
    assert stats["monetary_value"]["mean"] == pytest.approx(30.0)  # repeat customers only
    weekly = api.client.get(
        f"/v1/datasets/{dataset['id']}/summary?time_unit=weeks", headers=api.headers
    ).json()
    # weeks start on Monday: Jan 1 (Mon) .. Jan 29 (Mon) is 4 weeks; A bought in weeks 0, 1, 2
    assert weekly["customers"][0]["frequency"] == 2.0 and weekly["customers"][0]["T"] == 4.0


def test_delete_is_soft_and_removes_the_file_only_when_unshared(api: Api, data_dir: Path) -> None:
    first = upload(api, SUMMARY_CSV.encode(), "a.csv").json()
    twin = upload(api, SUMMARY_CSV.encode(), "b.csv").json()
    assert first["sha256"] == twin["sha256"]  # same content, one stored file
    stored = data_dir / "datasets" / f"{first['sha256']}.parquet"
    assert api.client.delete(first["url"], headers=api.headers).status_code == 204
    assert api.client.get(first["url"], headers=api.headers).status_code == 404
    assert api.client.delete(first["url"], headers=api.headers).status_code == 404
    assert stored.exists()  # the twin still needs it
    assert api.client.get(twin["url"], headers=api.headers).status_code == 200
    assert api.client.delete(twin["url"], headers=api.headers).status_code == 204
    assert not stored.exists()
    assert api.client.get("/v1/datasets", headers=api.headers).json()["total"] == 0


def test_other_workspaces_see_404_and_read_keys_cannot_upload(
    api: Api, make_workspace: Callable[..., Credentials]
) -> None:
    dataset = upload(api, SUMMARY_CSV.encode()).json()
    other = make_workspace("other").headers
    for method, path in [
        ("GET", dataset["url"]),
        ("GET", dataset["url"] + "/summary"),
        ("DELETE", dataset["url"]),
    ]:
        response = api.client.request(method, path, headers=other)
        assert response.status_code == 404, (method, path)
        assert response.json()["type"] == PROBLEMS + "not-found"
    assert api.client.get("/v1/datasets", headers=other).json()["total"] == 0
    reader = make_workspace("reader", scopes=("read",)).headers
    denied = api.client.post("/v1/datasets", headers=reader, files={"file": ("a.csv", b"x,y\n")})
    assert denied.status_code == 403
    assert api.client.get(dataset["url"], headers=api.headers).status_code == 200


def test_rfm_summary_and_fits_of_a_summary_dataset_are_refused(api: Api) -> None:
    text = b"customer,frequency,recency,T\na,2,10,30\nb,0,0,12\n"
    dataset = upload(api, text, kind="summary").json()
    assert dataset["kind"] == "summary"
    response = api.client.get(dataset["url"] + "/summary", headers=api.headers)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "path.dataset_id"
    fit = api.client.post("/v1/fits", headers=api.headers, json={"dataset_id": dataset["id"]})
    assert fit.status_code == 422
    assert fit.json()["errors"][0]["field"] == "body.dataset_id"


def test_returns_are_dropped_and_reported_with_their_line(api: Api) -> None:
    # negative amounts (returns) are dropped and reported by default, with their line
    text = "customer,date,amount\na,2024-01-05,10\na,2024-01-06,-4\nb,2024-01-07,12\n"
    body = upload(api, text.encode()).json()
    report = body["report"]
    assert report["rows_read"] == 3 and report["rows_kept"] == 2 and report["rows_dropped"] == 1
    assert report["actions"] == {"negative_amount": "dropped"}
    issue = report["issues"][0]
    assert (issue["row"], issue["value"]) == (3, "-4")
    assert list(csv.reader(io.StringIO(text)))[issue["row"] - 1] == ["a", "2024-01-06", "-4"]
    assert date.fromisoformat(body["date_max"][:10]) == date(2024, 1, 7)
