"""Security headers on every response, the page's own CSP kept, ``no-store`` on API answers, and
CORS only when ``CLTV_CORS_ORIGINS`` is set (simple requests and preflights)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from cltv_api.main import create_app
from cltv_api.routes.calculator import CONTENT_SECURITY_POLICY
from tests.cltv_api.service.conftest import TestClient, make_settings

ORIGIN = "https://sheets.example"
PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "POST",
    "Access-Control-Request-Headers": "authorization, content-type",
}


@pytest.mark.parametrize(
    "path", ["/healthz", "/v1/workspace", "/v1/jobs/job_x", "/no/such/page", "/openapi.json"]
)
def test_api_responses_get_nosniff_no_referrer_and_no_store(client: TestClient, path: str) -> None:
    response = client.get(path)  # 200, 401, 401, 404 and 200: errors are covered too
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "no-referrer"
    assert response.headers["cache-control"] == "no-store"
    assert "x-frame-options" not in response.headers  # not a page


def test_the_calculator_page_keeps_its_csp_and_cache_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert "frame-ancestors 'none'" in CONTENT_SECURITY_POLICY
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["cache-control"] == "no-cache"  # the page's own, not no-store
    assert response.headers["x-content-type-options"] == "nosniff"


def test_other_html_pages_cannot_be_framed(client: TestClient) -> None:
    response = client.get("/docs")  # FastAPI's Swagger UI: loads scripts from a CDN
    assert response.headers["content-type"].startswith("text/html")
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["content-security-policy"] == "frame-ancestors 'none'"


def test_static_files_keep_their_validators_and_get_no_cache_control(client: TestClient) -> None:
    response = client.get("/static/app.js")
    assert response.status_code == 200
    assert "cache-control" not in response.headers and response.headers["etag"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_cors_is_off_without_configured_origins(client: TestClient) -> None:
    simple = client.get("/healthz", headers={"Origin": ORIGIN})
    preflight = client.options("/v1/fits", headers=PREFLIGHT)
    assert "access-control-allow-origin" not in simple.headers
    assert preflight.status_code == 405  # no CORS middleware: OPTIONS is just not a route
    assert "access-control-allow-origin" not in preflight.headers


@pytest.fixture
def cors_client(tmp_path: Path) -> Iterator[TestClient]:
    settings = make_settings(
        tmp_path / "data", cors_origins=ORIGIN, rate_limit_per_second=0.1, rate_limit_burst=1
    )
    with TestClient(create_app(settings)) as test_client:
        yield test_client


def test_cors_preflight_allows_the_configured_origin_and_our_headers(
    cors_client: TestClient,
) -> None:
    preflight = cors_client.options("/v1/fits", headers=PREFLIGHT)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == ORIGIN
    assert "POST" in preflight.headers["access-control-allow-methods"]
    allowed = preflight.headers["access-control-allow-headers"].lower()
    assert {"authorization", "content-type", "x-api-key", "x-request-id"} <= set(
        h.strip() for h in allowed.split(",")
    )
    other = cors_client.options("/v1/fits", headers={**PREFLIGHT, "Origin": "https://evil.example"})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers


def test_cors_responses_expose_request_id_and_rate_limit_headers_also_on_429(
    cors_client: TestClient,
) -> None:
    first = cors_client.get("/v1/workspace", headers={"Origin": ORIGIN})
    refused = cors_client.get("/v1/workspace", headers={"Origin": ORIGIN})  # burst of 1 used
    assert (first.status_code, refused.status_code) == (401, 429)
    for response in (first, refused):
        assert response.headers["access-control-allow-origin"] == ORIGIN
        exposed = {
            h.strip().lower() for h in response.headers["access-control-expose-headers"].split(",")
        }
        assert {"x-request-id", "retry-after", "ratelimit-remaining", "location"} <= exposed
        assert response.headers["x-content-type-options"] == "nosniff"
