"""Queries of the call-task endpoints (the allocation rule itself is in sourcing.common)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime

from sqlalchemy import select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import joinedload

from sourcing.common.errors import InvalidPayload
from sourcing.common.models import CallTask


async def load_task(session: AsyncSession, task_id: uuid.UUID) -> CallTask | None:
    """A task with the expert and project the response shows."""
    return await session.scalar(
        select(CallTask)
        .where(CallTask.id == task_id)
        .options(joinedload(CallTask.expert), joinedload(CallTask.project))
        .execution_options(populate_existing=True)
    )


def encode_cursor(task: CallTask) -> str:
    raw = f"{task.created_at.isoformat()}|{task.id}".encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        created_at, task_id = raw.split("|", 1)
        parsed = datetime.fromisoformat(created_at)
        if parsed.tzinfo is None:
            raise ValueError("naive")
        return parsed, uuid.UUID(task_id)
    except ValueError:
        raise InvalidPayload(
            "cursor is not one this endpoint returned", details={"field": "cursor"}
        ) from None


async def list_tasks(
    session: AsyncSession,
    *,
    status: str | None,
    project_id: uuid.UUID | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[CallTask]:
    """Tasks ordered by ``(created_at, id)`` ascending (oldest first), after the cursor."""
    query = select(CallTask).options(joinedload(CallTask.expert), joinedload(CallTask.project))
    if status is not None:
        query = query.where(CallTask.status == status)
    if project_id is not None:
        query = query.where(CallTask.project_id == project_id)
    if after is not None:
        query = query.where(tuple_(CallTask.created_at, CallTask.id) > tuple_(*after))
    query = query.order_by(CallTask.created_at, CallTask.id).limit(limit)
    return list((await session.scalars(query)).all())
