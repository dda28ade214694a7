"""Every query of the scheduler service (cycle bookkeeping, maintenance steps, sinks)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import and_, exists, func, select, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    Caller,
    CallTask,
    DeadLetterJob,
    DocumentationJob,
    Expert,
    Project,
    SchedulerCycle,
    ScreeningResponse,
    SignupChase,
)
from sourcing.common.models.enums import CallOutcome, SchedulerCycleStatus
from sourcing.common.statemachines import (
    CALL_TASK_OPEN_STATUSES,
    ProjectStatus,
    ScreeningResponseStatus,
)

# --- cycle bookkeeping ----------------------------------------------------------------------


async def claim_cycle(
    session: AsyncSession,
    *,
    slot_started_at: datetime,
    holder: str,
    now: datetime,
    correlation_id: str,
) -> uuid.UUID | None:
    """Insert the interval's cycle row; ``None`` when another replica already claimed it."""
    return await session.scalar(
        pg_insert(SchedulerCycle)
        .values(
            id=uuid.uuid4(),
            slot_started_at=slot_started_at,
            holder=holder,
            status=SchedulerCycleStatus.RUNNING.value,
            started_at=now,
            correlation_id=correlation_id,
        )
        .on_conflict_do_nothing(index_elements=[SchedulerCycle.slot_started_at])
        .returning(SchedulerCycle.id)
    )


async def abandon_running_cycles(session: AsyncSession, *, now: datetime) -> int:
    """Mark RUNNING cycles FAILED. Only called while holding the cycle lock, so any RUNNING
    row belongs to a replica that died mid-cycle."""
    result = await session.execute(
        update(SchedulerCycle)
        .where(SchedulerCycle.status == SchedulerCycleStatus.RUNNING.value)
        .values(
            status=SchedulerCycleStatus.FAILED.value,
            finished_at=now,
            error="abandoned: its scheduler stopped before finishing",
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def finish_cycle(
    session: AsyncSession,
    cycle_id: uuid.UUID,
    *,
    status: SchedulerCycleStatus,
    steps: list[dict[str, Any]],
    finished_at: datetime,
    error: str | None,
) -> None:
    await session.execute(
        update(SchedulerCycle)
        .where(SchedulerCycle.id == cycle_id)
        .values(status=status.value, steps=steps, finished_at=finished_at, error=error)
    )


# --- step 1: dead-letter archival -----------------------------------------------------------


async def archive_dead_letters(
    session: AsyncSession, *, older_than: datetime, now: datetime
) -> int:
    """Flag live dead letters that failed before ``older_than`` as archived."""
    result = await session.execute(
        update(DeadLetterJob)
        .where(DeadLetterJob.archived_at.is_(None), DeadLetterJob.failed_at < older_than)
        .values(archived_at=now)
    )
    return int(getattr(result, "rowcount", 0) or 0)


# --- steps 2 and 3: per active caller -------------------------------------------------------


async def active_caller_ids(
    session: AsyncSession, *, seen_after: datetime | None = None
) -> list[uuid.UUID]:
    """Active callers; only those online (seen after ``seen_after``) when given."""
    query = select(Caller.id).where(Caller.is_active.is_(True))
    if seen_after is not None:
        query = query.where(Caller.last_seen_at > seen_after)
    rows = await session.scalars(query.order_by(Caller.id))
    return list(rows.all())


# --- step 4: screening follow-ups -----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DueResponse:
    id: uuid.UUID
    expert_id: uuid.UUID


async def screening_responses_due(
    session: AsyncSession, *, idle_before: datetime, limit: int
) -> list[DueResponse]:
    """PENDING/IN_PROGRESS responses not updated (nor reminded) since ``idle_before``,
    oldest first (served by ``ix_screening_responses_status_updated_at``)."""
    open_statuses = (
        ScreeningResponseStatus.PENDING.value,
        ScreeningResponseStatus.IN_PROGRESS.value,
    )
    rows = await session.execute(
        select(ScreeningResponse.id, ScreeningResponse.expert_id)
        .where(
            ScreeningResponse.status.in_(open_statuses),
            ScreeningResponse.updated_at <= idle_before,
            (ScreeningResponse.last_reminded_at.is_(None))
            | (ScreeningResponse.last_reminded_at <= idle_before),
        )
        .order_by(ScreeningResponse.updated_at, ScreeningResponse.id)
        .limit(limit)
    )
    return [DueResponse(id=row.id, expert_id=row.expert_id) for row in rows.all()]


async def expert_ids_of_responses(
    session: AsyncSession, response_ids: list[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    if not response_ids:
        return {}
    rows = await session.execute(
        select(ScreeningResponse.id, ScreeningResponse.expert_id).where(
            ScreeningResponse.id.in_(response_ids)
        )
    )
    return {row.id: row.expert_id for row in rows.all()}


# --- step 5: signup chase -------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ChaseCandidate:
    """The latest signup-link task of an expert who has not signed up."""

    source_task_id: uuid.UUID
    expert_id: uuid.UUID
    project_id: uuid.UUID
    priority: int
    ranking_score: float
    region_iso: str | None
    language_code: str | None
    phone_number: str | None


async def signup_chase_candidates(
    session: AsyncSession, *, link_sent_before: datetime, chase_date: date, limit: int
) -> list[ChaseCandidate]:
    """Experts whose LATEST signup-link outcome is older than ``link_sent_before``, who have
    not signed up, are not suppressed, have no chase dated ``chase_date`` yet and no open
    task in that project (e.g. a chase the outcome endpoint already scheduled)."""
    latest = (
        select(
            CallTask.id,
            CallTask.expert_id,
            CallTask.project_id,
            CallTask.outcome_at,
            CallTask.priority,
            CallTask.ranking_score,
            CallTask.region_iso,
            CallTask.language_code,
            CallTask.phone_number,
        )
        .where(
            CallTask.outcome == CallOutcome.INTERESTED_SIGNUP_LINK_SENT.value,
            CallTask.outcome_at.is_not(None),
        )
        .ext(distinct_on(CallTask.expert_id))
        .order_by(CallTask.expert_id, CallTask.outcome_at.desc(), CallTask.id)
        .subquery("latest")
    )
    chased_today = exists().where(
        SignupChase.expert_id == latest.c.expert_id, SignupChase.chase_date == chase_date
    )
    open_task = exists().where(
        CallTask.expert_id == latest.c.expert_id,
        CallTask.project_id == latest.c.project_id,
        CallTask.status.in_(CALL_TASK_OPEN_STATUSES),
    )
    rows = await session.execute(
        select(latest)
        .join(Expert, Expert.id == latest.c.expert_id)
        .join(Project, Project.id == latest.c.project_id)
        .where(
            latest.c.outcome_at <= link_sent_before,
            Expert.signed_up_at.is_(None),
            Expert.suppressed_at.is_(None),
            Project.status == ProjectStatus.ACTIVE.value,
            ~chased_today,
            ~open_task,
        )
        .order_by(latest.c.outcome_at, latest.c.expert_id)
        .limit(limit)
    )
    return [
        ChaseCandidate(
            source_task_id=row.id,
            expert_id=row.expert_id,
            project_id=row.project_id,
            priority=row.priority,
            ranking_score=row.ranking_score,
            region_iso=row.region_iso,
            language_code=row.language_code,
            phone_number=row.phone_number,
        )
        for row in rows.all()
    ]


async def chases_on(session: AsyncSession, *, expert_id: uuid.UUID, chase_date: date) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(SignupChase)
        .where(and_(SignupChase.expert_id == expert_id, SignupChase.chase_date == chase_date))
    )
    return int(count or 0)


# --- dead-letter sink -----------------------------------------------------------------------


async def insert_dead_letter(session: AsyncSession, values: dict[str, Any]) -> bool:
    """Insert once per origin (topic, partition, offset); False when it was already stored."""
    stored = await session.scalar(
        pg_insert(DeadLetterJob)
        .values(id=uuid.uuid4(), **values)
        .on_conflict_do_nothing(
            index_elements=[
                DeadLetterJob.origin_topic,
                DeadLetterJob.origin_partition,
                DeadLetterJob.origin_offset,
            ]
        )
        .returning(DeadLetterJob.id)
    )
    return stored is not None


# --- documentation jobs ---------------------------------------------------------------------


async def get_documentation_job(
    session: AsyncSession, job_id: uuid.UUID, *, for_update: bool = False
) -> DocumentationJob | None:
    query = select(DocumentationJob).where(DocumentationJob.id == job_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)
