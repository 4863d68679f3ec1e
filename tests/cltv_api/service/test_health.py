"""Liveness and readiness probes."""

from __future__ import annotations

import shutil
from pathlib import Path

from alembic import command

from cltv_api.main import create_app
from cltv_api.storage.db import Database
from cltv_api.storage.migrate import alembic_config, upgrade_to_head
from tests.cltv_api.service.conftest import TestClient, make_settings

PROBLEM = "application/problem+json"


def test_healthz_answers_without_touching_the_database(tmp_path: Path) -> None:
    # Without the lifespan (no `with`), nothing was created: liveness must still answer.
    data_dir = tmp_path / "never-created"
    client = TestClient(create_app(make_settings(data_dir)))
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"status": "ok"}
    assert not data_dir.exists()


def test_readyz_reports_every_check_ok(client: TestClient) -> None:
    response = client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ready",
        "checks": {"database": "ok", "migrations": "ok", "data_dir": "ok"},
        "schema_revision": "0002",
    }


def test_readyz_is_503_when_the_schema_is_not_at_head(client: TestClient) -> None:
    db: Database = client.app.state.db  # type: ignore[attr-defined]
    command.downgrade(alembic_config(db.url), "base")
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "https://cltv.dev/problems/not-ready"
    assert body["errors"] == [
        {"field": "database", "message": "schema at revision 'none', expected '0002'"}
    ]
    upgrade_to_head(db)
    assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_data_dir_is_not_writable(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    settings = make_settings(data_dir, database_url=f"sqlite:///{tmp_path / 'elsewhere.sqlite3'}")
    with TestClient(create_app(settings)) as client:
        assert client.get("/readyz").status_code == 200
        # the directory disappears and a file takes its place (the tests run as root, so
        # permission bits would not stop writes)
        shutil.rmtree(data_dir)
        data_dir.write_text("not a directory")
        response = client.get("/readyz")
        assert response.status_code == 503
        errors = response.json()["errors"]
        assert [error["field"] for error in errors] == ["data_dir"]
        assert errors[0]["message"].startswith("data directory not writable")
        data_dir.unlink()
        data_dir.mkdir()
        assert client.get("/readyz").status_code == 200


def test_readyz_is_503_when_the_database_is_unreachable(client: TestClient, tmp_path: Path) -> None:
    app = client.app
    healthy = app.state.db  # type: ignore[attr-defined]
    unreachable = Database(f"sqlite:///{tmp_path / 'no' / 'such' / 'dir' / 'db.sqlite3'}")
    app.state.db = unreachable  # type: ignore[attr-defined]
    try:
        response = client.get("/readyz")
    finally:
        app.state.db = healthy  # type: ignore[attr-defined]
        unreachable.dispose()
    assert response.status_code == 503
    assert response.json()["errors"] == [
        {"field": "database", "message": "database unreachable: OperationalError"}
    ]
