"""The HTTP application: ``create_app(settings)`` and the module-level ``app`` for uvicorn.

Importing this module only reads the settings; the data directory, the database (migrated to
the latest revision) and the background job worker are set up by the lifespan, i.e. when a
server (or a ``TestClient`` used as a context manager) starts the application::

    CLTV_DATA_DIR=/srv/cltv python -m uvicorn cltv_api.main:app --port 8000
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib.metadata import PackageNotFoundError, version

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from cltv_api.errors import StorageError
from cltv_api.problems import install_problem_handlers
from cltv_api.routes import (
    business_cases,
    calculator,
    churn,
    datasets,
    fits,
    health,
    jobs,
    retention,
    share,
    workspaces,
)
from cltv_api.services.fits import FIT_JOB_KIND, SegmentCache, run_fit_job
from cltv_api.services.jobs import JobWorker, register_job_kind
from cltv_api.settings import Settings, get_settings
from cltv_api.storage.db import Database
from cltv_api.storage.migrate import upgrade_to_head

logger = logging.getLogger("cltv_api")

DESCRIPTION = """
Customer-lifetime-value service: fit purchase and retention models to transaction data,
estimate CLTV per customer and segment, and build CX business cases.

Authenticate with an API key (`cltv_...`) as `Authorization: Bearer <key>` or `X-API-Key: <key>`.
Errors are `application/problem+json` (RFC 9457).
"""


def _package_version() -> str:
    try:
        return version("cltv")
    except PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0.0.0"


def _configure_logging(level: str) -> None:
    """Set the level of our loggers; add a handler only if nobody (uvicorn, pytest) did."""
    logger.setLevel(level)
    if not logger.handlers and not logging.getLogger().handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)


def _start_resources(app: FastAPI, settings: Settings) -> None:
    """Blocking start-up work: data directory, migrations, job worker."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"Cannot create the data directory {settings.data_dir}: {exc}") from exc
    db = Database(settings.resolved_database_url)
    try:
        status = upgrade_to_head(db, lock_path=settings.data_dir / ".migrate.lock")
        logger.info("database at schema revision %s", ",".join(status.current))
        worker = JobWorker(db, settings)
        worker.start()
    except BaseException:
        db.dispose()
        raise
    app.state.db = db
    app.state.worker = worker


def _stop_resources(app: FastAPI) -> None:
    """Blocking shutdown work: let jobs finish or re-queue them, close the database."""
    worker: JobWorker | None = getattr(app.state, "worker", None)
    if worker is not None:
        worker.stop()
    db: Database | None = getattr(app.state, "db", None)
    if db is not None:
        db.dispose()


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    _configure_logging(settings.log_level)
    await run_in_threadpool(_start_resources, app, settings)
    try:
        yield
    finally:
        await run_in_threadpool(_stop_resources, app)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application for ``settings`` (default: from the environment). Cheap: nothing is
    opened or written until the application starts."""
    settings = settings or get_settings()
    app = FastAPI(
        title="cltv",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=_lifespan,
    )
    app.state.settings = settings
    app.state.segment_cache = SegmentCache(settings.segment_cache_entries)
    register_job_kind(FIT_JOB_KIND, run_fit_job)
    app.dependency_overrides[get_settings] = lambda: settings
    install_problem_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["Location"],
        )
    for router in (health.router, workspaces.router, jobs.router, datasets.router, fits.router):
        app.include_router(router)
    for router in (
        retention.router,
        churn.router,
        churn.economics_router,
        business_cases.router,
        share.router,
        share.pull_router,
    ):
        app.include_router(router)
    app.include_router(calculator.router)
    app.include_router(calculator.page_router)  # the web page at /
    app.mount("/static", calculator.static_files(), name="static")
    return app


app = create_app()
