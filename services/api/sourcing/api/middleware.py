"""The gateway's edge, as one pure ASGI middleware (cheaper than a stack of them).

In order: the client's real address (forwarded headers only from trusted proxies), correlation
id (accepted or generated, echoed, in every log line), body size limit, per-client rate limit,
then access log and request metrics once the response is sent.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterable
from typing import Any

from prometheus_client import Counter, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sourcing.api.metrics import HTTP_LATENCY, HTTP_REQUESTS, RATE_LIMITED
from sourcing.api.proxies import client_address
from sourcing.api.ratelimit import SlidingWindowRateLimiter
from sourcing.common.auth import VerifiedTokens, bearer_token
from sourcing.common.config import Settings
from sourcing.common.errors import AppError, PayloadTooLarge, RateLimited
from sourcing.common.logging import correlation_id_var, new_correlation_id
from sourcing.common.web import VERIFIED_TOKEN_STATE

log = logging.getLogger("sourcing.api.access")

CORRELATION_HEADER = b"x-correlation-id"
# request.state key of the (token, Principal) pair the rate limiter already verified.
_VALID_CORRELATION_ID = re.compile(r"^[A-Za-z0-9._:\-]{1,128}$")
# Probes and scrapes are not client traffic; webhooks are verified by signature and arrive in
# bursts from a single sender, so they are not subject to the per-client API limit either.
_UNLIMITED_PREFIXES = ("/api/v1/system/", "/metrics", "/webhooks/")


def header_value(headers: Iterable[tuple[bytes, bytes]], name: bytes) -> str | None:
    """The first value of header ``name`` (lower-case bytes) in ASGI ``headers``."""
    for key, value in headers:
        if key == name:
            return str(value.decode("latin-1"))
    return None


def _header(scope: Scope, name: bytes) -> str | None:
    return header_value(scope["headers"], name)


def error_response(error: AppError, correlation_id: str) -> tuple[Message, Message]:
    body = json.dumps(error.envelope()).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (CORRELATION_HEADER, correlation_id.encode()),
        *((k.lower().encode(), v.encode()) for k, v in error.headers.items()),
    ]
    return (
        {"type": "http.response.start", "status": error.status, "headers": headers},
        {"type": "http.response.body", "body": body},
    )


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, *, settings: Settings) -> None:
        self.app = app
        self.settings = settings
        self.body_limit = settings.REQUEST_BODY_LIMIT_BYTES
        self.limiter = SlidingWindowRateLimiter(
            max_requests=settings.RATE_LIMIT_MAX_REQUESTS,
            window_seconds=settings.RATE_LIMIT_WINDOW_SECONDS,
        )
        self.trusted_proxies = settings.trusted_proxies
        self.tokens = VerifiedTokens(settings)
        # The request metrics' children by (method, route, status): prometheus_client's
        # labels() takes a lock and builds its key on every call. As bounded as the series.
        self._series: dict[tuple[str, str, str], tuple[Counter, Histogram]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        self._resolve_client(scope)
        supplied = _header(scope, CORRELATION_HEADER)
        correlation_id = (
            supplied if supplied and _VALID_CORRELATION_ID.match(supplied) else new_correlation_id()
        )
        token = correlation_id_var.set(correlation_id)
        status = 500

        async def send_with_correlation(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [h for h in message.get("headers", []) if h[0] != CORRELATION_HEADER]
                headers.append((CORRELATION_HEADER, correlation_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            rejection = self._reject(scope)
            if rejection is None:
                rejection, receive = await self._buffer_body(scope, receive)
            if rejection is not None:
                for message in error_response(rejection, correlation_id):
                    await send_with_correlation(message)
            else:
                await self.app(scope, receive, send_with_correlation)
        finally:
            self._record(scope, status, time.perf_counter() - started)
            correlation_id_var.reset(token)

    def _resolve_client(self, scope: Scope) -> None:
        """Replace the trusted proxy's address in ``scope["client"]`` with its client's."""
        peer = scope.get("client")
        if not self.trusted_proxies or not peer:
            return
        headers: dict[str, str] = {}
        for name, value in scope["headers"]:
            if name in (b"x-forwarded-for", b"forwarded"):
                # Repeated header lines are one comma-separated list, in order.
                key = name.decode()
                text = value.decode("latin-1")
                headers[key] = f"{headers[key]}, {text}" if key in headers else text
        if headers:
            real = client_address(peer[0], headers, self.trusted_proxies)
            scope["client"] = (real, peer[1] if real == peer[0] else 0)

    def _reject(self, scope: Scope) -> AppError | None:
        path: str = scope["path"]
        if path.startswith(_UNLIMITED_PREFIXES):
            return None
        retry_after = self.limiter.check(self._client_key(scope))
        if retry_after is None:
            return None
        RATE_LIMITED.inc()
        return RateLimited(
            f"rate limit of {self.limiter.max_requests} requests per "
            f"{self.settings.RATE_LIMIT_WINDOW_SECONDS} seconds exceeded",
            details={"retryAfterSeconds": retry_after},
            headers={"Retry-After": str(retry_after)},
        )

    def _client_key(self, scope: Scope) -> str:
        """A verified token's subject identifies the client; otherwise its address does."""
        token = bearer_token(_header(scope, b"authorization"))
        if token is not None:
            try:
                principal = self.tokens.principal(token)
            except AppError:
                pass
            else:
                # Authentication reuses this verification instead of decoding the token again.
                scope.setdefault("state", {})[VERIFIED_TOKEN_STATE] = (token, principal)
                return "user:" + principal.user_id
        client = scope.get("client")
        return "ip:" + (client[0] if client else "unknown")

    async def _buffer_body(self, scope: Scope, receive: Receive) -> tuple[AppError | None, Receive]:
        """Read the body up to the limit before routing, so an oversized one is a clean 413."""
        if scope["method"] in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return None, receive
        declared = _header(scope, b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.body_limit:
            return self._too_large(), receive
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.body_limit:
                return self._too_large(), receive
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        return None, replay

    def _too_large(self) -> PayloadTooLarge:
        return PayloadTooLarge(
            f"request body exceeds {self.body_limit} bytes",
            details={"limitBytes": self.body_limit},
        )

    def _record(self, scope: Scope, status: int, elapsed: float) -> None:
        route: Any = scope.get("route")
        template = getattr(route, "path", None) or "unmatched"
        method = scope["method"]
        key = (method, template, str(status))
        series = self._series.get(key)
        if series is None:
            series = (HTTP_REQUESTS.labels(*key), HTTP_LATENCY.labels(method, template))
            self._series[key] = series
        series[0].inc()
        series[1].observe(elapsed)
        if log.isEnabledFor(logging.INFO):  # the extra fields cost a dict per request
            log.info(
                "%s %s %s",
                method,
                scope["path"],
                status,
                extra={"status": status, "durationMs": round(elapsed * 1000, 2), "route": template},
            )
