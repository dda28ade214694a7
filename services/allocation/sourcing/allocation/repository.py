"""Every query of the allocation service's call-task creation."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    CallTask,
    Expert,
    ExpertContact,
    ExpertSuppression,
    Lead,
    Project,
    RankingSnapshot,
)
from sourcing.common.models.base import sql_in
from sourcing.common.models.enums import ContactType
from sourcing.common.statemachines import CALL_TASK_OPEN_STATUSES, CallTaskStatus


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


async def is_suppressed(session: AsyncSession, expert_id: uuid.UUID) -> bool:
    found = await session.scalar(
        select(ExpertSuppression.id).where(ExpertSuppression.expert_id == expert_id)
    )
    return found is not None


async def leads_of(
    session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID
) -> list[Lead]:
    """The expert's leads in the project, newest first."""
    result = await session.scalars(
        select(Lead)
        .where(Lead.project_id == project_id, Lead.expert_id == expert_id)
        .order_by(Lead.created_at.desc(), Lead.id)
    )
    return list(result)


async def has_call_task(session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID) -> bool:
    """Whether the expert ever had a call task in the project (any kind, any status)."""
    found = await session.scalar(
        select(CallTask.id)
        .where(CallTask.project_id == project_id, CallTask.expert_id == expert_id)
        .limit(1)
    )
    return found is not None


async def latest_score(
    session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID
) -> float | None:
    return await session.scalar(
        select(RankingSnapshot.score)
        .where(RankingSnapshot.project_id == project_id, RankingSnapshot.expert_id == expert_id)
        .order_by(RankingSnapshot.computed_at.desc(), RankingSnapshot.created_at.desc())
        .limit(1)
    )


async def refresh_pending_scores(
    session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID, *, score: float
) -> int:
    result = await session.execute(
        update(CallTask)
        .where(
            CallTask.project_id == project_id,
            CallTask.expert_id == expert_id,
            CallTask.status == CallTaskStatus.PENDING.value,
            CallTask.ranking_score != score,
        )
        .values(ranking_score=score)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def dialable_phone(session: AsyncSession, expert_id: uuid.UUID) -> str | None:
    """The expert's best dialable phone (E.164): primary first, then most confident, oldest."""
    return await session.scalar(
        select(ExpertContact.value_normalized)
        .where(
            ExpertContact.expert_id == expert_id,
            ExpertContact.type == ContactType.PHONE.value,
            ExpertContact.is_dialable.is_(True),
        )
        .order_by(
            ExpertContact.is_primary.desc(),
            ExpertContact.confidence.desc().nulls_last(),
            ExpertContact.created_at,
            ExpertContact.id,
        )
        .limit(1)
    )


async def insert_open_task(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert a PENDING task unless the expert already has an open one in the project (the
    partial unique index decides, also under concurrency). Returns the new id, or None."""
    statement = (
        pg_insert(CallTask)
        .values(**values)
        .on_conflict_do_nothing(
            index_elements=[CallTask.project_id, CallTask.expert_id],
            index_where=text(sql_in("status", CALL_TASK_OPEN_STATUSES)),
        )
        .returning(CallTask.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()
