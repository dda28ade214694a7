"""Idempotency keys: a POST retried with the same ``Idempotency-Key`` gets the first answer.

A client that lost the answer to ``POST /api/v1/projects`` (a timeout, a dropped connection)
sends it again with the same key and receives the same 201 and body, marked
``Idempotent-Replayed: true``, instead of creating a second project. Keys belong to the
authenticated client; the same key on a different request (method, path, query or body) is
``422 idempotency_key_reused``, and a retry while the first request still runs is
``409 idempotency_request_in_progress`` with ``Retry-After``. Answers of 500 and above are not
kept, so a retry after a failure runs again. The scheduler prunes keys after
``IDEMPOTENCY_KEY_RETENTION_HOURS``.
"""

from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from typing import Final

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from sourcing.api.middleware import error_response, header_value
from sourcing.api.repositories import idempotency as repository
from sourcing.common.auth import Principal
from sourcing.common.clock import utc_now
from sourcing.common.db import session_scope
from sourcing.common.errors import AppError, Conflict, InvalidPayload, Unprocessable
from sourcing.common.logging import correlation_id_var
from sourcing.common.web import VERIFIED_TOKEN_STATE

KEY_HEADER: Final = b"idempotency-key"
REPLAYED_HEADER: Final = b"idempotent-replayed"
_VALID_KEY: Final = re.compile(r"^[\x21-\x7e]{1,255}$")  # printable ASCII, no spaces


class IdempotencyKeyReused(Unprocessable):
    code = "idempotency_key_reused"


class IdempotencyRequestInProgress(Conflict):
    code = "idempotency_request_in_progress"


async def _read_body(receive: Receive) -> bytes:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _fingerprint(scope: Scope, body: bytes) -> str:
    digest = hashlib.sha256()
    for part in (scope["method"].encode(), scope["path"].encode(), scope["query_string"], body):
        digest.update(part)
        digest.update(b"\0")
    return digest.hexdigest()


class IdempotencyMiddleware:
    """Pure ASGI, inside the edge middleware (which has read the body and verified the token)."""

    def __init__(self, app: ASGIApp, *, abandoned_after_seconds: float) -> None:
        self.app = app
        self.abandoned_after = timedelta(seconds=abandoned_after_seconds)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        key = header_value(scope["headers"], KEY_HEADER) if scope["type"] == "http" else None
        verified = scope.get("state", {}).get(VERIFIED_TOKEN_STATE)
        if key is None or scope["method"] != "POST" or verified is None:
            await self.app(scope, receive, send)
            return
        if not _VALID_KEY.match(key):
            await self._refuse(
                send,
                InvalidPayload(
                    "Idempotency-Key must be 1-255 printable ASCII characters without spaces",
                    details={"field": "Idempotency-Key"},
                ),
            )
            return
        principal: Principal = verified[1]
        body = await _read_body(receive)
        fingerprint = _fingerprint(scope, body)
        sessionmaker: async_sessionmaker[AsyncSession] = scope["app"].state.sessionmaker
        now = utc_now()
        async with session_scope(sessionmaker) as session:
            held = await repository.claim(
                session,
                owner=principal.user_id,
                key=key,
                fingerprint=fingerprint,
                now=now,
                abandoned_before=now - self.abandoned_after,
            )
        if held is not None:
            if held.status_code is None:
                await self._refuse(
                    send,
                    IdempotencyRequestInProgress(
                        "the first request with this Idempotency-Key is still running",
                        details={"field": "Idempotency-Key"},
                        headers={"Retry-After": "1"},
                    ),
                )
            elif held.fingerprint != fingerprint:
                await self._refuse(
                    send,
                    IdempotencyKeyReused(
                        "this Idempotency-Key was used for a different request",
                        details={"field": "Idempotency-Key"},
                    ),
                )
            else:
                await self._replay(send, held.status_code, held.content_type, held.response_body)
            return
        await self._first(scope, body, send, sessionmaker, owner=principal.user_id, key=key)

    async def _first(
        self,
        scope: Scope,
        body: bytes,
        send: Send,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        owner: str,
        key: str,
    ) -> None:
        """Run the request and keep its answer (or release the key when it failed)."""
        status = 500
        content_type: str | None = None
        chunks: list[bytes] = []
        delivered = False

        async def receive_body() -> Message:
            nonlocal delivered
            if delivered:
                return {"type": "http.disconnect"}
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def capture(message: Message) -> None:
            nonlocal status, content_type
            if message["type"] == "http.response.start":
                status = message["status"]
                content_type = header_value(message.get("headers", []), b"content-type")
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, receive_body, capture)
        finally:
            async with session_scope(sessionmaker) as session:
                if status < 500:
                    await repository.complete(
                        session,
                        owner=owner,
                        key=key,
                        status_code=status,
                        content_type=content_type,
                        body=b"".join(chunks).decode("utf-8", errors="replace"),
                        now=utc_now(),
                    )
                else:
                    await repository.release(session, owner=owner, key=key)

    @staticmethod
    async def _replay(send: Send, status: int, content_type: str | None, body: str | None) -> None:
        payload = (body or "").encode()
        headers = [(b"content-length", str(len(payload)).encode()), (REPLAYED_HEADER, b"true")]
        if content_type:
            headers.append((b"content-type", content_type.encode("latin-1")))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})

    @staticmethod
    async def _refuse(send: Send, error: AppError) -> None:
        for message in error_response(error, correlation_id_var.get() or ""):
            await send(message)
