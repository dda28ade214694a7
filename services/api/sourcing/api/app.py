"""The FastAPI gateway: REST API under /api/v1, webhooks under /webhooks, /metrics."""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import Depends, FastAPI
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.orm import configure_mappers

from sourcing.allocation import endpoints as allocation
from sourcing.api.errors import register_error_handlers
from sourcing.api.idempotency import IdempotencyMiddleware
from sourcing.api.middleware import EdgeMiddleware
from sourcing.api.openapi import openapi_builder, operation_id
from sourcing.api.routers import (
    asyncapi,
    auth,
    dead_letters,
    documentation,
    inbound,
    system,
    system_events,
    webhooks,
)
from sourcing.api.settings import GatewaySettings
from sourcing.calls import endpoints as calls
from sourcing.common import tracing
from sourcing.common.db import create_engine, create_sessionmaker
from sourcing.common.kafka.producer import BrokerUnavailable, EnvelopeProducer
from sourcing.common.web import reject_unknown_query_params
from sourcing.enrichment import endpoints as enrichment
from sourcing.ingestion import endpoints as ingestion
from sourcing.outreach import endpoints as outreach

log = logging.getLogger("sourcing.api")

# Every router of the gateway; the route-role audit reads their routes from here. Routes are
# matched in this order: the webhooks (the hottest paths) come first.
ROUTERS = (
    webhooks.router,
    inbound.router,
    system.router,
    auth.router,
    ingestion.projects_router,
    enrichment.costs_router,
    enrichment.providers_router,
    allocation.callers_router,
    ingestion.experts_router,
    allocation.experts_router,
    ingestion.job_title_discovery_router,
    allocation.call_tasks_router,
    calls.call_logs_router,
    outreach.outreach_router,
    outreach.screening_router,
    outreach.suppressions_router,
    dead_letters.router,
    documentation.router,
    system_events.router,
    asyncapi.router,
)


def telemetry() -> TelemetryConfig:
    """FastAPI's built-in OpenTelemetry hooks: only its request span (the root of the trace,
    parented by an incoming ``traceparent``), and only when this process traces.

    Metrics are Prometheus (`/metrics`); the other hooks (and the request span when tracing is
    off) would only cost a provider lookup and a span per request and dependency.
    """
    return {
        "tracing": tracing.ENABLED,
        "tracer_provider": tracing.tracer_provider(),
        "metrics": False,
        "logs": False,
        "operation_spans": False,
    }


API_TITLE = "Expert Sourcing Platform API"
API_VERSION = "1.0.0"


def create_app(settings: GatewaySettings) -> FastAPI:
    # Mapper configuration otherwise happens inside the first request that touches the ORM.
    configure_mappers()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings)
        producer = EnvelopeProducer(settings, client_id="expert-sourcing-api")
        app.state.engine = engine
        app.state.sessionmaker = create_sessionmaker(engine)
        app.state.broker = producer
        try:
            await producer.start()
        except BrokerUnavailable:
            # The broker may come up after the gateway: /ready reports it until then, and
            # the producer connects on first use.
            log.warning("broker unavailable at start-up; will connect on first use")
        try:
            yield
        finally:
            await producer.stop()
            await engine.dispose()

    app = FastAPI(
        title=API_TITLE,
        version=API_VERSION,
        description="REST API of the Expert Sourcing Platform. Errors always use the envelope "
        '`{"error": {"code", "message", "details"}}`.',
        openapi_url="/api/v1/openapi.json",
        docs_url="/api/v1/docs",
        redoc_url=None,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        dependencies=[Depends(reject_unknown_query_params)],
        telemetry=telemetry(),
    )
    app.state.settings = settings
    app.state.clock = time.time
    register_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    app.add_middleware(
        IdempotencyMiddleware,
        abandoned_after_seconds=settings.IDEMPOTENCY_ABANDONED_AFTER_SECONDS,
    )
    app.add_middleware(EdgeMiddleware, settings=settings)  # outermost: runs first
    app.openapi = openapi_builder(app)  # type: ignore[method-assign]
    return app
