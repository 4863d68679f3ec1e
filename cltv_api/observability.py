"""Structured logs, request ids and the per-request middleware (access log and HTTP metrics).

Logs. With ``CLTV_LOG_FORMAT=json`` (the default) every line of the ``cltv_api`` loggers, and of
uvicorn's when uvicorn runs the service, is one JSON object::

    {"timestamp": "2026-11-23T21:59:01.123Z", "level": "INFO", "logger": "cltv_api.access",
     "message": "GET /v1/fits/{fit_id} 200 3.1 ms", "request_id": "5f0c...", "workspace_id":
     "ws_...", "method": "GET", "path": "/v1/fits/fit_...", "route": "/v1/fits/{fit_id}",
     "status": 200, "duration_ms": 3.1}

``CLTV_LOG_FORMAT=text`` writes the same as one readable line. Fields of the context (request
id, workspace id once authenticated, job id and kind inside a job) come from a context variable,
so every line logged while a request or job is handled carries them, also from the threads that
run synchronous endpoints (Starlette copies the context into them). A job started by a request
carries that request's id when the same process runs it.

Request ids. ``X-Request-ID`` from the client is kept when it is short and made of safe
characters (:data:`REQUEST_ID_PATTERN`), else a new one is generated; it is echoed in the
response header ``X-Request-ID``.

Secrets. The access log writes the path without the query string and with share tokens
redacted (:func:`cltv_api.problems.redact_path`); headers and bodies are never logged; and the
formatters replace anything shaped like an API key or share token (``cltv_...``) or a bearer
credential in any message with ``<redacted>``.
"""

from __future__ import annotations

import functools
import json
import logging
import re
import secrets
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, Final, TextIO

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cltv_api.metrics import UNMATCHED_ROUTE, Metrics, current_metrics, method_label
from cltv_api.problems import redact_path

REQUEST_ID_HEADER: Final = "X-Request-ID"
REQUEST_ID_PATTERN: Final = re.compile(r"[A-Za-z0-9._-]{1,64}")
"""An incoming request id is kept only if it matches (at most 64 letters, digits, ``._-``)."""

ACCESS_LOGGER: Final = "cltv_api.access"
UPLOAD_PATHS: Final = frozenset({"/v1/datasets", "/v1/datasets/preview"})

logger = logging.getLogger("cltv_api")
access_logger = logging.getLogger(ACCESS_LOGGER)

# Anything shaped like one of our secrets (API key ``cltv_`` + 40 base-62 characters, share token
# ``cltv_share_`` + 40) or a bearer credential, wherever it appears in a message.
_SECRET_PATTERNS: Final = (
    (re.compile(r"\b(cltv_(?:share_)?)[A-Za-z0-9]{16,}"), r"\1<redacted>"),
    (re.compile(r"(?i)\b(bearer\s+)[^\s\"',;]+"), r"\1<redacted>"),
)


def scrub(text: str) -> str:
    """``text`` with API keys, share tokens and bearer credentials replaced by ``<redacted>``."""
    if "cltv_" not in text and "earer" not in text:  # the common case: nothing to do
        return text
    for pattern, replacement in _SECRET_PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# --- the log context -----------------------------------------------------------------------------


@dataclass
class LogContext:
    """What every log line emitted on behalf of one request or job carries. Mutable: the
    authentication fills in ``workspace_id`` once it knows it (also from a worker thread, which
    shares this object through the copied context)."""

    request_id: str | None = None
    workspace_id: str | None = None
    job_id: str | None = None
    job_kind: str | None = None

    def as_fields(self) -> dict[str, str]:
        values = {
            "request_id": self.request_id,
            "workspace_id": self.workspace_id,
            "job_id": self.job_id,
            "job_kind": self.job_kind,
        }
        return {name: value for name, value in values.items() if value}


_context: ContextVar[LogContext | None] = ContextVar("cltv_log_context", default=None)


def current_context() -> LogContext | None:
    """The context of the request or job being handled, if any."""
    return _context.get()


def current_request_id() -> str | None:
    context = _context.get()
    return None if context is None else context.request_id


@contextmanager
def bind_context(context: LogContext) -> Iterator[LogContext]:
    """Make ``context`` the log context of the code in the ``with`` block."""
    token = _context.set(context)
    try:
        yield context
    finally:
        _context.reset(token)


def note_workspace(workspace_id: str) -> None:
    """Record the authenticated workspace in the current context (for the access log)."""
    context = _context.get()
    if context is not None:
        context.workspace_id = workspace_id


def new_request_id() -> str:
    """A fresh request id: 16 hex characters (64 random bits)."""
    return secrets.token_hex(8)


def valid_request_id(value: str | None) -> str | None:
    """``value`` if it is an acceptable incoming request id, else None."""
    if value and REQUEST_ID_PATTERN.fullmatch(value):
        return value
    return None


# --- formatting ----------------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Copies the current log context onto each record (``record.request_id``,
    ``record.context``) when it is emitted, i.e. in the thread and context that logged it."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = _context.get()
        if not hasattr(record, "request_id"):
            record.request_id = None if context is None else context.request_id
        if not hasattr(record, "context"):
            record.context = {} if context is None else context.as_fields()
        return True


@functools.lru_cache(maxsize=4)
def _utc_second(second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))


def _timestamp(created: float) -> str:
    """ISO 8601 UTC with milliseconds, e.g. ``2026-11-23T21:59:01.123Z`` (each second is
    formatted once: formatting dates is a good part of a log line's cost)."""
    second = int(created)
    return f"{_utc_second(second)}.{int((created - second) * 1000):03d}Z"


_encode_json = json.JSONEncoder(ensure_ascii=False, default=str).encode


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``timestamp``, ``level``, ``logger``, ``message``,
    ``request_id``, then the context (``workspace_id``, ``job_id``, ``job_kind``), the record's
    ``fields`` (``extra={"fields": {...}}``) and ``exception`` (the traceback) if any."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "timestamp": _timestamp(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": scrub(record.getMessage()),
            "request_id": getattr(record, "request_id", None),
        }
        for key, value in getattr(record, "context", {}).items():
            entry.setdefault(key, value)
        for key, value in (getattr(record, "fields", None) or {}).items():
            entry.setdefault(key, value)
        if record.exc_info:
            entry["exception"] = scrub(self.formatException(record.exc_info))
        if record.stack_info:
            entry["stack"] = scrub(self.formatStack(record.stack_info))
        return _encode_json(entry)


class TextFormatter(logging.Formatter):
    """``<time> <LEVEL> <logger> [<request id>] <message> key=value ...``."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "request_id"):
            record.request_id = None
        extra = {**getattr(record, "context", {}), **(getattr(record, "fields", None) or {})}
        extra.pop("request_id", None)
        line = super().format(record)
        if extra:
            line += " " + " ".join(f"{key}={value}" for key, value in extra.items())
        return scrub(line)


def make_handler(log_format: str, stream: TextIO | None = None) -> logging.Handler:
    """A stream handler (stderr by default) with the context filter and the formatter of
    ``log_format`` (``json`` or ``text``)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    return handler


_HANDLER_NAME: Final = "cltv"
"""The name of the handler :func:`configure_logging` installs (to find and replace it)."""


def _ours(handler: logging.Handler) -> bool:
    return handler.get_name() == _HANDLER_NAME


def configure_logging(level: str, log_format: str) -> None:
    """Set up the service's logs (idempotent; the last call's format wins).

    * ``cltv_api`` loggers get ``level``; they get our handler unless the root logger already
      has handlers (a test runner or an embedding application decides where records go).
    * Under uvicorn (its loggers have handlers), uvicorn's handlers are replaced by ours, so
      its lines are formatted the same, and its access log is switched off: our middleware
      writes one access line per request without query strings.
    """
    app_logger = logging.getLogger("cltv_api")
    app_logger.setLevel(level)
    handler = make_handler(log_format)
    handler.set_name(_HANDLER_NAME)
    _replace_our_handler(app_logger, handler, attach=not logging.getLogger().handlers)
    uvicorn_logger = logging.getLogger("uvicorn")
    if uvicorn_logger.handlers:
        for existing in list(uvicorn_logger.handlers):
            uvicorn_logger.removeHandler(existing)
        uvicorn_logger.addHandler(handler)
        logging.getLogger("uvicorn.access").disabled = True


def _replace_our_handler(target: logging.Logger, handler: logging.Handler, attach: bool) -> None:
    for existing in [h for h in target.handlers if _ours(h)]:
        target.removeHandler(existing)
    if attach:
        target.addHandler(handler)


# --- the middleware ------------------------------------------------------------------------------


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/fits/{fit_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED_ROUTE


class RequestContextMiddleware:
    """Pure ASGI middleware, outermost: request id (kept or generated, echoed in
    ``X-Request-ID``), the log context, HTTP metrics and one access-log line per request."""

    def __init__(self, app: ASGIApp, metrics: Metrics | None = None) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = valid_request_id(_header(scope, b"x-request-id")) or new_request_id()
        context = LogContext(request_id=request_id)
        id_header = (b"x-request-id", request_id.encode("ascii"))
        status = 500
        body_bytes = 0

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message["headers"] = [*message.get("headers", ()), id_header]
            await send(message)

        async def receive_counting() -> Message:
            nonlocal body_bytes
            message = await receive()
            if message["type"] == "http.request":
                body_bytes += len(message.get("body", b""))
            return message

        counts_upload = scope["method"] == "POST" and scope["path"] in UPLOAD_PATHS
        method = method_label(scope["method"])
        metrics = self.metrics
        if metrics is not None:
            metrics.request_started(method)
        context_token = _context.set(context)
        metrics_token = current_metrics.set(metrics)
        start = time.perf_counter()
        try:
            await self.app(scope, receive_counting if counts_upload else receive, send_with_id)
        finally:
            seconds = time.perf_counter() - start
            route = _route_template(scope)
            if metrics is not None:
                metrics.request_finished(method, route, status, seconds)
                if body_bytes:
                    metrics.upload_bytes.inc(body_bytes)
            _log_access(scope, route, status, seconds)
            current_metrics.reset(metrics_token)
            _context.reset(context_token)


def _log_access(scope: Scope, route: str, status: int, seconds: float) -> None:
    """One access line: method, path (no query string, share tokens redacted), route, status,
    duration in milliseconds; request and workspace ids come from the context."""
    if not access_logger.isEnabledFor(logging.INFO):
        return
    path = redact_path(scope["path"])
    duration_ms = round(seconds * 1000.0, 2)
    fields = {
        "method": scope["method"],
        "path": path,
        "route": route,
        "status": status,
        "duration_ms": duration_ms,
    }
    # makeRecord + handle is Logger.info without its caller lookup (a stack walk that was a
    # tenth of a calculator request); the access line's caller is always this function.
    record = access_logger.makeRecord(
        access_logger.name,
        logging.INFO,
        __file__,
        0,
        "%s %s %d %.2f ms",
        (scope["method"], path, status, duration_ms),
        None,
        func="_log_access",
        extra={"fields": fields},
    )
    access_logger.handle(record)
