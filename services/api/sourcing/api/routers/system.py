"""Liveness, readiness (PostgreSQL and the broker really pinged), metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from sourcing.api.schemas import StatusResponse
from sourcing.common.errors import NotReady
from sourcing.common.metrics import render_metrics
from sourcing.common.web import error_responses

log = logging.getLogger("sourcing.api.ready")

router = APIRouter(tags=["system"])


@router.get("/api/v1/system/health", response_model=StatusResponse)
async def health() -> StatusResponse:
    return StatusResponse(status="ok")


async def _check(name: str, probe: Any, budget_seconds: float) -> tuple[str, str | None]:
    """Run one probe; on failure name the error's kind only (this endpoint is public)."""
    try:
        async with asyncio.timeout(budget_seconds):
            await probe()
    except Exception as exc:  # a readiness probe reports every failure, whatever its kind
        log.warning("readiness: %s unavailable", name, exc_info=exc)
        return name, type(exc).__name__
    return name, None


@router.get("/api/v1/system/ready", response_model=StatusResponse, responses=error_responses(500))
async def ready(request: Request) -> StatusResponse:
    state = request.app.state

    async def ping_database() -> None:
        async with state.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    timeout = state.settings.READINESS_TIMEOUT_SECONDS
    results = await asyncio.gather(
        _check("database", ping_database, timeout),
        _check("broker", state.broker.ping, timeout),
    )
    failures = {name: error for name, error in results if error is not None}
    if failures:
        raise NotReady(
            f"dependency unavailable: {', '.join(sorted(failures))}",
            details={name: {"status": "down", "error": err} for name, err in failures.items()},
        )
    return StatusResponse(status="ready")


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
