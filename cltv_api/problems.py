"""The one place where errors become HTTP problem details (RFC 9457, ``application/problem+json``).

Every error response of the service has the members ``type`` (a stable URI
``https://cltv.dev/problems/<slug>``), ``title``, ``status``, ``detail`` and ``instance`` (the
request path), plus ``errors`` (a list of ``{"field", "message", ...}``) when the problem is about
particular fields. Sources of errors and their mapping:

* :class:`~cltv_api.errors.CLTVError` and subclasses (raised by services): their ``type_slug``,
  ``title``, ``status``, ``errors``; their ``extra`` become extension members. A 401 also gets
  ``WWW-Authenticate: Bearer``.
* request validation (FastAPI/pydantic): 422 ``validation-error`` with one entry per field, the
  field written as a dotted path starting with where it was sent (``body.scopes.0``,
  ``query.limit``, ``path.job_id``).
* Starlette HTTP errors (unknown route 404, 405 with its ``Allow`` header, ...): the status's
  standard phrase as title and slug.
* anything else: 500 ``internal-error``; the traceback goes to the log with a reference that the
  response repeats, never to the client.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections.abc import Iterable, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cltv_api.errors import CLTVError, FieldError
from cltv_api.schemas.problem import Problem

logger = logging.getLogger("cltv_api.errors")

PROBLEM_BASE_URI = "https://cltv.dev/problems/"
PROBLEM_MEDIA_TYPE = "application/problem+json"
WWW_AUTHENTICATE = 'Bearer realm="cltv"'
STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance", "errors"})


def problem_type(slug: str) -> str:
    """The problem ``type`` URI for a slug, e.g. ``https://cltv.dev/problems/not-found``."""
    return PROBLEM_BASE_URI + slug


def problem_body(
    *,
    slug: str,
    title: str,
    status: int,
    detail: str,
    instance: str | None = None,
    errors: Iterable[FieldError] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A problem details object; ``extra`` members never replace the standard ones."""
    body: dict[str, Any] = {
        "type": problem_type(slug),
        "title": title,
        "status": int(status),
        "detail": detail,
    }
    if instance is not None:
        body["instance"] = redact_path(instance)  # a share token is a secret: never echo it
    error_list = [error.as_dict() for error in errors]
    if error_list:
        body["errors"] = error_list
    for key, value in (extra or {}).items():
        if key not in STANDARD_MEMBERS:
            body[key] = value
    return body


def problem_from_error(exc: CLTVError, instance: str | None = None) -> dict[str, Any]:
    """The problem details of a domain error (also used to store a failed job's error)."""
    return problem_body(
        slug=exc.type_slug,
        title=exc.title,
        status=exc.status,
        detail=exc.detail,
        instance=instance,
        errors=exc.errors,
        extra=exc.extra,
    )


def problem_response(
    body: dict[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    """A JSON response of media type ``application/problem+json`` with the body's status."""
    return JSONResponse(
        body, status_code=int(body["status"]), media_type=PROBLEM_MEDIA_TYPE, headers=headers
    )


def _auth_headers(status: int) -> dict[str, str]:
    return {"WWW-Authenticate": WWW_AUTHENTICATE} if status == HTTPStatus.UNAUTHORIZED else {}


def _slug(status: int) -> str:
    return HTTPStatus(status).phrase.lower().replace(" ", "-").replace("'", "")


def _field_path(location: Iterable[int | str]) -> str:
    return ".".join(str(part) for part in location)


def validation_field_errors(errors: Iterable[Mapping[str, Any]]) -> list[FieldError]:
    """Pydantic/FastAPI error entries as field errors (dotted ``field`` path, ``message``)."""
    return [
        FieldError(field=_field_path(error.get("loc", ())), message=str(error.get("msg", "")))
        for error in errors
    ]


async def _handle_domain_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CLTVError)
    body = problem_from_error(exc, instance=request.url.path)
    return problem_response(body, headers=_auth_headers(exc.status))


async def _handle_validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = validation_field_errors(exc.errors())
    count = len(errors)
    body = problem_body(
        slug="validation-error",
        title="Request validation failed",
        status=422,
        detail=f"The request has {count} invalid field{'s' if count != 1 else ''}; see errors.",
        instance=request.url.path,
        errors=errors,
    )
    return problem_response(body)


HTTP_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route accepts on this path (Starlette names only the first route's):
    the methods for which the router finds a full match."""
    allowed = [
        method
        for method in HTTP_METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] == Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed)


def _unparsable_body_detail(cause: BaseException) -> str:
    """What made FastAPI give up reading a JSON body (it says only "error parsing the body")."""
    if isinstance(cause, UnicodeDecodeError):
        return f"The JSON body is not UTF-8 text: {cause.reason} at byte {cause.start}."
    if isinstance(cause, RecursionError):
        return "The JSON body is nested too deeply to be read; no request needs that nesting."
    if isinstance(cause, ValueError) and "digits" in str(cause):
        return f"The JSON body has a number with too many digits: {cause}."
    return f"The request body could not be parsed ({type(cause).__name__})."


def _http_error_detail(request: Request, exc: StarletteHTTPException, allowed: str) -> str:
    if exc.status_code == HTTPStatus.NOT_FOUND and exc.detail == HTTPStatus.NOT_FOUND.phrase:
        return f"No resource at {request.method} {redact_path(request.url.path)}."
    if exc.status_code == HTTPStatus.METHOD_NOT_ALLOWED:
        path = redact_path(request.url.path)
        return f"{request.method} is not allowed on {path}; allowed: {allowed}."
    if exc.status_code == HTTPStatus.BAD_REQUEST and exc.__cause__ is not None:
        return _unparsable_body_detail(exc.__cause__)
    return str(exc.detail)


async def _handle_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    headers = {**(exc.headers or {}), **_auth_headers(status)}
    allowed = ""
    if status == HTTPStatus.METHOD_NOT_ALLOWED:
        allowed = _allowed_methods(request) or headers.get("Allow", "")
        headers["Allow"] = allowed
    body = problem_body(
        slug=_slug(status),
        title=HTTPStatus(status).phrase,
        status=status,
        detail=_http_error_detail(request, exc, allowed),
        instance=request.url.path,
    )
    return problem_response(body, headers=headers)


_SHARE_TOKEN_IN_PATH = re.compile(r"(/v1/share/)[^/]+")


def redact_path(path: str | None) -> str | None:
    """The request path with any share token (a secret carried in the URL) replaced."""
    return None if path is None else _SHARE_TOKEN_IN_PATH.sub(r"\1<token>", path)


def internal_error_body(instance: str | None) -> dict[str, Any]:
    """The 500 problem for an unexpected exception, logged under a fresh reference."""
    reference = secrets.token_hex(6)
    instance = redact_path(instance)
    logger.exception("unhandled error at %s (reference %s)", instance, reference)
    return problem_body(
        slug="internal-error",
        title="Internal server error",
        status=500,
        detail=f"An unexpected error occurred. Reference: {reference}.",
        instance=instance,
        extra={"reference": reference},
    )


async def _handle_unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    return problem_response(internal_error_body(request.url.path))


class UnhandledErrorMiddleware:
    """Turns an exception escaping the application into a 500 problem (no traceback leaked).

    Installed inside the CORS middleware, so error responses carry CORS headers too; Starlette's
    own last-resort handler would answer outside of it and re-raise the exception.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        response_started = False

        async def send_tracking(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking)
        except Exception:
            if response_started:
                raise
            response = problem_response(internal_error_body(scope.get("path")))
            await response(scope, receive, send)


def install_problem_handlers(app: FastAPI) -> None:
    """Register the handlers and the catch-all middleware on ``app``."""
    app.add_exception_handler(CLTVError, _handle_domain_error)
    app.add_exception_handler(RequestValidationError, _handle_validation_error)
    app.add_exception_handler(StarletteHTTPException, _handle_http_error)
    app.add_exception_handler(Exception, _handle_unexpected_error)
    app.add_middleware(UnhandledErrorMiddleware)
    _document_problem_media_type(app)


def _document_problem_media_type(app: FastAPI) -> None:
    """In the OpenAPI document, error responses are ``application/problem+json`` only (FastAPI
    would also list them under the route's ``application/json``), and every operation with a
    request body documents the 400 FastAPI answers when it cannot parse that body (not UTF-8,
    nested too deeply, a number with too many digits)."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema:
            return app.openapi_schema
        schema = build()
        bad_request = problem_responses(HTTPStatus.BAD_REQUEST)[HTTPStatus.BAD_REQUEST]
        for operations in schema.get("paths", {}).values():
            for operation in operations.values():
                if "requestBody" in operation:
                    documented = {k: v for k, v in bad_request.items() if k != "model"}
                    operation.setdefault("responses", {}).setdefault("400", documented)
                for response in operation.get("responses", {}).values():
                    content = response.get("content", {})
                    if PROBLEM_MEDIA_TYPE in content:
                        content.pop("application/json", None)
        return schema

    app.openapi = openapi  # type: ignore[method-assign]


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem details for these statuses."""
    return {
        status: {
            "model": Problem,
            "description": HTTPStatus(status).phrase,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
        for status in statuses
    }
