"""The reliability contract of every agent, against a real broker and a real PostgreSQL.

Each test has its own topic prefix (so its own topics and consumer group) and its own ``run``
value in the scratch table below; the table is created here, not by a migration.
"""

from __future__ import annotations

import base64
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import (
    DEAD_LETTER_MESSAGE_TYPE,
    CallAllocationAssignCurrent,
    DocumentationGenerate,
    Envelope,
    PerformanceRecalculate,
)
from sourcing.common.kafka import BrokerUnavailable, EnvelopeProducer, TransientError
from sourcing.common.kafka.app import reliable_agent
from sourcing.common.kafka.outbox import OutboxRelay, add_to_outbox, publish
from sourcing.common.kafka.producer import HEADER_CORRELATION_ID, HEADER_MESSAGE_TYPE
from sourcing.common.logging import correlation_id_var
from sourcing.common.models import OutboxMessage
from tests.fixtures.kafka import (
    AppFactory,
    make_kafka_settings,
    read_topic,
    running_app,
    wait_until,
)
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

PERFORMANCE = "performance"
RECALCULATE = "performance.recalculate.v1"


@pytest.fixture
async def scratch(kafka_sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(kafka_sessionmaker) as session:
        await session.execute(
            text(
                "CREATE TABLE IF NOT EXISTS kafka_test_rows ("
                " run text NOT NULL, event_id text NOT NULL, caller_id text NOT NULL,"
                " correlation_id text, created_at timestamptz NOT NULL DEFAULT now())"
            )
        )


class Scenario:
    """A handler whose behaviour per caller id is scripted; it writes one row per success."""

    def __init__(self, run: str) -> None:
        self.run = run
        self.calls: Counter[str] = Counter()
        self.always_transient: set[str] = set()
        self.permanent: set[str] = set()
        self.fail_first: dict[str, int] = {}

    async def handle(
        self, session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        caller = str(payload.caller_id)
        self.calls[caller] += 1
        # Written before failing: a failed attempt must leave nothing behind (rollback).
        await session.execute(
            text(
                "INSERT INTO kafka_test_rows (run, event_id, caller_id, correlation_id)"
                " VALUES (:run, :event_id, :caller_id, :correlation_id)"
            ),
            {
                "run": self.run,
                "event_id": envelope.id,
                "caller_id": caller,
                "correlation_id": correlation_id_var.get(),
            },
        )
        if caller in self.always_transient:
            raise TransientError("provider answered 503")
        if caller in self.permanent:
            raise ValueError("this caller cannot be recalculated")
        if self.calls[caller] <= self.fail_first.get(caller, 0):
            raise ConnectionResetError("connection reset by peer")


async def rows(
    sessionmaker: async_sessionmaker[AsyncSession], run: str
) -> list[tuple[str, str, str | None]]:
    async with session_scope(sessionmaker) as session:
        result = await session.execute(
            text(
                "SELECT event_id, caller_id, correlation_id FROM kafka_test_rows"
                " WHERE run = :run ORDER BY created_at"
            ),
            {"run": run},
        )
        return [(r[0], r[1], r[2]) for r in result.all()]


def recalc(caller: uuid.UUID | None = None, *, correlation_id: str | None = None) -> Envelope:
    return Envelope.new(
        RECALCULATE,
        PerformanceRecalculate(caller_id=caller or uuid.uuid4()),
        correlation_id=correlation_id,
    )


def caller_of(envelope: Envelope) -> str:
    return str(envelope.payload["callerId"])


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


async def send_all(
    producer: EnvelopeProducer, envelopes: Iterable[Envelope], *, key: str | None = None
) -> None:
    for envelope in envelopes:
        await producer.send_envelope(PERFORMANCE, envelope, key=key or caller_of(envelope))


# --- consuming --------------------------------------------------------------------------------


@pytest.mark.usefixtures("scratch")
async def test_message_is_consumed_and_its_write_is_visible(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    scenario = Scenario(topic_prefix)
    app = kafka_app_factory("perf")
    reliable_agent(app, PERFORMANCE, scenario.handle, consumer_name=f"{topic_prefix}perf")
    envelope = recalc(correlation_id="corr-round-trip")

    sent = await kafka_producer.send_envelope(PERFORMANCE, envelope, key=caller_of(envelope))
    assert sent.topic == kafka_settings.topic(PERFORMANCE)
    async with running_app(app):
        await wait_until(
            lambda: _has_rows(kafka_sessionmaker, topic_prefix, 1), message="row written"
        )
        live = app.runtime.liveness()

    assert await rows(kafka_sessionmaker, topic_prefix) == [
        (envelope.id, caller_of(envelope), "corr-round-trip")
    ]
    assert live["ok"] and live["lag"] == 0
    [agent] = live["agents"]
    assert agent["processed"] == 1 and agent["lastProcessedAt"] is not None
    [record] = await read_topic(kafka_settings, PERFORMANCE, min_count=1)
    assert record.envelope() == envelope
    assert record.headers[HEADER_CORRELATION_ID] == b"corr-round-trip"
    assert record.headers[HEADER_MESSAGE_TYPE] == RECALCULATE.encode()
    assert record.key == caller_of(envelope).encode()


async def _has_rows(sessionmaker: async_sessionmaker[AsyncSession], run: str, count: int) -> bool:
    return len(await rows(sessionmaker, run)) >= count


@pytest.mark.usefixtures("scratch")
async def test_failing_handler_dead_letters_after_five_attempts_and_partition_moves_on(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    scenario = Scenario(topic_prefix)
    app = kafka_app_factory("perf")
    consumer_name = f"{topic_prefix}perf"
    reliable_agent(app, PERFORMANCE, scenario.handle, consumer_name=consumer_name)
    poison = recalc(correlation_id="corr-poison")
    scenario.always_transient.add(caller_of(poison))
    later = [recalc() for _ in range(3)]
    key = "same-partition"
    await kafka_producer.send_envelope(PERFORMANCE, poison, key=key)
    origin = await kafka_producer.send_envelope(PERFORMANCE, later[0], key=key)
    await send_all(kafka_producer, later[1:], key=key)

    async with running_app(app):
        [record] = await read_topic(kafka_settings, "dead-letter", min_count=1, timeout=60)
        await wait_until(lambda: _has_rows(kafka_sessionmaker, topic_prefix, 3))

    assert scenario.calls[caller_of(poison)] == 5
    # Later messages on the same partition were processed, the poison left no row.
    assert sorted(row[0] for row in await rows(kafka_sessionmaker, topic_prefix)) == sorted(
        envelope.id for envelope in later
    )
    dead = record.envelope()
    assert dead.type == DEAD_LETTER_MESSAGE_TYPE
    assert dead.correlation_id == "corr-poison"
    assert record.key == kafka_settings.topic(PERFORMANCE).encode()
    body = dead.payload
    assert body["originalEnvelope"] == poison.model_dump(mode="json")
    assert body["originalEnvelope"]["payload"] == {"callerId": caller_of(poison)}
    assert body["attempts"] == 5
    assert body["error"] == "provider answered 503"
    assert body["errorType"].endswith("TransientError")
    assert "Traceback" in body["stack"] and "provider answered 503" in body["stack"]
    assert body["originTopic"] == kafka_settings.topic(PERFORMANCE)
    assert body["originPartition"] == origin.partition
    assert body["originOffset"] == origin.offset - 1  # the poison was sent just before
    assert body["originKey"] == key
    assert body["consumer"] == consumer_name
    assert body["originHeaders"][HEADER_CORRELATION_ID] == "corr-poison"
    topic = kafka_settings.topic(PERFORMANCE)
    assert metric("sourcing_messages_retried_total", topic=topic) >= 4


@pytest.mark.usefixtures("scratch")
async def test_undecodable_and_invalid_messages_go_straight_to_dead_letter(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    scenario = Scenario(topic_prefix)
    app = kafka_app_factory("perf")
    reliable_agent(app, PERFORMANCE, scenario.handle, consumer_name=f"{topic_prefix}perf")
    topic = kafka_settings.topic(PERFORMANCE)
    garbage = b"\xff\xfe not json"
    invalid = Envelope(type=RECALCULATE, correlation_id="corr-invalid", payload={"callerId": 7})
    unknown = Envelope(type="nobody.handles-this.v1", correlation_id="c", payload={})
    good = recalc()
    await kafka_producer.send_raw(topic, garbage, key=b"k", headers=[("correlation-id", b"g")])
    await kafka_producer.send_raw(topic, b"", key=b"k")
    await kafka_producer.send_envelope(PERFORMANCE, invalid, key="k")
    await kafka_producer.send_envelope(PERFORMANCE, unknown, key="k")
    huge = b"\x00" * 900_000  # its dead letter (base64) would exceed the broker's message size
    await kafka_producer.send_raw(topic, huge, key=b"k")
    await kafka_producer.send_envelope(PERFORMANCE, good, key="k")

    async with running_app(app):
        records = await read_topic(kafka_settings, "dead-letter", min_count=5, timeout=60)
        await wait_until(lambda: _has_rows(kafka_sessionmaker, topic_prefix, 1))

    bodies = sorted((r.envelope().payload for r in records), key=lambda b: b["originOffset"])
    assert len(bodies) == 5
    assert all(body["attempts"] == 1 for body in bodies)
    assert scenario.calls == Counter({caller_of(good): 1})  # the handler never saw the others
    not_json, empty, schema, unregistered, too_big = bodies
    assert too_big["originalValueBase64"] is None and "original omitted" in too_big["error"]
    assert not_json["originalEnvelope"] is None
    assert base64.b64decode(not_json["originalValueBase64"]) == garbage
    assert not_json["errorType"].endswith("MessageDecodeError")
    assert not_json["correlationId"] == "g"
    assert empty["originalEnvelope"] is None and empty["errorType"].endswith("MessageDecodeError")
    assert schema["originalEnvelope"]["payload"] == {"callerId": 7}
    assert schema["errorType"].endswith("ValidationError")
    assert schema["correlationId"] == "corr-invalid"
    assert unregistered["originalType"] == "nobody.handles-this.v1"
    assert unregistered["errorType"].endswith("UnknownMessageType")


@pytest.mark.usefixtures("scratch")
async def test_transient_failure_then_success_is_processed_once(
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    kafka_settings: Settings,
    topic_prefix: str,
) -> None:
    scenario = Scenario(topic_prefix)
    app = kafka_app_factory("perf")
    reliable_agent(app, PERFORMANCE, scenario.handle, consumer_name=f"{topic_prefix}perf")
    flaky = recalc()
    scenario.fail_first[caller_of(flaky)] = 2
    await send_all(kafka_producer, [flaky])

    async with running_app(app):
        await wait_until(lambda: _has_rows(kafka_sessionmaker, topic_prefix, 1))
        follow_up = recalc()
        await send_all(kafka_producer, [follow_up])
        await wait_until(lambda: _has_rows(kafka_sessionmaker, topic_prefix, 2))

    assert scenario.calls[caller_of(flaky)] == 3
    assert [row[0] for row in await rows(kafka_sessionmaker, topic_prefix)] == [
        flaky.id,
        follow_up.id,
    ]
    assert await read_topic(kafka_settings, "dead-letter", settle=0.5) == []


@pytest.mark.usefixtures("scratch")
async def test_same_envelope_delivered_twice_is_applied_once(
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    scenario = Scenario(topic_prefix)
    consumer_name = f"{topic_prefix}perf"
    app = kafka_app_factory("perf")
    reliable_agent(app, PERFORMANCE, scenario.handle, consumer_name=consumer_name)
    twice, marker = recalc(), recalc()
    # Different keys: the copies may even land on different partitions.
    await kafka_producer.send_envelope(PERFORMANCE, twice, key="a")
    await kafka_producer.send_envelope(PERFORMANCE, twice, key="b")
    await kafka_producer.send_envelope(PERFORMANCE, marker, key="b")

    async with running_app(app):
        await wait_until(lambda: _has_rows(kafka_sessionmaker, topic_prefix, 2))
        await wait_until(lambda: _consumed(app, consumer_name, 3))

    assert sorted(row[0] for row in await rows(kafka_sessionmaker, topic_prefix)) == sorted(
        [twice.id, marker.id]
    )
    assert scenario.calls[caller_of(twice)] == 1
    async with session_scope(kafka_sessionmaker) as session:
        recorded = await session.scalar(
            text("SELECT count(*) FROM processed_events WHERE consumer = :c"),
            {"c": consumer_name},
        )
    assert recorded == 2


async def _consumed(app: Any, consumer_name: str, count: int) -> bool:
    progress = app.runtime.consumers[consumer_name].progress
    return bool(progress.processed + progress.dead_lettered >= count)


@pytest.mark.usefixtures("scratch")
async def test_real_postgres_errors_are_retried_or_dead_lettered_by_kind(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    """Serialization failure, deadlock and a timed-out statement are retried; a unique
    violation is not (straight to dead-letter). Errors come from PostgreSQL itself."""
    raise_sql = "DO $$ BEGIN RAISE EXCEPTION 'simulated' USING ERRCODE = '{code}'; END $$"
    calls: Counter[str] = Counter()
    plans = {
        "serialization": [raise_sql.format(code="40001")] * 2,
        "deadlock": [raise_sql.format(code="40P01")],
        "slow": ["SELECT pg_sleep(5)"],
        "unique": [raise_sql.format(code="23505")] * 10,
    }
    by_caller: dict[str, str] = {}

    async def handle(
        session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        name = by_caller[str(payload.caller_id)]
        calls[name] += 1
        plan = plans[name]
        if calls[name] <= len(plan):
            await session.execute(text(plan[calls[name] - 1]))
        await session.execute(
            text("INSERT INTO kafka_test_rows (run, event_id, caller_id) VALUES (:r, :e, :c)"),
            {"r": topic_prefix, "e": envelope.id, "c": name},
        )

    fast_timeout = kafka_settings.model_copy(update={"AGENT_ATTEMPT_TIMEOUT_SECONDS": 1.0})
    app = kafka_app_factory("perf", settings=fast_timeout)
    reliable_agent(app, PERFORMANCE, handle, consumer_name=f"{topic_prefix}perf")
    envelopes = {name: recalc() for name in plans}
    by_caller.update({caller_of(e): name for name, e in envelopes.items()})
    await send_all(kafka_producer, envelopes.values())

    async with running_app(app):
        [dead] = await read_topic(kafka_settings, "dead-letter", min_count=1, timeout=60)
        await wait_until(lambda: _has_rows(kafka_sessionmaker, topic_prefix, 3), timeout=60)

    assert sorted(row[1] for row in await rows(kafka_sessionmaker, topic_prefix)) == [
        "deadlock",
        "serialization",
        "slow",
    ]
    assert calls == Counter(serialization=3, deadlock=2, slow=2, unique=1)
    body = dead.envelope().payload
    assert body["originalEnvelope"]["id"] == envelopes["unique"].id
    assert body["attempts"] == 1
    assert body["errorType"] == "sqlalchemy.exc.IntegrityError"


# --- batches ------------------------------------------------------------------------------------


@pytest.mark.parametrize("set_based", [False, True], ids=["per-message", "batch-handler"])
@pytest.mark.usefixtures("scratch")
async def test_batch_with_one_poison_message_applies_the_other_49(
    set_based: bool,
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    scenario = Scenario(topic_prefix)

    async def insert_all(
        session: AsyncSession, items: Sequence[tuple[Envelope, PerformanceRecalculate]]
    ) -> None:
        """Set-based: one INSERT for the batch; any poison fails the whole statement."""
        callers = [str(payload.caller_id) for _, payload in items]
        await session.execute(
            text(
                "INSERT INTO kafka_test_rows (run, event_id, caller_id)"
                " SELECT :run, e, c FROM unnest(CAST(:ids AS text[]), CAST(:callers AS text[]))"
                " AS t(e, c)"
            ),
            {"run": topic_prefix, "ids": [env.id for env, _ in items], "callers": callers},
        )
        if scenario.permanent & set(callers):
            raise ValueError("this caller cannot be recalculated")

    app = kafka_app_factory("perf")
    reliable_agent(
        app,
        PERFORMANCE,
        scenario.handle,
        consumer_name=f"{topic_prefix}perf",
        batch=True,
        batch_handler=insert_all if set_based else None,
    )
    envelopes = [recalc() for _ in range(50)]
    poison = envelopes[17]
    scenario.permanent.add(caller_of(poison))
    await send_all(kafka_producer, envelopes, key="one-partition")  # produced before start
    topic = kafka_settings.topic(PERFORMANCE)

    async with running_app(app):
        [record] = await read_topic(kafka_settings, "dead-letter", min_count=1, timeout=60)
        await wait_until(lambda: _has_rows(kafka_sessionmaker, topic_prefix, 49))

    applied = [row[0] for row in await rows(kafka_sessionmaker, topic_prefix)]
    assert sorted(applied) == sorted(e.id for e in envelopes if e is not poison)
    body = record.envelope().payload
    assert body["originalEnvelope"]["id"] == poison.id
    assert body["errorType"] == "ValueError"
    assert body["attempts"] == 1  # a permanent error is not retried
    assert metric("sourcing_batch_fallbacks_total", topic=topic) >= 1
    assert metric("sourcing_batch_size_messages_sum", topic=topic) == 50
    assert metric("sourcing_batch_size_messages_count", topic=topic) < 50  # really batched


@pytest.mark.parametrize("batch", [True, False], ids=["batch", "single"])
@pytest.mark.usefixtures("scratch")
async def test_every_message_is_applied_or_dead_lettered(
    batch: bool,
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    """A mixed stream over every partition: nothing is skipped silently, nothing applied twice."""
    scenario = Scenario(topic_prefix)
    app = kafka_app_factory("perf")
    reliable_agent(
        app, PERFORMANCE, scenario.handle, consumer_name=f"{topic_prefix}perf", batch=batch
    )
    topic = kafka_settings.topic(PERFORMANCE)
    normal = [recalc() for _ in range(240)]
    flaky = [recalc() for _ in range(20)]
    poison = [recalc() for _ in range(8)]
    permanent = [recalc() for _ in range(8)]
    invalid = [
        Envelope(type=RECALCULATE, correlation_id="x", payload={"callerId": "nope"})
        for _ in range(6)
    ]
    garbage = [f"garbage-{i}".encode() for i in range(6)]
    duplicated = normal[:10]
    for envelope in flaky:
        scenario.fail_first[caller_of(envelope)] = 2
    scenario.always_transient.update(caller_of(e) for e in poison)
    scenario.permanent.update(caller_of(e) for e in permanent)

    half = len(normal) // 2
    await send_all(kafka_producer, [*normal[:half], *flaky[:10], *poison[:4], *permanent[:4]])
    for index, value in enumerate(garbage):
        await kafka_producer.send_raw(topic, value, key=f"g{index}")
    for envelope in invalid:
        await kafka_producer.send_envelope(PERFORMANCE, envelope, key=envelope.id)

    async with running_app(app):
        # Half the stream arrives while the agent runs, including redeliveries.
        await send_all(kafka_producer, [*normal[half:], *flaky[10:], *poison[4:], *permanent[4:]])
        await send_all(kafka_producer, duplicated)
        expected_dead = len(poison) + len(permanent) + len(invalid) + len(garbage)
        expected_rows = len(normal) + len(flaky)
        dead = await read_topic(kafka_settings, "dead-letter", min_count=expected_dead, timeout=90)
        await wait_until(
            lambda: _has_rows(kafka_sessionmaker, topic_prefix, expected_rows), timeout=60
        )

    produced = len(normal) + len(flaky) + len(poison) + len(permanent) + len(invalid)
    produced += len(garbage) + len(duplicated)
    applied = [row[0] for row in await rows(kafka_sessionmaker, topic_prefix)]
    assert len(applied) == len(set(applied)) == expected_rows
    assert set(applied) == {e.id for e in [*normal, *flaky]}
    dead_bodies = [record.envelope().payload for record in dead]
    assert len(dead_bodies) == expected_dead
    dead_ids = {b["originalEnvelope"]["id"] for b in dead_bodies if b["originalEnvelope"]}
    assert dead_ids == {e.id for e in [*poison, *permanent, *invalid]}
    raw = {
        base64.b64decode(b["originalValueBase64"]) for b in dead_bodies if b["originalValueBase64"]
    }
    assert raw == set(garbage)
    # Every produced message is accounted for: applied, a duplicate of an applied one, or dead.
    assert len(applied) + len(duplicated) + len(dead_bodies) == produced
    assert {b["attempts"] for b in dead_bodies if b["errorType"].endswith("TransientError")} == {5}
    assert all(scenario.calls[caller_of(e)] == 3 for e in flaky)


# --- outbox -------------------------------------------------------------------------------------


class Rollback(Exception):
    pass


async def _relay_all(relay: OutboxRelay) -> int:
    total = 0
    while published := await relay.relay_once():
        total += published
    return total


async def _outbox_row(
    sessionmaker: async_sessionmaker[AsyncSession], envelope_id: str
) -> Any | None:
    async with session_scope(sessionmaker) as session:
        result = await session.execute(
            text(
                "SELECT published_at, attempts, last_error FROM outbox WHERE envelope->>'id' = :id"
            ),
            {"id": envelope_id},
        )
        return result.first()


async def test_outbox_publishes_committed_rows_once_and_never_rolled_back_ones(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    rolled_back = Envelope.new(
        "documentation.generate.v1", DocumentationGenerate(job_id=uuid.uuid4())
    )
    committed = Envelope.new(
        "documentation.generate.v1", DocumentationGenerate(job_id=uuid.uuid4())
    )
    with pytest.raises(Rollback):
        async with session_scope(kafka_sessionmaker) as session:
            await add_to_outbox(session, "documentation", rolled_back, key="job-1")
            raise Rollback
    async with session_scope(kafka_sessionmaker) as session:
        await add_to_outbox(session, "documentation", committed, key="job-2")

    relay = OutboxRelay(kafka_settings, kafka_sessionmaker, kafka_producer)
    assert await _relay_all(relay) >= 1
    assert await _relay_all(relay) == 0  # published rows are not sent again

    records = await read_topic(kafka_settings, "documentation", min_count=1, settle=1.0)
    ids = Counter(record.envelope().id for record in records)
    assert ids[committed.id] == 1
    assert ids[rolled_back.id] == 0
    [record] = [r for r in records if r.envelope().id == committed.id]
    assert record.envelope() == committed
    assert record.key == b"job-2"
    assert record.headers[HEADER_CORRELATION_ID] == committed.correlation_id.encode()
    row = await _outbox_row(kafka_sessionmaker, committed.id)
    assert row is not None and row.published_at is not None
    assert await _outbox_row(kafka_sessionmaker, rolled_back.id) is None


async def test_outbox_publish_failure_keeps_rows_for_the_next_round(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    unused_tcp_port: int,
) -> None:
    envelope = Envelope.new("documentation.generate.v1", DocumentationGenerate(job_id=uuid.uuid4()))
    async with session_scope(kafka_sessionmaker) as session:
        await add_to_outbox(session, "documentation", envelope, key="job")
    unreachable = make_kafka_settings(
        database_url=kafka_settings.DATABASE_URL,
        bootstrap=f"127.0.0.1:{unused_tcp_port}",
        topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
        broker_kind="tansu",
        BROKER_SEND_TIMEOUT_SECONDS=1.0,
    )
    down = EnvelopeProducer(unreachable)
    try:
        with pytest.raises(BrokerUnavailable):
            await OutboxRelay(unreachable, kafka_sessionmaker, down).relay_once()
    finally:
        await down.stop()
    row = await _outbox_row(kafka_sessionmaker, envelope.id)
    assert row is not None and row.published_at is None
    assert row.attempts == 1 and row.last_error

    await _relay_all(OutboxRelay(kafka_settings, kafka_sessionmaker, kafka_producer))
    records = await read_topic(kafka_settings, "documentation", min_count=1, settle=0.5)
    assert [r.envelope().id for r in records].count(envelope.id) == 1
    row = await _outbox_row(kafka_sessionmaker, envelope.id)
    assert row is not None and row.published_at is not None


async def test_outbox_prunes_published_rows_after_retention(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    envelope = Envelope.new("documentation.generate.v1", DocumentationGenerate(job_id=uuid.uuid4()))
    async with session_scope(kafka_sessionmaker) as session:
        await add_to_outbox(session, "documentation", envelope)
    keep = OutboxRelay(kafka_settings, kafka_sessionmaker, kafka_producer, retention=3600)
    await _relay_all(keep)
    await keep.prune_once()
    assert await _outbox_row(kafka_sessionmaker, envelope.id) is not None
    assert (
        await OutboxRelay(
            kafka_settings, kafka_sessionmaker, kafka_producer, retention=0
        ).prune_once()
        >= 1
    )
    assert await _outbox_row(kafka_sessionmaker, envelope.id) is None


@pytest.mark.usefixtures("scratch")
async def test_handler_messages_go_through_the_outbox_relay_of_the_app(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
) -> None:
    """A handler's outgoing message is committed with its writes and relayed by the app."""

    async def recalculate_then_allocate(
        session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        await publish(session, CallAllocationAssignCurrent(caller_id=payload.caller_id))

    app = kafka_app_factory("perf", relay_outbox=True)
    reliable_agent(app, PERFORMANCE, recalculate_then_allocate, consumer_name=f"{topic_prefix}perf")
    source = recalc(correlation_id="corr-chain")
    await send_all(kafka_producer, [source])
    async with running_app(app):
        records = await read_topic(kafka_settings, "call-allocation", min_count=1, timeout=60)

    ours = [r for r in records if r.envelope().correlation_id == "corr-chain"]
    assert len(ours) == 1
    follow = ours[0].envelope()
    assert follow.type == "call-allocation.assign-current.v1"
    assert follow.payload == {"callerId": caller_of(source)}
    assert ours[0].key == caller_of(source).encode()
    row = await _outbox_row(kafka_sessionmaker, follow.id)
    assert row is not None and row.published_at is not None


def test_outbox_model_matches_the_relay() -> None:
    assert {"seq", "topic", "key", "envelope", "headers", "published_at"} <= set(
        OutboxMessage.__table__.columns.keys()
    )
