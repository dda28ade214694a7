"""Every query of the scheduler service (cycle bookkeeping, maintenance steps, sinks)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, delete, exists, literal, select, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    Caller,
    CallerPerformanceMetric,
    CallLogRaw,
    DeadLetterJob,
    DocumentationJob,
    IdempotencyKey,
    ProcessedEvent,
    ProcessedWebhookEvent,
    SchedulerCycle,
    SystemEvent,
)
from sourcing.common.models.enums import SchedulerCycleStatus

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


# --- step 6: retention ---------------------------------------------------------------------
# Each prune touches at most ``limit`` rows, the oldest first, through the table's time index.


def _rowcount(result: object) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


async def prune_processed_events(session: AsyncSession, *, older_than: datetime, limit: int) -> int:
    """Agents' dedup rows processed before ``older_than``."""
    key = tuple_(ProcessedEvent.consumer, ProcessedEvent.event_id)
    batch = (
        select(ProcessedEvent.consumer, ProcessedEvent.event_id)
        .where(ProcessedEvent.processed_at < older_than)
        .order_by(ProcessedEvent.processed_at)
        .limit(limit)
    )
    return _rowcount(await session.execute(delete(ProcessedEvent).where(key.in_(batch))))


async def prune_processed_webhook_events(
    session: AsyncSession, *, older_than: datetime, limit: int
) -> int:
    """Webhooks' dedup rows received before ``older_than``."""
    batch = (
        select(ProcessedWebhookEvent.id)
        .where(ProcessedWebhookEvent.received_at < older_than)
        .order_by(ProcessedWebhookEvent.received_at)
        .limit(limit)
    )
    stale = delete(ProcessedWebhookEvent).where(ProcessedWebhookEvent.id.in_(batch))
    return _rowcount(await session.execute(stale))


async def prune_system_events(session: AsyncSession, *, older_than: datetime, limit: int) -> int:
    """Audit events written before ``older_than``."""
    batch = (
        select(SystemEvent.id)
        .where(SystemEvent.created_at < older_than)
        .order_by(SystemEvent.created_at)
        .limit(limit)
    )
    return _rowcount(await session.execute(delete(SystemEvent).where(SystemEvent.id.in_(batch))))


async def prune_idempotency_keys(session: AsyncSession, *, older_than: datetime, limit: int) -> int:
    """Idempotency keys claimed before ``older_than`` (answered or abandoned)."""
    batch = (
        select(IdempotencyKey.owner, IdempotencyKey.key)
        .where(IdempotencyKey.created_at < older_than)
        .order_by(IdempotencyKey.created_at)
        .limit(limit)
    )
    return _rowcount(
        await session.execute(
            delete(IdempotencyKey).where(
                tuple_(IdempotencyKey.owner, IdempotencyKey.key).in_(batch)
            )
        )
    )


async def prune_performance_snapshots(
    session: AsyncSession, *, older_than: datetime, limit: int
) -> int:
    """Performance snapshots computed before ``older_than``, except each caller's latest."""
    newer = CallerPerformanceMetric.__table__.alias("newer")
    superseded: ColumnElement[bool] = exists().where(
        newer.c.caller_id == CallerPerformanceMetric.caller_id,
        newer.c.computed_at > CallerPerformanceMetric.computed_at,
    )
    batch = (
        select(CallerPerformanceMetric.id)
        .where(CallerPerformanceMetric.computed_at < older_than, superseded)
        .order_by(CallerPerformanceMetric.computed_at)
        .limit(limit)
    )
    return _rowcount(
        await session.execute(
            delete(CallerPerformanceMetric).where(CallerPerformanceMetric.id.in_(batch))
        )
    )


async def clear_raw_webhook_payloads(
    session: AsyncSession, *, older_than: datetime, limit: int
) -> int:
    """Empty the payload of raw Yay events received before ``older_than``; the row (event id,
    type, call log, status) stays."""
    empty = literal({}, JSONB)
    batch = (
        select(CallLogRaw.id)
        .where(CallLogRaw.received_at < older_than, CallLogRaw.payload != empty)
        .order_by(CallLogRaw.received_at)
        .limit(limit)
    )
    return _rowcount(
        await session.execute(
            update(CallLogRaw).where(CallLogRaw.id.in_(batch)).values(payload=empty)
        )
    )


# --- step 2: per active caller -------------------------------------------------------------


async def active_caller_ids(session: AsyncSession) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Caller.id).where(Caller.is_active.is_(True)).order_by(Caller.id)
    )
    return list(rows.all())


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
