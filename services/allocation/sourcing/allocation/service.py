"""The allocation service's rules: a caller's next call task (API and agent), caller status
actions, outcomes, follow-ups, sign-ups, project changes and the scheduler's sweeps.

Who gets what
-------------
A caller asking for work (``GET /api/v1/call-tasks/current`` or the ``call-allocation`` agent)
gets, in this order:

1. a refusal if their allocation status forbids work: ``PAUSED_LOW_DIAL_RATE`` → 409
   ``caller_paused`` (resume by dialling / ask ops), ``RESTRICTED_FRAUD`` and ``SUSPENDED`` →
   403 ``caller_restricted`` (admin review); a deactivated caller → 403 ``caller_inactive``;
2. their active task (ASSIGNED or DIALING) if they have one;
3. else the best PENDING task they may take, assigned atomically: task region in the caller's
   ``region_iso_codes`` and task language in the caller's ``language_codes`` (each only when
   the task has one), the expert inside their local calling window
   (``CALLING_WINDOW_START_HOUR`` ≤ local hour < ``CALLING_WINDOW_END_HOUR`` in the expert's
   timezone, else their country's main zone), the expert not suppressed, the
   project ACTIVE, ``available_after`` passed; highest ``priority`` (the project's), then
   ``ranking_score``, then oldest first. The candidate is taken with
   ``FOR UPDATE SKIP LOCKED LIMIT 1`` inside the assigning ``UPDATE``, so concurrent callers
   never receive the same task; the partial unique index ``uq_call_tasks_active_caller_id``
   (one active task per caller) is the final guard;
4. else nothing: the caller becomes ``IDLE_NO_AVAILABLE_TASKS`` when the state machine allows.

Every move is audited (``call_task.assigned``, ``call_task.expired``,
``caller.allocation_status_changed`` with its history row). All of it is one SQL statement,
one round trip per request (:func:`assign_next_task`,
:func:`sourcing.allocation.repository.assign_from_pool`); its pool query walks
``ix_call_tasks_pending_allocation`` (``priority DESC, ranking_score DESC, created_at`` where
PENDING) and stops at the first row that passes the filters.

Assigned tasks carry ``expires_at = now + CALL_TASK_DIAL_DEADLINE_SECONDS``; one not dialled
by then is moved ``ASSIGNED → EXPIRED → PENDING`` (back to the pool) by the same statement:
every caller's (at most ``ALLOCATION_EXPIRY_BATCH_SIZE``) when the agent pre-assigns and at
most every ``ALLOCATION_EXPIRY_SWEEP_SECONDS`` on the gateway (:class:`ExpirySweep`), and a
caller's own stale task before they are given another.

Tasks enter the pool from the sourcing pipeline (``call-task.requested.v1``: one initial task
per callable expert and project, :func:`ensure_initial_call_task`), from retries and signup
chases (below); a project's priority and closing move them (:func:`reprioritise_project_tasks`,
:func:`cancel_project_tasks`, :func:`apply_project_change`). Only an ACTIVE project gets new
initial tasks: a PAUSED one's experts get theirs when it resumes (:func:`apply_project_change`).

Caller presence, shifts and status moves are :mod:`sourcing.people.callers` (the calls service
applies them too).

Time is always passed in (``now``), never read here.
"""

from __future__ import annotations

import logging
import string
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any, Protocol
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation import repository
from sourcing.allocation.settings import AllocationSettings
from sourcing.common.db import ResultRow, Statements
from sourcing.common.errors import Conflict, Forbidden, InvalidTransition, NotFound
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.allocation import CallTaskRequested, CallTaskTrigger, ProjectChanged
from sourcing.common.messages.outreach import SheetSyncRequested
from sourcing.common.models import Caller, CallTask, Expert, SignupChase, SystemEvent
from sourcing.common.models.enums import (
    MAX_SIGNUP_CHASES_PER_DAY,
    CallOutcome,
    CallTaskKind,
    SuppressionReason,
)
from sourcing.common.statemachines import (
    CALL_TASK,
    CALLER_ALLOCATION,
    LEAD,
    PROJECT,
    CallerAllocationStatus,
    CallTaskStatus,
    LeadStatus,
    ProjectStatus,
)
from sourcing.common.transitions import move
from sourcing.people.callers import presence_cutoff, set_caller_status, shift_gap
from sourcing.people.timezones import country_timezone, in_calling_window

log = logging.getLogger("sourcing.allocation")

OPEN_TASK_INDEX = "uq_call_tasks_open_project_id_expert_id"

NO_AVAILABLE_TASKS = "NO_AVAILABLE_TASKS"

# A project in one of these statuses (the project machine's terminal ones, COMPLETED and
# ARCHIVED) has no call tasks to work: its open ones are cancelled.
CLOSED_PROJECT_STATUSES = PROJECT.terminal

_S = CallTaskStatus
_A = CallerAllocationStatus


# --- refusals -------------------------------------------------------------------------------


class CallerNotRegistered(Forbidden):
    """The token's user id names no Caller (by id or email)."""

    code = "caller_not_registered"


class CallerInactive(Forbidden):
    code = "caller_inactive"


class CallerPaused(Conflict):
    """PAUSED_LOW_DIAL_RATE: no new work until the caller dials again (409)."""

    code = "caller_paused"


class CallerRestricted(Forbidden):
    """RESTRICTED_FRAUD or SUSPENDED: no work until an admin reviews the caller (403)."""

    code = "caller_restricted"


# The statuses that get no work, and how to get back to it (a deactivated caller gets none
# either).
HOW_TO_RESUME = {
    _A.PAUSED_LOW_DIAL_RATE.value: (
        "Your dial rate stayed too low for 10+ minutes. Resume by making calls: dialling again "
        "returns you to ACTIVE; ops or an admin can also reactivate you."
    ),
    _A.RESTRICTED_FRAUD.value: (
        "Short calls or calls outside experts' local hours were detected. An admin must review "
        "your calls before you can take tasks again."
    ),
    _A.SUSPENDED.value: "Your account is suspended by an admin. Contact your administrator.",
}


class CallerStatus(Protocol):
    """What a refusal reads of a caller (a :class:`Caller` row, or :class:`CallerState`)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def email(self) -> str: ...
    @property
    def is_active(self) -> bool: ...
    @property
    def allocation_status(self) -> str: ...
    @property
    def status_reason(self) -> str | None: ...
    @property
    def status_changed_at(self) -> datetime | None: ...


def refusal_for(caller: CallerStatus) -> Forbidden | Conflict | None:
    """Why ``caller`` may not take work now, as the error to raise (None: they may)."""
    status = caller.allocation_status
    details: dict[str, Any] = {
        "callerId": str(caller.id),
        "allocationStatus": status,
        "statusReason": caller.status_reason,
        "statusChangedAt": caller.status_changed_at.isoformat()
        if caller.status_changed_at
        else None,
    }
    if not caller.is_active:
        return CallerInactive(
            f"caller {caller.email} is deactivated and gets no call tasks",
            details={**details, "howToResume": "Ask an admin to reactivate your account."},
        )
    if status == _A.PAUSED_LOW_DIAL_RATE.value:
        return CallerPaused(
            "allocation paused: dial rate too low (PAUSED_LOW_DIAL_RATE)",
            details={**details, "howToResume": HOW_TO_RESUME[status]},
        )
    if status in (_A.RESTRICTED_FRAUD.value, _A.SUSPENDED.value):
        return CallerRestricted(
            f"allocation blocked: caller is {status}",
            details={**details, "howToResume": HOW_TO_RESUME[status]},
        )
    return None


# --- the calling window ---------------------------------------------------------------------
#
# The window rule is :func:`sourcing.people.timezones.in_calling_window` (call validation
# uses it for timezone mismatches). The pool query does not convert timezones per row: it
# compares the expert's zone (else their country) with the zones (countries) inside the window
# at ``now``, computed here once per minute. An expert whose zone is not a known IANA name is not
# callable; one with neither zone nor a known country is (nothing says it is night there).


@lru_cache(maxsize=1)
def _known_zones() -> tuple[str, ...]:
    return tuple(sorted(available_timezones()))


@lru_cache(maxsize=1)
def _country_zones() -> dict[str, ZoneInfo]:
    letters = string.ascii_uppercase
    zones: dict[str, ZoneInfo] = {}
    for code in (a + b for a in letters for b in letters):
        zone = country_timezone(code)
        if zone is not None:
            zones[code] = zone
    return zones


@dataclass(frozen=True, slots=True)
class OpenWindow:
    """Zones and countries inside the calling window at one minute."""

    zones: tuple[str, ...]
    countries: tuple[str, ...]
    known_countries: tuple[str, ...]


@lru_cache(maxsize=8)
def _open_window(minute: datetime, start_hour: int, end_hour: int) -> OpenWindow:
    def inside(zone: ZoneInfo) -> bool:
        return in_calling_window(minute, zone, start_hour=start_hour, end_hour=end_hour)

    zones = tuple(name for name in _known_zones() if inside(ZoneInfo(name)))
    country_zones = _country_zones()
    countries = tuple(code for code, zone in country_zones.items() if inside(zone))
    return OpenWindow(zones, countries, tuple(country_zones))


def open_window(now: datetime, settings: AllocationSettings) -> OpenWindow:
    """The zones and countries where ``now`` is inside the calling window (cached a minute)."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return _open_window(
        minute, settings.CALLING_WINDOW_START_HOUR, settings.CALLING_WINDOW_END_HOUR
    )


# --- caller status --------------------------------------------------------------------------


class CallerAction(StrEnum):
    """What ``POST /api/v1/callers/{callerId}/status`` does (table in :data:`CALLER_ACTIONS`)."""

    PAUSE = "pause"
    RESUME = "resume"
    CLEAR_FRAUD = "clear_fraud"
    SUSPEND = "suspend"
    REACTIVATE = "reactivate"
    DEACTIVATE = "deactivate"


@dataclass(frozen=True, slots=True)
class CallerActionRule:
    """An action's target status (None: the employment switch ``is_active`` only), the statuses
    it applies to, and whether ops may take it (else admins only)."""

    target: str | None
    sources: frozenset[str]
    ops_allowed: bool = False


_WORKING = frozenset({_A.ACTIVE, _A.WARMUP_GRACE, _A.AT_RISK, _A.IDLE_NO_AVAILABLE_TASKS})
CALLER_ACTIONS: dict[CallerAction, CallerActionRule] = {
    # Ops pause = the status that refuses work with 409 caller_paused, reached through the
    # dial-rate ladder (ACTIVE → AT_RISK → PAUSED_LOW_DIAL_RATE), never skipping a step.
    CallerAction.PAUSE: CallerActionRule(_A.PAUSED_LOW_DIAL_RATE, _WORKING, ops_allowed=True),
    CallerAction.RESUME: CallerActionRule(
        _A.ACTIVE, frozenset({_A.PAUSED_LOW_DIAL_RATE}), ops_allowed=True
    ),
    CallerAction.CLEAR_FRAUD: CallerActionRule(_A.ACTIVE, frozenset({_A.RESTRICTED_FRAUD})),
    CallerAction.SUSPEND: CallerActionRule(
        _A.SUSPENDED, _WORKING | {_A.PAUSED_LOW_DIAL_RATE, _A.RESTRICTED_FRAUD}
    ),
    CallerAction.REACTIVATE: CallerActionRule(_A.ACTIVE, frozenset({_A.SUSPENDED})),
    CallerAction.DEACTIVATE: CallerActionRule(None, frozenset(CALLER_ALLOCATION.states)),
}


@dataclass(frozen=True, slots=True)
class CallerStatusChange:
    from_status: str
    to_status: str
    was_active: bool
    is_active: bool
    released_task_ids: list[uuid.UUID]


def _refuse(caller: Caller, target: str, allowed: Iterable[str]) -> InvalidTransition:
    return InvalidTransition(
        CALLER_ALLOCATION.name, caller.allocation_status, target, allowed=allowed
    )


async def change_caller_status(
    session: AsyncSession,
    caller: Caller,
    action: CallerAction,
    *,
    reason: str,
    actor: str,
    ops: bool,
    now: datetime,
) -> CallerStatusChange:
    """Staff's change of a caller's status (``ops``: the requester is ops, not admin).

    Admin-only actions by ops are 403; an action outside its statuses (or any action on a
    deactivated caller but ``reactivate``) is 409 ``invalid_transition``. Every status move goes
    through :func:`set_caller_status` (history + ``caller.allocation_status_changed``); the
    request is audited as ``caller.status_action`` with the actor and reason; the caller's
    undialled task returns to the pool. ``reactivate`` also switches a deactivated caller back
    on (a SUSPENDED one also back to ACTIVE); ``deactivate`` switches ``is_active`` off.
    """
    rule = CALLER_ACTIONS[action]
    if ops and not rule.ops_allowed:
        raise Forbidden(
            f"only an admin may {action.value} a caller",
            details={"action": action.value, "allowedForOps": ["pause", "resume"]},
        )
    from_status, was_active = caller.allocation_status, caller.is_active
    if action is CallerAction.DEACTIVATE:
        if not was_active:
            raise InvalidTransition(
                "caller",
                "inactive",
                "inactive",
                message=f"caller {caller.email} is already deactivated",
            )
        caller.is_active = False
    elif action is CallerAction.REACTIVATE and not was_active:
        caller.is_active = True
        if from_status == _A.SUSPENDED:
            await set_caller_status(
                session, caller, _A.ACTIVE.value, reason=reason, actor=actor, now=now
            )
    else:
        assert rule.target is not None  # noqa: S101 - narrows the type: only reactivate has none
        if not was_active:
            raise InvalidTransition(
                "caller",
                "inactive",
                rule.target,
                message=f"caller {caller.email} is deactivated: only reactivate applies",
            )
        if from_status not in rule.sources:
            raise _refuse(caller, rule.target, sorted(rule.sources))
        path = CALLER_ALLOCATION.path(
            from_status, rule.target, avoid=(_A.RESTRICTED_FRAUD, _A.SUSPENDED)
        )
        if not path:
            raise _refuse(caller, rule.target, CALLER_ALLOCATION.next_states(from_status))
        for status in path:
            await set_caller_status(session, caller, status, reason=reason, actor=actor, now=now)
    released = await release_assigned_tasks(
        session, [caller.id], reason=f"caller {action.value}: {reason}", actor=actor, now=now
    )
    change = CallerStatusChange(
        from_status, caller.allocation_status, was_active, caller.is_active, released
    )
    session.add(
        SystemEvent(
            type="caller.status_action",
            entity_type="caller",
            entity_id=caller.id,
            actor=actor,
            correlation_id=correlation_id_var.get(),
            data={
                "action": action.value,
                "reason": reason,
                "from": from_status,
                "to": change.to_status,
                "wasActive": was_active,
                "isActive": change.is_active,
                "releasedTaskIds": [str(task_id) for task_id in released],
            },
        )
    )
    await session.flush()
    return change


# --- presence -------------------------------------------------------------------------------
#
# The scheduler's call-allocation sweep and the allocation agent assign only to online callers
# (:func:`sourcing.people.callers.is_online`); :func:`release_offline_callers` marks the others
# offline and returns their undialled (ASSIGNED) task to the pool.


async def release_assigned_tasks(
    session: AsyncSession,
    caller_ids: list[uuid.UUID],
    *,
    reason: str,
    actor: str,
    now: datetime,
) -> list[uuid.UUID]:
    """Return the callers' undialled (ASSIGNED) tasks to the pool (``ASSIGNED → PENDING``),
    audited as ``call_task.released``; a DIALING task stays with its call. Returns their ids."""
    if not caller_ids:
        return []
    CALL_TASK.assert_transition(_S.ASSIGNED, _S.PENDING)
    rows = await repository.release_assigned(session, caller_ids, reason=reason, now=now)
    correlation_id = correlation_id_var.get()
    session.add_all(
        SystemEvent(
            type="call_task.released",
            entity_type="call_task",
            entity_id=task_id,
            actor=actor,
            correlation_id=correlation_id,
            data={
                "from": _S.ASSIGNED.value,
                "to": _S.PENDING.value,
                "reason": reason,
                "previousCallerId": str(caller_id),
            },
        )
        for task_id, caller_id in rows
    )
    return [task_id for task_id, _ in rows]


async def release_offline_callers(
    session: AsyncSession, *, now: datetime, settings: AllocationSettings, actor: str
) -> list[uuid.UUID]:
    """Mark callers idle for ``CALLER_PRESENCE_TIMEOUT_SECONDS`` offline and release their
    undialled tasks. Callers another transaction holds are left for the next sweep (taken in
    id order, like the calls lanes take them). Returns the callers now offline."""
    offline = await repository.mark_offline(session, seen_by=presence_cutoff(now, settings))
    await release_assigned_tasks(
        session, offline, reason="caller went offline", actor=actor, now=now
    )
    return offline


# --- allocation -----------------------------------------------------------------------------

# The statuses an operator may return to the pool.
REQUEUABLE = tuple(status for status in CALL_TASK.states if CALL_TASK.can(status, _S.PENDING.value))

# What the statement stores on the caller's move to ACTIVE or IDLE_NO_AVAILABLE_TASKS.
BECAME_ACTIVE = "a call task became available"
BECAME_IDLE = "no call task available for this caller's regions, languages and hours"
# The statuses a caller may leave for IDLE_NO_AVAILABLE_TASKS when nothing is available.
IDLE_SOURCES = tuple(
    status
    for status in CALLER_ALLOCATION.states
    if status != _A.IDLE_NO_AVAILABLE_TASKS
    and CALLER_ALLOCATION.can(status, _A.IDLE_NO_AVAILABLE_TASKS.value)
)


@dataclass(frozen=True, slots=True)
class CallerState:
    """The caller as the allocation statement locked them (what a refusal tells)."""

    id: uuid.UUID
    email: str
    is_active: bool
    allocation_status: str
    status_reason: str | None
    status_changed_at: datetime | None


@dataclass(frozen=True, slots=True)
class Allocation:
    """What one request for work did: the caller (None: no such caller), whether they may
    work (``refusal`` says why not; an offline caller may not either when only online callers
    are served), their task (``newly_assigned`` when given just now) as the statement's row
    (the task's columns, ``expert_*``, ``project_name``), their status after."""

    caller: CallerState | None
    may_work: bool
    task: ResultRow | None = None
    allocation_status: str | None = None

    @property
    def refusal(self) -> Forbidden | Conflict | None:
        return refusal_for(self.caller) if self.caller is not None else None

    @property
    def task_id(self) -> uuid.UUID | None:
        return self.task.id if self.task is not None else None

    @property
    def newly_assigned(self) -> bool:
        return bool(self.task is not None and self.task.newly_assigned)

    @property
    def reason(self) -> str | None:
        return NO_AVAILABLE_TASKS if self.task is None else None


def _caller_reference(user_id: str) -> tuple[bool, dict[str, Any]]:
    """A token's ``userId`` names the caller by id, else by email (case-insensitive)."""
    try:
        return False, {"p_caller_id": uuid.UUID(user_id)}
    except ValueError:
        return True, {"p_caller_email": user_id.strip().lower()}


async def assign_next_task(
    statements: Statements,
    user_id: str,
    *,
    now: datetime,
    settings: AllocationSettings,
    actor: str | None,
    sweep: bool = True,
    task_request: bool = False,
    online_only: bool = False,
) -> Allocation:
    """The allocation rule (module docstring) in one statement, one round trip
    (:func:`sourcing.allocation.repository.assign_from_pool`) run by ``statements``: in the
    caller's unit of work (the agent), or in its own transaction (``GET /call-tasks/current``);
    never commits.

    ``user_id`` names the caller (id or email); ``actor`` of the audit rows, None for the
    caller themself (``caller:<id>``). ``sweep``: return every caller's stale
    assignments to the pool too (the caller's own always are). ``task_request``: the caller
    asked (``GET /call-tasks/current``): the request is stamped (shift, presence).
    ``online_only``: an offline caller gets nothing (the agent's pre-assignment). A caller who
    may not work changes nothing of theirs; the caller decides what a refusal means.

    The statement works on one snapshot: when it returned tasks to the pool and gave the caller
    none, or waited for a change to the caller's row, it runs once more (in a unit of work
    holding the caller's lock by then), so what it expired is in the pool and a concurrent
    request's assignment is seen. A run that is still unsettled neither assigns nor idles.
    """
    by_email, caller = _caller_reference(user_id)
    CALL_TASK.assert_transition(_S.ASSIGNED, _S.EXPIRED)
    CALL_TASK.assert_transition(_S.EXPIRED, _S.PENDING)
    CALL_TASK.assert_transition(_S.PENDING, _S.ASSIGNED)
    window = open_window(now, settings)
    parameters: dict[str, Any] = {
        **caller,
        "p_now": now,
        "p_expires_at": now + timedelta(seconds=settings.CALL_TASK_DIAL_DEADLINE_SECONDS),
        "p_sweep": sweep,
        "p_expiry_limit": settings.ALLOCATION_EXPIRY_BATCH_SIZE,
        "p_task_request": task_request,
        "p_shift_gap": shift_gap(settings),
        "p_online_after": presence_cutoff(now, settings) if online_only else None,
        "p_refused_statuses": list(HOW_TO_RESUME),
        "p_idle_sources": list(IDLE_SOURCES),
        "p_reason_active": BECAME_ACTIVE,
        "p_reason_idle": BECAME_IDLE,
        "p_actor": actor,
        "p_correlation_id": correlation_id_var.get(),
        "open_zones": list(window.zones),
        "open_countries": list(window.countries),
        "known_countries": list(window.known_countries),
    }
    row = await repository.assign_from_pool(statements, parameters, by_email=by_email)
    if row.may_work and row.id is None and (row.returned or not row.settled):
        row = await repository.assign_from_pool(
            statements, {**parameters, "p_sweep": False}, by_email=by_email
        )
    if row.caller_id is None:
        return Allocation(None, may_work=False)
    state = CallerState(
        row.caller_id,
        row.caller_email,
        row.caller_is_active,
        row.caller_status,
        row.caller_status_reason,
        row.caller_status_changed_at,
    )
    return Allocation(
        state,
        may_work=bool(row.may_work),
        task=row if row.id is not None else None,
        allocation_status=row.allocation_status,
    )


@dataclass(slots=True)
class ExpirySweep:
    """How often one process sweeps every caller's stale assignments on a hot request path.

    Every task request used to run the sweep: more work per request for work that only needs
    doing every few seconds. A caller's own stale task never waits for it
    (:func:`assign_next_task` expires it first).
    """

    interval: timedelta
    last: datetime | None = None

    def due(self, now: datetime) -> bool:
        """Whether to sweep at ``now`` (the clock going backwards counts as due)."""
        if self.last is not None and timedelta(0) <= now - self.last < self.interval:
            return False
        self.last = now
        return True


# --- operator requeue -----------------------------------------------------------------------


async def requeue_task(
    statements: Statements, task_id: uuid.UUID, *, reason: str, actor: str, now: datetime
) -> ResultRow:
    """Put a stalled task back in the pool (``ASSIGNED/DIALING/EXPIRED → PENDING``), unassigned
    and audited (``call_task.requeued``), in one statement; returns the task's view row
    (:meth:`sourcing.allocation.schemas.CallTaskOut.of_row`)."""
    row = await repository.requeue(
        statements,
        {
            "p_task_id": task_id,
            "p_now": now,
            "p_reason": reason,
            "p_actor": actor,
            "p_correlation_id": correlation_id_var.get(),
            "p_from_statuses": list(REQUEUABLE),
        },
    )
    if row.found_status is None:
        raise NotFound(f"call task {task_id} not found", details={"taskId": str(task_id)})
    if row.id is None:
        raise InvalidTransition(
            CALL_TASK.name,
            row.found_status,
            _S.PENDING.value,
            allowed=CALL_TASK.next_states(row.found_status),
        )
    return row


# --- outcomes -------------------------------------------------------------------------------


@dataclass(slots=True)
class OutcomeResult:
    task: CallTask
    follow_up_task_id: uuid.UUID | None = None
    follow_up_available_after: datetime | None = None
    skipped: str | None = None  # why no follow-up task was created
    cancelled_task_ids: list[uuid.UUID] = field(default_factory=list)
    disqualified_leads: int = 0


def _follow_up(source: CallTask, *, kind: CallTaskKind, available_after: datetime) -> CallTask:
    return CallTask(
        project_id=source.project_id,
        expert_id=source.expert_id,
        lead_id=source.lead_id,
        status=_S.PENDING.value,
        kind=kind.value,
        priority=source.priority,
        ranking_score=source.ranking_score,
        region_iso=source.region_iso,
        language_code=source.language_code,
        phone_number=source.phone_number,
        available_after=available_after,
        chase_of_task_id=source.id,
        correlation_id=correlation_id_var.get(),
    )


async def _add_follow_up(session: AsyncSession, task: CallTask) -> bool:
    """Insert a follow-up task; False when the expert already has an open task in the project."""
    try:
        async with session.begin_nested():
            session.add(task)
            await session.flush()
    except IntegrityError as exc:
        if OPEN_TASK_INDEX not in str(exc.orig):
            raise
        return False
    return True


async def schedule_retry(
    session: AsyncSession, source: CallTask, *, now: datetime, settings: AllocationSettings
) -> OutcomeResult:
    """RETRYABLE_REJECTION: the expert returns to the pool after ``RETRY_COOL_OFF_SECONDS``."""
    available_after = now + timedelta(seconds=settings.RETRY_COOL_OFF_SECONDS)
    retry = _follow_up(source, kind=CallTaskKind.RETRY, available_after=available_after)
    if not await _add_follow_up(session, retry):
        return OutcomeResult(source, skipped="the expert already has an open task in the project")
    return OutcomeResult(
        source, follow_up_task_id=retry.id, follow_up_available_after=available_after
    )


async def schedule_signup_chase(
    session: AsyncSession, source: CallTask, *, now: datetime, settings: AllocationSettings
) -> OutcomeResult:
    """A signup-chase task ``SIGNUP_CHASE_DELAY_SECONDS`` later, at most
    ``MAX_SIGNUP_CHASES_PER_DAY`` per expert per (UTC) day of scheduling; over the limit, or
    for an expert who signed up or is suppressed, nothing is scheduled (``skipped`` says why).

    The unique ``(expert_id, chase_date, chase_number)`` key with its 1..3 CHECK is the guard
    against two schedulers racing: the loser tries the next number, then gives up.
    """
    expert = await repository.get_expert(session, source.expert_id)
    if expert is None or expert.suppressed_at is not None:
        return OutcomeResult(source, skipped="the expert is suppressed")
    if expert.signed_up_at is not None:
        return OutcomeResult(source, skipped="the expert already signed up")
    chase_date = now.astimezone(UTC).date()
    taken = await repository.chases_on(session, expert_id=source.expert_id, chase_date=chase_date)
    available_after = now + timedelta(seconds=settings.SIGNUP_CHASE_DELAY_SECONDS)
    for number in range(taken + 1, MAX_SIGNUP_CHASES_PER_DAY + 1):
        chase = _follow_up(source, kind=CallTaskKind.SIGNUP_CHASE, available_after=available_after)
        try:
            async with session.begin_nested():
                session.add(chase)
                await session.flush()
                session.add(
                    SignupChase(
                        expert_id=source.expert_id,
                        project_id=source.project_id,
                        source_call_task_id=source.id,
                        chase_call_task_id=chase.id,
                        chase_date=chase_date,
                        chase_number=number,
                        correlation_id=correlation_id_var.get(),
                    )
                )
                await session.flush()
        except IntegrityError as exc:
            if OPEN_TASK_INDEX in str(exc.orig):
                return OutcomeResult(
                    source, skipped="the expert already has an open task in the project"
                )
            if "signup_chases" in str(exc.orig):
                continue  # a concurrent chase took this number
            raise
        return OutcomeResult(
            source, follow_up_task_id=chase.id, follow_up_available_after=available_after
        )
    return OutcomeResult(
        source,
        skipped=f"signup chase limit reached ({MAX_SIGNUP_CHASES_PER_DAY} per expert per day)",
    )


async def cancel_open_tasks(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
    actor: str,
    kind: CallTaskKind | None = None,
    keep_task_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """CANCEL the expert's open call tasks (only ``kind``'s when given), each audited
    (``call_task.cancelled``). Returns their ids."""
    open_tasks = await repository.open_tasks_of_expert(
        session, expert_id, kind=kind.value if kind else None, keep_task_id=keep_task_id
    )
    return _cancel(session, open_tasks, reason=reason, now=now, actor=actor)


def _cancel(
    session: AsyncSession,
    tasks: Sequence[CallTask],
    *,
    reason: str,
    now: datetime,
    actor: str,
    data: dict[str, Any] | None = None,
) -> list[uuid.UUID]:
    """Move open tasks to CANCELLED (:func:`move`, audited ``call_task.cancelled``); an
    ASSIGNED task goes back to the pool first: nobody holds it any more. Returns their ids."""
    cancelled: list[uuid.UUID] = []
    for task in tasks:
        previous_caller = task.caller_id
        assigned = task.status == _S.ASSIGNED.value
        move(
            session,
            task,
            _S.CANCELLED,
            actor=actor,
            reason=reason,
            now=now,
            via=[_S.PENDING] if assigned else [],
            event="cancelled",
            data={
                **(data or {}),
                "previousCallerId": str(previous_caller) if previous_caller else None,
            },
        )
        if assigned:
            task.caller_id = None
        cancelled.append(task.id)
    return cancelled


async def suppress_expert(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    reason: SuppressionReason,
    now: datetime,
    actor: str,
    source_call_task_id: uuid.UUID | None = None,
    note: str | None = None,
    keep_task_id: uuid.UUID | None = None,
) -> tuple[list[uuid.UUID], int]:
    """Never contact the expert again: the suppression row (idempotent), ``suppressed_at``, the
    expert's other open call tasks CANCELLED, their leads DISQUALIFIED (where the lead machine
    allows). Returns (cancelled task ids, disqualified lead count)."""
    expert = await repository.lock_expert(session, expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    correlation_id = correlation_id_var.get()
    await repository.insert_suppression(
        session,
        {
            "expert_id": expert.id,
            "reason": reason.value,
            "note": note,
            "linkedin_url_normalized": expert.linkedin_url_normalized,
            "email": expert.primary_email,
            "source_call_task_id": source_call_task_id,
            "actor": actor,
            "correlation_id": correlation_id,
        },
    )
    if expert.suppressed_at is None:
        expert.suppressed_at = now
    status_reason = f"expert suppressed ({reason.value})"
    cancelled = await cancel_open_tasks(
        session,
        expert.id,
        reason=status_reason,
        now=now,
        actor=actor,
        keep_task_id=keep_task_id,
    )
    disqualifiable = [
        state for state in LEAD.states if LEAD.can(state, LeadStatus.DISQUALIFIED.value)
    ]
    disqualified = len(
        await repository.move_leads(
            session,
            expert.id,
            from_statuses=disqualifiable,
            to_status=LeadStatus.DISQUALIFIED.value,
            reason=status_reason,
            now=now,
        )
    )
    session.add(
        SystemEvent(
            type="expert.suppressed",
            entity_type="expert",
            entity_id=expert.id,
            actor=actor,
            correlation_id=correlation_id,
            data={
                "reason": reason.value,
                "sourceCallTaskId": str(source_call_task_id) if source_call_task_id else None,
                "cancelledTaskIds": [str(task_id) for task_id in cancelled],
                "disqualifiedLeads": disqualified,
            },
        )
    )
    await session.flush()
    return cancelled, disqualified


async def record_outcome(
    session: AsyncSession,
    *,
    caller: Caller,
    task_id: uuid.UUID,
    outcome: CallOutcome,
    notes: str | None,
    now: datetime,
    settings: AllocationSettings,
) -> OutcomeResult:
    """A caller's outcome for their own task (§4.5) and its effects, audited and synced.

    Once per task, before or after the call's validation settled it. The task must be the
    caller's (else 404) and either still open (ASSIGNED moves ``ASSIGNED → DIALING →
    COMPLETED``, DIALING ``→ COMPLETED``: the Yay events of the call may still be on their way)
    or COMPLETED by the validation (an answered call) with no outcome yet: the status stays,
    the outcome is added. Anything else is 409 ``invalid_transition``: a task with an outcome
    (a second outcome), or one the call left CANCELLED, RESTRICTED or EXPIRED. The task row is
    locked first and the validation locks it too, so the outcome's effects happen exactly
    once whichever of the two comes first.
    """
    task = await repository.lock_task(session, task_id, refresh=True)
    if task is None or task.caller_id != caller.id:
        raise NotFound(
            f"call task {task_id} is not one of your tasks", details={"taskId": str(task_id)}
        )
    previous_status = task.status
    if task.outcome is not None:
        raise InvalidTransition(
            CALL_TASK.name,
            task.status,
            _S.COMPLETED.value,
            message=f"call task {task.id} already has the outcome {task.outcome}",
            extra={"outcome": task.outcome},
        )
    actor = f"caller:{caller.id}"
    if previous_status != _S.COMPLETED.value:
        dialing = previous_status == _S.ASSIGNED.value
        # Audited below with the outcome (call_task.outcome_recorded).
        move(
            session,
            task,
            _S.COMPLETED,
            actor=actor,
            reason=f"outcome {outcome.value}",
            now=now,
            via=[_S.DIALING] if dialing else [],
            event=None,
        )
        if dialing:
            task.dialing_started_at = task.dialing_started_at or now
        task.completed_at = now
    task.outcome = outcome.value
    task.outcome_at = now
    task.outcome_notes = notes
    await session.flush()  # the task leaves the open statuses before any follow-up is added
    if outcome is CallOutcome.INTERESTED_SIGNUP_LINK_SENT:
        result = await schedule_signup_chase(session, task, now=now, settings=settings)
    elif outcome is CallOutcome.RETRYABLE_REJECTION:
        result = await schedule_retry(session, task, now=now, settings=settings)
    else:
        cancelled, disqualified = await suppress_expert(
            session,
            task.expert_id,
            reason=SuppressionReason.NEVER_CONTACT_AGAIN,
            now=now,
            actor=actor,
            source_call_task_id=task.id,
            note=notes,
            keep_task_id=task.id,
        )
        result = OutcomeResult(task, cancelled_task_ids=cancelled, disqualified_leads=disqualified)
    session.add(
        SystemEvent(
            type="call_task.outcome_recorded",
            entity_type="call_task",
            entity_id=task.id,
            actor=actor,
            correlation_id=correlation_id_var.get(),
            data={
                "outcome": outcome.value,
                "from": previous_status,
                "to": task.status,
                "followUpTaskId": str(result.follow_up_task_id)
                if result.follow_up_task_id
                else None,
                "skipped": result.skipped,
                "cancelledTaskIds": [str(t) for t in result.cancelled_task_ids],
            },
        )
    )
    await publish(
        session, SheetSyncRequested.for_expert(project_id=task.project_id, expert_id=task.expert_id)
    )
    await session.flush()
    return result


# --- project changes ------------------------------------------------------------------------


async def reprioritise_project_tasks(
    session: AsyncSession, project_id: uuid.UUID, *, priority: int
) -> int:
    """The project's PENDING tasks take its new priority (the pool's first sort key).
    Returns how many."""
    return await repository.reprioritise_pending(session, project_id, priority=priority)


async def cancel_project_tasks(
    session: AsyncSession, project_id: uuid.UUID, *, project_status: str, now: datetime, actor: str
) -> list[uuid.UUID]:
    """A COMPLETED or ARCHIVED project's open tasks are CANCELLED, each audited
    (``call_task.cancelled``). Returns their ids."""
    tasks = await repository.open_tasks_of_project(session, project_id)
    cancelled = _cancel(
        session,
        tasks,
        reason=f"project {project_status}",
        now=now,
        actor=actor,
        data={"projectId": str(project_id)},
    )
    await session.flush()
    return cancelled


@dataclass(frozen=True, slots=True)
class ProjectChangeResult:
    """What one ``project.changed.v1`` did to the project's tasks."""

    cancelled: list[uuid.UUID] = field(default_factory=list)
    reprioritised: int = 0
    created: list[uuid.UUID] = field(default_factory=list)


async def create_held_back_tasks(
    session: AsyncSession, project_id: uuid.UUID, *, now: datetime, actor: str
) -> list[uuid.UUID]:
    """A PAUSED project is ACTIVE again: each of its experts gets the initial call task the
    pause held back (:func:`ensure_initial_call_task` decides, as for any request). Returns
    the new tasks' ids."""
    created: list[uuid.UUID] = []
    for expert_id in await repository.experts_of_project(session, project_id):
        request = CallTaskRequested(
            project_id=project_id, expert_id=expert_id, trigger=CallTaskTrigger.PROJECT_RESUMED
        )
        decision = await ensure_initial_call_task(session, request, now=now, actor=actor)
        if decision.created is not None:
            created.append(decision.created)
    return created


async def apply_project_change(
    session: AsyncSession, change: ProjectChanged, *, now: datetime
) -> ProjectChangeResult:
    """``project.changed.v1``: what ``PATCH /projects/{id}`` does to the project's tasks. A
    status change to COMPLETED or ARCHIVED cancels its open tasks (audited with the change's
    actor); back to ACTIVE, its experts get the initial tasks the pause held back; its PENDING
    tasks take its priority. Applying a change twice changes nothing."""
    cancelled: list[uuid.UUID] = []
    created: list[uuid.UUID] = []
    if change.status_changed and change.status in CLOSED_PROJECT_STATUSES:
        cancelled = await cancel_project_tasks(
            session, change.project_id, project_status=change.status, now=now, actor=change.actor
        )
    elif change.status_changed and change.status == ProjectStatus.ACTIVE:
        created = await create_held_back_tasks(
            session, change.project_id, now=now, actor=change.actor
        )
    reprioritised = await reprioritise_project_tasks(
        session, change.project_id, priority=change.priority
    )
    return ProjectChangeResult(cancelled=cancelled, reprioritised=reprioritised, created=created)


# --- sign-up --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignupResult:
    """What a sign-up changed (nothing on a replay: ``changed`` is False)."""

    expert_id: uuid.UUID
    signed_up_at: datetime
    changed: bool
    converted_leads: int = 0
    cancelled_task_ids: list[uuid.UUID] = field(default_factory=list)


async def record_signup(
    session: AsyncSession,
    expert: Expert,
    *,
    signed_up_at: datetime,
    actor: str,
    now: datetime,
    source: str,
    note: str | None = None,
) -> SignupResult:
    """The expert signed up: ``signed_up_at`` (the first one wins), their leads CONVERTED where
    the lead machine allows it (from ENRICHED, OUTREACH_PENDING, CONTACTED or REPLIED; leads
    still NEW, ENRICHING, ENRICHMENT_FAILED, or already DISQUALIFIED/CONVERTED, keep their
    status), their open SIGNUP_CHASE tasks CANCELLED; :func:`schedule_signup_chase` and the
    sign-up chase sweep (:func:`create_signup_chases`) schedule no more for them. Audited
    (``expert.signed_up``) when anything changed; a replay changes nothing. Lock the expert
    row first (:func:`sourcing.allocation.repository.find_expert_for_signup`)."""
    first = expert.signed_up_at is None
    if first:
        expert.signed_up_at = signed_up_at
    reason = "expert signed up"
    convertible = [state for state in LEAD.states if LEAD.can(state, LeadStatus.CONVERTED.value)]
    converted = await repository.move_leads(
        session,
        expert.id,
        from_statuses=convertible,
        to_status=LeadStatus.CONVERTED.value,
        reason=reason,
        now=now,
    )
    cancelled = await cancel_open_tasks(
        session, expert.id, reason=reason, now=now, actor=actor, kind=CallTaskKind.SIGNUP_CHASE
    )
    changed = first or bool(converted) or bool(cancelled)
    assert expert.signed_up_at is not None  # noqa: S101 - narrows the type: set just above
    if changed:
        session.add(
            SystemEvent(
                type="expert.signed_up",
                entity_type="expert",
                entity_id=expert.id,
                actor=actor,
                correlation_id=correlation_id_var.get(),
                data={
                    "source": source,
                    "signedUpAt": expert.signed_up_at.isoformat(),
                    "note": note,
                    "convertedLeadIds": [str(lead_id) for lead_id in converted],
                    "cancelledTaskIds": [str(task_id) for task_id in cancelled],
                },
            )
        )
    await session.flush()
    return SignupResult(
        expert_id=expert.id,
        signed_up_at=expert.signed_up_at,
        changed=changed,
        converted_leads=len(converted),
        cancelled_task_ids=cancelled,
    )


# --- the scheduler's sweeps -----------------------------------------------------------------

# The actor of the call-allocation sweep's audit rows (the scheduler's step 3 ran it before).
SWEEP_ACTOR = "scheduler"


async def sweep_call_allocation(
    session: AsyncSession, *, now: datetime, settings: AllocationSettings
) -> list[uuid.UUID]:
    """Mark idle callers offline (their undialled task back to the pool); returns the active,
    online callers, each to be asked for a task."""
    await release_offline_callers(session, now=now, settings=settings, actor=SWEEP_ACTOR)
    return await repository.active_caller_ids(session, seen_after=presence_cutoff(now, settings))


async def create_signup_chases(
    session: AsyncSession, *, now: datetime, settings: AllocationSettings, correlation_id: str
) -> int:
    """New PENDING ``SIGNUP_CHASE`` tasks for experts sent a signup link 24+ hours ago who have
    not signed up: at most one per expert per sweep day from here, at most
    ``MAX_SIGNUP_CHASES_PER_DAY`` per expert per day in all. Returns how many.

    Works with the outcome endpoint, which may already have scheduled a chase task
    (``available_after`` = outcome + 24 h): an expert with an open task in that project, or
    with a chase dated today, is skipped; the unique keys of ``signup_chases`` (expert, day,
    number) settle any race, the losing insert is rolled back to its savepoint and skipped.
    """
    today = now.astimezone(UTC).date()
    delay = timedelta(seconds=settings.SIGNUP_CHASE_DELAY_SECONDS)
    candidates = await repository.signup_chase_candidates(
        session,
        link_sent_before=now - delay,
        chase_date=today,
        limit=settings.SIGNUP_CHASE_BATCH_SIZE,
    )
    created = 0
    for candidate in candidates:
        number = (
            await repository.chases_on(session, expert_id=candidate.expert_id, chase_date=today) + 1
        )
        if number > MAX_SIGNUP_CHASES_PER_DAY:
            continue
        try:
            async with session.begin_nested():
                task = CallTask(
                    id=uuid.uuid4(),
                    project_id=candidate.project_id,
                    expert_id=candidate.expert_id,
                    status=CALL_TASK.initial,
                    status_changed_at=now,
                    kind=CallTaskKind.SIGNUP_CHASE.value,
                    priority=candidate.priority,
                    ranking_score=candidate.ranking_score,
                    region_iso=candidate.region_iso,
                    language_code=candidate.language_code,
                    phone_number=candidate.phone_number,
                    available_after=now,
                    chase_of_task_id=candidate.source_task_id,
                    correlation_id=correlation_id,
                )
                session.add(task)
                await session.flush()
                session.add(
                    SignupChase(
                        expert_id=candidate.expert_id,
                        project_id=candidate.project_id,
                        source_call_task_id=candidate.source_task_id,
                        chase_call_task_id=task.id,
                        chase_date=today,
                        chase_number=number,
                        correlation_id=correlation_id,
                    )
                )
                await session.flush()
        except IntegrityError:
            log.info(
                "signup chase already created elsewhere; skipped",
                extra={"expertId": str(candidate.expert_id)},
            )
            continue
        created += 1
    return created


# --- call tasks from the sourcing pipeline --------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallTaskDecision:
    """What one request did: ``created`` (a new task id), ``rescored`` pending tasks, or why
    nothing was created (``skipped``)."""

    created: uuid.UUID | None = None
    rescored: int = 0
    skipped: str | None = None


async def ensure_initial_call_task(
    session: AsyncSession, request: CallTaskRequested, *, now: datetime, actor: str
) -> CallTaskDecision:
    """The expert's initial call task in the project, decided from the database, never from
    the message, so a replay or a late message changes nothing:

    * no task when the project is gone or not ACTIVE (a PAUSED project's experts get theirs
      when it resumes: :func:`create_held_back_tasks`), the expert is suppressed (never
      contact again), signed up or has a CONVERTED lead in the project, or all their leads in
      the project are DISQUALIFIED, or they have no dialable (E.164) phone;
    * an expert who has (or had) any call task in the project gets no new initial one: their
      PENDING tasks only take the latest ranking score;
    * otherwise one PENDING ``INITIAL`` task with the project's priority, the latest ranking
      score, the expert's country as region, their first language and the E.164 phone. A
      task created before its project was PAUSED waits in the pool (allocation hands out tasks
      of ACTIVE projects only).

    The partial unique index on open tasks (``ON CONFLICT DO NOTHING``) is the final guard
    against two deliveries racing.
    """
    facts = await repository.call_task_facts(session, request.project_id, request.expert_id)
    if facts is None or facts.project_status != ProjectStatus.ACTIVE:
        return CallTaskDecision(skipped="the project or expert is gone, or the project not ACTIVE")
    if facts.suppressed:
        return CallTaskDecision(skipped="the expert must never be contacted again")
    if facts.signed_up or any(status == LeadStatus.CONVERTED.value for _, status in facts.leads):
        return CallTaskDecision(skipped="the expert is converted")
    callable_leads = [
        lead_id for lead_id, status in facts.leads if status != LeadStatus.DISQUALIFIED
    ]
    if not callable_leads:
        return CallTaskDecision(skipped="the expert has no qualified lead in the project")
    if facts.has_call_task:
        rescored = 0
        if facts.latest_score is not None:
            rescored = await repository.refresh_pending_scores(
                session, request.project_id, request.expert_id, score=facts.latest_score
            )
        return CallTaskDecision(rescored=rescored, skipped="the expert already has a call task")
    if facts.phone is None:
        return CallTaskDecision(skipped="the expert has no dialable phone")
    lead_id = request.lead_id if request.lead_id in callable_leads else callable_leads[0]
    task_id = await repository.insert_initial_task(
        session,
        {
            "id": uuid.uuid4(),
            "project_id": request.project_id,
            "expert_id": request.expert_id,
            "lead_id": lead_id,
            "now": now,
            "priority": facts.priority,
            "ranking_score": facts.latest_score if facts.latest_score is not None else 0.0,
            "region_iso": facts.country_iso.upper() if facts.country_iso else None,
            "language_code": facts.language_codes[0].lower() if facts.language_codes else None,
            "phone_number": facts.phone,
            "correlation_id": correlation_id_var.get(),
        },
        actor=actor,
        trigger=request.trigger.value,
    )
    if task_id is None:
        return CallTaskDecision(skipped="the expert already has an open call task")
    return CallTaskDecision(created=task_id)
