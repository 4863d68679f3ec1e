"""Settings from the environment, their defaults, and how the app uses them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from cltv_api.main import create_app
from cltv_api.settings import Settings, get_settings
from tests.cltv_api.service.conftest import REPO_ROOT, TestClient, make_settings


def test_defaults(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    settings = Settings()
    assert settings.data_dir == Path("data")
    assert settings.engine == "duckdb"
    assert settings.max_upload_bytes == 1024**3  # 1 GiB
    assert settings.cors_origins == []
    assert settings.resolved_database_url == f"sqlite:///{tmp_path / 'data' / 'cltv.sqlite3'}"


def test_environment_variables_with_the_cltv_prefix(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLTV_DATA_DIR", str(tmp_path / "d"))
    monkeypatch.setenv("CLTV_ENGINE", "spark")
    monkeypatch.setenv("CLTV_MAX_UPLOAD_BYTES", "1048576")
    monkeypatch.setenv("CLTV_SYNC_FIT_MAX_CUSTOMERS", "1000")
    monkeypatch.setenv("CLTV_DUCKDB_MEMORY_LIMIT", "512MB")
    monkeypatch.setenv("CLTV_WORKER_THREADS", "4")
    monkeypatch.setenv("CLTV_CORS_ORIGINS", "https://a.example, https://b.example")
    monkeypatch.setenv("CLTV_LOG_LEVEL", "debug")
    monkeypatch.setenv("CLTV_DATABASE_URL", "postgresql+psycopg://cltv@db/cltv")
    settings = Settings()
    assert settings.data_dir == tmp_path / "d"
    assert settings.engine == "spark"
    assert settings.max_upload_bytes == 1_048_576
    assert settings.sync_fit_max_customers == 1000
    assert settings.duckdb_memory_limit == "512MB"
    assert settings.worker_threads == 4
    assert settings.cors_origins == ["https://a.example", "https://b.example"]
    assert settings.log_level == "DEBUG"
    assert settings.resolved_database_url == "postgresql+psycopg://cltv@db/cltv"


@pytest.mark.parametrize(
    "bad",
    [
        {"engine": "pandas"},
        {"worker_threads": 0},
        {"max_upload_bytes": 0},
        {"job_heartbeat_seconds": 60, "job_stale_after_seconds": 30},
    ],
)
def test_invalid_settings_are_rejected(bad: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        Settings(**bad)  # type: ignore[arg-type]


def test_get_settings_is_cached_and_requests_see_the_apps_settings(tmp_path: Path) -> None:
    assert get_settings() is get_settings()
    settings = make_settings(tmp_path / "data")
    app = create_app(settings)
    assert app.state.settings is settings
    with TestClient(app) as client:  # the data directory the app uses is the one it was given
        assert client.get("/readyz").status_code == 200
    assert (tmp_path / "data").is_dir()


def test_importing_the_app_module_creates_nothing(tmp_path: Path) -> None:
    data_dir = tmp_path / "untouched"
    env = {"CLTV_DATA_DIR": str(data_dir), "PATH": "/usr/bin:/bin"}
    code = "import cltv_api.main as m; print(type(m.app).__name__)"
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
        timeout=60, check=True,
    )  # fmt: skip
    assert result.stdout.strip() == "FastAPI"
    assert not data_dir.exists()


def test_cors_is_off_without_origins_and_on_with_them(tmp_path: Path) -> None:
    preflight = {
        "Origin": "https://ui.example",
        "Access-Control-Request-Method": "GET",
        "Access-Control-Request-Headers": "Authorization",
    }
    with TestClient(create_app(make_settings(tmp_path / "off"))) as client:
        response = client.get("/healthz", headers={"Origin": "https://ui.example"})
        assert "access-control-allow-origin" not in response.headers
    on = make_settings(tmp_path / "on", cors_origins=["https://ui.example"])
    with TestClient(create_app(on)) as client:
        response = client.options("/v1/jobs", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://ui.example"
        assert "Authorization" in response.headers["access-control-allow-headers"]
        other = client.get("/healthz", headers={"Origin": "https://evil.example"})
        assert "access-control-allow-origin" not in other.headers
