"""Auto outreach (`outreach.auto.v1`, sent by enrichment when the project wants outreach): the
recipient comes from the expert's contacts, the cooldown rule applies, the project's template is
used, the lead moves to OUTREACH_PENDING and the delivery is queued; refusals send nothing."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.messages.outreach import AutoOutreachRequested
from sourcing.common.models import (
    CooldownLog,
    Expert,
    Lead,
    OutboxMessage,
    OutreachMessage,
    OutreachThread,
    Project,
)
from sourcing.outreach.handlers import OutreachHandlers
from tests.factories import create_project, create_suppression
from tests.factories_outreach import create_enriched_lead, create_reachable_expert
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def handlers(
    database_settings: Settings, sessionmaker_rolled_back: async_sessionmaker[AsyncSession]
) -> OutreachHandlers:
    return OutreachHandlers(
        settings=database_settings,
        sessionmaker=sessionmaker_rolled_back,
        channels={},
        clock=lambda: NOW,
    )


async def _auto(
    handlers: OutreachHandlers, session: AsyncSession, project: Project, expert: Expert
) -> None:
    payload = AutoOutreachRequested(project_id=project.id, expert_id=expert.id)
    await handlers.auto(session, Envelope.new(AutoOutreachRequested.message_type, payload), payload)
    await session.flush()


async def _count(session: AsyncSession, model: type, *conditions: object) -> int:
    statement = select(func.count()).select_from(model).where(*conditions)  # type: ignore[arg-type]
    return int(await session.scalar(statement) or 0)


async def test_auto_outreach_queues_the_templated_email_and_moves_the_lead(
    handlers: OutreachHandlers, session: AsyncSession
) -> None:
    project = await create_project(
        session,
        auto_outreach_channel="email",
        auto_outreach_template="Hello {full_name}, would you join {project_name}?",
    )
    expert = await create_reachable_expert(session, email="dana@bank.example", full_name="Dana Li")
    lead = await create_enriched_lead(session, project=project, expert=expert)

    await _auto(handlers, session, project, expert)

    thread = await session.scalar(
        select(OutreachThread).where(OutreachThread.expert_id == expert.id)
    )
    assert thread is not None
    assert (thread.channel, thread.recipient) == ("email", "dana@bank.example")
    message = await session.scalar(
        select(OutreachMessage).where(OutreachMessage.thread_id == thread.id)
    )
    assert message is not None and message.delivery_status == "QUEUED"
    assert "Dana Li" in message.body and project.name in message.body
    await session.refresh(lead)
    assert lead.status == "OUTREACH_PENDING"
    queued = await _count(
        session,
        OutboxMessage,
        OutboxMessage.topic == "outreach",
        OutboxMessage.key == str(expert.id),
    )
    assert queued == 1


async def test_auto_outreach_respects_cooldown_suppression_and_missing_contacts(
    handlers: OutreachHandlers, session: AsyncSession
) -> None:
    project = await create_project(session, auto_outreach_channel="email")
    contacted = await create_reachable_expert(session, email="a@firm.example")
    await create_enriched_lead(session, project=project, expert=contacted)
    await _auto(handlers, session, project, contacted)
    handlers.clock = lambda: NOW + timedelta(days=3)
    await _auto(handlers, session, project, contacted)  # second time: inside the 30-day cooldown

    suppressed = await create_reachable_expert(session, email="b@firm.example")
    await create_suppression(session, expert=suppressed)
    await _auto(handlers, session, project, suppressed)

    unreachable = await create_reachable_expert(session, email=None)
    await _auto(handlers, session, project, unreachable)

    messages = await _count(
        session,
        OutreachMessage,
        OutreachMessage.thread_id.in_(
            select(OutreachThread.id).where(OutreachThread.project_id == project.id)
        ),
    )
    assert messages == 1
    assert await _count(session, CooldownLog, CooldownLog.expert_id == contacted.id) >= 1
    leads = (await session.scalars(select(Lead).where(Lead.project_id == project.id))).all()
    assert {lead.expert_id: lead.status for lead in leads}[contacted.id] == "OUTREACH_PENDING"


async def test_a_suppression_and_auto_outreach_do_not_interleave(
    database_settings: Settings, sessionmaker_committing: async_sessionmaker[AsyncSession]
) -> None:
    """A never-contact outcome committing while auto outreach runs: the auto outreach waits for
    it and queues nothing (it queued a message for the suppressed expert when it read the
    suppression before the outcome committed)."""
    async with session_scope(sessionmaker_committing) as session:
        project = await create_project(session, auto_outreach_channel="email")
        expert = await create_reachable_expert(session, email="kai@bank.example")
        await create_enriched_lead(session, project=project, expert=expert)
        project_id, expert_id = project.id, expert.id
    handlers = OutreachHandlers(
        settings=database_settings,
        sessionmaker=sessionmaker_committing,
        channels={},
        clock=lambda: NOW,
    )
    payload = AutoOutreachRequested(project_id=project_id, expert_id=expert_id)

    async def auto_outreach() -> None:
        async with session_scope(sessionmaker_committing) as session:
            await handlers.auto(
                session, Envelope.new(AutoOutreachRequested.message_type, payload), payload
            )

    async with session_scope(sessionmaker_committing) as suppressing:
        suppressed = await suppressing.get(Expert, expert_id)
        await create_suppression(suppressing, expert=suppressed)  # the row updated, locked
        running = asyncio.create_task(auto_outreach())
        await asyncio.sleep(0.5)
        assert not running.done()  # waiting for the suppression's transaction
    await asyncio.wait_for(running, timeout=10)

    async with session_scope(sessionmaker_committing) as session:
        assert await _count(session, OutreachMessage, OutreachMessage.expert_id == expert_id) == 0
