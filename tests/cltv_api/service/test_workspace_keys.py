"""Workspaces and API keys: lifecycle, secrecy, scopes and isolation between workspaces."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from cltv_api.services.workspaces import (
    bootstrap_workspace,
    effective_scopes,
    generate_key,
    hash_key,
)
from cltv_api.settings import Settings
from cltv_api.storage.db import Database
from cltv_api.storage.tables import ApiKey
from tests.cltv_api.service.conftest import Api, Credentials, TestClient, make_settings


def test_key_lifecycle_create_use_list_rotate_revoke(
    api: Api, caplog: pytest.LogCaptureFixture
) -> None:
    client, admin = api.client, api.headers
    caplog.set_level(logging.DEBUG)

    # create: 201, Location, not cacheable, the secret once
    created = client.post(
        "/v1/workspace/keys", headers=admin, json={"name": "etl", "scopes": ["write"]}
    )
    assert created.status_code == 201
    new = created.json()
    assert created.headers["location"] == f"/v1/workspace/keys/{new['id']}"
    assert created.headers["cache-control"] == "no-store"
    key = new["key"]
    assert key.startswith("cltv_") and len(key) == 45  # "cltv_" + 40 random characters
    assert new["prefix"] == key[:12] and new["scopes"] == ["write"] and new["name"] == "etl"

    # use it: by bearer token and by X-API-Key header
    mine = client.get("/v1/workspace", headers={"Authorization": f"Bearer {key}"})
    assert mine.status_code == 200 and mine.json()["id"] == api.credentials.workspace_id
    assert client.get("/v1/jobs", headers={"X-API-Key": key}).status_code == 200

    # list: prefixes only, never the secret; the new key shows when it was last used
    listed = client.get("/v1/workspace/keys", headers=admin)
    assert listed.status_code == 200
    assert key not in listed.text
    by_id = {item["id"]: item for item in listed.json()["items"]}
    assert set(by_id) == {new["id"], api.credentials.key_id}
    assert "key" not in by_id[new["id"]]
    assert by_id[new["id"]]["prefix"] == key[:12]
    assert by_id[new["id"]]["last_used_at"] is not None

    # rotate: a new secret with the same name and scopes; the old one stops working at once
    rotated = client.post(f"/v1/workspace/keys/{new['id']}/rotate", headers=admin)
    assert rotated.status_code == 201
    replacement = rotated.json()
    assert replacement["id"] != new["id"] and replacement["key"] != key
    assert (replacement["name"], replacement["scopes"]) == ("etl", ["write"])
    old_use = client.get("/v1/jobs", headers={"Authorization": f"Bearer {key}"})
    assert old_use.status_code == 401
    assert old_use.json()["detail"] == "The API key has been revoked."
    new_headers = {"Authorization": f"Bearer {replacement['key']}"}
    assert client.get("/v1/jobs", headers=new_headers).status_code == 200

    # revoke: 204, then 401; revoking again is harmless
    assert (
        client.delete(f"/v1/workspace/keys/{replacement['id']}", headers=admin).status_code == 204
    )
    assert client.get("/v1/jobs", headers=new_headers).status_code == 401
    assert (
        client.delete(f"/v1/workspace/keys/{replacement['id']}", headers=admin).status_code == 204
    )

    # revoked keys leave the default list but stay visible on request
    active = client.get("/v1/workspace/keys", headers=admin).json()["items"]
    assert [item["id"] for item in active] == [api.credentials.key_id]
    everything = client.get("/v1/workspace/keys?include_revoked=true", headers=admin).json()
    assert {item["id"] for item in everything["items"]} == {
        api.credentials.key_id,
        new["id"],
        replacement["id"],
    }
    assert all(
        item["revoked_at"] for item in everything["items"] if item["id"] != api.credentials.key_id
    )

    # no secret ever reached the log
    for secret in (key, replacement["key"], api.credentials.key):
        assert secret not in caplog.text


def test_only_the_sha256_of_a_key_is_stored(api: Api, data_dir: Path) -> None:
    created = api.client.post("/v1/workspace/keys", headers=api.headers, json={"name": "k"}).json()
    with api.db.session() as session:
        row = session.get(ApiKey, created["id"])
        assert row is not None
        assert row.key_hash == hashlib.sha256(created["key"].encode()).hexdigest()
    # the database file and its write-ahead log hold every byte written so far
    database_bytes = b"".join(p.read_bytes() for p in data_dir.glob("cltv.sqlite3*"))
    assert created["key"].encode() not in database_bytes
    assert row.key_hash.encode() in database_bytes


def test_rotating_a_revoked_key_is_a_conflict(api: Api) -> None:
    key_id = api.client.post("/v1/workspace/keys", headers=api.headers, json={}).json()["id"]
    api.client.delete(f"/v1/workspace/keys/{key_id}", headers=api.headers)
    response = api.client.post(f"/v1/workspace/keys/{key_id}/rotate", headers=api.headers)
    assert response.status_code == 409
    assert response.json()["type"] == "https://cltv.dev/problems/conflict"


def test_the_last_admin_key_cannot_be_revoked_but_can_be_rotated(api: Api) -> None:
    own_id = api.credentials.key_id
    refused = api.client.delete(f"/v1/workspace/keys/{own_id}", headers=api.headers)
    assert refused.status_code == 409
    assert "last active admin key" in refused.json()["detail"]
    # a second admin key makes revoking the first one possible
    second = api.client.post("/v1/workspace/keys", headers=api.headers, json={"scopes": ["admin"]})
    assert api.client.delete(f"/v1/workspace/keys/{own_id}", headers=api.headers).status_code == 204
    # the revoked key can no longer act; the other admin key can, and rotation keeps admin alive
    assert api.client.get("/v1/workspace", headers=api.headers).status_code == 401
    other = {"Authorization": f"Bearer {second.json()['key']}"}
    rotated = api.client.post(f"/v1/workspace/keys/{second.json()['id']}/rotate", headers=other)
    assert rotated.status_code == 201 and rotated.json()["scopes"] == ["admin"]


def test_keys_of_another_workspace_are_not_found(
    api: Api, make_workspace: Callable[..., Credentials]
) -> None:
    other = make_workspace("someone else")
    for method, path in [
        ("DELETE", f"/v1/workspace/keys/{other.key_id}"),
        ("POST", f"/v1/workspace/keys/{other.key_id}/rotate"),
    ]:
        response = api.client.request(method, path, headers=api.headers)
        assert response.status_code == 404, (method, path)
    # and the other workspace's key still works
    assert api.client.get("/v1/workspace", headers=other.headers).json()["id"] == other.workspace_id
    listed = api.client.get("/v1/workspace/keys", headers=api.headers).json()["items"]
    assert other.key_id not in {item["id"] for item in listed}


@pytest.mark.parametrize(
    ("scopes", "workspace", "list_keys"),
    [
        (("read",), 200, 403),
        (("write",), 200, 403),  # write includes read
        (("admin",), 200, 200),  # admin includes both
    ],
)
def test_scopes_nest(
    client: TestClient,
    make_workspace: Callable[..., Credentials],
    scopes: tuple[str, ...],
    workspace: int,
    list_keys: int,
) -> None:
    credentials = make_workspace("scoped", scopes=scopes)
    assert client.get("/v1/workspace", headers=credentials.headers).status_code == workspace
    assert client.get("/v1/workspace/keys", headers=credentials.headers).status_code == list_keys


def test_effective_scopes_include_the_lower_ones() -> None:
    assert effective_scopes(["write"]) == {"read", "write"}
    assert effective_scopes(["read", "admin"]) == {"read", "write", "admin"}
    assert effective_scopes(["bogus"]) == frozenset()


def test_generated_keys_are_distinct_and_hash_to_sha256_hex() -> None:
    keys = {generate_key() for _ in range(200)}
    assert len(keys) == 200
    # SHA-256 of the ASCII string "cltv_abc", computed independently with hashlib
    assert hash_key("cltv_abc") == hashlib.sha256(b"cltv_abc").hexdigest()
    assert len(hash_key("cltv_abc")) == 64


def test_bootstrap_workspace_creates_database_and_an_admin_key(tmp_path: Path) -> None:
    settings: Settings = make_settings(tmp_path / "fresh")
    workspace, key = bootstrap_workspace("Acme", settings)
    assert workspace.name == "Acme" and workspace.id.startswith("ws_")
    db = Database(settings.resolved_database_url)
    try:
        with db.session() as session:
            rows = session.query(ApiKey).all()
            assert [(r.workspace_id, r.scopes, r.key_hash) for r in rows] == [
                (workspace.id, ["read", "write", "admin"], hash_key(key))
            ]
    finally:
        db.dispose()
