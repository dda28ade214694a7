"""The FastAPI gateway: REST API under /api/v1, webhooks under /webhooks, /metrics."""

from __future__ import annotations

import inspect
import logging
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from types import MappingProxyType

from fastapi import Depends, FastAPI, Request
from fastapi.telemetry import TelemetryConfig
from sqlalchemy.orm import configure_mappers
from starlette.routing import Match
from starlette.types import Receive, Scope, Send

from sourcing.allocation import endpoints as allocation
from sourcing.api.errors import register_error_handlers
from sourcing.api.idempotency import KEY_HEADER, IdempotencyMiddleware
from sourcing.api.middleware import EdgeMiddleware, header_value
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
from sourcing.common.db import PooledStatements, create_engine, create_sessionmaker
from sourcing.common.kafka.producer import BrokerUnavailable, EnvelopeProducer
from sourcing.common.web import LeanRoute, reject_unknown_query_params
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


class Gateway(FastAPI):
    """The FastAPI app, with the lean routes (the webhooks', a caller's current task, an
    operator's requeue) served straight behind the edge.

    FastAPI's per-request stack (server-error, telemetry and body-limit middlewares, exception
    middleware, exit stack, matching through every router) cost the Yay webhook about a sixth
    of its CPU, for nothing a lean route uses. While tracing is off (the request span is
    FastAPI's), a request for a lean route's path and method goes through the edge middleware
    (correlation id, body limit, access log, metrics) to the endpoint, and its errors to the
    app's exception handlers, as they would inside the stack. Everything else, 405s included,
    takes the full stack.
    """

    _lean_routes: Mapping[str, LeanRoute] = MappingProxyType({})
    _lean_templates: tuple[LeanRoute, ...] = ()

    def serve_lean_routes(self, settings: GatewaySettings) -> None:
        """Serve the lean routes of :data:`ROUTERS` behind their own edge middleware."""
        lean = [
            route for router in ROUTERS for route in router.routes if isinstance(route, LeanRoute)
        ]
        self._lean_routes = {route.path: route for route in lean if not route.param_convertors}
        self._lean_templates = tuple(route for route in lean if route.param_convertors)
        self._lean_edge = EdgeMiddleware(self._lean, settings=settings)

    def _lean_route(self, scope: Scope) -> LeanRoute | None:
        """The lean route serving this request straight behind the edge, if any: not while
        tracing, and not for a POST with an idempotency key (the full stack keeps those)."""
        if scope["type"] != "http" or tracing.ENABLED:
            return None
        route = self._lean_routes.get(scope["path"])
        if route is None:
            for template in self._lean_templates:
                match, child = template.matches(scope)
                if match is Match.FULL:
                    scope.update(child)
                    route = template
                    break
        if route is None or scope["method"] not in (route.methods or ()):
            return None
        if scope["method"] == "POST" and header_value(scope["headers"], KEY_HEADER) is not None:
            return None
        return route

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        route = self._lean_route(scope)
        if route is None:
            await super().__call__(scope, receive, send)
            return
        scope["app"] = self
        scope["route"] = route
        await self._lean_edge(scope, receive, send)

    async def _lean(self, scope: Scope, receive: Receive, send: Send) -> None:
        route: LeanRoute = scope["route"]
        request = Request(scope, receive, send)
        try:
            response = await route.respond(request)
        except Exception as exc:
            handler = next(
                self.exception_handlers[kind]
                for kind in type(exc).__mro__
                if kind in self.exception_handlers
            )
            handled = handler(request, exc)
            response = await handled if inspect.isawaitable(handled) else handled
        await response(scope, receive, send)


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
        app.state.statements = PooledStatements(engine)
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

    app = Gateway(
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
    app.serve_lean_routes(settings)
    app.openapi = openapi_builder(app)  # type: ignore[method-assign]
    return app
