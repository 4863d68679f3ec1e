"""In-process rate limiting: one token bucket per caller.

The caller is the API key presented (``Authorization: Bearer`` or ``X-API-Key``), the share
token of a share pull (``/v1/share/{token}/...``), or else the client's IP address. Keys and
tokens are kept only as a hash. A bucket holds at most ``burst`` tokens and refills at ``rate``
tokens per second; each request takes one, and a request finding the bucket empty is answered
``429`` (problem details ``https://cltv.dev/problems/too-many-requests``) with ``Retry-After``
(whole seconds until a token is back). Every limited response carries the headers of the IETF
draft "RateLimit header fields for HTTP" (draft-ietf-httpapi-ratelimit-headers-07):
``RateLimit-Limit`` (the burst), ``RateLimit-Remaining`` (whole tokens left) and
``RateLimit-Reset`` (seconds until the bucket is full again), and ``RateLimit-Policy``
(``<burst>;w=<seconds to refill it>``).

Health checks and metrics (``/healthz``, ``/readyz``, ``/metrics``) and ``OPTIONS``/``HEAD``
probes are never limited. The
buckets live in this process: with several processes each has its own (the limit is per
process); behind a proxy, run uvicorn with ``--proxy-headers`` so the client IP is the caller's.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cltv_api.problems import problem_body, problem_response

EXEMPT_PATHS: Final = frozenset({"/healthz", "/readyz", "/metrics"})
EXEMPT_METHODS: Final = frozenset({"OPTIONS", "HEAD"})
"""Probes that compute nothing here (CORS preflights; spreadsheet engines such as LibreOffice
send OPTIONS and HEAD before every WEBSERVICE GET): they do not use up a caller's tokens."""
SHARE_PULL_PREFIX: Final = "/v1/share/"
MAX_BUCKETS: Final = 10_000
"""Beyond this many callers, buckets that are full again (idle callers) are forgotten."""


@dataclass
class Bucket:
    tokens: float
    updated: float


@dataclass(frozen=True)
class Decision:
    """The outcome of one request: allowed or not, and what the headers say."""

    allowed: bool
    limit: int
    remaining: int
    retry_after_seconds: int
    reset_seconds: int


class TokenBuckets:
    """Token buckets by caller key, refilled at ``rate`` per second up to ``burst``.

    Not thread-safe: used from the event loop only (where the middleware runs).
    """

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_buckets: int = MAX_BUCKETS,
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("a token bucket needs a positive rate and a burst of at least 1")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._max_buckets = max_buckets
        self._buckets: dict[str, Bucket] = {}

    def take(self, key: str) -> Decision:
        """Take one token from ``key``'s bucket if there is one."""
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            self._make_room(now)
            bucket = self._buckets[key] = Bucket(float(self.burst), now)
        else:
            bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
            bucket.updated = now
        allowed = bucket.tokens >= 1.0
        if allowed:
            bucket.tokens -= 1.0
        missing_for_one = max(0.0, 1.0 - bucket.tokens)
        return Decision(
            allowed=allowed,
            limit=self.burst,
            remaining=int(bucket.tokens),
            retry_after_seconds=max(1, math.ceil(missing_for_one / self.rate))
            if not allowed
            else 0,
            reset_seconds=math.ceil((self.burst - bucket.tokens) / self.rate),
        )

    def _make_room(self, now: float) -> None:
        """Forget callers whose bucket has refilled completely (as good as new) when there are
        too many buckets."""
        if len(self._buckets) < self._max_buckets:
            return
        full_after = self.burst / self.rate
        idle = [key for key, b in self._buckets.items() if now - b.updated >= full_after]
        for key in idle:
            del self._buckets[key]
        if len(self._buckets) >= self._max_buckets:  # all busy: drop the oldest
            oldest = min(self._buckets, key=lambda key: self._buckets[key].updated)
            del self._buckets[oldest]

    def __len__(self) -> int:
        return len(self._buckets)


def _digest(secret: str) -> str:
    return hashlib.blake2b(secret.encode("utf-8", "replace"), digest_size=16).hexdigest()


def caller_key(scope: Scope) -> str:
    """Whom a request is counted against: ``share:``, ``key:`` (hashed) or ``ip:``."""
    path: str = scope["path"]
    if path.startswith(SHARE_PULL_PREFIX):
        token = path[len(SHARE_PULL_PREFIX) :].split("/", 1)[0]
        if token:
            return "share:" + _digest(token)
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, credentials = value.decode("latin-1").partition(" ")
            if scheme.lower() == "bearer" and credentials.strip():
                return "key:" + _digest(credentials.strip())
        elif name == b"x-api-key" and value.strip():
            return "key:" + _digest(value.decode("latin-1").strip())
    client = scope.get("client")
    return "ip:" + (client[0] if client else "unknown")


def rate_limit_headers(decision: Decision, rate: float) -> list[tuple[bytes, bytes]]:
    window = math.ceil(decision.limit / rate)
    headers = [
        (b"ratelimit-limit", str(decision.limit).encode()),
        (b"ratelimit-remaining", str(decision.remaining).encode()),
        (b"ratelimit-reset", str(decision.reset_seconds).encode()),
        (b"ratelimit-policy", f"{decision.limit};w={window}".encode()),
    ]
    if not decision.allowed:
        headers.append((b"retry-after", str(decision.retry_after_seconds).encode()))
    return headers


class RateLimitMiddleware:
    """Pure ASGI middleware answering 429 to callers over their rate (see the module doc)."""

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or scope["path"] in EXEMPT_PATHS
            or scope["method"] in EXEMPT_METHODS
        ):
            await self.app(scope, receive, send)
            return
        decision = self.buckets.take(caller_key(scope))
        headers = rate_limit_headers(decision, self.buckets.rate)
        if not decision.allowed:
            await self._too_many(scope, receive, send, decision, headers)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *headers]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    async def _too_many(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        decision: Decision,
        headers: list[tuple[bytes, bytes]],
    ) -> None:
        seconds = decision.retry_after_seconds
        body = problem_body(
            slug="too-many-requests",
            title="Too Many Requests",
            status=429,
            detail=(
                f"Rate limit exceeded: at most {decision.limit} requests at once and "
                f"{self.buckets.rate:g} per second. Retry in {seconds} s."
            ),
            instance=scope["path"],  # problem_body redacts share tokens
            extra={"retry_after": seconds},
        )
        response = problem_response(body)
        response.raw_headers.extend(headers)
        await response(scope, receive, send)
