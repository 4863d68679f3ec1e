"""Every error is RFC 9457 problem details: framework errors, domain errors, auth, crashes."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cltv_api.errors import Conflict, FieldError
from cltv_api.main import create_app
from tests.cltv_api.service.conftest import Api, Credentials, TestClient, make_settings

PROBLEM = "application/problem+json"
STANDARD_MEMBERS = {"type", "title", "status", "detail", "instance"}


def assert_problem(
    response: httpx.Response, status: int, slug: str, instance: str
) -> dict[str, Any]:
    """The response is a problem of this status, type slug and instance; returns the body."""
    assert response.status_code == status
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body.keys() >= STANDARD_MEMBERS
    assert body["type"] == f"https://cltv.dev/problems/{slug}"
    assert body["status"] == status
    assert body["instance"] == instance
    assert isinstance(body["title"], str) and body["title"]
    assert isinstance(body["detail"], str) and body["detail"]
    return body


def test_unknown_route_is_a_404_problem(client: TestClient) -> None:
    body = assert_problem(client.get("/v1/nothing-here"), 404, "not-found", "/v1/nothing-here")
    assert body["detail"] == "No resource at GET /v1/nothing-here."


def test_wrong_method_is_a_405_problem_listing_every_allowed_method(api: Api) -> None:
    # /v1/workspace/keys has a GET route and a POST route; Starlette alone would name only one.
    response = api.client.put("/v1/workspace/keys", headers=api.headers)
    body = assert_problem(response, 405, "method-not-allowed", "/v1/workspace/keys")
    assert response.headers["allow"] == "GET, POST"
    assert "PUT is not allowed" in str(body["detail"])


def test_invalid_body_is_a_422_problem_with_field_paths(api: Api) -> None:
    response = api.client.post(
        "/v1/workspace/keys",
        headers=api.headers,
        json={"name": "x" * 201, "scopes": ["read", "superuser"], "colour": "red"},
    )
    body = assert_problem(response, 422, "validation-error", "/v1/workspace/keys")
    fields = {error["field"] for error in body["errors"]}
    # one entry per invalid field, named by a dotted path from where it was sent
    assert fields == {"body.name", "body.scopes.1", "body.colour"}
    assert body["detail"] == "The request has 3 invalid fields; see errors."
    messages = {error["field"]: error["message"] for error in body["errors"]}
    assert messages["body.scopes.1"] == "Input should be 'read', 'write' or 'admin'"


def test_invalid_query_parameter_is_a_422_problem(api: Api) -> None:
    response = api.client.get("/v1/jobs?limit=0", headers=api.headers)
    body = assert_problem(response, 422, "validation-error", "/v1/jobs")
    assert body["errors"] == [
        {"field": "query.limit", "message": "Input should be greater than or equal to 1"}
    ]


def test_malformed_json_is_a_422_problem(api: Api) -> None:
    response = api.client.post(
        "/v1/workspace/keys",
        headers={**api.headers, "Content-Type": "application/json"},
        content=b'{"name": ',
    )
    body = assert_problem(response, 422, "validation-error", "/v1/workspace/keys")
    assert body["errors"][0]["field"].startswith("body")


def test_missing_key_is_a_401_problem_with_bearer_challenge(client: TestClient) -> None:
    response = client.get("/v1/workspace")
    body = assert_problem(response, 401, "unauthorized", "/v1/workspace")
    assert response.headers["www-authenticate"] == 'Bearer realm="cltv"'
    assert "Authorization: Bearer" in str(body["detail"])


@pytest.mark.parametrize(
    "headers",
    [
        {"Authorization": "Bearer cltv_" + "A" * 40},  # well-formed, unknown
        {"Authorization": "Bearer not-a-key"},
        {"X-API-Key": "cltv_short"},
        {"Authorization": "Basic dXNlcjpwYXNz"},  # another scheme: no key presented
    ],
)
def test_invalid_keys_are_401_problems(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/v1/jobs", headers=headers)
    assert_problem(response, 401, "unauthorized", "/v1/jobs")
    assert response.headers["www-authenticate"] == 'Bearer realm="cltv"'


def test_missing_scope_is_a_403_problem(
    api: Api, make_workspace: Callable[..., Credentials]
) -> None:
    reader = make_workspace("readers", scopes=("read",))
    response = api.client.get("/v1/workspace/keys", headers=reader.headers)
    body = assert_problem(response, 403, "forbidden", "/v1/workspace/keys")
    assert body["required_scope"] == "admin"
    assert "'admin' scope" in str(body["detail"])
    # the same key may read its workspace: read scope suffices there
    assert api.client.get("/v1/workspace", headers=reader.headers).status_code == 200


@pytest.fixture
def app_with_failing_routes(tmp_path: Path) -> Iterator[TestClient]:
    """The real app plus two routes that fail: a domain error and an unexpected crash."""
    app: FastAPI = create_app(make_settings(tmp_path / "data", cors_origins=["https://ui.test"]))

    def conflict() -> None:
        raise Conflict(
            "Already there.",
            errors=[FieldError(field="name", message="taken", value="abc")],
            extra={"existing": "ds_1", "status": 200, "type": "overridden?"},
        )

    def crash() -> None:
        raise RuntimeError("secret connection string postgres://user:pw@host")

    app.add_api_route("/test/conflict", conflict, methods=["POST"])
    app.add_api_route("/test/crash", crash, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def test_domain_errors_map_to_their_problem_with_extension_members(
    app_with_failing_routes: TestClient,
) -> None:
    response = app_with_failing_routes.post("/test/conflict")
    body = assert_problem(response, 409, "conflict", "/test/conflict")
    assert body["title"] == "Conflict"
    assert body["detail"] == "Already there."
    assert body["errors"] == [{"field": "name", "message": "taken", "value": "abc"}]
    assert body["existing"] == "ds_1"  # extension member from `extra`
    # `extra` cannot overwrite the standard members (status 409 and the type URI stay)


def test_unhandled_exception_is_a_500_problem_without_internals(
    app_with_failing_routes: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="cltv_api.errors"):
        response = app_with_failing_routes.get("/test/crash", headers={"Origin": "https://ui.test"})
    body = assert_problem(response, 500, "internal-error", "/test/crash")
    text = response.text
    assert "secret" not in text and "Traceback" not in text and "RuntimeError" not in text
    reference = body["reference"]
    assert body["detail"] == f"An unexpected error occurred. Reference: {reference}."
    # the log has the traceback under the same reference
    logged = [r for r in caplog.records if reference in r.getMessage()]
    assert len(logged) == 1 and logged[0].exc_info is not None
    # the error response passed through CORS like any other
    assert response.headers["access-control-allow-origin"] == "https://ui.test"


def test_openapi_documents_errors_as_problem_json(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    responses = schema["paths"]["/v1/jobs/{job_id}"]["get"]["responses"]
    assert set(responses) == {"200", "401", "403", "404", "422", "500"}
    assert responses["404"]["content"] == {
        PROBLEM: {"schema": {"$ref": "#/components/schemas/Problem"}}
    }
    assert "Problem" in schema["components"]["schemas"]
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    assert set(schema["components"]["securitySchemes"]) == {"BearerKey", "HeaderKey"}
    assert client.get("/docs").status_code == 200
