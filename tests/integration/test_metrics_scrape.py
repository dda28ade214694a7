"""Scrape /metrics of the gateway and of an agent service after real traffic, on the embedded
stack, and find the documented series with non-zero values (deltas for the process-wide
gateway counters; the agent's series are labelled with this test's own topics). Every metric
the alert rules and the Grafana dashboard name is among the scraped ones."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from pathlib import Path

import httpx
import pytest
from aiokafka import AIOKafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.health import HealthServer
from sourcing.common.kafka.producer import bootstrap_servers
from sourcing.common.topics import LANES_BY_NAME
from sourcing.enrichment.app import build_app as build_enrichment
from sourcing.scheduler.app import build_app as build_scheduler
from tests.deploy.support import (
    alert_expressions,
    dashboard_expressions,
    exported_names,
    promql_metric_names,
)
from tests.factories import create_call_task, create_caller
from tests.fixtures.api import ApiSettingsFactory
from tests.fixtures.kafka import running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def scrape(client: httpx.AsyncClient) -> Samples:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


async def test_gateway_metrics_after_traffic(
    api: httpx.AsyncClient,
    api_settings_factory: ApiSettingsFactory,
    serve_api: Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    health = "/api/v1/system/health"
    before = await scrape(api)
    for _ in range(3):
        assert (await api.get(health)).status_code == 200
    assert (await api.get("/api/v1/auth/me")).status_code == 401
    async with serve_api(api_settings_factory(RATE_LIMIT_MAX_REQUESTS=1)) as limited:
        await limited.get("/api/v1/auth/me")
        assert (await limited.get("/api/v1/auth/me")).status_code == 429
    after = await scrape(api)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("sourcing_http_requests_total", route=health, status="200", method="GET") == 3
    assert delta("sourcing_http_requests_total", status="401") >= 1
    assert delta("sourcing_http_requests_total", status="429") >= 1
    assert delta("sourcing_http_request_duration_seconds_count", route=health) == 3
    assert delta("sourcing_http_request_duration_seconds_sum", route=health) > 0
    assert delta("sourcing_http_rate_limited_total") >= 1


async def scrape_names(client: httpx.AsyncClient) -> set[str]:
    """The series names a /metrics answer declares (HELP/TYPE included: a labelled metric
    not yet incremented is still exported)."""
    response = await client.get("/metrics")
    assert response.status_code == 200
    return exported_names(text_string_to_metric_families(response.text))


async def test_agent_metrics_after_traffic(
    api: httpx.AsyncClient,
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    """The scheduler: a message it cannot decode on `documentation` is dead-lettered, its
    dead-letter sink stores it; the state gauges count the committed caller and the pending
    call task. Together with the gateway it exports every metric alerts and panels read."""
    async with session_scope(kafka_sessionmaker) as session:
        await create_caller(session)
        await create_call_task(session)
    app = build_scheduler(
        kafka_settings,
        run_cycles=False,
        web_enabled=False,
        relay_outbox=False,
        sessionmaker=kafka_sessionmaker,
        datadir=tmp_path / "scheduler",
    )
    documentation = kafka_settings.topic("documentation")
    dead_letter = kafka_settings.topic("dead-letter")
    server = HealthServer(app, port=0, host="127.0.0.1")
    await server.start()
    try:
        async with (
            httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client,
            running_app(app),
        ):
            producer = AIOKafkaProducer(bootstrap_servers=bootstrap_servers(kafka_settings))
            await producer.start()
            try:
                await producer.send_and_wait(documentation, b"not an envelope", key=b"k")
            finally:
                await producer.stop()

            samples: Samples = {}

            async def dead_letter_stored() -> bool:
                nonlocal samples
                samples = await scrape(client)
                return value(samples, "sourcing_messages_processed_total", topic=dead_letter) >= 1

            await wait_until(dead_letter_stored, timeout=60, message="dead letter stored")
            exported = await scrape_names(client) | await scrape_names(api)
    finally:
        await server.stop()

    def at_least_one(name: str, **labels: str) -> None:
        assert value(samples, name, **labels) >= 1, (name, labels)

    at_least_one("sourcing_messages_consumed_total", topic=documentation)
    at_least_one("sourcing_messages_dead_lettered_total", topic=documentation, reason="decode")
    at_least_one("sourcing_messages_produced_total", topic=dead_letter)
    at_least_one("sourcing_messages_consumed_total", topic=dead_letter)
    at_least_one("sourcing_messages_processed_total", topic=dead_letter)
    at_least_one("sourcing_handler_duration_seconds_count", topic=dead_letter)
    assert value(samples, "sourcing_handler_duration_seconds_sum", topic=dead_letter) > 0
    at_least_one("sourcing_dead_letters_stored_total")
    # Refreshed on the scrape: partitions assigned per topic, lag per topic (0: all done).
    for topic, lane in ((documentation, "documentation"), (dead_letter, "dead-letter")):
        partitions = value(samples, "sourcing_consumer_assigned_partitions", topic=topic)
        assert partitions == LANES_BY_NAME[lane].partitions
        assert ("sourcing_consumer_lag_messages", frozenset({("topic", topic)})) in samples
    at_least_one("sourcing_callers", status="ACTIVE")
    at_least_one("sourcing_call_tasks_pending")
    # The provider series come from the services that call providers (enrichment here).
    enrichment = build_enrichment(
        kafka_settings,
        web_enabled=False,
        sessionmaker=kafka_sessionmaker,
        datadir=tmp_path / "enrichment",
    )
    server = HealthServer(enrichment, port=0, host="127.0.0.1")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            exported |= await scrape_names(client)
    finally:
        await server.stop()
    named = promql_metric_names([*alert_expressions(), *dashboard_expressions()])
    missing = named - exported
    assert not missing, f"alerts or dashboard read metrics no running service exports: {missing}"
