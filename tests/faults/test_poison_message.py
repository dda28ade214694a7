"""A poison message in the middle of a partition: dead-lettered and stored, the partition moves
on, and once its cause is fixed an admin's replay through the API gets it processed once.

Real agents in-process on the session stack: the ingestion service's app (its
``sales-nav-ingestion`` and ``lead-ingestion`` agents and its outbox relay) and the scheduler's
(its dead-letter sink writes ``dead_letter_jobs``); the gateway in-process on the same database.
The poison is a Sales Nav delivery for a project that does not exist yet: the handler refuses
it as permanent, so it is dead-lettered at once. Creating the project fixes the cause.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.kafka import EnvelopeProducer
from sourcing.common.messages.sourcing import SalesNavLeadsReceived
from sourcing.common.models import (
    Base,
    DeadLetterJob,
    DeadLetterReplay,
    Lead,
    ProcessedEvent,
    SalesNavSearch,
)
from sourcing.common.topics import DEAD_LETTER
from sourcing.ingestion.app import SALES_NAV_CONSUMER
from sourcing.ingestion.app import build_app as build_ingestion_app
from sourcing.scheduler.app import build_app as build_scheduler_app
from tests.factories import create_project
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import read_topic, running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

Sessionmaker = async_sessionmaker[AsyncSession]
LANE = "sales-nav-ingestion"
LEADS_PER_DELIVERY = 2
TIMEOUT = 90.0


def delivery(project_id: uuid.UUID, search: str) -> Envelope:
    leads = [
        {
            "name": f"Lead{i} Standard",
            "company": f"Acme {i}",
            "title": "VP Payments",
            "linkedinUrl": f"https://www.linkedin.com/in/poison-{search}-{i}",
            "countryIso": "US",
        }
        for i in range(LEADS_PER_DELIVERY)
    ]
    payload = SalesNavLeadsReceived(
        project_id=project_id,
        search_url=f"https://linkedin.com/sales/search/{search}",
        leads=leads,
        received_at=datetime.now(UTC),
    )
    return Envelope.new(SalesNavLeadsReceived.message_type, payload)


async def count(sessionmaker: Sessionmaker, model: type[Base], *where: ColumnElement[bool]) -> int:
    async with session_scope(sessionmaker) as session:
        value = await session.scalar(select(func.count()).select_from(model).where(*where))
    return int(value or 0)


async def test_poison_is_dead_lettered_the_partition_moves_on_and_the_fixed_replay_is_processed(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: Sessionmaker,
    api_settings_factory: Callable[..., Settings],
    auth_headers: Callable[..., dict[str, str]],
    tmp_path: Path,
) -> None:
    async with session_scope(kafka_sessionmaker) as session:
        project_id = (await create_project(session)).id
    missing_project = uuid.uuid4()
    before = [delivery(project_id, "before")]
    poison = delivery(missing_project, "poison")
    after = [delivery(project_id, "after-1"), delivery(project_id, "after-2")]
    # One key: one partition, the poison between healthy deliveries.
    sent = [
        await kafka_producer.send_envelope(LANE, envelope, key="one-partition")
        for envelope in [*before, poison, *after]
    ]
    assert len({result.partition for result in sent}) == 1
    poison_offset = sent[1].offset

    ingestion = build_ingestion_app(
        kafka_settings,
        sessionmaker=kafka_sessionmaker,
        relay_outbox=True,  # relays the lead fan-out and the gateway's replay
        web_enabled=False,
        datadir=tmp_path / "faust-ingestion",
    )
    scheduler = build_scheduler_app(
        kafka_settings,
        run_cycles=False,
        sessionmaker=kafka_sessionmaker,
        relay_outbox=False,
        web_enabled=False,
        datadir=tmp_path / "faust-scheduler",
    )
    gateway_settings = api_settings_factory(KAFKA_TOPIC_PREFIX=kafka_settings.KAFKA_TOPIC_PREFIX)
    healthy_leads = LEADS_PER_DELIVERY * (len(before) + len(after))

    async with running_app(ingestion), running_app(scheduler):

        async def stored_and_moved_on() -> bool:
            return (
                await count(kafka_sessionmaker, DeadLetterJob) >= 1
                and await count(kafka_sessionmaker, Lead) >= healthy_leads
            )

        await wait_until(stored_and_moved_on, timeout=TIMEOUT, message="dead letter stored")
        [row] = await _dead_letter_rows(kafka_sessionmaker)
        assert (row.origin_topic, row.origin_partition, row.origin_offset) == (
            kafka_settings.topic(LANE),
            sent[1].partition,
            poison_offset,
        )
        assert row.job_id == poison.id and row.attempts == 1
        assert row.error_type is not None and row.error_type.endswith("PermanentError")
        assert f"project {missing_project} does not exist" in row.error
        # Every healthy delivery, including the two after the poison, was processed.
        for envelope in [*before, *after]:
            assert await _processed(kafka_sessionmaker, envelope.id) == 1
        assert await _processed(kafka_sessionmaker, poison.id) == 0
        assert await count(kafka_sessionmaker, Lead, Lead.project_id == missing_project) == 0

        # Fix the cause (the project now exists), then replay through the API.
        async with session_scope(kafka_sessionmaker) as session:
            await create_project(session, id=missing_project)
        async with serve_gateway(gateway_settings, kafka_sessionmaker) as client:
            response = await client.post(
                f"/api/v1/dead-letters/{row.id}/replay",
                json={"reason": "project created"},
                headers=auth_headers("admin", "ada"),
            )
        assert response.status_code == 202, response.text
        assert response.json()["envelopeId"] == poison.id

        async def replay_processed() -> bool:
            leads = await count(kafka_sessionmaker, Lead, Lead.project_id == missing_project)
            return leads >= LEADS_PER_DELIVERY

        await wait_until(replay_processed, timeout=TIMEOUT, message="replayed delivery processed")

    assert await _processed(kafka_sessionmaker, poison.id) == 1
    async with session_scope(kafka_sessionmaker) as session:
        searches = (
            await session.scalars(
                select(SalesNavSearch).where(SalesNavSearch.project_id == missing_project)
            )
        ).all()
        replays = (await session.scalars(select(DeadLetterReplay))).all()
    # Processed once: one search, its leads counted once, one lead per person.
    assert [search.leads_received for search in searches] == [LEADS_PER_DELIVERY]
    assert await count(kafka_sessionmaker, Lead, Lead.project_id == missing_project) == (
        LEADS_PER_DELIVERY
    )
    assert [replay.envelope_id for replay in replays] == [poison.id]
    # The replay did not fail again: still the one dead letter, on the topic and in the table.
    assert len(await _dead_letter_rows(kafka_sessionmaker)) == 1
    assert len(await read_topic(kafka_settings, DEAD_LETTER, min_count=1, settle=1.0)) == 1


async def _dead_letter_rows(sessionmaker: Sessionmaker) -> list[DeadLetterJob]:
    async with session_scope(sessionmaker) as session:
        return list((await session.scalars(select(DeadLetterJob))).all())


async def _processed(sessionmaker: Sessionmaker, event_id: str) -> int:
    return await count(
        sessionmaker,
        ProcessedEvent,
        ProcessedEvent.consumer == SALES_NAV_CONSUMER,
        ProcessedEvent.event_id == event_id,
    )
