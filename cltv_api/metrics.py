"""Prometheus metrics of one application, served at ``GET /metrics`` (text exposition format).

Every application has its own :class:`Metrics` (its own ``CollectorRegistry``), so several apps
in one process (tests) never share or collide on counters. Request metrics are recorded by
:class:`cltv_api.observability.RequestContextMiddleware`; code deeper down (fits, jobs) records
through :func:`record_fit` and the job worker, which find the application's metrics in the
context variable :data:`current_metrics` (set per request by the middleware and per job by the
worker), so services need no reference to the application.

Labels never hold raw paths, ids or tokens: requests are labelled by the route TEMPLATE
(``/v1/fits/{fit_id}``), ``<unmatched>`` when no route matched.

Metrics (all durations in seconds, sizes in bytes):

* ``cltv_http_request_duration_seconds{method, route, status_class}``: histogram of the time from
  the request's arrival to the end of its response;
* ``cltv_http_requests_in_progress{method}``: requests being handled now;
* ``cltv_fits_total{model, outcome}``: model fits by requested purchase model and outcome
  (``succeeded``, ``failed``, ``error``, ``cancelled``, ``interrupted``);
* ``cltv_job_duration_seconds{kind, outcome}``: histogram of background-job run times;
* ``cltv_upload_bytes_total``: bytes received by the upload endpoints.
"""

from __future__ import annotations

import hmac
from contextvars import ContextVar
from typing import Final

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pydantic import SecretStr
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cltv_api.problems import WWW_AUTHENTICATE, problem_body, problem_response

METRICS_PATH: Final = "/metrics"
UNMATCHED_ROUTE: Final = "<unmatched>"
KNOWN_METHODS: Final = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT"})

# Request latency buckets, seconds: the calculator answers in well under a millisecond, uploads
# and in-request fits take seconds.
REQUEST_BUCKETS: Final = (
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    60.0,
)  # fmt: skip
# Job run-time buckets, seconds: from quick fits to hour-long ones.
JOB_BUCKETS: Final = (0.1, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0)


class Metrics:
    """The metrics of one application, in their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.request_duration = Histogram(
            "cltv_http_request_duration_seconds",
            "Time to answer an HTTP request, by method, route template and status class.",
            ["method", "route", "status_class"],
            buckets=REQUEST_BUCKETS,
            registry=self.registry,
        )
        self.requests_in_progress = Gauge(
            "cltv_http_requests_in_progress",
            "HTTP requests being handled now.",
            ["method"],
            registry=self.registry,
        )
        self.fits = Counter(
            "cltv_fits",
            "Model fits by requested purchase model and outcome.",
            ["model", "outcome"],
            registry=self.registry,
        )
        self.job_duration = Histogram(
            "cltv_job_duration_seconds",
            "Run time of background jobs, by kind and outcome.",
            ["kind", "outcome"],
            buckets=JOB_BUCKETS,
            registry=self.registry,
        )
        self.upload_bytes = Counter(
            "cltv_upload_bytes",
            "Bytes received by the upload endpoints (POST /v1/datasets, /v1/datasets/preview).",
            registry=self.registry,
        )
        # Labelled children by label values: ``labels()`` takes a lock and builds a key on every
        # call, too slow for thousands of requests per second. Few distinct values (methods,
        # route templates, status classes), so the dictionaries stay small.
        self._in_progress: dict[str, Gauge] = {}
        self._durations: dict[tuple[str, str, str], Histogram] = {}

    def request_started(self, method: str) -> None:
        """One more request of ``method`` (a :func:`method_label`) in progress."""
        gauge = self._in_progress.get(method)
        if gauge is None:
            gauge = self._in_progress[method] = self.requests_in_progress.labels(method)
        gauge.inc()

    def request_finished(self, method: str, route: str, status: int, seconds: float) -> None:
        """A request answered with ``status`` after ``seconds``."""
        self._in_progress[method].dec()
        key = (method, route, status_class(status))
        histogram = self._durations.get(key)
        if histogram is None:
            histogram = self._durations[key] = self.request_duration.labels(*key)
        histogram.observe(seconds)

    def exposition(self) -> bytes:
        """All metrics in the Prometheus text format."""
        return generate_latest(self.registry)


current_metrics: ContextVar[Metrics | None] = ContextVar("cltv_metrics", default=None)
"""The metrics of the application handling the current request or job (None outside of one)."""


def method_label(method: str) -> str:
    """The method as a label: a standard method, or ``other`` (bounded label values)."""
    return method if method in KNOWN_METHODS else "other"


def status_class(status: int) -> str:
    """``2xx``, ``4xx``, ...: the label of a status code."""
    return f"{status // 100}xx"


def record_fit(model: str, outcome: str) -> None:
    """Count one fit of ``model`` (the requested purchase model) that ended with ``outcome``."""
    metrics = current_metrics.get()
    if metrics is not None:
        metrics.fits.labels(model=model, outcome=outcome).inc()


def record_job(kind: str, outcome: str, seconds: float) -> None:
    """Record the run time of a job of ``kind`` that ended with ``outcome``."""
    metrics = current_metrics.get()
    if metrics is not None:
        metrics.job_duration.labels(kind=kind, outcome=outcome).observe(seconds)


def _authorized(request: Request, token: SecretStr | None) -> bool:
    if token is None:
        return True
    scheme, _, presented = request.headers.get("authorization", "").partition(" ")
    expected = token.get_secret_value().encode()
    return scheme.lower() == "bearer" and hmac.compare_digest(presented.strip().encode(), expected)


def metrics_route(metrics: Metrics, token: SecretStr | None) -> Route:
    """``GET /metrics``: the exposition text; with ``token`` set, only for ``Bearer <token>``."""

    async def serve_metrics(request: Request) -> Response:
        if not _authorized(request, token):
            body = problem_body(
                slug="unauthorized",
                title="Unauthorized",
                status=401,
                detail="The metrics need the metrics token as 'Authorization: Bearer <token>'.",
                instance=METRICS_PATH,
            )
            return problem_response(body, headers={"WWW-Authenticate": WWW_AUTHENTICATE})
        return Response(metrics.exposition(), media_type=CONTENT_TYPE_LATEST)

    return Route(METRICS_PATH, serve_metrics, methods=["GET"], include_in_schema=False)
