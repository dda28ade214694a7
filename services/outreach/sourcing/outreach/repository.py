"""Queries of the outreach service: messages and threads, leads, screening, sheet rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    Expert,
    ExpertContact,
    GoogleSheetExport,
    GoogleSheetRowMap,
    Lead,
    OutreachMessage,
    OutreachThread,
    Project,
    RankingSnapshot,
    ScreeningQuestion,
    ScreeningReminder,
    ScreeningResponse,
)
from sourcing.common.models.enums import DeliveryStatus
from sourcing.common.statemachines import LeadStatus
from sourcing.common.transitions import move

# --- messages and threads -------------------------------------------------------------------


async def message_with_thread(
    session: AsyncSession, message_id: uuid.UUID
) -> tuple[OutreachMessage, OutreachThread] | None:
    """The message and its thread, read without locks (the vendor call comes next)."""
    stmt = (
        select(OutreachMessage, OutreachThread)
        .join(OutreachThread, OutreachThread.id == OutreachMessage.thread_id)
        .where(OutreachMessage.id == message_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def count_attempt(session: AsyncSession, message_id: uuid.UUID) -> int:
    """Add one delivery attempt; returns the new count."""
    stmt = (
        update(OutreachMessage)
        .where(OutreachMessage.id == message_id)
        .values(attempts=OutreachMessage.attempts + 1)
        .returning(OutreachMessage.attempts)
    )
    return int((await session.execute(stmt)).scalar_one())


async def record_failure(
    session: AsyncSession,
    *,
    message_id: uuid.UUID,
    thread_id: uuid.UUID,
    error: str,
    final: bool,
    now: datetime,
) -> None:
    """Write the delivery error on message and thread; ``final`` also marks the message FAILED."""
    values: dict[str, object] = {"error": error[:2000]}
    if final:
        values.update(delivery_status=DeliveryStatus.FAILED.value, failed_at=now)
    await session.execute(
        update(OutreachMessage)
        .where(
            OutreachMessage.id == message_id,
            OutreachMessage.delivery_status == DeliveryStatus.QUEUED.value,
            OutreachMessage.sent_at.is_(None),
        )
        .values(**values)
    )
    await session.execute(
        update(OutreachThread)
        .where(OutreachThread.id == thread_id)
        .values(last_error=error[:2000], last_error_at=now)
    )


LEAD_REASONS = {
    LeadStatus.OUTREACH_PENDING: "outreach message queued",
    LeadStatus.CONTACTED: "outreach message sent",
}


async def mark_leads(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    from_status: LeadStatus,
    to_status: LeadStatus,
    now: datetime,
) -> int:
    """Move the expert's leads in the project from one status to the next (:func:`move`)."""
    stmt = (
        select(Lead)
        .where(
            Lead.project_id == project_id,
            Lead.expert_id == expert_id,
            Lead.status == from_status.value,
        )
        .with_for_update()
    )
    leads = (await session.execute(stmt)).scalars().all()
    for lead in leads:
        move(session, lead, to_status, actor="outreach", reason=LEAD_REASONS[to_status], now=now)
        if to_status is LeadStatus.CONTACTED:
            lead.contacted_at = now
    await session.flush()
    return len(leads)


async def find_thread(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID, channel: str
) -> OutreachThread | None:
    stmt = select(OutreachThread).where(
        OutreachThread.project_id == project_id,
        OutreachThread.expert_id == expert_id,
        OutreachThread.channel == channel,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


# --- projects and experts -------------------------------------------------------------------


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


async def list_contacts(session: AsyncSession, expert_id: uuid.UUID) -> Sequence[ExpertContact]:
    stmt = (
        select(ExpertContact)
        .where(ExpertContact.expert_id == expert_id)
        .order_by(ExpertContact.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


# --- screening ------------------------------------------------------------------------------


async def get_response(session: AsyncSession, response_id: uuid.UUID) -> ScreeningResponse | None:
    return await session.get(ScreeningResponse, response_id)


async def screening_rows(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> Sequence[tuple[ScreeningResponse, ScreeningQuestion]]:
    """The expert's screening in the project, locked, in display order."""
    stmt = (
        select(ScreeningResponse, ScreeningQuestion)
        .join(ScreeningQuestion, ScreeningQuestion.id == ScreeningResponse.question_id)
        .where(
            ScreeningResponse.project_id == project_id,
            ScreeningResponse.expert_id == expert_id,
        )
        .order_by(ScreeningQuestion.display_order, ScreeningQuestion.created_at)
        .with_for_update(of=ScreeningResponse)
        .execution_options(populate_existing=True)
    )
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def add_reminder(
    session: AsyncSession,
    *,
    response_id: uuid.UUID,
    number: int,
    channel: str | None,
    message_id: uuid.UUID,
    correlation_id: str | None,
) -> bool:
    """Record reminder ``number``; False when it already exists (a duplicate follow-up)."""
    stmt = (
        insert(ScreeningReminder)
        .values(
            id=uuid.uuid4(),
            screening_response_id=response_id,
            reminder_number=number,
            channel=channel,
            outreach_message_id=message_id,
            correlation_id=correlation_id,
        )
        .on_conflict_do_nothing(index_elements=["screening_response_id", "reminder_number"])
        .returning(ScreeningReminder.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


# --- sheets ---------------------------------------------------------------------------------


async def expert_leads(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> Sequence[Lead]:
    stmt = (
        select(Lead)
        .where(Lead.project_id == project_id, Lead.expert_id == expert_id)
        .order_by(Lead.updated_at.desc())
    )
    return (await session.execute(stmt)).scalars().all()


async def latest_ranking(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> float | None:
    stmt = (
        select(RankingSnapshot.score)
        .where(RankingSnapshot.project_id == project_id, RankingSnapshot.expert_id == expert_id)
        .order_by(RankingSnapshot.computed_at.desc())
        .limit(1)
    )
    value: float | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def screening_statuses(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> Sequence[ScreeningResponse]:
    stmt = select(ScreeningResponse).where(
        ScreeningResponse.project_id == project_id, ScreeningResponse.expert_id == expert_id
    )
    return (await session.execute(stmt)).scalars().all()


async def row_map(
    session: AsyncSession, *, project_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID
) -> GoogleSheetRowMap | None:
    stmt = select(GoogleSheetRowMap).where(
        GoogleSheetRowMap.project_id == project_id,
        GoogleSheetRowMap.entity_type == entity_type,
        GoogleSheetRowMap.entity_id == entity_id,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_export(session: AsyncSession, export: GoogleSheetExport) -> None:
    session.add(export)
    await session.flush()
