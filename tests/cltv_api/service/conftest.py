"""Fixtures for HTTP service tests: a real app on a temporary data directory (real SQLite file),
clients authenticated with fresh workspace keys, and a live uvicorn server.

Reuse them in endpoint tests::

    def test_something(api: Api) -> None:
        response = api.client.get("/v1/jobs", headers=api.headers)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from cltv_api.main import create_app
from cltv_api.services.workspaces import create_workspace, issue_key
from cltv_api.settings import Settings
from cltv_api.storage.db import Database

# Starlette 1.x warns (StarletteDeprecationWarning) on importing its TestClient while the older
# `httpx` rather than `httpx2` is installed; that is about our dependency pins, not our code, and
# with `filterwarnings = error` the import would fail. Import it once here with that one warning
# silenced (Python caches the module, so later imports do not warn again).
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=r"Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient

__all__ = ["TestClient"]  # re-exported for the test modules (imported above, warning-free)

REPO_ROOT = Path(__file__).resolve().parents[3]
ALL_SCOPES = ("read", "write", "admin")


def make_settings(data_dir: Path, **overrides: Any) -> Settings:
    """Settings for tests: a private data directory, fast job polling and heartbeats."""
    values: dict[str, Any] = {
        "data_dir": data_dir,
        "worker_threads": 2,
        "job_poll_interval_seconds": 0.05,
        "job_heartbeat_seconds": 0.2,
        "job_stale_after_seconds": 30.0,
        "job_shutdown_grace_seconds": 2.0,
        "log_level": "INFO",
    }
    values.update(overrides)
    return Settings(**values)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def settings(data_dir: Path) -> Settings:
    return make_settings(data_dir)


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    """A client of the started app (lifespan run: migrations applied, job worker running).

    Server errors come back as responses (500 problems), as a real client would see them.
    """
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@dataclass(frozen=True)
class Credentials:
    """A workspace and one of its API keys."""

    workspace_id: str
    key_id: str
    key: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}


def new_workspace(db: Database, name: str, scopes: Sequence[str] = ALL_SCOPES) -> Credentials:
    """Create a workspace with one key directly through the service layer."""
    with db.session() as session:
        workspace = create_workspace(session, name)
        issued = issue_key(session, workspace.id, "test key", scopes)
        return Credentials(workspace.id, issued.api_key.id, issued.plaintext)


@pytest.fixture
def make_workspace(client: TestClient) -> Callable[..., Credentials]:
    """Factory: ``make_workspace("name", scopes=("read",))`` in the running app's database."""
    db: Database = client.app.state.db  # type: ignore[attr-defined]

    def make(name: str = "test workspace", scopes: Sequence[str] = ALL_SCOPES) -> Credentials:
        return new_workspace(db, name, scopes)

    return make


@dataclass(frozen=True)
class Api:
    """A started app's client plus an admin key of a fresh workspace."""

    client: TestClient
    credentials: Credentials

    @property
    def headers(self) -> dict[str, str]:
        return self.credentials.headers

    @property
    def db(self) -> Database:
        db: Database = self.client.app.state.db  # type: ignore[attr-defined]
        return db


@pytest.fixture
def api(client: TestClient, make_workspace: Callable[..., Credentials]) -> Api:
    return Api(client=client, credentials=make_workspace("primary"))


# --- live server -------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class LiveServer:
    """A uvicorn process serving ``cltv_api.main:app``."""

    process: subprocess.Popen[bytes]
    base_url: str
    data_dir: Path
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self, timeout: float = 20.0) -> int:
        """SIGTERM, then wait for a clean exit; returns the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def start_live_server(
    data_dir: Path,
    log_path: Path,
    timeout: float = 90.0,
    *,
    env: Mapping[str, str] | None = None,
    app: str = "cltv_api.main:app",
    factory: bool = False,
    append: bool = False,
) -> LiveServer:
    """Start ``python -m uvicorn APP`` on a free port and wait for ``/healthz``.

    ``env`` adds ``CLTV_*`` settings (``CLTV_DATABASE_URL`` from the caller's environment is
    dropped unless given); ``factory`` runs ``app`` as an app factory; ``append`` keeps the
    log of earlier runs (restarts on one data directory share it).
    """
    port = free_port()
    environment = {
        **os.environ,
        "CLTV_DATA_DIR": str(data_dir),
        "CLTV_LOG_LEVEL": "INFO",
        **(env or {}),
    }
    if "CLTV_DATABASE_URL" not in (env or {}):
        environment.pop("CLTV_DATABASE_URL", None)
    command = [
        sys.executable, "-m", "uvicorn", *(["--factory"] if factory else []), app,
        "--host", "127.0.0.1", "--port", str(port), "--log-level", "info",
    ]  # fmt: skip
    with log_path.open("ab" if append else "wb") as log_file:
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=environment, stdout=log_file, stderr=log_file
        )
    server = LiveServer(process, f"http://127.0.0.1:{port}", data_dir, log_path)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.base_url}/healthz", timeout=1.0).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    process.wait()
    raise RuntimeError(f"uvicorn did not answer /healthz within {timeout} s:\n{server.log()}")


@pytest.fixture
def live_server(tmp_path: Path) -> Iterator[LiveServer]:
    """A real uvicorn process on 127.0.0.1 with its own data directory; stopped with SIGTERM."""
    server = start_live_server(tmp_path / "live-data", tmp_path / "uvicorn.log")
    try:
        yield server
    finally:
        server.stop()
