"""A batch lane hands a batch over when it is full, or ``AGENT_BATCH_LINGER_MS`` after its
first message, whichever comes first (``sourcing.common.kafka.batching``).

Real broker, real Faust app: a lone message on an idle lane waits the whole linger (not the
rest of a window that began before it), and a batch that fills up goes at once, long before
the linger.
"""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.kafka import EnvelopeProducer
from sourcing.common.kafka.app import SourcingApp, reliable_agent
from tests.fixtures.kafka import AppFactory, running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

BATCH_SIZE = 5


def _recalculation() -> tuple[Envelope, str]:
    caller = uuid.uuid4()
    envelope = Envelope.new(
        PerformanceRecalculate.message_type, PerformanceRecalculate(caller_id=caller)
    )
    return envelope, str(caller)


async def _lane(
    linger_ms: float,
    kafka_settings: Settings,
    kafka_app_factory: AppFactory,
    topic_prefix: str,
) -> tuple[SourcingApp, list[float]]:
    handled: list[float] = []  # when each message was handled (monotonic)

    async def record(session: AsyncSession, envelope: Envelope, payload: object) -> None:
        handled.append(time.monotonic())

    settings = kafka_settings.model_copy(update={"AGENT_BATCH_LINGER_MS": linger_ms})
    app = kafka_app_factory("linger", settings=settings)
    reliable_agent(
        app,
        "performance",
        record,
        consumer_name=f"{topic_prefix}linger",
        batch=True,
        batch_size=BATCH_SIZE,
    )
    return app, handled


async def test_a_lone_message_waits_the_linger_from_its_own_arrival(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    topic_prefix: str,
) -> None:
    linger = 0.8
    app, handled = await _lane(linger * 1000, kafka_settings, kafka_app_factory, topic_prefix)
    async with running_app(app):
        await asyncio.sleep(1.3)  # idle longer than a linger: no window is already running
        envelope, key = _recalculation()
        sent = time.monotonic()
        await kafka_producer.send_envelope("performance", envelope, key=key)
        await wait_until(lambda: _async(bool(handled)), timeout=30)
    [at] = handled
    assert at - sent >= linger * 0.95, "handed over before the linger since its arrival"
    assert at - sent < linger + 5


async def test_a_full_batch_goes_at_once(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    topic_prefix: str,
) -> None:
    linger = 20.0
    app, handled = await _lane(linger * 1000, kafka_settings, kafka_app_factory, topic_prefix)
    async with running_app(app):
        sent = time.monotonic()
        for _ in range(BATCH_SIZE):
            envelope, _ = _recalculation()
            await kafka_producer.send_envelope("performance", envelope, key="one-partition")
        await wait_until(lambda: _async(len(handled) == BATCH_SIZE), timeout=30)
    assert max(handled) - sent < linger / 2


async def _async(value: bool) -> bool:
    return value
