"""A handler's staged message leaves at once: the commit wakes the app's outbox relay.

The relay's poll interval is set to two minutes, so only the wake-up can deliver the follow-up
message within the half minute this test waits (the relay's first round runs at start-up,
before the source message exists).
"""

from __future__ import annotations

import time
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import CallAllocationAssignCurrent, Envelope, PerformanceRecalculate
from sourcing.common.kafka import EnvelopeProducer
from sourcing.common.kafka.app import reliable_agent
from sourcing.common.kafka.outbox import publish
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
