"""Queries of the outreach and screening endpoints."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    Expert,
    ExpertContact,
    Lead,
    Project,
    ScreeningQuestion,
    ScreeningResponse,
)
from sourcing.common.statemachines import LeadStatus, ScreeningResponseStatus
from sourcing.common.transitions import move


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


async def list_contacts(session: AsyncSession, expert_id: uuid.UUID) -> Sequence[ExpertContact]:
    stmt = select(ExpertContact).where(ExpertContact.expert_id == expert_id)
    return (await session.execute(stmt)).scalars().all()


async def mark_leads_outreach_pending(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    now: datetime,
    actor: str,
) -> int:
    """ENRICHED → OUTREACH_PENDING for the expert's leads in the project (others untouched)."""
    stmt = (
        select(Lead)
        .where(
            Lead.project_id == project_id,
            Lead.expert_id == expert_id,
            Lead.status == LeadStatus.ENRICHED.value,
        )
        .with_for_update()
    )
    leads = (await session.execute(stmt)).scalars().all()
    for lead in leads:
        move(
            session,
            lead,
            LeadStatus.OUTREACH_PENDING,
            actor=actor,
            reason="outreach message queued",
            now=now,
        )
    await session.flush()
    return len(leads)


async def get_question(session: AsyncSession, question_id: uuid.UUID) -> ScreeningQuestion | None:
    return await session.get(ScreeningQuestion, question_id)


async def list_questions(
    session: AsyncSession, project_id: uuid.UUID
) -> Sequence[ScreeningQuestion]:
    stmt = (
        select(ScreeningQuestion)
        .where(ScreeningQuestion.project_id == project_id)
        .order_by(ScreeningQuestion.display_order, ScreeningQuestion.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


async def create_pending_responses(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    question_ids: Sequence[uuid.UUID],
    channel: str,
    now: datetime,
    correlation_id: str | None,
) -> list[uuid.UUID]:
    """A PENDING response per question the expert has none for; returns the new ids."""
    if not question_ids:
        return []
    stmt = (
        insert(ScreeningResponse)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "project_id": project_id,
                    "expert_id": expert_id,
                    "question_id": question_id,
                    "status": ScreeningResponseStatus.PENDING.value,
                    "channel": channel,
                    "dispatched_at": now,
                    "correlation_id": correlation_id,
                }
                for question_id in question_ids
            ]
        )
        .on_conflict_do_nothing(index_elements=["expert_id", "question_id"])
        .returning(ScreeningResponse.id)
    )
    return list((await session.execute(stmt)).scalars().all())


async def screening_rows(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID, lock: bool = False
) -> Sequence[tuple[ScreeningResponse, ScreeningQuestion]]:
    """The expert's responses in the project with their questions, in display order."""
    stmt = (
        select(ScreeningResponse, ScreeningQuestion)
        .join(ScreeningQuestion, ScreeningQuestion.id == ScreeningResponse.question_id)
        .where(
            ScreeningResponse.project_id == project_id,
            ScreeningResponse.expert_id == expert_id,
        )
        .order_by(ScreeningQuestion.display_order, ScreeningQuestion.created_at)
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update(of=ScreeningResponse)
    result = await session.execute(stmt)
    return [(row[0], row[1]) for row in result.all()]
