"""A batch is split by key into shards handled side by side, each in its own transaction.

Driven through :class:`ReliableConsumer` directly (real PostgreSQL; the broker is only needed
for dead letters): one key's messages stay in order and in one shard, shards run at the same
time (their transactions overlap), the lane's ``lock_batch`` runs first in every shard
transaction with exactly that shard's payloads, and every message is recorded once.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.kafka.consumer import Handler, RawMessage, ReliableConsumer
from sourcing.common.kafka.producer import EnvelopeProducer, envelope_headers
from sourcing.common.models import ProcessedEvent
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

KEYS = 8
PER_KEY = 5
CONSUMER = "shard-test"


def _messages(settings: Settings) -> tuple[list[RawMessage], dict[uuid.UUID, list[str]]]:
    """KEYS callers x PER_KEY messages, interleaved; and each caller's envelope ids in order."""
    callers = [uuid.uuid4() for _ in range(KEYS)]
    order: dict[uuid.UUID, list[str]] = defaultdict(list)
    messages = []
    for offset in range(KEYS * PER_KEY):
        caller = callers[offset % KEYS]
        envelope = Envelope.new(
            PerformanceRecalculate.message_type, PerformanceRecalculate(caller_id=caller)
        )
        order[caller].append(envelope.id)
        messages.append(
            RawMessage(
                topic=settings.topic("performance"),
                partition=0,
                offset=offset,
                key=str(caller).encode(),
                value=envelope.to_bytes(),
                headers=tuple(envelope_headers(envelope)),
            )
        )
    return messages, order


def _performance_consumer(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    producer: EnvelopeProducer,
    handle: Handler,
    *,
    consumer_name: str = CONSUMER,
    **options: Any,
) -> ReliableConsumer:
    """A consumer of the performance lane (``options``: ``lock_batch``, ``batch_concurrency``)."""
    return ReliableConsumer(
        consumer_name=consumer_name,
        topic=settings.topic("performance"),
        lane="performance",
        handler=handle,
        settings=settings,
        sessionmaker=sessionmaker,
        producer=producer,
        **options,
    )


async def test_shards_keep_key_order_overlap_and_lock_first(
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    kafka_producer: EnvelopeProducer,
) -> None:
    messages, expected_order = _messages(kafka_settings)
    handled: dict[uuid.UUID, list[str]] = defaultdict(list)
    session_of_caller: dict[uuid.UUID, int] = {}
    locked: dict[int, set[uuid.UUID]] = {}
    open_transactions = 0
    most_open = 0

    async def lock_batch(session: AsyncSession, payloads: Sequence[Any]) -> None:
        nonlocal open_transactions, most_open
        assert id(session) not in locked, "lock_batch runs once per shard transaction"
        locked[id(session)] = {payload.caller_id for payload in payloads}
        open_transactions += 1
        most_open = max(most_open, open_transactions)
        await asyncio.sleep(0.2)  # hold the transaction open: the other shards start meanwhile
        open_transactions -= 1

    async def handle(
        session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        assert payload.caller_id in locked[id(session)], "handled before its shard's lock"
        assert session_of_caller.setdefault(payload.caller_id, id(session)) == id(session)
        handled[payload.caller_id].append(envelope.id)

    consumer = _performance_consumer(
        kafka_settings, kafka_sessionmaker, kafka_producer, handle, lock_batch=lock_batch
    )
    await consumer.process_batch(messages)

    assert handled == expected_order  # every message once, each key in its order
    # Keys are hashed to shards: 8 random keys fill at least 2 of the 4 (all but certainly).
    assert 2 <= len(locked) <= kafka_settings.AGENT_BATCH_CONCURRENCY
    assert set().union(*locked.values()) == set(expected_order)
    assert sum(len(callers) for callers in locked.values()) == KEYS  # shards share no key
    assert most_open == len(locked)  # all shard transactions were open at the same time
    async with kafka_sessionmaker() as session:
        recorded = await session.scalar(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(ProcessedEvent.consumer == CONSUMER)
        )
    assert recorded == KEYS * PER_KEY
    assert consumer.progress.processed == KEYS * PER_KEY


@pytest.mark.parametrize("concurrency", [1, 2])
async def test_a_lanes_own_batch_concurrency_bounds_its_shards(
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    kafka_producer: EnvelopeProducer,
    concurrency: int,
) -> None:
    """``batch_concurrency`` (e.g. ``ENRICHMENT_BATCH_CONCURRENCY``) replaces
    ``AGENT_BATCH_CONCURRENCY`` for its lane: no more shard transactions than it allows."""
    assert concurrency < kafka_settings.AGENT_BATCH_CONCURRENCY
    messages, expected_order = _messages(kafka_settings)
    keys_of_session: dict[int, set[uuid.UUID]] = defaultdict(set)

    async def handle(
        session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        keys_of_session[id(session)].add(payload.caller_id)

    consumer = _performance_consumer(
        kafka_settings,
        kafka_sessionmaker,
        kafka_producer,
        handle,
        consumer_name=f"{CONSUMER}-{concurrency}",
        batch_concurrency=concurrency,
    )
    await consumer.process_batch(messages)

    assert 1 <= len(keys_of_session) <= concurrency
    assert set().union(*keys_of_session.values()) == set(expected_order)
    assert consumer.progress.processed == KEYS * PER_KEY
