"""Structured logs: one JSON object per line, request ids (kept, generated, echoed, propagated to
worker threads and to jobs started by the request) and no secrets in any line."""

from __future__ import annotations

import io
import json
import logging
import re
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI

from cltv_api.main import create_app
from cltv_api.observability import (
    JsonFormatter,
    TextFormatter,
    configure_logging,
    make_handler,
    scrub,
)
from tests.cltv_api.service.conftest import Api, TestClient, make_settings, new_workspace
from tests.cltv_api.service.test_datasets import csv_bytes, transactions

GENERATED_ID = re.compile(r"[0-9a-f]{16}")
BASE_KEYS = {"timestamp", "level", "logger", "message", "request_id"}


@dataclass
class Captured:
    """What the service's JSON handler wrote, one object per line."""

    stream: io.StringIO

    @property
    def text(self) -> str:
        return self.stream.getvalue()

    def lines(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.text.splitlines()]

    def access(self) -> list[dict[str, Any]]:
        return [line for line in self.lines() if line["logger"] == "cltv_api.access"]


@pytest.fixture
def captured() -> Iterator[Captured]:
    """The ``cltv_api`` loggers at DEBUG, written by the service's own JSON handler."""
    stream = io.StringIO()
    handler = make_handler("json", stream)
    app_logger = logging.getLogger("cltv_api")
    level = app_logger.level
    app_logger.addHandler(handler)
    app_logger.setLevel(logging.DEBUG)
    try:
        yield Captured(stream)
    finally:
        app_logger.removeHandler(handler)
        app_logger.setLevel(level)


def test_each_request_writes_one_json_access_line_with_the_echoed_request_id(
    client: TestClient, captured: Captured
) -> None:
    response = client.get("/healthz?probe=1")
    request_id = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(request_id)
    (line,) = captured.access()
    assert set(line) >= BASE_KEYS
    assert line["level"] == "INFO" and line["request_id"] == request_id
    assert (line["method"], line["path"], line["route"], line["status"]) == (
        "GET",
        "/healthz",  # the query string is never logged
        "/healthz",
        200,
    )
    assert line["duration_ms"] >= 0 and line["message"].startswith("GET /healthz 200 ")
    # timestamp: ISO 8601 in UTC with milliseconds
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", line["timestamp"])
    assert abs(datetime.fromisoformat(line["timestamp"]).timestamp() - time.time()) < 60
    assert "workspace_id" not in line  # not authenticated


@pytest.mark.parametrize("incoming", ["abc-123", "Req_9.x", "a" * 64])
def test_a_short_safe_incoming_request_id_is_kept(
    client: TestClient, captured: Captured, incoming: str
) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    assert response.headers["x-request-id"] == incoming
    assert captured.access()[0]["request_id"] == incoming


@pytest.mark.parametrize("incoming", [b"a" * 65, b"two words", b"<script>", b"x\xe9", b""])
def test_an_unsafe_or_long_incoming_request_id_is_replaced(
    client: TestClient, captured: Captured, incoming: bytes
) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": incoming})
    generated = response.headers["x-request-id"]
    assert GENERATED_ID.fullmatch(generated)
    assert captured.access()[0]["request_id"] == generated


def test_access_lines_of_authenticated_requests_name_the_workspace(
    api: Api, captured: Captured
) -> None:
    assert api.client.get("/v1/workspace", headers=api.headers).status_code == 200
    assert api.client.get("/v1/workspace").status_code == 401
    mine, anonymous = captured.access()
    assert mine["workspace_id"] == api.credentials.workspace_id
    assert (mine["route"], mine["status"]) == ("/v1/workspace", 200)
    assert "workspace_id" not in anonymous and anonymous["status"] == 401


def test_lines_logged_by_a_sync_endpoint_carry_the_request_id(
    settings: Any, captured: Captured
) -> None:
    app: FastAPI = create_app(settings)

    def noisy() -> dict[str, str]:  # sync: runs on a worker thread with the copied context
        logging.getLogger("cltv_api.test").warning("working on it")
        return {}

    app.add_api_route("/noisy", noisy)
    with TestClient(app) as test_client:
        response = test_client.get("/noisy", headers={"X-Request-ID": "trace-me"})
    assert response.headers["x-request-id"] == "trace-me"
    (line,) = [e for e in captured.lines() if e["logger"] == "cltv_api.test"]
    assert (line["level"], line["message"], line["request_id"]) == (
        "WARNING",
        "working on it",
        "trace-me",
    )


def test_a_job_started_by_a_request_logs_with_its_request_id_and_job_id(
    tmp_path: Path, captured: Captured
) -> None:
    app = create_app(make_settings(tmp_path / "data", sync_fit_max_customers=10))
    with TestClient(app) as test_client:
        credentials = new_workspace(app.state.db, "jobs")
        upload = test_client.post(
            "/v1/datasets",
            headers={**credentials.headers, "Content-Type": "text/csv"},
            content=csv_bytes(transactions(customers=60, seed=3)),
        )
        assert upload.status_code == 201, upload.text
        queued = test_client.post(
            "/v1/fits",
            headers={**credentials.headers, "X-Request-ID": "fit-request-1"},
            json={"dataset_id": upload.json()["id"], "purchase_model": "bgnbd"},
        )
        assert queued.status_code == 202, queued.text
        job_id = queued.json()["job"]["id"]
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            job = test_client.get(f"/v1/jobs/{job_id}", headers=credentials.headers).json()
            if job["status"] not in {"queued", "running"}:
                break
            time.sleep(0.05)
    job_lines = [e for e in captured.lines() if e.get("job_id") == job_id]
    messages = [e["message"] for e in job_lines]
    assert f"job {job_id} (fit) started" in messages
    (ended,) = [e for e in job_lines if "ended" in e["message"]]
    assert (ended["outcome"], ended["duration_ms"] > 0) == ("succeeded", True)
    for line in job_lines:
        assert line["request_id"] == "fit-request-1"
        assert (line["job_kind"], line["workspace_id"]) == ("fit", credentials.workspace_id)


def test_api_keys_share_tokens_and_query_strings_never_reach_the_logs(
    api: Api, captured: Captured
) -> None:
    key = api.credentials.key
    token = "cltv_share_" + "Q" * 40  # shaped like a real token (unknown: 404)
    secret_query = "password=hunter2-very-secret"
    api.client.get("/v1/workspace", headers={"X-API-Key": key})
    api.client.get(f"/v1/workspace?{secret_query}", headers={"Authorization": f"Bearer {key}"})
    api.client.get(f"/v1/share/{token}/value?metric=clv_mean&{secret_query}")
    api.client.get("/v1/workspace", headers={"Authorization": "Bearer cltv_" + "z" * 40})
    # Even code that logs a secret by mistake has it redacted by the formatter.
    logging.getLogger("cltv_api.test").info("presented %s and %s", key, token)
    text = captured.text
    assert key not in text and token not in text and "hunter2" not in text
    assert "z" * 40 not in text
    share_line = next(e for e in captured.access() if e["route"] == "/v1/share/{token}/value")
    assert share_line["path"] == "/v1/share/<token>/value" and share_line["status"] == 404
    assert "presented cltv_<redacted> and cltv_share_<redacted>" in text


def test_scrub_redacts_keys_tokens_and_bearer_credentials_only() -> None:
    key = "cltv_" + "a1B2" * 10
    assert scrub(f"key={key};") == "key=cltv_<redacted>;"
    assert scrub("Authorization: Bearer abc.def") == "Authorization: Bearer <redacted>"
    # ids and ordinary words are left alone
    assert scrub("fit fit_0123456789abcdef of cltv_api.jobs") == (
        "fit fit_0123456789abcdef of cltv_api.jobs"
    )


def _record(message: str, **attributes: Any) -> logging.LogRecord:
    record = logging.LogRecord("cltv_api.x", logging.ERROR, __file__, 1, message, (), None)
    for name, value in attributes.items():
        setattr(record, name, value)
    return record


def test_json_lines_hold_context_fields_and_the_exception_on_one_line() -> None:
    try:
        raise ValueError("bad value")
    except ValueError:
        record = _record("failed", exc_info=sys.exc_info())
    record.request_id = "r1"
    record.context = {"request_id": "r1", "job_id": "job_1"}
    record.fields = {"status": 500}
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert (entry["request_id"], entry["job_id"], entry["status"]) == ("r1", "job_1", 500)
    assert (
        entry["exception"].startswith("Traceback") and "ValueError: bad value" in entry["exception"]
    )


def test_text_format_is_one_readable_line_with_the_request_id_and_fields() -> None:
    record = _record("GET /x 200", request_id="r2", context={"workspace_id": "ws_1"})
    record.fields = {"status": 200}
    line = TextFormatter().format(record)
    assert re.fullmatch(
        r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR cltv_api\.x \[r2\] GET /x 200 "
        r"workspace_id=ws_1 status=200",
        line,
    ), line


@pytest.fixture
def uvicorn_loggers() -> Iterator[logging.Logger]:
    """uvicorn's loggers as uvicorn sets them up (a handler on ``uvicorn``), restored after."""
    uvicorn_logger = logging.getLogger("uvicorn")
    access = logging.getLogger("uvicorn.access")
    saved = (list(uvicorn_logger.handlers), access.disabled)
    uvicorn_logger.handlers = [logging.StreamHandler(io.StringIO())]
    try:
        yield uvicorn_logger
    finally:
        uvicorn_logger.handlers, access.disabled = saved


def test_under_uvicorn_its_lines_use_our_format_and_its_access_log_is_off(
    uvicorn_loggers: logging.Logger,
) -> None:
    configure_logging("INFO", "json")
    (handler,) = uvicorn_loggers.handlers
    assert isinstance(handler.formatter, JsonFormatter)
    assert logging.getLogger("uvicorn.access").disabled
    configure_logging("INFO", "text")  # idempotent: the last format wins, one handler
    (handler,) = uvicorn_loggers.handlers
    assert isinstance(handler.formatter, TextFormatter)


def test_the_log_format_setting_picks_the_formatter(
    uvicorn_loggers: logging.Logger, settings: Any
) -> None:
    create_app(settings.model_copy(update={"log_format": "text"}))
    assert isinstance(uvicorn_loggers.handlers[0].formatter, TextFormatter)
    create_app(settings)  # the default: json
    assert isinstance(uvicorn_loggers.handlers[0].formatter, JsonFormatter)
