"""Liveness, readiness (PostgreSQL and the broker really pinged), consumer lag, metrics."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from fastapi import APIRouter, Request, Response
from sqlalchemy import text

from sourcing.api.schemas import ConsumerLagResponse, PartitionLagOut, StatusResponse
from sourcing.common.errors import NotReady, ServiceUnavailable
from sourcing.common.kafka.lag import consumer_lag
from sourcing.common.kafka.producer import BrokerUnavailable
from sourcing.common.metrics import render_metrics
from sourcing.common.web import AdminPrincipal, SettingsDep, error_responses

log = logging.getLogger("sourcing.api.ready")

router = APIRouter(tags=["system"])


@router.get(
    "/api/v1/system/health",
    response_model=StatusResponse,
    summary="Liveness: the gateway process answers",
)
async def check_health() -> StatusResponse:
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


@router.get(
    "/api/v1/system/ready",
    response_model=StatusResponse,
    responses=error_responses(500),
    summary="Readiness: the database and the broker answer",
)
async def check_readiness(request: Request) -> StatusResponse:
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


@router.get(
    "/api/v1/system/consumer-lag",
    response_model=ConsumerLagResponse,
    responses=error_responses(400, 401, 403, 503),
    summary="Messages each consumer group has yet to process, per lane partition",
    description=(
        "The broker's committed offset of each of this environment's consumer groups against "
        "the partition's end offset, for every lane partition a group has committed on. "
        "Bounded by `READINESS_TIMEOUT_SECONDS`: **503** "
        "`service_unavailable` when the broker does not answer in time."
    ),
)
async def get_consumer_lag(settings: SettingsDep, _: AdminPrincipal) -> ConsumerLagResponse:
    try:
        rows = await consumer_lag(settings, timeout=settings.READINESS_TIMEOUT_SECONDS)
    except BrokerUnavailable as exc:
        log.warning("consumer lag unavailable", exc_info=exc)
        raise ServiceUnavailable(
            "the broker did not report consumer offsets in time; retry later",
            headers={"Retry-After": "5"},
        ) from exc
    partitions = [
        PartitionLagOut(
            group=row.group,
            topic=row.topic,
            partition=row.partition,
            committed_offset=row.committed_offset,
            end_offset=row.end_offset,
            lag=row.lag,
        )
        for row in rows
    ]
    return ConsumerLagResponse(partitions=partitions, total_lag=sum(row.lag for row in partitions))


@router.get("/metrics", include_in_schema=False)
async def metrics() -> Response:
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)
