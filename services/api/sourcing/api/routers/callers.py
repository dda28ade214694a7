"""Callers and their latest performance snapshot (§4.4)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status
from sqlalchemy.exc import IntegrityError

from sourcing.api.repositories import callers as repository
from sourcing.api.schemas import (
    CallerCreate,
    CallerOut,
    CallerStatusRequest,
    CallerStatusResponse,
    CallerUpdate,
    PerformanceOut,
)
from sourcing.common import allocation
from sourcing.common.auth import Role
from sourcing.common.errors import Conflict, NotFound
from sourcing.common.models import Caller, CallerPerformanceMetric
from sourcing.common.statemachines import CALLER_ALLOCATION
from sourcing.common.web import NowDep, SessionDep, StaffPrincipal, error_responses

router = APIRouter(prefix="/api/v1/callers", tags=["callers"])


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


@router.post(
    "",
    response_model=CallerOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 409, 413),
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


@router.get("/{caller_id}", response_model=CallerOut, responses=error_responses(400, 401, 403, 404))
async def get_caller(caller_id: uuid.UUID, session: SessionDep, _: StaffPrincipal) -> Caller:
    return await _caller(session, caller_id)


@router.patch(
    "/{caller_id}",
    response_model=CallerOut,
    responses=error_responses(400, 401, 403, 404, 409, 413),
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


@router.get(
    "/{caller_id}/performance/latest",
    response_model=PerformanceOut,
    responses=error_responses(400, 401, 403, 404),
)
async def latest_performance(
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


@router.post(
    "/{caller_id}/status",
    response_model=CallerStatusResponse,
    responses=error_responses(400, 401, 403, 404, 409, 413),
    summary="Pause, resume, review, suspend, reactivate or deactivate a caller",
    description=STATUS_DESCRIPTION,
)
async def change_status(
    caller_id: uuid.UUID,
    body: CallerStatusRequest,
    session: SessionDep,
    principal: StaffPrincipal,
    now: NowDep,
) -> CallerStatusResponse:
    caller = await allocation.find_caller(session, str(caller_id), lock=True)
    if caller is None:
        raise NotFound(f"caller {caller_id} not found", details={"callerId": str(caller_id)})
    change = await allocation.change_caller_status(
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
