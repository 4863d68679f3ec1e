"""Access control over the whole API, derived from the OpenAPI document so that a route added
later is checked without anyone remembering to: every route taking a resource id answers 404
(a problem) to another workspace's key, every non-public route answers 401 without a key and 403
to a key without the scope it needs. Public routes are an explicit allow-list."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute

from tests.cltv_api.security.conftest import PROBLEM_MEDIA_TYPE, PROBLEMS, Tenant, World
from tests.cltv_api.service.conftest import Credentials
from tests.cltv_api.service.test_business_cases_api import HAND_CASE

HTTP_METHODS = ("get", "post", "put", "patch", "delete")
# Routes anyone may call. The calculator is stateless and documented as "no key needed"; share
# pulls authenticate with the token in their URL (tested in test_share.py).
PUBLIC_EXACT = frozenset(
    {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/v1/calculator"}
)
PUBLIC_PREFIXES = ("/static", "/v1/share/{token}/", "/docs/")
SCOPE_RANK = {"read": 0, "write": 1, "admin": 2}
# JSON bodies of operations that need one, valid for the tenant (so a refusal is about access).
BODIES: dict[tuple[str, str], Callable[[Tenant], dict[str, Any]]] = {
    ("put", "/v1/business-cases/{case_id}"): lambda t: HAND_CASE,
    ("post", "/v1/business-cases"): lambda t: HAND_CASE,
    ("post", "/v1/workspace/keys"): lambda t: {"name": "probe", "scopes": ["read"]},
    ("post", "/v1/fits"): lambda t: {"dataset_id": t.dataset_id, "purchase_model": "bgnbd"},
    ("post", "/v1/share-tokens"): lambda t: {"resource_type": "fit", "resource_id": t.fit_id},
    ("post", "/v1/retention/fits"): lambda t: {
        "cohorts": [{"name": "c", "survivors": [100, 60, 40]}],
        "value_per_period": 1.0,
        "discount_rate": 0.1,
        "currency": "USD",
    },
    ("post", "/v1/economics/nps"): lambda t: {},
    ("post", "/v1/economics/complaints"): lambda t: {},
}
PATH_PARAMETER = re.compile(r"\{([^}]+)\}")


def is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def operations(world: World) -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(method, path template, operation) of every documented operation."""
    for path, item in world.app.openapi()["paths"].items():
        for method in HTTP_METHODS:
            if method in item:
                yield method, path, item[method]


def resource_ids(tenant: Tenant, path: str) -> dict[str, str]:
    """The tenant's id for each path parameter of ``path`` (an unknown name fails the test:
    add the new resource kind to the fixtures)."""
    fit_id = tenant.retention_fit_id if path.startswith("/v1/retention/") else tenant.fit_id
    known = {
        "dataset_id": tenant.dataset_id,
        "fit_id": fit_id,
        "customer_id": tenant.customer_id,
        "case_id": tenant.case_id,
        "version": "1",
        "job_id": tenant.job_id,
        "key_id": tenant.admin.key_id,
        "token_id": tenant.share_token_id,
    }
    names = PATH_PARAMETER.findall(path)
    unknown = [n for n in names if n not in known]
    assert not unknown, f"{path}: no fixture resource for path parameter(s) {unknown}"
    return {n: known[n] for n in names}


def concrete(path: str, ids: dict[str, str]) -> str:
    return PATH_PARAMETER.sub(lambda m: ids[m.group(1)], path)


def call(
    world: World,
    method: str,
    template: str,
    operation: dict[str, Any],
    headers: dict[str, str],
    tenant: Tenant | None = None,
) -> Any:
    """One request to ``template`` with ``tenant``'s ids (default A), and the operation's JSON
    body when it has one."""
    tenant = tenant or world.a
    path = concrete(template, resource_ids(tenant, template))
    make_body = BODIES.get((method, template))
    content = operation.get("requestBody", {}).get("content", {})
    if make_body is None and "application/json" in content:
        pytest.fail(f"{method.upper()} {path}: add a valid JSON body to BODIES")
    body = make_body(tenant) if make_body else None
    return world.client.request(method.upper(), path, headers=headers, json=body)


def assert_problem(response: Any, status: int, slug: str, context: str) -> dict[str, Any]:
    assert response.status_code == status, f"{context}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), context
    problem: dict[str, Any] = response.json()
    assert problem["type"] == PROBLEMS + slug and problem["status"] == status, context
    return problem


def id_operations(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for m, p, op in operations(world) if "{" in p and not is_public(p)]


def test_the_walk_covers_every_resource_route(world: World) -> None:
    # The API has (at least) these id routes; the walk must not silently shrink to nothing.
    paths = {p for _, p, _ in id_operations(world)}
    for expected in (
        "/v1/datasets/{dataset_id}",
        "/v1/fits/{fit_id}/customers/{customer_id}",
        "/v1/retention/fits/{fit_id}/churn-cost",
        "/v1/business-cases/{case_id}/versions/{version}",
        "/v1/jobs/{job_id}/cancel",
        "/v1/workspace/keys/{key_id}/rotate",
        "/v1/share-tokens/{token_id}",
    ):
        assert expected in paths


def test_another_workspaces_ids_answer_404_on_every_route_and_change_nothing(
    world: World,
) -> None:
    a, b = world.a, world.b
    checked = 0
    for method, path, operation in id_operations(world):
        context = f"{method.upper()} {concrete(path, resource_ids(a, path))} with B's key"
        response = call(world, method, path, operation, b.admin.headers)
        problem = assert_problem(response, 404, "not-found", context)
        # The refusal reads the same as for an id that never existed (nothing about A leaks).
        assert "this workspace" in problem["detail"] or "No " in problem["detail"], context
        checked += 1
    assert checked >= 20  # every GET/PUT/DELETE/POST on an id (22 when written)
    # B's DELETE, PUT, cancel, rotate and revoke touched nothing of A's:
    for method, path, _ in id_operations(world):
        if method == "get" and re.fullmatch(r"[^{]+\{\w+\}", path):  # the resource itself
            url = concrete(path, resource_ids(a, path))
            owner = world.client.get(url, headers=a.admin.headers)
            assert owner.status_code == 200, f"GET {url} by A: {owner.text}"
    versions = world.client.get(f"/v1/business-cases/{a.case_id}", headers=a.admin.headers)
    assert versions.json()["version"] == 1  # B's PUT stored no new version
    assert world.client.get("/v1/workspace/keys", headers=a.admin.headers).status_code == 200


def test_other_tenants_resources_are_absent_from_lists_and_bodies(world: World) -> None:
    a, b = world.a, world.b
    headers = b.admin.headers
    for path, own in (
        ("/v1/datasets", b.dataset_id),
        ("/v1/fits", b.fit_id),
        ("/v1/retention/fits", b.retention_fit_id),
        ("/v1/business-cases", b.case_id),
        ("/v1/jobs", b.job_id),
        ("/v1/share-tokens", b.share_token_id),
    ):
        ids = [item["id"] for item in world.client.get(path, headers=headers).json()["items"]]
        assert ids == [own], path  # B sees exactly its own one resource
    # Ids of A inside B's request bodies are as unknown as in paths.
    bodies = [
        ("/v1/fits", {"dataset_id": a.dataset_id, "purchase_model": "bgnbd"}),
        ("/v1/share-tokens", {"resource_type": "fit", "resource_id": a.fit_id}),
        ("/v1/share-tokens", {"resource_type": "business_case", "resource_id": a.case_id}),
        (
            "/v1/business-cases",
            {**HAND_CASE, "baseline": {"kind": "fit", "fit_id": a.fit_id}, "effects": {}},
        ),
        (
            "/v1/business-cases",
            {
                **HAND_CASE,
                "baseline": {"kind": "retention_fit", "retention_fit_id": a.retention_fit_id},
                "effects": {},
            },
        ),
        (
            "/v1/retention/fits",
            {"dataset_id": a.dataset_id, "value_per_period": 1, "discount_rate": 0.1,
             "currency": "USD"},
        ),
    ]  # fmt: skip
    for path, body in bodies:
        response = world.client.post(path, headers=headers, json=body)
        assert_problem(response, 404, "not-found", f"POST {path} naming A's id")


def required_scope(dependant: Dependant) -> str | None:
    """The scope a route's dependencies demand (``require_<scope>_scope``), if any."""
    stack = list(dependant.dependencies)
    while stack:
        dependency = stack.pop()
        name = getattr(dependency.call, "__name__", "")
        match = re.fullmatch(r"require_(\w+)_scope", name)
        if match:
            return match.group(1)
        stack.extend(dependency.dependencies)
    return None


def route_dependants(world: World) -> dict[tuple[str, str], Dependant]:
    """(method, path) -> the dependency tree of every route, also those of included routers
    (FastAPI keeps them as route contexts of each router it includes)."""
    found: dict[tuple[str, str], Dependant] = {}
    for entry in world.app.routes:
        contexts = [entry] if isinstance(entry, APIRoute) else []
        included = getattr(entry, "effective_route_contexts", None)
        contexts += list(included() if callable(included) else included or [])
        for context in contexts:
            for method in context.methods or ():
                found[(method.lower(), context.path)] = context.dependant
    return found


def protected_operations(world: World) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for m, p, op in operations(world) if not is_public(p)]


def test_every_non_public_route_needs_a_key(world: World) -> None:
    for method, path, operation in protected_operations(world):
        for headers in ({}, {"Authorization": "Bearer cltv_not-a-key"}, {"X-API-Key": ""}):
            response = call(world, method, path, operation, headers)
            context = f"{method.upper()} {path} with {headers or 'no key'}"
            assert_problem(response, 401, "unauthorized", context)
            assert response.headers["www-authenticate"].startswith("Bearer"), context


def test_every_non_public_route_demands_a_scope_and_refuses_keys_without_it(
    world: World,
) -> None:
    dependants = route_dependants(world)
    narrower: dict[str, Callable[[Tenant], Credentials]] = {
        "write": lambda t: t.read,
        "admin": lambda t: t.write,
    }
    refused = 0
    for method, path, operation in protected_operations(world):
        scope = required_scope(dependants[(method, path)])
        assert scope in SCOPE_RANK, f"{method.upper()} {path} checks no scope"
        if scope not in narrower:
            continue  # every key has read
        response = call(world, method, path, operation, narrower[scope](world.a).headers)
        problem = assert_problem(response, 403, "forbidden", f"{method.upper()} {path}")
        assert problem["required_scope"] == scope
        refused += 1
    assert refused >= 15  # every write and admin operation (17 when written)


def test_read_keys_can_read_and_write_keys_cannot_manage_keys(world: World) -> None:
    a = world.a
    read = world.client.get(f"/v1/fits/{a.fit_id}", headers=a.read.headers)
    assert read.status_code == 200
    listing = world.client.get("/v1/workspace/keys", headers=a.write.headers)
    assert_problem(listing, 403, "forbidden", "GET /v1/workspace/keys with a write key")
    upload = world.client.post(
        "/v1/datasets", headers=a.read.headers, files={"file": ("x.csv", b"a,b,c\n1,2,3\n")}
    )
    assert_problem(upload, 403, "forbidden", "upload with a read key")


def other_route_matches(world: World, method: str, url: str) -> bool:
    """Whether another documented path takes ``method`` on ``url`` (``/v1/datasets/preview``
    is also ``/v1/datasets/{dataset_id}``)."""
    return any(
        re.fullmatch(PATH_PARAMETER.sub("[^/]+", path), url)
        for m, path, _ in operations(world)
        if m == method
    )


def test_undocumented_methods_are_405_problems_never_server_errors(world: World) -> None:
    for path, item in world.app.openapi()["paths"].items():
        if "{token}" in path:
            continue
        url = concrete(path, resource_ids(world.a, path))
        for method in HTTP_METHODS:
            if method in item or other_route_matches(world, method, url):
                continue
            response = world.client.request(method.upper(), url, headers=world.a.admin.headers)
            context = f"{method.upper()} {url}"
            assert_problem(response, 405, "method-not-allowed", context)
            documented = {m.upper() for m in HTTP_METHODS if m in item}
            assert documented <= set(response.headers["allow"].split(", ")), context
