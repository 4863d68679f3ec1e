"""The service under a real uvicorn process: start, serve, authenticate, stop on SIGTERM."""

from __future__ import annotations

import signal

import httpx
import pytest

from cltv_api.services.workspaces import bootstrap_workspace
from tests.cltv_api.service.conftest import LiveServer, make_settings


@pytest.mark.slow
def test_uvicorn_serves_the_app_and_stops_cleanly_on_sigterm(live_server: LiveServer) -> None:
    # A second process (this one) bootstraps a workspace on the same data directory while the
    # server runs, as `make run` would.
    workspace, key = bootstrap_workspace("live", make_settings(live_server.data_dir))

    health = httpx.get(f"{live_server.base_url}/healthz", timeout=5)
    assert health.status_code == 200 and health.json() == {"status": "ok"}
    assert httpx.get(f"{live_server.base_url}/readyz", timeout=5).status_code == 200

    mine = httpx.get(
        f"{live_server.base_url}/v1/workspace",
        headers={"Authorization": f"Bearer {key}"},
        timeout=5,
    )
    assert mine.status_code == 200
    assert mine.json()["id"] == workspace.id and mine.json()["name"] == "live"

    anonymous = httpx.get(f"{live_server.base_url}/v1/workspace", timeout=5)
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    assert anonymous.headers["www-authenticate"] == 'Bearer realm="cltv"'

    # uvicorn shuts down gracefully, then re-raises the signal it caught, so the exit status is
    # "terminated by SIGTERM" (-15); a hang would end in SIGKILL (-9), a crash in 1.
    assert live_server.stop() in (0, -signal.SIGTERM)
    log = live_server.log()
    assert "Application shutdown complete" in log and "Finished server process" in log
    assert "Traceback" not in log
    assert key not in log
