"""Dead letters and documentation end to end: real broker, real PostgreSQL, the scheduler's
agents running in a Faust app, the gateway in-process on the same database."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import DEAD_LETTER_MESSAGE_TYPE, Envelope, PerformanceRecalculate
from sourcing.common.kafka import EnvelopeProducer, TransientError
from sourcing.common.kafka.app import SourcingApp, reliable_agent, reliable_consumer
from sourcing.common.models import (
    DeadLetterJob,
    DeadLetterReplay,
    DocumentationJob,
    ProcessedEvent,
    SystemEvent,
)
from sourcing.scheduler.app import DEAD_LETTER_CONSUMER, build_app
from sourcing.scheduler.documentation import render_documents
from tests.factories_ops import dead_letter_payload, failed_envelope
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

Sessionmaker = async_sessionmaker[AsyncSession]
PERFORMANCE_CONSUMER = "tests.performance"


class Recalculation:
    """A performance handler that fails (transiently) until its cause is fixed."""

    def __init__(self) -> None:
        self.broken = True
        self.calls: Counter[str] = Counter()
        self.done: list[str] = []

    async def handle(
        self, session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        self.calls[envelope.id] += 1
        if self.broken:
            raise TransientError("performance store unavailable")
        self.done.append(envelope.id)


@pytest.fixture
def scheduler_app(
    kafka_settings: Settings, kafka_sessionmaker: Sessionmaker, tmp_path: Path
) -> Callable[..., SourcingApp]:
    def make(**options: Any) -> SourcingApp:
        return build_app(
            kafka_settings,
            run_cycles=False,
            sessionmaker=kafka_sessionmaker,
            web_enabled=False,
            relay_outbox=True,
            datadir=tmp_path / f"faust-{uuid.uuid4().hex[:6]}",
            **options,
        )

    return make


async def dead_letter_rows(sessionmaker: Sessionmaker) -> list[DeadLetterJob]:
    async with session_scope(sessionmaker) as session:
        return list((await session.scalars(select(DeadLetterJob))).all())


async def test_failed_message_lands_once_and_replay_reprocesses_it_after_the_fix(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: Sessionmaker,
    scheduler_app: Callable[..., SourcingApp],
    api_settings_factory: Callable[..., Settings],
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    recalculation = Recalculation()
    app = scheduler_app()
    reliable_agent(app, "performance", recalculation.handle, consumer_name=PERFORMANCE_CONSUMER)
    poison = failed_envelope(correlation_id="corr-poison")
    key = str(poison.payload["callerId"])
    sent = await kafka_producer.send_envelope("performance", poison, key=key)
    gateway_settings = api_settings_factory(KAFKA_TOPIC_PREFIX=kafka_settings.KAFKA_TOPIC_PREFIX)

    async with running_app(app):
        await wait_until(
            lambda: _count(kafka_sessionmaker, DeadLetterJob, 1), timeout=60, message="stored"
        )
        sink = reliable_consumer(app, DEAD_LETTER_CONSUMER)
        assert recalculation.calls[poison.id] == 5
        [row] = await dead_letter_rows(kafka_sessionmaker)
        assert row.origin_topic == kafka_settings.topic("performance")
        assert (row.origin_partition, row.origin_offset) == (sent.partition, sent.offset)
        assert row.message_key == key
        assert row.job_id == poison.id and row.message_type == poison.type
        assert row.payload == poison.model_dump(mode="json")
        assert row.error == "performance store unavailable"
        assert row.error_type is not None and row.error_type.endswith("TransientError")
        assert row.stack is not None and "Traceback" in row.stack and "TransientError" in row.stack
        assert row.attempts == 5 and row.correlation_id == "corr-poison"
        assert row.headers["x-dead-letter-consumer"] == PERFORMANCE_CONSUMER
        assert row.archived_at is None
        assert sink.progress.processed == 1

        # The cause is fixed; an admin replays the dead letter through the gateway.
        recalculation.broken = False
        async with serve_gateway(gateway_settings, kafka_sessionmaker) as client:
            response = await client.post(
                f"/api/v1/dead-letters/{row.id}/replay",
                json={"reason": "store is back"},
                headers={**auth_headers("admin", "ada"), "x-correlation-id": "corr-replay"},
            )
            assert response.status_code == 202, response.text
            body = response.json()
            assert body["envelopeId"] == poison.id
            assert body["topic"] == kafka_settings.topic("performance")
            await wait_until(
                lambda: _async_true(recalculation.done == [poison.id]),
                timeout=60,
                message="replayed message processed",
            )
            # A second replay republishes the same id: the consumer deduplicates it.
            performance = reliable_consumer(app, PERFORMANCE_CONSUMER)
            duplicates = performance.progress.duplicates
            again = await client.post(
                f"/api/v1/dead-letters/{row.id}/replay", headers=auth_headers("admin", "ada")
            )
            assert again.status_code == 202, again.text
            await wait_until(
                lambda: _async_true(performance.progress.duplicates == duplicates + 1),
                timeout=60,
                message="second replay seen as a duplicate",
            )
        assert recalculation.done == [poison.id]
        assert recalculation.calls[poison.id] == 6  # five failures, one success

    async with session_scope(kafka_sessionmaker) as session:
        replays = (await session.scalars(select(DeadLetterReplay))).all()
        events = (
            await session.scalars(select(SystemEvent).where(SystemEvent.entity_id == row.id))
        ).all()
        stored = await session.get(DeadLetterJob, row.id)
        processed = await session.scalar(
            select(func.count())
            .select_from(ProcessedEvent)
            .where(
                ProcessedEvent.consumer == PERFORMANCE_CONSUMER,
                ProcessedEvent.event_id == poison.id,
            )
        )
    assert len(replays) == 2 and {r.envelope_id for r in replays} == {poison.id}
    assert {r.requested_by for r in replays} == {"ada"}
    assert "corr-replay" in {r.correlation_id for r in replays}
    assert [e.type for e in events] == ["dead_letter.replayed"] * 2
    assert {e.actor for e in events} == {"ada"}
    assert stored is not None and stored.replay_count == 2
    assert processed == 1
    # Nothing new was dead-lettered.
    assert len(await dead_letter_rows(kafka_sessionmaker)) == 1


async def test_redelivered_dead_letter_adds_no_row(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: Sessionmaker,
    scheduler_app: Callable[..., SourcingApp],
) -> None:
    payload = dead_letter_payload(origin_topic=kafka_settings.topic("performance"), origin_offset=7)
    dead = Envelope.new(DEAD_LETTER_MESSAGE_TYPE, payload)
    # The same message twice (a redelivery), and the same failure dead-lettered again by a
    # consumer that crashed before committing its offset (new envelope id, same origin).
    resent = Envelope.new(DEAD_LETTER_MESSAGE_TYPE, payload)
    other = dead_letter_payload(origin_topic=kafka_settings.topic("performance"), origin_offset=8)
    for envelope in (dead, dead, resent, Envelope.new(DEAD_LETTER_MESSAGE_TYPE, other)):
        await kafka_producer.send_envelope("dead-letter", envelope, key="performance")
    app = scheduler_app()
    async with running_app(app):
        sink = reliable_consumer(app, DEAD_LETTER_CONSUMER)
        await wait_until(
            lambda: _async_true(sink.progress.processed >= 4), timeout=60, message="4 consumed"
        )
    rows = await dead_letter_rows(kafka_sessionmaker)
    assert sorted(row.origin_offset for row in rows) == [7, 8]
    assert sink.progress.duplicates == 1  # the redelivery, dropped by processed_events


async def test_documentation_is_generated_through_the_api_and_the_agent(
    kafka_settings: Settings,
    kafka_sessionmaker: Sessionmaker,
    scheduler_app: Callable[..., SourcingApp],
    api_settings_factory: Callable[..., Settings],
    auth_headers: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    output = tmp_path / "docs"
    gateway_settings = api_settings_factory(
        KAFKA_TOPIC_PREFIX=kafka_settings.KAFKA_TOPIC_PREFIX, DOCS_OUTPUT_DIR=str(output)
    )
    app = scheduler_app()
    async with running_app(app), serve_gateway(gateway_settings, kafka_sessionmaker) as client:
        response = await client.post(
            "/api/v1/documentation/generate", headers=auth_headers("ops", "olga")
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert body["accepted"] is True
        job_id = uuid.UUID(body["jobId"])

        async def finished() -> bool:
            async with session_scope(kafka_sessionmaker) as session:
                job = await session.get(DocumentationJob, job_id)
                return job is not None and job.status in ("SUCCEEDED", "FAILED")

        await wait_until(finished, timeout=60, message="documentation job finished")
        first = {path.name: path.read_bytes() for path in output.iterdir()}
        again = await client.post(
            "/api/v1/documentation/generate", headers=auth_headers("admin", "ada")
        )
        second_id = uuid.UUID(again.json()["jobId"])

        async def second_done() -> bool:
            async with session_scope(kafka_sessionmaker) as session:
                job = await session.get(DocumentationJob, second_id)
                return job is not None and job.status == "SUCCEEDED"

        await wait_until(second_done, timeout=60, message="second job finished")
        # The gateway serves each document from the database, not from the scheduler's disk.
        expected = render_documents(kafka_settings)
        staff = auth_headers("ops", "olga")
        for name, text in expected.items():
            served = await client.get(f"/api/v1/documentation/{name}", headers=staff)
            assert served.status_code == 200, served.text
            assert served.headers["content-type"].startswith("text/markdown")
            assert served.text == text
        for missing, status in (("nothing.md", 404), ("..%2Fsecrets", 404), ("INDEX.MD", 400)):
            refused = await client.get(f"/api/v1/documentation/{missing}", headers=staff)
            assert refused.status_code == status, refused.text
            assert refused.json()["error"]["code"] in ("not_found", "invalid_payload")

    async with session_scope(kafka_sessionmaker) as session:
        job = await session.get(DocumentationJob, job_id)
        second = await session.get(DocumentationJob, second_id)
    assert job is not None and second is not None
    assert job.status == "SUCCEEDED" and job.error is None, job.error
    assert job.requested_by == "olga" and job.output_dir == str(output)
    assert job.started_at is not None and job.finished_at is not None
    assert first == {name: text.encode() for name, text in expected.items()}
    # Regeneration: byte-identical files, same hashes recorded.
    assert {path.name: path.read_bytes() for path in output.iterdir()} == first
    assert second.files == job.files
    assert [entry["path"] for entry in job.files] == sorted(expected)


async def _async_true(value: bool) -> bool:
    return value


async def _count(sessionmaker: Sessionmaker, model: Any, at_least: int) -> bool:
    async with session_scope(sessionmaker) as session:
        count = await session.scalar(select(func.count()).select_from(model))
    return int(count or 0) >= at_least
