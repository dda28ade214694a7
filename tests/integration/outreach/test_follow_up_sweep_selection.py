"""Scheduler step 4 (manual §5.2) as the outreach service's screening sweep: a tick
(``screening.follow-up-sweep.v1``) yields one ``screening.follow-up.v1`` per open response
untouched for 15+ minutes, keyed by expert id, carrying the tick's correlation id. The
scenario is the one the scheduler's cycle test asserted before the step became a tick."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.messages.outreach import ScreeningFollowUpSweepRequested
from sourcing.common.models import OutboxMessage
from sourcing.outreach import service
from tests.factories import create_screening_response
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

Sessionmaker = async_sessionmaker[AsyncSession]
T0 = datetime(2031, 3, 4, 10, 0, 30, tzinfo=UTC)


async def outbox(sessionmaker: Sessionmaker, lane: str) -> list[OutboxMessage]:
    async with session_scope(sessionmaker) as session:
        query = select(OutboxMessage).where(OutboxMessage.topic == lane)
        return list((await session.scalars(query.order_by(OutboxMessage.seq))).all())


async def handle_sweep(
    session: AsyncSession,
    settings: Settings,
    envelope: Envelope,
    payload: ScreeningFollowUpSweepRequested,
) -> None:
    """What the screening agent does with the tick."""
    await service.publish_due_follow_ups(
        session,
        sweep=envelope,
        requested_at=payload.requested_at,
        idle_minutes=settings.SCREENING_FOLLOW_UP_IDLE_MINUTES,
        limit=settings.SCREENING_FOLLOW_UP_BATCH_SIZE,
    )


async def test_a_follow_up_for_each_open_response_idle_fifteen_minutes(
    database_settings: Settings, sessionmaker_committing: Sessionmaker
) -> None:
    sm = sessionmaker_committing
    now = T0
    async with session_scope(sm) as session:
        idle = await create_screening_response(session, updated_at=now - timedelta(minutes=20))
        busy = await create_screening_response(
            session, status="IN_PROGRESS", updated_at=now - timedelta(minutes=16)
        )
        await create_screening_response(session, updated_at=now - timedelta(minutes=5))
        await create_screening_response(
            session, status="COMPLETE", updated_at=now - timedelta(hours=2)
        )
    tick = ScreeningFollowUpSweepRequested(requested_at=now)
    envelope = Envelope.new(tick.message_type, tick, correlation_id="cycle-1")

    async with session_scope(sm) as session:
        await handle_sweep(session, database_settings, envelope, tick)

    # Follow-ups for the two open responses idle 15+ minutes, keyed by expert.
    screening = [
        row
        for row in await outbox(sm, "screening")
        if row.envelope["type"] == "screening.follow-up.v1"
    ]
    assert Counter(str(row.envelope["payload"]["responseId"]) for row in screening) == Counter(
        {str(idle.id): 1, str(busy.id): 1}
    )
    assert {row.key for row in screening} == {str(idle.expert_id), str(busy.expert_id)}
    assert {row.envelope["correlation_id"] for row in screening} == {"cycle-1"}
