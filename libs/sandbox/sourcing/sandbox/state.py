"""Shared sandbox machinery: configuration, simulated latency, auth checks, async job store."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from fastapi import HTTPException, Request
from fastapi.responses import JSONResponse

from sourcing.sandbox.personas import Outcome

RETRY_AFTER_SECONDS = 1
# Asynchronous jobs kept for polling (RocketReach lookups, Wiza reveals); oldest dropped first.
MAX_JOBS = 10_000


@dataclass
class SandboxState:
    latency_seconds: float = 0.0
    slow_seconds: float = 30.0
    jobs: OrderedDict[str, dict[str, Any]] = field(default_factory=OrderedDict)
    # Work started after an answer (Zeliq's callbacks), kept referenced until it finishes.
    background: set[asyncio.Task[None]] = field(default_factory=set)

    def start(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self.background.add(task)
        task.add_done_callback(self.background.discard)

    def remember(self, job_id: str, job: dict[str, Any]) -> None:
        self.jobs[job_id] = job
        self.jobs.move_to_end(job_id)
        while len(self.jobs) > MAX_JOBS:
            self.jobs.popitem(last=False)


def get_state(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


async def simulate_latency(request: Request) -> None:
    """App-wide dependency: every answer takes at least `latency_seconds`."""
    latency = get_state(request).latency_seconds
    if latency > 0:
        await asyncio.sleep(latency)


class VendorError(HTTPException):
    """An error answer in the vendor's own body shape."""

    def __init__(
        self, status_code: int, body: Any, *, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(status_code=status_code, detail=body, headers=headers)
        self.body = body


async def vendor_error_response(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, VendorError)  # noqa: S101 - narrows the type: registered for VendorError only
    media_type = "application/json"
    if isinstance(exc.body, dict) and "title" in exc.body and "status" in exc.body:
        media_type = "application/problem+json"  # RFC 9457 (LeadMagic)
    return JSONResponse(
        status_code=exc.status_code, content=exc.body, headers=exc.headers, media_type=media_type
    )


def require_header(request: Request, name: str, body: Any | None = None) -> str:
    """The credential header's value; 401 in the vendor's shape when it is missing or empty."""
    value = request.headers.get(name, "").strip()
    if not value:
        raise VendorError(401, body or {"error": "Unauthorized", "message": f"missing {name}"})
    return value


def require_bearer(request: Request, body: Any | None = None) -> str:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise VendorError(401, body or {"error": "Unauthorized", "message": "missing Bearer token"})
    return token.strip()


async def apply_outcome(
    state: SandboxState, outcome: Outcome, *, rate_limited: Any, server_error: Any
) -> Outcome:
    """Raise the vendor's 429/500, or wait out a slow answer; returns what to answer with
    (a slow answer is a hit, if anyone is still waiting for it)."""
    if outcome is Outcome.RATE_LIMITED:
        raise VendorError(429, rate_limited, headers={"Retry-After": str(RETRY_AFTER_SECONDS)})
    if outcome is Outcome.ERROR:
        raise VendorError(500, server_error)
    if outcome is Outcome.SLOW:
        await asyncio.sleep(state.slow_seconds)
        return Outcome.HIT
    return outcome
