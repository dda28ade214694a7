"""A PostgreSQL outage longer than the retry budget dead-letters nothing; a message's own
transient failure still does, after five attempts.

The module runs its own embedded PostgreSQL (the session's shared one is never stopped) and
stops it for ``OUTAGE_SECONDS`` while handlers are inside their transactions, on a lane
consumed one message at a time and on one consumed in batches. With the retry settings below
five attempts fit in at most 1 + 2 + 4 + 4 = 11 s of backoff, so only a consumer that waits
for the database instead of spending attempts gets through the outage without dead letters.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from sourcing.common.config import to_asyncpg_url
from sourcing.common.db import create_engine, create_sessionmaker, session_scope
from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.kafka import EnvelopeProducer
from sourcing.common.kafka.app import SourcingApp, create_app, reliable_agent
from sourcing.common.kafka.consumer import ReliableConsumer
from sourcing.common.migrate import upgrade
from sourcing.common.topics import DEAD_LETTER, lane
from sourcing.devstack.postgres import FAST_UNSAFE_SETTINGS, EmbeddedPostgres
from tests.fixtures.infra import CreateLaneTopics
from tests.fixtures.kafka import make_kafka_settings, read_topic, running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SINGLE = "performance"  # consumed one message at a time
BATCHED = "call-validation"  # consumed in batches, one transaction per batch
RECALCULATE = "performance.recalculate.v1"
OUTAGE_SECONDS = 20.0
OUTAGE_RETRY_SETTINGS: dict[str, Any] = {
    "AGENT_RETRY_BASE_SECONDS": 1.0,
    "AGENT_RETRY_MAX_SECONDS": 4.0,
    # The batch lane's first take must gather the three messages waiting before the app
    # started, even when the broker's first fetch hands over only one of them.
    "AGENT_BATCH_LINGER_MS": 1000.0,
}


SettingsFor = Callable[..., Settings]


@pytest.fixture(scope="module")
async def postgres() -> AsyncIterator[EmbeddedPostgres]:
    """This module's own PostgreSQL, migrated, with a scratch table of handler writes."""
    server = EmbeddedPostgres(server_settings=FAST_UNSAFE_SETTINGS)
    try:
        url = await server.astart()
        await asyncio.to_thread(upgrade, url)
        engine = create_async_engine(to_asyncpg_url(url))
        try:
            async with engine.begin() as connection:
                await connection.execute(
                    text("CREATE TABLE outage_rows (event_id text NOT NULL, lane text NOT NULL)")
                )
        finally:
            await engine.dispose()
        yield server
    finally:
        await server.aclose()


@pytest.fixture
async def settings_for(
    infra: Any,
    postgres: EmbeddedPostgres,
    create_lane_topics: CreateLaneTopics,
    topic_prefix: str,
) -> SettingsFor:
    """``settings_for(**overrides)``: settings on the module's database and the session's
    broker, with this test's own topics."""
    await create_lane_topics(topic_prefix, lanes=[lane(SINGLE), lane(BATCHED), lane(DEAD_LETTER)])

    def make(**overrides: Any) -> Settings:
        return make_kafka_settings(
            database_url=postgres.url,
            bootstrap=infra.bootstrap_servers,
            topic_prefix=topic_prefix,
            broker_kind=infra.broker_kind,
            **overrides,
        )

    return make


@pytest.fixture
async def sessionmaker(
    settings_for: SettingsFor,
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """The test's own view of the module's database; the scratch table starts empty."""
    engine = create_engine(settings_for())
    async with engine.begin() as connection:
        await connection.execute(text("TRUNCATE outage_rows"))
    yield create_sessionmaker(engine)
    await engine.dispose()


class HeldHandler:
    """Writes one row per message. Until ``release`` is set, a call announces itself on
    ``entered`` and waits inside its transaction, then uses its connection again."""

    def __init__(self, lane_name: str) -> None:
        self.lane = lane_name
        self.calls: Counter[str] = Counter()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()
        self.in_flight_when_held = 0
        self.consumer: ReliableConsumer | None = None

    async def handle(
        self, session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        self.calls[envelope.id] += 1
        await session.execute(
            text("INSERT INTO outage_rows (event_id, lane) VALUES (:e, :l)"),
            {"e": envelope.id, "l": self.lane},
        )
        if not self.release.is_set():
            assert self.consumer is not None
            self.in_flight_when_held = self.consumer.progress.in_flight_messages
            self.entered.set()
            await self.release.wait()
            await session.execute(text("SELECT 1"))  # the server went away meanwhile


@contextlib.asynccontextmanager
async def outage(postgres: EmbeddedPostgres) -> AsyncIterator[None]:
    """PostgreSQL stopped for the block, started again on the same port and data after it
    (also when the block fails: a worker holding messages for the database stops only once
    they are done)."""
    await postgres.astop()
    try:
        yield
    finally:
        await postgres.astart()


def recalc() -> Envelope:
    return Envelope.new(RECALCULATE, PerformanceRecalculate(caller_id=uuid.uuid4()))


async def rows_by_event(
    sessionmaker: async_sessionmaker[AsyncSession], lane_name: str
) -> Counter[str]:
    async with session_scope(sessionmaker) as session:
        result = await session.execute(
            text("SELECT event_id FROM outage_rows WHERE lane = :l"), {"l": lane_name}
        )
        return Counter(result.scalars().all())


async def processed_count(sessionmaker: async_sessionmaker[AsyncSession], consumer: str) -> int:
    async with session_scope(sessionmaker) as session:
        count = await session.scalar(
            text("SELECT count(*) FROM processed_events WHERE consumer = :c"), {"c": consumer}
        )
    return int(count or 0)


def waiting_gauge(consumer: str) -> float | None:
    return REGISTRY.get_sample_value(
        "sourcing_consumer_waiting_for_database", {"consumer": consumer}
    )


def declare(app: SourcingApp, handler: HeldHandler, name: str, *, batch: bool) -> str:
    reliable_agent(app, handler.lane, handler.handle, consumer_name=name, batch=batch)
    handler.consumer = app.runtime.consumers[name]
    return name


async def send(producer: EnvelopeProducer, lane_name: str, envelopes: Sequence[Envelope]) -> None:
    for envelope in envelopes:
        await producer.send_envelope(lane_name, envelope, key="one-partition")


async def test_outage_longer_than_the_retry_budget_holds_messages_then_processes_them_once(
    postgres: EmbeddedPostgres,
    settings_for: SettingsFor,
    sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    settings = settings_for(**OUTAGE_RETRY_SETTINGS)
    app = create_app(
        "outage", settings, web_enabled=False, relay_outbox=False, datadir=tmp_path / "faust"
    )
    single, batched = HeldHandler(SINGLE), HeldHandler(BATCHED)
    single_name = declare(app, single, f"{topic_prefix}single", batch=False)
    batched_name = declare(app, batched, f"{topic_prefix}batched", batch=True)
    single_messages = [recalc(), recalc()]  # the held one, then a later one on its partition
    batched_messages = [recalc() for _ in range(3)]
    producer = EnvelopeProducer(settings, client_id="tests")
    await producer.start()
    try:
        # Produced before the app starts: the batch lane's first batch takes all three.
        await send(producer, SINGLE, single_messages)
        await send(producer, BATCHED, batched_messages)
    finally:
        await producer.stop()

    async with running_app(app):
        async with asyncio.timeout(60):
            await single.entered.wait()
            await batched.entered.wait()
        consumers = [app.runtime.consumers[single_name], app.runtime.consumers[batched_name]]

        async def both_waiting() -> bool:
            return all(c.progress.waiting_for_database_since is not None for c in consumers)

        async with outage(postgres):
            single.release.set()
            batched.release.set()
            await wait_until(both_waiting, timeout=30, message="both consumers wait for PostgreSQL")
            await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself: longer than the retry budget
            assert [waiting_gauge(name) for name in (single_name, batched_name)] == [1.0, 1.0]
            # Holding messages through an outage is not a stuck handler (liveness stays green).
            assert not any(c.progress.stalled(OUTAGE_SECONDS / 2) for c in consumers)
            assert all(c.progress.dead_lettered == 0 for c in consumers)

        async def all_rows_written() -> bool:
            return sum((await rows_by_event(sessionmaker, SINGLE)).values()) >= 2 and (
                sum((await rows_by_event(sessionmaker, BATCHED)).values()) >= 3
            )

        await wait_until(all_rows_written, timeout=60, message="every message processed")
        assert [waiting_gauge(name) for name in (single_name, batched_name)] == [0.0, 0.0]

    assert batched.in_flight_when_held >= 2, "the batch lane must have been held as a batch"
    assert await rows_by_event(sessionmaker, SINGLE) == Counter(e.id for e in single_messages)
    assert await rows_by_event(sessionmaker, BATCHED) == Counter(e.id for e in batched_messages)
    assert await processed_count(sessionmaker, single_name) == 2
    assert await processed_count(sessionmaker, batched_name) == 3
    # One attempt failed when the server went away, the next one after it came back
    # succeeded: no attempt was spent on the outage itself.
    held = single_messages[0].id
    assert single.calls == Counter({held: 2, single_messages[1].id: 1})
    # The batch waited as a batch, then committed as one (no fallback to single messages,
    # which would have tried the held message a third time).
    assert batched.calls == Counter(
        {batched_messages[0].id: 2, batched_messages[1].id: 1, batched_messages[2].id: 1}
    )
    fallbacks = {"topic": settings.topic(BATCHED)}
    assert (REGISTRY.get_sample_value("sourcing_batch_fallbacks_total", fallbacks) or 0.0) == 0.0
    assert await read_topic(settings, DEAD_LETTER, settle=1.0) == []


async def test_a_message_failing_transiently_with_the_database_up_is_dead_lettered_after_five(
    settings_for: SettingsFor,
    sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
    tmp_path: Path,
) -> None:
    """A serialization failure raised by PostgreSQL itself and a provider's 503 are the
    message's trouble, not an outage: five attempts, then dead-letter, the partition moves on."""
    settings = settings_for()  # fast retries: five attempts in well under a second
    app = create_app(
        "flaky", settings, web_enabled=False, relay_outbox=False, datadir=tmp_path / "faust"
    )
    serialization, provider, later = recalc(), recalc(), recalc()
    calls: Counter[str] = Counter()

    async def handle(
        session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        calls[envelope.id] += 1
        if envelope.id == serialization.id:
            await session.execute(
                text("DO $$ BEGIN RAISE EXCEPTION 'conflict' USING ERRCODE = '40001'; END $$")
            )
        if envelope.id == provider.id:
            request = httpx.Request("GET", "https://provider.invalid/lookup")
            raise httpx.HTTPStatusError(
                "server error", request=request, response=httpx.Response(503, request=request)
            )
        await session.execute(
            text("INSERT INTO outage_rows (event_id, lane) VALUES (:e, :l)"),
            {"e": envelope.id, "l": SINGLE},
        )

    reliable_agent(app, SINGLE, handle, consumer_name=f"{topic_prefix}flaky")
    producer = EnvelopeProducer(settings, client_id="tests")
    await producer.start()
    try:
        await send(producer, SINGLE, [serialization, provider, later])
    finally:
        await producer.stop()

    async with running_app(app):
        records = await read_topic(settings, DEAD_LETTER, min_count=2, timeout=60)

        async def later_processed() -> bool:
            return bool((await rows_by_event(sessionmaker, SINGLE))[later.id])

        await wait_until(later_processed, timeout=60, message="the later message processed")

    bodies = {r.envelope().payload["originalEnvelope"]["id"]: r.envelope().payload for r in records}
    assert set(bodies) == {serialization.id, provider.id}
    assert [bodies[e.id]["attempts"] for e in (serialization, provider)] == [5, 5]
    assert bodies[serialization.id]["errorType"] == "sqlalchemy.exc.DBAPIError"
    assert bodies[provider.id]["errorType"] == "httpx.HTTPStatusError"
    assert calls == Counter({serialization.id: 5, provider.id: 5, later.id: 1})
    assert await rows_by_event(sessionmaker, SINGLE) == Counter({later.id: 1})
