"""The allocation context's HTTP endpoints, mounted by the gateway.

* :data:`callers_router`: callers and their latest performance snapshot (§4.4), staff actions
  on their status;
* :data:`call_tasks_router`: call tasks (§4.5): the caller's current task and outcomes;
  operator list and requeue;
* :data:`experts_router`: an operator records an expert's sign-up (leads CONVERTED, sign-up
  chases cancelled).

The rules are :mod:`sourcing.allocation.service` (shared with the call-allocation agent); these
routers only map HTTP onto them.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated

from fastapi import APIRouter, Body, Depends, FastAPI, Query, Request, Response, status
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation import repository, service
from sourcing.allocation.schemas import (
    CallerCreate,
    CallerOut,
    CallerPage,
    CallerStatusRequest,
    CallerStatusResponse,
    CallerUpdate,
    CallTaskOut,
    CurrentTaskResponse,
    OperatorTaskList,
    OutcomeRequest,
    OutcomeResponse,
    PerformanceOut,
    RequeueRequest,
    SignupRecord,
    SignupRecorded,
)
from sourcing.allocation.settings import (
    AllocationSettings as AllocationSettings,  # the gateway's settings build on it
)
from sourcing.common.auth import Principal, Role
from sourcing.common.errors import Conflict, NotFound, ServiceUnavailable
from sourcing.common.models import Caller, CallerPerformanceMetric
from sourcing.common.statemachines import (
    CALLER_ALLOCATION,
    CallerAllocationStatus,
    CallTaskStatus,
)
from sourcing.common.web import (
    CALLERS,
    STAFF,
    CallerPrincipal,
    CursorQuery,
    ErrorEnvelope,
    LeanRoute,
    LimitQuery,
    NowDep,
    SessionDep,
    StaffPrincipal,
    decode_cursor,
    error_responses,
    get_now,
    get_statements,
    json_body,
    next_cursor,
    path_uuid,
    reject_unknown_query_params,
    settings_of,
)

call_tasks_router = APIRouter(prefix="/api/v1/call-tasks", tags=["call tasks"])

_allocation_settings = settings_of(AllocationSettings)
AllocationSettingsDep = Annotated[AllocationSettings, Depends(_allocation_settings)]


def expiry_sweep(app: FastAPI, settings: AllocationSettings) -> service.ExpirySweep:
    """The app's sweep of stale assignments (``app.state.expiry_sweep``), made on first use."""
    sweep: service.ExpirySweep | None = getattr(app.state, "expiry_sweep", None)
    if sweep is None:
        sweep = service.ExpirySweep(timedelta(seconds=settings.ALLOCATION_EXPIRY_SWEEP_SECONDS))
        app.state.expiry_sweep = sweep
    return sweep


class Admission:
    """Admission control in front of the allocation work of one process: at most ``limit``
    allocations at once, a request waiting at most ``wait`` seconds for its turn (FIFO), else
    503 ``service_unavailable`` with ``Retry-After``. Past capacity, latency stays bounded and
    the excess is told to come back, instead of every request queueing for a database
    connection until all of them are late."""

    def __init__(self, *, limit: int, wait: float) -> None:
        self.limit = limit
        self.wait = wait
        self._slots = asyncio.Semaphore(limit)

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        try:
            async with asyncio.timeout(self.wait):
                await self._slots.acquire()
        except TimeoutError:
            raise ServiceUnavailable(
                "too many task requests at once; ask again shortly",
                details={"maxInFlight": self.limit, "retryAfterSeconds": 1},
                headers={"Retry-After": "1"},
            ) from None
        try:
            yield
        finally:
            self._slots.release()


def admission(app: FastAPI, settings: AllocationSettings) -> Admission:
    """The app's allocation admission (``app.state.allocation_admission``), made on first use."""
    gate: Admission | None = getattr(app.state, "allocation_admission", None)
    if gate is None:
        gate = Admission(
            limit=min(settings.ALLOCATION_MAX_IN_FLIGHT, settings.DATABASE_POOL_SIZE),
            wait=settings.ALLOCATION_ADMISSION_WAIT_MS / 1000,
        )
        app.state.allocation_admission = gate
    return gate


def _not_registered(principal: Principal) -> service.CallerNotRegistered:
    return service.CallerNotRegistered(
        f"token user id '{principal.user_id}' matches no registered caller "
        "(expected a caller's id or email)",
        details={"userId": principal.user_id},
    )


async def _task_caller(session: AsyncSession, principal: Principal) -> Caller:
    caller = await repository.find_caller(session, principal.user_id)
    if caller is None:
        raise _not_registered(principal)
    return caller


async def _view(session: AsyncSession, task_id: uuid.UUID) -> CallTaskOut:
    task = await repository.load_task(session, task_id)
    if task is None:  # pragma: no cover - the task was just read in this transaction
        raise NotFound(f"call task {task_id} not found", details={"taskId": str(task_id)})
    return CallTaskOut.of(task)


async def get_current_call_task(request: Request) -> Response:
    """A lean route (:class:`sourcing.common.web.LeanRoute`): the hottest request of the
    callers' day, served without FastAPI's dependency solving and response-model validation;
    its one statement runs in its own transaction (one round trip)."""
    await reject_unknown_query_params(request)
    principal = await CALLERS.of(request)
    settings = await _allocation_settings(request)
    now = await get_now(request)
    async with admission(request.app, settings).slot():
        result = await service.assign_next_task(
            await get_statements(request),
            principal.user_id,
            now=now,
            settings=settings,
            actor=None,  # the caller themself
            sweep=expiry_sweep(request.app, settings).due(now),
            task_request=True,
        )
    if result.caller is None:
        raise _not_registered(principal)
    refusal = result.refusal
    if refusal is not None:
        raise refusal
    if result.task is None:
        answer = CurrentTaskResponse(
            task=None,
            newly_assigned=False,
            reason=result.reason,
            message="No call task is available for you right now; ask again shortly.",
            allocation_status=result.allocation_status,
        )
    else:
        answer = CurrentTaskResponse(
            task=CallTaskOut.of_row(result.task),
            newly_assigned=result.newly_assigned,
            allocation_status=result.allocation_status,
        )
    return Response(answer.model_dump_json(by_alias=True), media_type="application/json")


call_tasks_router.add_api_route(
    "/current",
    get_current_call_task,
    methods=["GET"],
    response_model=CurrentTaskResponse,
    dependencies=[Depends(CALLERS)],  # documents the role; the endpoint applies it itself
    route_class_override=LeanRoute,
    responses={
        **error_responses(401, 403, 409),
        503: {
            "model": ErrorEnvelope,
            "description": "Too many task requests at once (admission control); ask again "
            "after `Retry-After` seconds",
        },
    },
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
        "and `howToResume`.\n\n"
        "Past the gateway's capacity (`ALLOCATION_MAX_IN_FLIGHT` allocations at once, a wait "
        "of at most `ALLOCATION_ADMISSION_WAIT_MS` for a turn) the answer is **503** "
        "`service_unavailable` with `Retry-After`: ask again then."
    ),
)


@call_tasks_router.post(
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
async def submit_call_outcome(
    task_id: uuid.UUID,
    body: OutcomeRequest,
    session: SessionDep,
    principal: CallerPrincipal,
    settings: AllocationSettingsDep,
    now: NowDep,
) -> OutcomeResponse:
    caller = await _task_caller(session, principal)
    result = await service.record_outcome(
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


@call_tasks_router.get(
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
async def list_call_tasks(
    session: SessionDep,
    _: StaffPrincipal,
    status: Annotated[CallTaskStatus | None, Query()] = None,
    project_id: Annotated[uuid.UUID | None, Query(alias="projectId")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> OperatorTaskList:
    tasks = await repository.list_tasks(
        session,
        status=status.value if status else None,
        project_id=project_id,
        limit=limit,
        after=decode_cursor(cursor),
    )
    return OperatorTaskList(
        items=[CallTaskOut.of(t) for t in tasks], next_cursor=next_cursor(tasks, limit)
    )


async def requeue_call_task(request: Request) -> Response:
    """A lean route like :func:`get_current_call_task` (an operator's hot path in the bench:
    each allocation is requeued); its one statement runs in its own transaction."""
    await reject_unknown_query_params(request)
    principal = await STAFF.of(request)
    task_id = path_uuid(request, "task_id")
    body = await json_body(request, RequeueRequest)
    row = await service.requeue_task(
        await get_statements(request),
        task_id,
        reason=body.reason,
        actor=f"{principal.role.value}:{principal.user_id}",
        now=await get_now(request),
    )
    return Response(
        CallTaskOut.of_row(row).model_dump_json(by_alias=True), media_type="application/json"
    )


async def _requeue_request(
    task_id: uuid.UUID, body: RequeueRequest, principal: StaffPrincipal
) -> None:
    """The requeue's request (path, body, role) as OpenAPI and the route-role audit read it;
    :func:`requeue_call_task` parses the same itself."""


call_tasks_router.add_api_route(
    "/operator/tasks/{task_id}/requeue",
    requeue_call_task,
    methods=["POST"],
    response_model=CallTaskOut,
    dependencies=[Depends(_requeue_request)],
    route_class_override=LeanRoute,
    responses=error_responses(400, 401, 403, 404, 409, 413),
    summary="Put a stalled task back in the pool",
    description=(
        "ASSIGNED, DIALING or EXPIRED → PENDING (unassigned); any other status is **409** "
        "`invalid_transition`. The reason and the operator are recorded as a "
        "`call_task.requeued` system event."
    ),
)


callers_router = APIRouter(prefix="/api/v1/callers", tags=["callers"])


def _email_conflict(email: str) -> Conflict:
    return Conflict(
        f"a caller with email {email} already exists", details={"field": "email", "email": email}
    )


async def _caller(session: SessionDep, caller_id: uuid.UUID) -> Caller:
    caller = await repository.get_caller(session, caller_id)
    if caller is None:
        raise NotFound(f"caller {caller_id} not found", details={"callerId": str(caller_id)})
    return caller


async def _flush_unique_email(session: SessionDep, email: str) -> None:
    """Flush, turning a lost race on the unique email into 409 instead of a 500."""
    try:
        await session.flush()
    except IntegrityError as exc:
        if "email" in str(exc.orig):
            raise _email_conflict(email) from None
        raise


@callers_router.post(
    "",
    response_model=CallerOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 409, 413),
    summary="Register a caller",
)
async def create_caller(body: CallerCreate, session: SessionDep, _: StaffPrincipal) -> Caller:
    email = str(body.email).lower()
    if await repository.email_taken(session, email):
        raise _email_conflict(email)
    caller = Caller(
        **body.model_dump(exclude={"metadata", "email"}),
        email=email,
        metadata_=body.metadata or {},
        allocation_status=CALLER_ALLOCATION.initial,
    )
    session.add(caller)
    await _flush_unique_email(session, email)
    await session.refresh(caller)
    return caller


@callers_router.get(
    "",
    response_model=CallerPage,
    responses=error_responses(400, 401, 403),
    summary="List callers (oldest first)",
    description=(
        "Filters: `isActive`, `allocationStatus`; `limit` 1-100 (default 50). Ordered by "
        "`(createdAt, id)` ascending: pass `nextCursor` back as `cursor` for the next page."
    ),
)
async def list_callers(
    session: SessionDep,
    _: StaffPrincipal,
    is_active: Annotated[bool | None, Query(alias="isActive")] = None,
    allocation_status: Annotated[
        CallerAllocationStatus | None, Query(alias="allocationStatus")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> CallerPage:
    callers = await repository.list_callers(
        session,
        is_active=is_active,
        allocation_status=allocation_status.value if allocation_status else None,
        limit=limit,
        after=decode_cursor(cursor),
    )
    return CallerPage(
        items=[CallerOut.model_validate(caller) for caller in callers],
        next_cursor=next_cursor(callers, limit),
    )


@callers_router.get(
    "/{caller_id}",
    response_model=CallerOut,
    responses=error_responses(400, 401, 403, 404),
    summary="Get one caller",
)
async def get_caller(caller_id: uuid.UUID, session: SessionDep, _: StaffPrincipal) -> Caller:
    return await _caller(session, caller_id)


@callers_router.patch(
    "/{caller_id}",
    response_model=CallerOut,
    responses=error_responses(400, 401, 403, 404, 409, 413),
    summary="Update a caller's name, timezone, languages or regions",
)
async def update_caller(
    caller_id: uuid.UUID, body: CallerUpdate, session: SessionDep, _: StaffPrincipal
) -> Caller:
    caller = await _caller(session, caller_id)
    changes = body.model_dump(exclude_unset=True, exclude_none=True)
    if "email" in changes:
        changes["email"] = str(changes["email"]).lower()
        if await repository.email_taken(session, changes["email"], except_caller=caller.id):
            raise _email_conflict(changes["email"])
    if "metadata" in changes:
        caller.metadata_ = changes.pop("metadata")
    for field, value in changes.items():
        setattr(caller, field, value)
    await _flush_unique_email(session, caller.email)
    await session.refresh(caller)
    return caller


@callers_router.get(
    "/{caller_id}/performance/latest",
    response_model=PerformanceOut,
    responses=error_responses(400, 401, 403, 404),
    summary="A caller's latest performance metrics",
)
async def get_latest_caller_performance(
    caller_id: uuid.UUID, session: SessionDep, _: StaffPrincipal
) -> CallerPerformanceMetric:
    await _caller(session, caller_id)
    metric = await repository.latest_performance(session, caller_id)
    if metric is None:
        raise NotFound(
            f"caller {caller_id} has no performance snapshot yet",
            details={"callerId": str(caller_id)},
        )
    return metric


STATUS_DESCRIPTION = """Staff actions on a caller's status, each with a required `reason`:

| `action` | who | from | to |
| --- | --- | --- | --- |
| `pause` | admin, ops | a working status (ACTIVE, AT_RISK, ...) | PAUSED_LOW_DIAL_RATE |
| `resume` | admin, ops | PAUSED_LOW_DIAL_RATE | ACTIVE |
| `clear_fraud` | admin | RESTRICTED_FRAUD (after review) | ACTIVE |
| `suspend` | admin | any status but SUSPENDED (RESTRICTED_FRAUD after review) | SUSPENDED |
| `reactivate` | admin | SUSPENDED, or a deactivated caller | ACTIVE / switched back on |
| `deactivate` | admin | an active caller | switched off (`isActive: false`), status kept |

Every move goes through the caller allocation state machine (a move it refuses, or an action
outside its statuses, is **409** `invalid_transition`; ops taking an admin action is **403**),
is recorded as a system event with the token's user and the reason, and returns the caller's
undialled (ASSIGNED) task to the pool (`releasedTaskIds`)."""


@callers_router.post(
    "/{caller_id}/status",
    response_model=CallerStatusResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413),
    summary="Pause, resume, review, suspend, reactivate or deactivate a caller",
    description=STATUS_DESCRIPTION,
)
async def change_caller_status(
    caller_id: uuid.UUID,
    body: CallerStatusRequest,
    session: SessionDep,
    principal: StaffPrincipal,
    now: NowDep,
) -> CallerStatusResponse:
    caller = await repository.find_caller(session, str(caller_id), lock=True)
    if caller is None:
        raise NotFound(f"caller {caller_id} not found", details={"callerId": str(caller_id)})
    change = await service.change_caller_status(
        session,
        caller,
        body.action,
        reason=body.reason,
        actor=f"{principal.role.value}:{principal.user_id}",
        ops=principal.role is Role.OPS,
        now=now,
    )
    await session.refresh(caller)
    return CallerStatusResponse(
        caller=CallerOut.model_validate(caller),
        action=body.action,
        from_status=change.from_status,
        released_task_ids=change.released_task_ids,
    )


# The sign-up of an expert, recorded by an operator: its effects are on call tasks and leads.
experts_router = APIRouter(prefix="/api/v1", tags=["experts"])


@experts_router.post(
    "/experts/{expert_id}/signup",
    response_model=SignupRecorded,
    responses=error_responses(400, 401, 403, 404, 413),
    summary="Record that the expert signed up (when the sign-up site's webhook did not)",
    description="Writes the expert's `signedUpAt` (the first sign-up wins), moves their leads "
    "to CONVERTED (from ENRICHED, OUTREACH_PENDING, CONTACTED or REPLIED; leads still being "
    "enriched, or DISQUALIFIED, keep their status), cancels their open signup-chase tasks and "
    "stops new ones. Idempotent: a repeat answers 200 with `alreadySignedUp: true` and changes "
    "nothing. Audited as an `expert.signed_up` system event with the operator.",
)
async def record_signup(
    expert_id: uuid.UUID,
    session: SessionDep,
    principal: StaffPrincipal,
    now: NowDep,
    body: Annotated[SignupRecord | None, Body()] = None,
) -> SignupRecorded:
    expert = await repository.find_expert_for_signup(session, expert_id=expert_id, email=None)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    record = body or SignupRecord()
    result = await service.record_signup(
        session,
        expert,
        signed_up_at=record.signed_up_at or now,
        actor=f"{principal.role.value}:{principal.user_id}",
        now=now,
        source="ops",
        note=record.note,
    )
    return SignupRecorded(
        expert_id=result.expert_id,
        signed_up_at=result.signed_up_at,
        already_signed_up=not result.changed,
        converted_leads=result.converted_leads,
        cancelled_task_ids=result.cancelled_task_ids,
    )
