"""The calls context's HTTP endpoints, mounted by the gateway: the read side of call logs.

:data:`call_logs_router` lists the call logs of one call task and of one caller, for staff.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from sourcing.calls import repository
from sourcing.calls.schemas import CallLogOut, CallLogPage
from sourcing.common.errors import InvalidPayload, NotFound
from sourcing.common.models import CallLog
from sourcing.common.web import (
    CursorQuery,
    LimitQuery,
    SessionDep,
    StaffPrincipal,
    UtcDatetime,
    decode_cursor,
    error_responses,
    next_cursor,
)

call_logs_router = APIRouter(tags=["call logs"])

_ORDER = (
    "`limit` 1-100 (default 50). Ordered by `(createdAt, id)` ascending: pass `nextCursor` back "
    "as `cursor` for the next page."
)


def _utc(value: datetime | None, *, name: str) -> datetime | None:
    """The instant in UTC; one at the edge of the calendar that UTC cannot hold is a 400."""
    if value is None:
        return None
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise InvalidPayload(
            f"{name} is out of range", details={"field": name, "value": value.isoformat()}
        ) from None


def _page(logs: list[CallLog], limit: int) -> CallLogPage:
    return CallLogPage(
        items=[CallLogOut.model_validate(log) for log in logs],
        next_cursor=next_cursor(logs, limit),
    )


@call_logs_router.get(
    "/api/v1/call-tasks/{task_id}/call-logs",
    response_model=CallLogPage,
    responses=error_responses(400, 401, 403, 404),
    summary="The call logs of one call task (oldest first)",
    description=_ORDER,
)
async def list_task_call_logs(
    task_id: uuid.UUID,
    session: SessionDep,
    _: StaffPrincipal,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> CallLogPage:
    after = decode_cursor(cursor)
    if not await repository.call_task_exists(session, task_id):
        raise NotFound(f"call task {task_id} not found", details={"taskId": str(task_id)})
    logs = await repository.list_call_logs(session, call_task_id=task_id, limit=limit, after=after)
    return _page(logs, limit)


@call_logs_router.get(
    "/api/v1/callers/{caller_id}/call-logs",
    response_model=CallLogPage,
    responses=error_responses(400, 401, 403, 404),
    summary="The call logs of one caller (oldest first)",
    description=(
        "Filters: `from` (inclusive) and `to` (exclusive) on the call's `startedAt` (ISO "
        "date-time; without an offset, UTC), `validated` (whether the call validation has run). "
        + _ORDER
    ),
)
async def list_caller_call_logs(
    caller_id: uuid.UUID,
    session: SessionDep,
    _: StaffPrincipal,
    started_from: Annotated[UtcDatetime | None, Query(alias="from")] = None,
    started_to: Annotated[UtcDatetime | None, Query(alias="to")] = None,
    validated: Annotated[bool | None, Query()] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> CallLogPage:
    started_from = _utc(started_from, name="from")
    started_to = _utc(started_to, name="to")
    if started_from is not None and started_to is not None and started_from >= started_to:
        raise InvalidPayload("from must be before to", details={"fields": ["from", "to"]})
    after = decode_cursor(cursor)
    if not await repository.caller_exists(session, caller_id):
        raise NotFound(f"caller {caller_id} not found", details={"callerId": str(caller_id)})
    logs = await repository.list_call_logs(
        session,
        caller_id=caller_id,
        started_from=started_from,
        started_to=started_to,
        validated=validated,
        limit=limit,
        after=after,
    )
    return _page(logs, limit)
