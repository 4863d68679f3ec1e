"""A test-only application: the service plus a job kind that takes as long as its payload says.

Served by uvicorn in the graceful-shutdown test::

    python -m uvicorn --factory tests.cltv_api.service.slow_job_app:create_slow_app

Importing the module registers the kind, so the test process can queue such jobs too.
"""

from __future__ import annotations

import time
from typing import Any

from fastapi import FastAPI

from cltv_api.main import create_app
from cltv_api.services.jobs import ProgressReporter, register_job_kind

SLOW_JOB_KIND = "test-slow"


def run_slow_job(payload: dict[str, Any], report: ProgressReporter) -> None:
    """``steps`` steps of ``step_seconds`` each, reporting progress before every step (where a
    shutdown interrupts it)."""
    steps = int(payload["steps"])
    for step in range(steps):
        report(step / steps, f"step {step + 1} of {steps}")
        time.sleep(float(payload["step_seconds"]))


register_job_kind(SLOW_JOB_KIND, run_slow_job)


def create_slow_app() -> FastAPI:
    """The service as ``cltv_api.main:app`` builds it (settings from the environment)."""
    return create_app()
