"""Queries of operations: dead letters (list, replay), documentation jobs, audit events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Select, func, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import DeadLetterJob, DocumentationJob, SystemEvent
from sourcing.common.models.enums import JobStatus
from sourcing.common.web import Keyset


@dataclass(frozen=True, slots=True)
class DeadLetterFilter:
    topics: tuple[str, ...] = ()
    failed_from: datetime | None = None  # inclusive
    failed_to: datetime | None = None  # exclusive
    include_archived: bool = False


def _filtered(query: Select[Any], where: DeadLetterFilter) -> Select[Any]:
    if where.topics:
        query = query.where(DeadLetterJob.origin_topic.in_(where.topics))
    if where.failed_from is not None:
        query = query.where(DeadLetterJob.failed_at >= where.failed_from)
    if where.failed_to is not None:
        query = query.where(DeadLetterJob.failed_at < where.failed_to)
    if not where.include_archived:
        query = query.where(DeadLetterJob.archived_at.is_(None))
    return query


async def list_dead_letters(
    session: AsyncSession,
    where: DeadLetterFilter,
    *,
    limit: int,
    offset: int = 0,
    after: Keyset | None = None,
) -> list[DeadLetterJob]:
    """Newest first (failed_at, then id, descending); ``after`` is a keyset cursor."""
    query = _filtered(select(DeadLetterJob), where)
    if after is not None:
        query = query.where(tuple_(DeadLetterJob.failed_at, DeadLetterJob.id) < tuple_(*after))
    query = query.order_by(DeadLetterJob.failed_at.desc(), DeadLetterJob.id.desc())
    rows = await session.execute(query.limit(limit).offset(offset))
    return list(rows.scalars().all())


async def count_dead_letters(session: AsyncSession, where: DeadLetterFilter) -> int:
    query = _filtered(select(DeadLetterJob), where)
    count = await session.scalar(select(func.count()).select_from(query.subquery()))
    return int(count or 0)


async def get_dead_letter(
    session: AsyncSession, dead_letter_id: uuid.UUID, *, for_update: bool = False
) -> DeadLetterJob | None:
    query = select(DeadLetterJob).where(DeadLetterJob.id == dead_letter_id)
    if for_update:
        # Concurrent replays of one dead letter queue up: replay_count stays exact.
        query = query.with_for_update()
    return await session.scalar(query)


@dataclass(frozen=True, slots=True)
class SystemEventFilter:
    entity_type: str | None = None
    entity_id: uuid.UUID | None = None
    type: str | None = None
    correlation_id: str | None = None


async def list_system_events(
    session: AsyncSession, where: SystemEventFilter, *, limit: int, after: Keyset | None
) -> list[SystemEvent]:
    """Oldest first (created_at, then id); ``after`` is a keyset cursor."""
    query = select(SystemEvent)
    if where.entity_type is not None:
        query = query.where(SystemEvent.entity_type == where.entity_type)
    if where.entity_id is not None:
        query = query.where(SystemEvent.entity_id == where.entity_id)
    if where.type is not None:
        query = query.where(SystemEvent.type == where.type)
    if where.correlation_id is not None:
        query = query.where(SystemEvent.correlation_id == where.correlation_id)
    if after is not None:
        query = query.where(tuple_(SystemEvent.created_at, SystemEvent.id) > tuple_(*after))
    query = query.order_by(SystemEvent.created_at, SystemEvent.id).limit(limit)
    return list((await session.scalars(query)).all())


async def latest_document(session: AsyncSession, name: str) -> str | None:
    """The content of ``name`` in the most recent successful documentation job holding it."""
    content = DocumentationJob.documents[name].astext
    return await session.scalar(
        select(content)
        .where(
            DocumentationJob.status == JobStatus.SUCCEEDED.value,
            DocumentationJob.documents.has_key(name),
        )
        .order_by(DocumentationJob.finished_at.desc(), DocumentationJob.id.desc())
        .limit(1)
    )
