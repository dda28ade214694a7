"""Every query of the allocation service's call-task creation.

One request reads everything it decides on in two statements (:func:`call_task_facts`,
:func:`leads_of`), then writes in one: the request lane carries a message per ranked lead.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import exists, select, text, true, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    CallTask,
    Expert,
    ExpertContact,
    Lead,
    Project,
    RankingSnapshot,
)
from sourcing.common.models.base import sql_in
from sourcing.common.models.enums import ContactType
from sourcing.common.statemachines import CALL_TASK_OPEN_STATUSES, CallTaskStatus
from sourcing.people.suppression import suppressed_expert


@dataclass(frozen=True, slots=True)
class CallTaskFacts:
    """What decides an expert's call task in a project."""

    project_status: str
    priority: int
    country_iso: str | None
    language_codes: list[str]
    suppressed: bool  # suppressed_at, or a suppression row
    signed_up: bool
    latest_score: float | None
    has_call_task: bool  # any task of the expert in the project, any kind, any status
    phone: str | None  # the best dialable phone (E.164): primary, most confident, oldest


async def call_task_facts(
    session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID
) -> CallTaskFacts | None:
    """None when the project or the expert is gone."""
    latest_score = (
        select(RankingSnapshot.score)
        .where(RankingSnapshot.project_id == Project.id, RankingSnapshot.expert_id == Expert.id)
        .order_by(RankingSnapshot.computed_at.desc(), RankingSnapshot.created_at.desc())
        .limit(1)
        .scalar_subquery()
    )
    has_call_task = exists().where(
        CallTask.project_id == Project.id, CallTask.expert_id == Expert.id
    )
    phone = (
        select(ExpertContact.value_normalized)
        .where(
            ExpertContact.expert_id == Expert.id,
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
        .scalar_subquery()
    )
    row = (
        await session.execute(
            select(
                Project.status,
                Project.priority,
                Expert.country_iso,
                Expert.language_codes,
                suppressed_expert(),
                Expert.signed_up_at.is_not(None),
                latest_score,
                has_call_task,
                phone,
            )
            .select_from(Project)
            .join(Expert, true())  # one row of each: the pair
            .where(Project.id == project_id, Expert.id == expert_id)
        )
    ).one_or_none()
    if row is None:
        return None
    return CallTaskFacts(*row)


async def leads_of(
    session: AsyncSession, project_id: uuid.UUID, expert_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    """The expert's leads in the project as (id, status), newest first."""
    result = await session.execute(
        select(Lead.id, Lead.status)
        .where(Lead.project_id == project_id, Lead.expert_id == expert_id)
        .order_by(Lead.created_at.desc(), Lead.id)
    )
    return [(lead_id, status) for lead_id, status in result]


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
