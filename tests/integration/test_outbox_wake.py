"""A handler's staged message leaves at once: the commit wakes the app's outbox relay.

The relay's poll interval is set to two minutes, so only the wake-up can deliver the follow-up
message within the half minute these tests wait (the relay's first round runs at start-up,
before the source message exists). A woken relay that finds another relay at work (the lock
every relay takes) tries again soon, not at its next poll; and the agents' fetches wait at
most ``KAFKA_FETCH_MAX_WAIT_MS`` for new messages.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import CallAllocationAssignCurrent, Envelope, PerformanceRecalculate
from sourcing.common.kafka import EnvelopeProducer
from sourcing.common.kafka.app import reliable_agent
from sourcing.common.kafka.outbox import RELAY_LOCK_KEY, OutboxRelay, publish
from tests.fixtures.kafka import AppFactory, read_topic, running_app
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

POLL_INTERVAL_SECONDS = 120.0


async def test_a_commit_with_staged_messages_wakes_the_relay(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    topic_prefix: str,
) -> None:
    async def recalculate_then_allocate(
        session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        await publish(session, CallAllocationAssignCurrent(caller_id=payload.caller_id))

    settings = kafka_settings.model_copy(
        update={"OUTBOX_RELAY_INTERVAL_SECONDS": POLL_INTERVAL_SECONDS}
    )
    app = kafka_app_factory("wake", settings=settings, relay_outbox=True)
    reliable_agent(
        app, "performance", recalculate_then_allocate, consumer_name=f"{topic_prefix}wake"
    )
    caller = uuid.uuid4()
    source = Envelope.new(
        PerformanceRecalculate.message_type, PerformanceRecalculate(caller_id=caller)
    )
    async with running_app(app):
        sent = time.monotonic()
        await kafka_producer.send_envelope("performance", source, key=str(caller))
        records = await read_topic(kafka_settings, "call-allocation", min_count=1, timeout=30)
        elapsed = time.monotonic() - sent
    assert [r.envelope().payload for r in records] == [{"callerId": str(caller)}]
    assert elapsed < POLL_INTERVAL_SECONDS


async def test_a_woken_relay_finding_another_at_work_tries_again_soon(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings = kafka_settings.model_copy(
        update={"OUTBOX_RELAY_INTERVAL_SECONDS": POLL_INTERVAL_SECONDS}
    )
    relay = OutboxRelay(settings, kafka_sessionmaker, kafka_producer)
    relay.start()
    caller = uuid.uuid4()
    try:
        await asyncio.sleep(0.5)  # its first round is over: it polls again in two minutes
        async with session_scope(kafka_sessionmaker) as other_relay:
            await other_relay.execute(select(func.pg_advisory_xact_lock(RELAY_LOCK_KEY)))
            async with session_scope(kafka_sessionmaker) as session:
                envelope = await publish(session, CallAllocationAssignCurrent(caller_id=caller))
            relay.wake()
            await asyncio.sleep(0.5)  # the woken round found the lock taken
        started = time.monotonic()
        records = await read_topic(kafka_settings, "call-allocation", min_count=1, timeout=30)
        elapsed = time.monotonic() - started
    finally:
        await relay.stop()
    assert envelope.id in {record.envelope().id for record in records}
    assert elapsed < POLL_INTERVAL_SECONDS


async def test_agents_fetch_with_the_configured_wait(
    kafka_settings: Settings, kafka_app_factory: AppFactory, topic_prefix: str
) -> None:
    async def ignore(session: AsyncSession, envelope: Envelope, payload: object) -> None:
        return None

    settings = kafka_settings.model_copy(update={"KAFKA_FETCH_MAX_WAIT_MS": 37})
    app = kafka_app_factory("fetch-wait", settings=settings)
    reliable_agent(app, "performance", ignore, consumer_name=f"{topic_prefix}fetch-wait")
    async with running_app(app):
        consumer = app.consumer._thread._consumer  # type: ignore[attr-defined]
        assert consumer._fetcher._fetch_max_wait_ms == 37
