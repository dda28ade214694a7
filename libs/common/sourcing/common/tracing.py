"""OpenTelemetry tracing across the whole path, off unless ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

One trace follows a piece of work from the gateway's request, through every Kafka hop (W3C
``traceparent`` in the message headers: written with the outbox row inside the writer's span,
sent by the relay, read by the consuming agent to parent its handler's span), to the provider
calls and the database statements made on its behalf.

Zero cost when off: :func:`setup_tracing` is the only place that imports the SDK and installs
a provider; until it has, :data:`ENABLED` is false and every helper here returns at once (a
shared ``nullcontext``, an empty header list) without creating a span or touching a context.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Any, Protocol

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Link, Span, SpanKind, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from sqlalchemy import event
from sqlalchemy.engine import Engine

if TYPE_CHECKING:
    from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
    from opentelemetry.sdk.trace.export import SpanExporter

    from sourcing.common.config import Settings

logger = logging.getLogger(__name__)

ENABLED = False
"""True once :func:`setup_tracing` installed a provider; every helper checks it first."""

TRACEPARENT = "traceparent"
STATEMENT_MAX_CHARS = 2_000

NOTHING: AbstractContextManager[None] = nullcontext()
"""What every helper returns when tracing is off (reusable: it holds no state)."""
_PROPAGATOR = TraceContextTextMapPropagator()
_provider: TracerProvider | None = None
_tracer: Tracer = trace.NoOpTracer()

KafkaHeaders = Sequence[tuple[str, bytes]]


def setup_tracing(
    settings: Settings, service_name: str, *, exporter: SpanExporter | None = None
) -> bool:
    """Install this process's tracer provider when ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set (or
    an ``exporter`` is given: tests pass an in-memory one); returns whether tracing is on.

    The provider is this module's own, not OpenTelemetry's global one, so that a test can
    install and remove it. An injected exporter gets each span as it ends; the OTLP exporter
    gets them in batches, off the request path.
    """
    global ENABLED, _provider, _tracer
    endpoint = settings.OTEL_EXPORTER_OTLP_ENDPOINT
    if exporter is None and endpoint is None:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    if exporter is not None:
        processor: SpanProcessor = SimpleSpanProcessor(exporter)
    else:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        processor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=str(endpoint).rstrip("/") + "/v1/traces")
        )
    shutdown_tracing()
    provider = TracerProvider(
        resource=Resource.create({"service.name": settings.OTEL_SERVICE_NAME or service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.OTEL_TRACES_SAMPLER_RATIO)),
    )
    provider.add_span_processor(processor)
    _provider, _tracer = provider, provider.get_tracer("sourcing")
    event.listen(Engine, "before_cursor_execute", _statement_started)
    event.listen(Engine, "after_cursor_execute", _statement_finished)
    event.listen(Engine, "handle_error", _statement_failed)
    ENABLED = True
    logger.info("tracing on", extra={"endpoint": endpoint, "service": service_name})
    return True


def shutdown_tracing() -> None:
    """Flush and remove the provider (a no-op when tracing is off)."""
    global ENABLED, _provider, _tracer
    if _provider is None:
        return
    provider, _provider = _provider, None
    ENABLED, _tracer = False, trace.NoOpTracer()
    event.remove(Engine, "before_cursor_execute", _statement_started)
    event.remove(Engine, "after_cursor_execute", _statement_finished)
    event.remove(Engine, "handle_error", _statement_failed)
    provider.shutdown()


def tracer_provider() -> TracerProvider | None:
    """The installed provider (FastAPI's request spans use it), None when tracing is off."""
    return _provider


def provider_call_span(provider: str, method: str, url: str) -> AbstractContextManager[Span | None]:
    """A client span for one HTTP request to a provider, child of the current span (the URL
    without its query: a vendor may take a credential there)."""
    if not ENABLED:
        return NOTHING
    return _tracer.start_as_current_span(
        f"{provider} {method}",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": method,
            "url.full": url.split("?", 1)[0],
            "sourcing.provider": provider,
        },
    )


def trace_headers() -> list[tuple[str, bytes]]:
    """The current span's context as Kafka headers (``traceparent``); empty when off or
    outside any span."""
    if not ENABLED:
        return []
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return [(name, value.encode()) for name, value in carrier.items()]


def consumer_span(
    lane: str, headers: KafkaHeaders, *, consumer: str, message_id: str, message_type: str
) -> AbstractContextManager[Span | None]:
    """The span of a consumer handling one message, for the ``with`` block; its parent is the
    producer's context carried in ``headers`` (a new trace when they carry none)."""
    if not ENABLED:
        return NOTHING
    return _tracer.start_as_current_span(
        f"{lane} process",
        context=_extract(headers),
        kind=SpanKind.CONSUMER,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": lane,
            "messaging.consumer.group.name": consumer,
            "messaging.message.id": message_id,
            "sourcing.message.type": message_type,
        },
    )


class Carrier(Protocol):
    """A received Kafka record (its headers may carry a trace context)."""

    @property
    def headers(self) -> KafkaHeaders: ...


def batch_span(
    lane: str, messages: Sequence[Carrier], *, consumer: str
) -> AbstractContextManager[Span | None]:
    """The span of a consumer handling several messages in one call: a new trace, linked to
    each message's own trace (a span has one parent)."""
    if not ENABLED:
        return NOTHING
    links = [
        Link(context)
        for message in messages
        if (
            context := trace.get_current_span(_extract(message.headers)).get_span_context()
        ).is_valid
    ]
    return _tracer.start_as_current_span(
        f"{lane} process batch",
        context=otel_context.Context(),
        kind=SpanKind.CONSUMER,
        links=links,
        attributes={
            "messaging.system": "kafka",
            "messaging.destination.name": lane,
            "messaging.consumer.group.name": consumer,
            "messaging.batch.message_count": len(messages),
        },
    )


def _extract(headers: KafkaHeaders) -> otel_context.Context:
    carrier = {name: value.decode("latin-1") for name, value in headers if name == TRACEPARENT}
    return _PROPAGATOR.extract(carrier, context=otel_context.Context())


# --- database statements (listeners installed by setup_tracing only) -------------------------

_SPAN_ATTRIBUTE = "_sourcing_span"


def _statement_started(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    # Only inside traced work: the relay's polls and the health probes would each start a trace.
    if context is None or not trace.get_current_span().get_span_context().is_valid:
        return
    words = statement.split(None, 1)
    operation = words[0].upper() if words else "SQL"
    started = _tracer.start_span(
        f"db {operation}",
        kind=SpanKind.CLIENT,
        attributes={
            "db.system.name": "postgresql",
            "db.operation.name": operation,
            "db.query.text": statement[:STATEMENT_MAX_CHARS],
        },
    )
    setattr(context, _SPAN_ATTRIBUTE, started)


def _statement_finished(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    started: Span | None = getattr(context, _SPAN_ATTRIBUTE, None)
    if started is not None:
        started.end()


def _statement_failed(exception_context: Any) -> None:
    started: Span | None = getattr(exception_context.execution_context, _SPAN_ATTRIBUTE, None)
    if started is not None:
        started.record_exception(exception_context.original_exception)
        started.set_status(trace.StatusCode.ERROR)
        started.end()
