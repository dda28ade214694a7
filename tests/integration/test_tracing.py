"""One Sales Nav lead is one trace: gateway request → sales-nav-ingestion → lead-ingestion →
enrichment (and its provider calls) → ranking → call-allocation, across the outbox and the
broker, with the database statements inside.

Tracing is installed through the processes' own ``setup_tracing`` with an in-memory exporter;
the gateway, the ingestion, enrichment and allocation apps, the sandbox, PostgreSQL and the
broker are the real ones (in this process).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.allocation.app import build_app as build_allocation_app
from sourcing.common import tracing
from sourcing.common.db import session_scope
from sourcing.enrichment.app import build_app as build_enrichment_app
from sourcing.ingestion.app import build_app as build_ingestion_app
from sourcing.sandbox.server import serve_sandbox
from tests.factories import create_project
from tests.factories_sourcing import sales_nav_lead
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import make_kafka_settings, read_topic, running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "tracing-sales-nav-secret"
HOPS = ("sales-nav-ingestion", "lead-ingestion", "enrichment", "ranking", "call-allocation")


@pytest.fixture
def spans(kafka_settings: Settings) -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    assert tracing.setup_tracing(kafka_settings, "tracing-test", exporter=exporter)
    try:
        yield exporter
    finally:
        tracing.shutdown_tracing()


@pytest.fixture
async def settings(infra: Any, kafka_settings: Settings) -> AsyncIterator[Settings]:
    async with serve_sandbox(slow_seconds=1.0) as sandbox_url:
        yield make_kafka_settings(
            database_url=kafka_settings.DATABASE_URL,
            bootstrap=kafka_settings.KAFKA_BROKER_URL,
            topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
            broker_kind=infra.broker_kind,
            SANDBOX_PROVIDERS=True,
            SANDBOX_URL=sandbox_url,
            ZELIQ_CALLBACK_URL=None,
            SALES_NAV_WEBHOOK_SECRET=SECRET,
            PROVIDER_TIMEOUT_SECONDS=2.0,
            ENRICHMENT_POLL_INTERVAL_SECONDS=0.0,
            ENRICHMENT_TIME_BUDGET_SECONDS=5.0,
        )


def _hop(finished: list[ReadableSpan], lane: str, upstream: ReadableSpan) -> ReadableSpan:
    """The ``lane`` handler span descending from ``upstream`` (an agent may requeue its own
    lane in between, e.g. enrichment's polling)."""
    by_id = {s.context.span_id: s for s in finished}
    for span in finished:
        if span.name != f"{lane} process":
            continue
        ancestor = span.parent
        while ancestor is not None:
            if ancestor.span_id == upstream.context.span_id:
                return span
            parent = by_id.get(ancestor.span_id)
            ancestor = parent.parent if parent is not None else None
    raise AssertionError(f"no {lane} span under {upstream.name}: {[s.name for s in finished]}")


def _children(finished: list[ReadableSpan], parent: ReadableSpan) -> list[ReadableSpan]:
    return [
        s for s in finished if s.parent is not None and s.parent.span_id == parent.context.span_id
    ]


async def test_one_lead_is_one_trace_from_the_webhook_to_call_allocation(
    spans: InMemorySpanExporter,
    settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    async with session_scope(kafka_sessionmaker) as session:
        project = await create_project(session, geography_iso_codes=["US"])
    apps = [
        build(
            settings,
            sessionmaker=kafka_sessionmaker,
            relay_outbox=True,
            web_enabled=False,
            datadir=tmp_path / name,
        )
        for name, build in (
            ("ingestion", build_ingestion_app),
            ("enrichment", build_enrichment_app),
            ("allocation", build_allocation_app),
        )
    ]
    async with (
        running_app(apps[0]),
        running_app(apps[1]),
        running_app(apps[2]),
        serve_gateway(settings) as gateway,
    ):
        response = await gateway.post(
            "/webhooks/sales-nav",
            headers={"x-sales-nav-secret": SECRET},
            json={
                "projectId": str(project.id),
                "searchUrl": "https://linkedin.com/sales/search/tracing",
                "leads": [sales_nav_lead(name="Ava Standard", countryIso="US")],
            },
        )
        assert response.status_code == 202, response.text

        async def allocated() -> bool:
            return any(s.name == "call-allocation process" for s in spans.get_finished_spans())

        await wait_until(allocated, timeout=120, interval=0.2, message="call-allocation traced")
        requests = await read_topic(settings, "call-allocation", min_count=1)

    finished = list(spans.get_finished_spans())
    (request,) = [s for s in finished if s.kind is SpanKind.SERVER]
    assert "/webhooks/sales-nav" in request.name
    assert request.parent is None
    trace_id = request.context.trace_id

    # Each agent's handler span descends from the span that published its message, across
    # the outbox and the broker, and its database statements are its children.
    hops = {}
    upstream = request
    for lane in HOPS:
        hop = _hop(finished, lane, upstream)
        assert hop.kind is SpanKind.CONSUMER
        assert hop.context.trace_id == trace_id, lane
        assert any(s.name.startswith("db ") for s in _children(finished, hop)), lane
        hops[lane] = upstream = hop
    first = hops["sales-nav-ingestion"]
    assert first.parent is not None and first.parent.span_id == request.context.span_id

    # The message on the broker carries the context of the span that wrote its outbox row.
    assert hops["call-allocation"].parent is not None
    written_by = f"00-{trace_id:032x}-{hops['call-allocation'].parent.span_id:016x}-"
    assert any(r.headers["traceparent"].decode().startswith(written_by) for r in requests)

    # The enrichment waterfall's provider calls are client spans of the enrichment handler.
    provider_calls = [
        s
        for lane_span in finished
        if lane_span.name == "enrichment process" and lane_span.context.trace_id == trace_id
        for s in _children(finished, lane_span)
        if (s.attributes or {}).get("sourcing.provider")
    ]
    assert provider_calls
    assert all(s.kind is SpanKind.CLIENT for s in provider_calls)
    assert all((s.attributes or {}).get("http.response.status_code") for s in provider_calls)
