"""Call tasks (§4.5): the caller's current task and outcomes; operator list and requeue.

The allocation rule is :mod:`sourcing.common.allocation` (shared with the call-allocation
agent); this router only maps HTTP onto it.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.api.repositories import call_tasks as repository
from sourcing.api.schemas_calls import (
    CallTaskOut,
    CurrentTaskResponse,
    OperatorTaskList,
    OutcomeRequest,
    OutcomeResponse,
    RequeueRequest,
)
from sourcing.common import allocation
from sourcing.common.auth import Principal
from sourcing.common.errors import NotFound
from sourcing.common.models import Caller
from sourcing.common.statemachines import CallTaskStatus
from sourcing.common.web import (
    CallerPrincipal,
    NowDep,
    SessionDep,
    SettingsDep,
    StaffPrincipal,
    error_responses,
)

router = APIRouter(prefix="/api/v1/call-tasks", tags=["call tasks"])


async def _caller(session: AsyncSession, principal: Principal, *, lock: bool = False) -> Caller:
    caller = await allocation.find_caller(session, principal.user_id, lock=lock)
    if caller is None:
        raise allocation.CallerNotRegistered(
            f"token user id '{principal.user_id}' matches no registered caller "
            "(expected a caller's id or email)",
            details={"userId": principal.user_id},
        )
    return caller


async def _view(session: AsyncSession, task_id: uuid.UUID) -> CallTaskOut:
    task = await repository.load_task(session, task_id)
    if task is None:  # pragma: no cover - the task was just read in this transaction
        raise NotFound(f"call task {task_id} not found", details={"taskId": str(task_id)})
    return CallTaskOut.of(task)


@router.get(
    "/current",
    response_model=CurrentTaskResponse,
    responses=error_responses(401, 403, 409),
    summary="The caller's current task, assigning the best available one if none is active",
    description=(
        "Returns the caller's ASSIGNED/DIALING task, else atomically assigns the best PENDING "
        "task they may take (their regions and languages, the expert inside their local "
        "calling window, not suppressed; highest project priority, then ranking score, then "
        "oldest). An assigned task must be dialled before `expiresAt` or it returns to the "
        "pool.\n\n"
        "When nothing is available the answer is **200** with `task: null` and "
        '`reason: "NO_AVAILABLE_TASKS"` (poll again later), and the caller becomes '
        "`IDLE_NO_AVAILABLE_TASKS`.\n\n"
        "The token's `userId` must be the caller's id or email (case-insensitive): otherwise "
        "**403** `caller_not_registered`. A `PAUSED_LOW_DIAL_RATE` caller gets **409** "
        "`caller_paused`; `RESTRICTED_FRAUD`/`SUSPENDED` gets **403** `caller_restricted` and "
        "a deactivated caller **403** `caller_inactive`; `details` carry the status, reason "
        "and `howToResume`."
    ),
)
async def current_task(
    request: Request,
    session: SessionDep,
    principal: CallerPrincipal,
    settings: SettingsDep,
    now: NowDep,
) -> CurrentTaskResponse:
    caller = await _caller(session, principal, lock=True)
    allocation.note_task_request(caller, now=now, settings=settings)
    result = await allocation.allocate_for_caller(
        session,
        caller,
        now=now,
        settings=settings,
        actor=f"caller:{caller.id}",
        sweep=request.app.state.expiry_sweep,
    )
    if result.task_id is None:
        return CurrentTaskResponse(
            task=None,
            newly_assigned=False,
            reason=result.reason,
            message="No call task is available for you right now; ask again shortly.",
            allocation_status=caller.allocation_status,
        )
    return CurrentTaskResponse(
        task=await _view(session, result.task_id),
        newly_assigned=result.newly_assigned,
        allocation_status=caller.allocation_status,
    )


@router.post(
    "/{task_id}/outcome",
    response_model=OutcomeResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413),
    summary="Record the outcome of the caller's own task",
    description=(
        "`INTERESTED_SIGNUP_LINK_SENT`: task COMPLETED, a signup-chase task is scheduled "
        "`SIGNUP_CHASE_DELAY_SECONDS` later (at most 3 per expert per day; `followUpSkipped` "
        "says when none was made). `RETRYABLE_REJECTION`: task COMPLETED, a retry task becomes "
        "available after `RETRY_COOL_OFF_SECONDS`. `NEVER_CONTACT_AGAIN`: task COMPLETED, the "
        "expert is suppressed everywhere, their other open tasks CANCELLED and leads "
        "DISQUALIFIED.\n\nOnce per task, before or after the call's validation: the caller's own "
        "ASSIGNED or DIALING task (completed now), or their task the validation already "
        "COMPLETED (the outcome is added; its effects happen once either way). Another "
        "caller's task (or an unknown id) is **404**; a second outcome, or a task the call left "
        "CANCELLED, RESTRICTED or EXPIRED, is **409** `invalid_transition`."
    ),
)
async def submit_outcome(
    task_id: uuid.UUID,
    body: OutcomeRequest,
    session: SessionDep,
    principal: CallerPrincipal,
    settings: SettingsDep,
    now: NowDep,
) -> OutcomeResponse:
    caller = await _caller(session, principal)
    result = await allocation.record_outcome(
        session,
        caller=caller,
        task_id=task_id,
        outcome=body.outcome,
        notes=body.notes,
        now=now,
        settings=settings,
    )
    return OutcomeResponse(
        task=await _view(session, result.task.id),
        follow_up_task_id=result.follow_up_task_id,
        follow_up_available_after=result.follow_up_available_after,
        follow_up_skipped=result.skipped,
        cancelled_task_ids=result.cancelled_task_ids,
        disqualified_leads=result.disqualified_leads,
    )


@router.get(
    "/operator/tasks",
    response_model=OperatorTaskList,
    responses=error_responses(400, 401, 403),
    summary="List call tasks (oldest first)",
    description=(
        "Filters: `status`, `projectId`; `limit` 1-100 (default 50). Ordered by "
        "`(createdAt, id)` ascending, a stable order: pass `nextCursor` back as `cursor` for "
        "the next page."
    ),
)
async def list_tasks(
    session: SessionDep,
    _: StaffPrincipal,
    status: Annotated[CallTaskStatus | None, Query()] = None,
    project_id: Annotated[uuid.UUID | None, Query(alias="projectId")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
) -> OperatorTaskList:
    after = repository.decode_cursor(cursor) if cursor else None
    tasks = await repository.list_tasks(
        session,
        status=status.value if status else None,
        project_id=project_id,
        limit=limit,
        after=after,
    )
    next_cursor = repository.encode_cursor(tasks[-1]) if len(tasks) == limit else None
    return OperatorTaskList(items=[CallTaskOut.of(t) for t in tasks], next_cursor=next_cursor)


@router.post(
    "/operator/tasks/{task_id}/requeue",
    response_model=CallTaskOut,
    responses=error_responses(400, 401, 403, 404, 409, 413),
    summary="Put a stalled task back in the pool",
    description=(
        "ASSIGNED, DIALING or EXPIRED → PENDING (unassigned); any other status is **409** "
        "`invalid_transition`. The reason and the operator are recorded as a "
        "`call_task.requeued` system event."
    ),
)
async def requeue_task(
    task_id: uuid.UUID,
    body: RequeueRequest,
    session: SessionDep,
    principal: StaffPrincipal,
    now: NowDep,
) -> CallTaskOut:
    await allocation.requeue_task(
        session,
        task_id,
        reason=body.reason,
        actor=f"{principal.role.value}:{principal.user_id}",
        now=now,
    )
    return await _view(session, task_id)
