"""The audit trail (``system_events``) for operators: every status change, requeue, override
and replay of an entity, oldest first."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from sourcing.api.repositories import ops as repository
from sourcing.api.schemas_ops import SystemEventOut, SystemEventPage
from sourcing.common.web import (
    CursorQuery,
    LimitQuery,
    SessionDep,
    StaffPrincipal,
    decode_cursor,
    error_responses,
    next_cursor,
)

router = APIRouter(prefix="/api/v1/system-events", tags=["system events"])


@router.get(
    "",
    response_model=SystemEventPage,
    responses=error_responses(400, 401, 403),
    summary="List audit events (oldest first), e.g. one entity's history",
    description=(
        "Filters: `entityType` with `entityId` (one entity's history, e.g. `call_task` and "
        "its id), `type` (e.g. `call_task.requeued`), `correlationId` (everything one "
        "request or message caused); `limit` 1-100 (default 50). Ordered by "
        "`(createdAt, id)` ascending: pass `nextCursor` back as `cursor` for the next page."
    ),
)
async def list_system_events(
    session: SessionDep,
    _: StaffPrincipal,
    entity_type: Annotated[str | None, Query(alias="entityType", max_length=64)] = None,
    entity_id: Annotated[uuid.UUID | None, Query(alias="entityId")] = None,
    event_type: Annotated[str | None, Query(alias="type", max_length=100)] = None,
    correlation_id: Annotated[str | None, Query(alias="correlationId", max_length=200)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> SystemEventPage:
    events = await repository.list_system_events(
        session,
        repository.SystemEventFilter(
            entity_type=entity_type,
            entity_id=entity_id,
            type=event_type,
            correlation_id=correlation_id,
        ),
        limit=limit,
        after=decode_cursor(cursor),
    )
    return SystemEventPage(
        items=[SystemEventOut.model_validate(event) for event in events],
        next_cursor=next_cursor(events, limit),
    )
