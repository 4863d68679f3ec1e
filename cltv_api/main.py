"""The HTTP application: ``create_app(settings)`` and the module-level ``app`` for uvicorn.

Importing this module only reads the settings and sets up logging (JSON lines by default, see
:mod:`cltv_api.observability`); the data directory, the database (migrated to the latest
revision) and the background job worker are set up by the lifespan, i.e. when a server (or a
``TestClient`` used as a context manager) starts the application::

    CLTV_DATA_DIR=/srv/cltv python -m uvicorn cltv_api.main:app --port 8000

Middleware, outermost first, all pure ASGI (cheap enough for the calculator's thousands of
requests per second): request id, log context, access log and HTTP metrics
(:class:`~cltv_api.observability.RequestContextMiddleware`); security headers
(:mod:`cltv_api.security_headers`); CORS when ``cors_origins`` is set; rate limiting
(:mod:`cltv_api.ratelimit`) when ``rate_limit_per_second`` > 0; the last-resort 500 problem
(:class:`~cltv_api.problems.UnhandledErrorMiddleware`).
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
from cltv_api.metrics import Metrics, metrics_route
from cltv_api.observability import (
    REQUEST_ID_HEADER,
    RequestContextMiddleware,
    configure_logging,
)
from cltv_api.problems import install_problem_handlers
from cltv_api.ratelimit import RateLimitMiddleware
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
from cltv_api.security_headers import SecurityHeadersMiddleware
from cltv_api.services.datasets import remove_abandoned_scratch
from cltv_api.services.fits import (
    FIT_JOB_KIND,
    SegmentCache,
    fail_interrupted_fit,
    run_fit_job,
)
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


def _start_resources(app: FastAPI, settings: Settings) -> None:
    """Blocking start-up work: data directory (and the temporary files a killed process left
    there), migrations, job worker."""
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StorageError(f"Cannot create the data directory {settings.data_dir}: {exc}") from exc
    removed = remove_abandoned_scratch(settings)
    if removed:
        logger.warning("removed %d temporary file(s) left by a dead process", len(removed))
    db = Database(settings.resolved_database_url)
    try:
        status = upgrade_to_head(db, lock_path=settings.data_dir / ".migrate.lock")
        logger.info("database at schema revision %s", ",".join(status.current))
        worker = JobWorker(db, settings, metrics=app.state.metrics)
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
    # Again at start-up: ``uvicorn.run(app)`` sets up uvicorn's logging after the app was made.
    configure_logging(settings.log_level, settings.log_format)
    await run_in_threadpool(_start_resources, app, settings)
    try:
        yield
    finally:
        await run_in_threadpool(_stop_resources, app)


def _add_middleware(app: FastAPI, settings: Settings) -> None:
    """The middleware of the module doc; each ``add_middleware`` wraps the ones added before."""
    if settings.rate_limit_per_second > 0:
        app.add_middleware(
            RateLimitMiddleware,
            rate=settings.rate_limit_per_second,
            burst=settings.rate_limit_burst,
        )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type", REQUEST_ID_HEADER],
            expose_headers=[
                "Location",
                REQUEST_ID_HEADER,
                "Retry-After",
                "RateLimit-Limit",
                "RateLimit-Remaining",
                "RateLimit-Reset",
                "RateLimit-Policy",
            ],
        )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(RequestContextMiddleware, metrics=app.state.metrics)


def create_app(settings: Settings | None = None) -> FastAPI:
    """A new application for ``settings`` (default: from the environment). Cheap: apart from
    setting up logging, nothing is opened or written until the application starts."""
    settings = settings or get_settings()
    app = FastAPI(
        title="cltv",
        version=_package_version(),
        description=DESCRIPTION,
        lifespan=_lifespan,
    )
    configure_logging(settings.log_level, settings.log_format)
    app.state.settings = settings
    app.state.segment_cache = SegmentCache(settings.segment_cache_entries)
    app.state.metrics = Metrics()
    register_job_kind(FIT_JOB_KIND, run_fit_job, on_interrupted=fail_interrupted_fit)
    # The authentication as before, noting the workspace for the access log.
    install_problem_handlers(app)
    _add_middleware(app, settings)
    if settings.metrics_enabled:
        app.router.routes.append(metrics_route(app.state.metrics, settings.metrics_token))
    # Routes are matched in order: the busiest stateless ones (the calculator, health checks)
    # first, so a calculator request does not walk every other route (a third of its time).
    app.include_router(calculator.router)
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
    app.include_router(calculator.page_router)  # the web page at /
    app.mount("/static", calculator.static_files(), name="static")
    return app


app = create_app()
