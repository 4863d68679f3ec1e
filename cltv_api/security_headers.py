"""Security headers on every response (pure ASGI middleware).

* every response: ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: no-referrer``;
* HTML responses: ``X-Frame-Options: DENY``, and ``Content-Security-Policy: frame-ancestors
  'none'`` unless the page sets its own policy (the calculator page's strict one, see
  :mod:`cltv_api.routes.calculator`, is kept as it is);
* API responses: ``Cache-Control: no-store`` unless the endpoint set its own ``Cache-Control``
  (share pulls and the page do); static files (``/static/...``) keep their validators
  (``ETag``, ``Last-Modified``) and get no ``Cache-Control``.

A header the application already set is never replaced.
"""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

STATIC_PREFIX: Final = "/static/"
RawHeaders = list[tuple[bytes, bytes]]
ALWAYS: Final = ((b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"no-referrer"))
HTML: Final = (
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"frame-ancestors 'none'"),
)
NO_STORE: Final = ((b"cache-control", b"no-store"),)


def with_security_headers(raw: RawHeaders, cacheable: bool) -> RawHeaders:
    """``raw`` (ASGI response headers) plus every header of the module doc it lacks."""
    present: set[bytes] = set()
    content_type = b""
    for name, value in raw:
        lowered = name.lower()
        present.add(lowered)
        if lowered == b"content-type":
            content_type = value
    wanted: tuple[tuple[bytes, bytes], ...] = ALWAYS
    if content_type.startswith(b"text/html"):
        wanted += HTML
    if not cacheable:
        wanted += NO_STORE
    return [*raw, *(header for header in wanted if header[0] not in present)]


class SecurityHeadersMiddleware:
    """Adds the headers listed in the module doc to every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        cacheable = scope["path"].startswith(STATIC_PREFIX)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = with_security_headers(
                    list(message.get("headers", ())), cacheable
                )
            await send(message)

        await self.app(scope, receive, send_with_headers)
