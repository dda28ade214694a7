"""The scheduler's screening tick (``screening.follow-up-sweep.v1``) on the real stack: the
screening agent publishes one ``screening.follow-up.v1`` per screening idle long enough, none
for a fresh one, and a redelivered tick adds nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.kafka.consumer import RawMessage
from sourcing.common.kafka.producer import envelope_headers
from sourcing.common.messages.outreach import (
    ScreeningFollowUpRequested,
    ScreeningFollowUpSweepRequested,
)
from sourcing.common.models import OutboxMessage
from sourcing.outreach.app import build_app
from tests.factories import create_expert, create_project, create_screening_response
from tests.factories_outreach import create_questions
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

TICK = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


async def _screening(session: AsyncSession, *, idle: timedelta) -> uuid.UUID:
    """An expert's open two-question screening, untouched for ``idle`` before the tick; the
    id of its first question's response."""
    project = await create_project(session)
    expert = await create_expert(session)
    first, second = await create_questions(session, project=project, required=(True, True))
    ids = [
        (
            await create_screening_response(
                session,
                question=question,
                expert=expert,
                status="PENDING",
                updated_at=TICK - idle,
            )
        ).id
        for question in (second, first)
    ]
    return ids[1]


async def _follow_ups(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> list[tuple[str, uuid.UUID]]:
    async with session_scope(sessionmaker) as session:
        rows = (await session.scalars(select(OutboxMessage).order_by(OutboxMessage.seq))).all()
        return [
            (row.envelope["id"], uuid.UUID(row.envelope["payload"]["responseId"]))
            for row in rows
            if row.envelope["type"] == ScreeningFollowUpRequested.message_type
        ]


async def test_a_tick_follows_up_idle_screenings_once(
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    idle_minutes = kafka_settings.SCREENING_FOLLOW_UP_IDLE_MINUTES
    async with session_scope(kafka_sessionmaker) as session:
        idle = await _screening(session, idle=timedelta(minutes=idle_minutes + 5))
        fresh = await _screening(session, idle=timedelta(minutes=idle_minutes - 5))
    app = build_app(
        kafka_settings,
        channels={},
        sessionmaker=kafka_sessionmaker,
        web_enabled=False,
        relay_outbox=False,
        datadir=tmp_path / "faust",
    )
    tick = Envelope.of(ScreeningFollowUpSweepRequested(requested_at=TICK))
    consumer = app.runtime.consumers["screening"]

    for offset in (0, 1):  # the tick, then its redelivery
        await consumer.process_one(
            RawMessage(
                topic=kafka_settings.topic("screening"),
                partition=0,
                offset=offset,
                key=b"sweep",
                value=tick.to_bytes(),
                headers=tuple(envelope_headers(tick)),
            )
        )

    follow_ups = await _follow_ups(kafka_sessionmaker)
    assert [response_id for _, response_id in follow_ups] == [idle]
    assert fresh not in {response_id for _, response_id in follow_ups}
    # Derived from the tick: a re-run of the same tick would publish the same envelope id.
    assert follow_ups[0][0] != tick.id and uuid.UUID(follow_ups[0][0]).version == 5
