"""Call allocation: the one rule that hands a caller their next call task (API and agent).

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

The pool query walks ``ix_call_tasks_pending_allocation`` (``priority DESC, ranking_score
DESC, created_at`` where PENDING) and stops at the first row that passes the filters.

Assigned tasks carry ``expires_at = now + CALL_TASK_DIAL_DEADLINE_SECONDS``; one not dialled
by then is moved ``ASSIGNED → EXPIRED → PENDING`` (back to the pool) by
:func:`expire_stale_assignments`: the agent sweeps on every message, the gateway every
``ALLOCATION_EXPIRY_SWEEP_SECONDS`` (:class:`ExpirySweep`), and a caller's own stale task is
expired before they are given another.

Tasks enter the pool from the sourcing pipeline (the allocation service's
``call-task.requested.v1`` handler: one initial task per callable expert and project), from
retries and signup chases (below); a project's priority and closing move them
(:func:`reprioritise_project_tasks`, :func:`cancel_project_tasks`).

Time is always passed in (``now``), never read here.
"""

from __future__ import annotations

import string
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import lru_cache
from typing import Any
from zoneinfo import ZoneInfo, available_timezones

from sqlalchemy import (
    ARRAY,
    ColumnElement,
    DateTime,
    Text,
    all_,
    and_,
    any_,
    bindparam,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.config import Settings
from sourcing.common.errors import Conflict, Forbidden, InvalidTransition, NotFound
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.outreach import SheetSyncRequested
from sourcing.common.models import (
    Caller,
    CallerStatusHistory,
    CallTask,
    Expert,
    ExpertSuppression,
    Lead,
    Project,
    SignupChase,
    SystemEvent,
)
from sourcing.common.models.enums import (
    MAX_SIGNUP_CHASES_PER_DAY,
    CallOutcome,
    CallTaskKind,
    SuppressionReason,
)
from sourcing.common.statemachines import (
    CALL_TASK,
    CALL_TASK_ACTIVE_STATUSES,
    CALL_TASK_OPEN_STATUSES,
    CALLER_ALLOCATION,
    LEAD,
    CallerAllocationStatus,
    CallTaskStatus,
    LeadStatus,
    ProjectStatus,
)
from sourcing.common.transitions import move
from sourcing.people.timezones import country_timezone, in_calling_window

OPEN_TASK_INDEX = "uq_call_tasks_open_project_id_expert_id"

NO_AVAILABLE_TASKS = "NO_AVAILABLE_TASKS"

# A project in one of these statuses has no call tasks to work: its open ones are cancelled,
# no new ones are created.
CLOSED_PROJECT_STATUSES = frozenset({ProjectStatus.COMPLETED.value, ProjectStatus.ARCHIVED.value})

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


def refusal_for(caller: Caller) -> Forbidden | Conflict | None:
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
# The window rule is :func:`sourcing.common.policies.calls.in_calling_window` (call validation
# uses it for timezone mismatches). The query does not convert timezones per row: it compares
# the expert's zone (else their country) with the zones (countries) inside the window at
# ``now``, computed here once per minute. An expert whose zone is not a known IANA name is not
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


def open_window(now: datetime, settings: Settings) -> OpenWindow:
    """The zones and countries where ``now`` is inside the calling window (cached a minute)."""
    minute = now.astimezone(UTC).replace(second=0, microsecond=0)
    return _open_window(
        minute, settings.CALLING_WINDOW_START_HOUR, settings.CALLING_WINDOW_END_HOUR
    )


def _text_array(name: str) -> Any:
    return bindparam(name, type_=ARRAY(Text))


def _window_clause() -> ColumnElement[bool]:
    """The expert is inside the calling window (zones/countries bound per request, see
    :func:`_assignment_parameters`)."""
    country = func.upper(Expert.country_iso)
    return or_(
        Expert.timezone == any_(_text_array("open_zones")),
        and_(
            Expert.timezone.is_(None),
            or_(
                Expert.country_iso.is_(None),
                country == any_(_text_array("open_countries")),
                country != all_(_text_array("known_countries")),
            ),
        ),
    )


# --- lookups --------------------------------------------------------------------------------


async def find_caller(session: AsyncSession, user_id: str, *, lock: bool = False) -> Caller | None:
    """The Caller a token's ``userId`` names: their id, or their email (case-insensitive)."""
    try:
        condition: ColumnElement[bool] = Caller.id == uuid.UUID(user_id)
    except ValueError:
        condition = func.lower(Caller.email) == user_id.strip().lower()
    query = select(Caller).where(condition)
    if lock:
        query = query.with_for_update()
    return await session.scalar(query)


async def active_task(session: AsyncSession, caller_id: uuid.UUID) -> CallTask | None:
    return await session.scalar(
        select(CallTask).where(
            CallTask.caller_id == caller_id, CallTask.status.in_(CALL_TASK_ACTIVE_STATUSES)
        )
    )


# --- caller status --------------------------------------------------------------------------


async def set_caller_status(
    session: AsyncSession,
    caller: Caller,
    to_status: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
    metric_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> None:
    """Move the caller's allocation status (:func:`move`: machine and audit
    ``caller.allocation_status_changed``) with its history row."""
    correlation_id = correlation_id or correlation_id_var.get()
    from_status = move(
        session,
        caller,
        to_status,
        actor=actor,
        reason=reason,
        now=now,
        event="allocation_status_changed",
        correlation_id=correlation_id,
    )
    session.add(
        CallerStatusHistory(
            caller_id=caller.id,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor=actor,
            metric_id=metric_id,
            correlation_id=correlation_id,
        )
    )


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


def note_task_request(caller: Caller, *, now: datetime, settings: Settings) -> bool:
    """Stamp ``last_task_requested_at``; a request ``CALLER_SHIFT_GAP_SECONDS`` or more after the
    caller's last activity (shift start, dial or task request; or the first request ever)
    starts a shift (``shift_started_at = now``). Returns whether it did.

    The same notion of a shift as :func:`sourcing.common.policies.calls.shift_start_for_dial`;
    the performance service reads ``shift_started_at`` for the warm-up grace period.
    """
    activity = [
        moment
        for moment in (caller.shift_started_at, caller.last_dial_at, caller.last_task_requested_at)
        if moment is not None
    ]
    gap = timedelta(seconds=settings.CALLER_SHIFT_GAP_SECONDS)
    new_shift = caller.shift_started_at is None or not activity or now - max(activity) >= gap
    if new_shift:
        caller.shift_started_at = now
    caller.last_task_requested_at = now
    caller.last_seen_at = now  # presence: in the same caller-row UPDATE, no extra round trip
    return new_shift


# --- presence -------------------------------------------------------------------------------
#
# A caller is online from their first task request of a shift (``note_task_request``) until
# ``CALLER_PRESENCE_TIMEOUT_SECONDS`` pass without a task request or a call event of theirs
# (``note_call_activity``). The scheduler and the allocation agent assign only to online
# callers; ``release_offline_callers`` marks the others offline and returns their undialled
# (ASSIGNED) task to the pool. A call event never brings an offline caller back online: only
# asking for work does.


def presence_cutoff(now: datetime, settings: Settings) -> datetime:
    """A caller last seen at or before this moment is offline at ``now``."""
    return now - timedelta(seconds=settings.CALLER_PRESENCE_TIMEOUT_SECONDS)


def is_online(caller: Caller, *, now: datetime, settings: Settings) -> bool:
    seen = caller.last_seen_at
    return seen is not None and seen > presence_cutoff(now, settings)


def note_call_activity(caller: Caller, *, at: datetime, settings: Settings) -> None:
    """A call event of the caller at ``at`` keeps an online caller online."""
    if is_online(caller, now=at, settings=settings) and (
        caller.last_seen_at is None or at > caller.last_seen_at
    ):
        caller.last_seen_at = at


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
    held = (
        select(CallTask.id, CallTask.caller_id)
        .where(CallTask.caller_id.in_(caller_ids), CallTask.status == _S.ASSIGNED.value)
        .with_for_update()
        .cte("held")
    )
    rows = (
        await session.execute(
            update(CallTask)
            .where(CallTask.id == held.c.id)
            .values(
                status=_S.PENDING.value,
                status_reason=f"released: {reason}",
                status_changed_at=now,
                caller_id=None,
                assigned_at=None,
                expires_at=None,
                requeue_count=CallTask.requeue_count + 1,
            )
            .returning(CallTask.id, held.c.caller_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
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
    return [row[0] for row in rows]


async def release_offline_callers(
    session: AsyncSession, *, now: datetime, settings: Settings, actor: str
) -> list[uuid.UUID]:
    """Mark callers idle for ``CALLER_PRESENCE_TIMEOUT_SECONDS`` offline and release their
    undialled tasks. Callers another transaction holds are left for the next sweep (taken in
    id order, like the calls lanes take them). Returns the callers now offline."""
    idle = (
        select(Caller.id)
        .where(Caller.last_seen_at <= presence_cutoff(now, settings))
        .order_by(Caller.id)
        .with_for_update(skip_locked=True)
        .cte("idle")
    )
    offline = list(
        (
            await session.scalars(
                update(Caller)
                .where(Caller.id == idle.c.id)
                .values(last_seen_at=None)
                .returning(Caller.id)
                .execution_options(synchronize_session=False)
            )
        ).all()
    )
    await release_assigned_tasks(
        session, offline, reason="caller went offline", actor=actor, now=now
    )
    return offline


# --- expiry ---------------------------------------------------------------------------------


async def expire_stale_assignments(
    session: AsyncSession,
    *,
    now: datetime,
    limit: int = 500,
    actor: str = "call-allocation",
    caller_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Return ASSIGNED tasks whose dial deadline passed to the pool (``ASSIGNED → EXPIRED →
    PENDING``), only ``caller_id``'s when given; rows another transaction holds are left for
    the next sweep. Returns their ids.
    """
    CALL_TASK.assert_transition(_S.ASSIGNED, _S.EXPIRED)
    CALL_TASK.assert_transition(_S.EXPIRED, _S.PENDING)
    conditions = [CallTask.status == _S.ASSIGNED.value, CallTask.expires_at <= now]
    if caller_id is not None:
        conditions.append(CallTask.caller_id == caller_id)
    stale = (
        select(CallTask.id, CallTask.caller_id)
        .where(*conditions)
        .order_by(CallTask.expires_at)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .cte("stale")
    )
    rows = (
        await session.execute(
            update(CallTask)
            .where(CallTask.id == stale.c.id)
            .values(
                status=_S.PENDING.value,
                status_reason="dial deadline passed: EXPIRED, returned to the pool",
                status_changed_at=now,
                caller_id=None,
                assigned_at=None,
                expires_at=None,
                requeue_count=CallTask.requeue_count + 1,
            )
            .returning(CallTask.id, stale.c.caller_id, CallTask.project_id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    if rows:
        correlation_id = correlation_id_var.get()
        session.add_all(
            SystemEvent(
                type="call_task.expired",
                entity_type="call_task",
                entity_id=task_id,
                actor=actor,
                correlation_id=correlation_id,
                data={
                    "from": _S.ASSIGNED.value,
                    "via": _S.EXPIRED.value,
                    "to": _S.PENDING.value,
                    "callerId": str(caller_id) if caller_id else None,
                },
            )
            for task_id, caller_id, _project_id in rows
        )
    return [row[0] for row in rows]


# --- allocation -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Allocation:
    """What a caller gets: their task (``newly_assigned`` when given just now) or a reason."""

    task_id: uuid.UUID | None
    newly_assigned: bool = False
    reason: str | None = None


@lru_cache(maxsize=1)
def _assignment_statement() -> Any:
    """``UPDATE`` the best PENDING task the caller may take to ASSIGNED, returning its id.

    Built once with every varying value a bound parameter (:func:`_assignment_parameters`):
    building this statement per request cost more CPU than running it.
    """
    now = bindparam("p_now", type_=DateTime(timezone=True))
    candidate = (
        select(CallTask.id)
        .join(Expert, Expert.id == CallTask.expert_id)
        .join(Project, Project.id == CallTask.project_id)
        .where(
            CallTask.status == _S.PENDING.value,
            or_(CallTask.available_after.is_(None), CallTask.available_after <= now),
            or_(CallTask.region_iso.is_(None), CallTask.region_iso == any_(_text_array("regions"))),
            or_(
                CallTask.language_code.is_(None),
                func.lower(CallTask.language_code) == any_(_text_array("languages")),
            ),
            Expert.suppressed_at.is_(None),
            Project.status == ProjectStatus.ACTIVE.value,
            _window_clause(),
        )
        .order_by(CallTask.priority.desc(), CallTask.ranking_score.desc(), CallTask.created_at)
        .limit(1)
        .with_for_update(of=CallTask, skip_locked=True)
        .cte("candidate")
    )
    return (
        update(CallTask)
        .where(CallTask.id == candidate.c.id)
        .values(
            status=_S.ASSIGNED.value,
            status_reason=None,
            status_changed_at=now,
            caller_id=bindparam("p_caller_id"),
            assigned_at=now,
            expires_at=bindparam("p_expires_at"),
        )
        .returning(CallTask.id)
        .execution_options(synchronize_session=False)
    )


def _assignment_parameters(caller: Caller, *, now: datetime, settings: Settings) -> dict[str, Any]:
    window = open_window(now, settings)
    return {
        "p_now": now,
        "p_caller_id": caller.id,
        "p_expires_at": now + timedelta(seconds=settings.CALL_TASK_DIAL_DEADLINE_SECONDS),
        "regions": [code.upper() for code in caller.region_iso_codes],
        "languages": [code.lower() for code in caller.language_codes],
        "open_zones": list(window.zones),
        "open_countries": list(window.countries),
        "known_countries": list(window.known_countries),
    }


async def _take_from_pool(
    session: AsyncSession, caller: Caller, *, now: datetime, settings: Settings
) -> uuid.UUID | None:
    CALL_TASK.assert_transition(_S.PENDING, _S.ASSIGNED)
    result = await session.execute(
        _assignment_statement(), _assignment_parameters(caller, now=now, settings=settings)
    )
    return result.scalar_one_or_none()


async def assign_next_task(
    session: AsyncSession,
    caller: Caller,
    *,
    now: datetime,
    settings: Settings,
    actor: str = "call-allocation",
) -> Allocation:
    """The allocation rule (module docstring). Raises the caller's refusal; never commits.

    A stale assignment of this caller is expired here rather than handed back as "active".
    Lock the caller row (``find_caller(lock=True)``) to serialise one caller's concurrent
    requests.
    """
    refusal = refusal_for(caller)
    if refusal is not None:
        raise refusal
    current = await active_task(session, caller.id)
    if current is not None and _overdue(current, now):
        # Not swept yet (the gateway sweeps only every ALLOCATION_EXPIRY_SWEEP_SECONDS).
        await expire_stale_assignments(session, now=now, actor=actor, caller_id=caller.id)
        current = None
    if current is not None:
        return Allocation(current.id)
    # No savepoint around the assignment: with the caller row locked, no other transaction can
    # give this caller a task meanwhile (the unique index on active tasks stays the last guard).
    task_id = await _take_from_pool(session, caller, now=now, settings=settings)
    status = caller.allocation_status
    if task_id is None:
        if status != _A.IDLE_NO_AVAILABLE_TASKS.value and CALLER_ALLOCATION.can(
            status, _A.IDLE_NO_AVAILABLE_TASKS.value
        ):
            await set_caller_status(
                session,
                caller,
                _A.IDLE_NO_AVAILABLE_TASKS.value,
                reason="no call task available for this caller's regions, languages and hours",
                actor=actor,
                now=now,
            )
        return Allocation(None, reason=NO_AVAILABLE_TASKS)
    if status == _A.IDLE_NO_AVAILABLE_TASKS.value:
        await set_caller_status(
            session,
            caller,
            _A.ACTIVE.value,
            reason="a call task became available",
            actor=actor,
            now=now,
        )
    return Allocation(task_id, newly_assigned=True)


def _overdue(task: CallTask, now: datetime) -> bool:
    return (
        task.status == _S.ASSIGNED.value and task.expires_at is not None and task.expires_at <= now
    )


@dataclass(slots=True)
class ExpirySweep:
    """How often one process sweeps every caller's stale assignments on a hot request path.

    Every task request used to run the sweep: one more statement per request for work that
    only needs doing every few seconds. A caller's own stale task never waits for it
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


async def allocate_for_caller(
    session: AsyncSession,
    caller: Caller,
    *,
    now: datetime,
    settings: Settings,
    actor: str = "call-allocation",
    sweep: ExpirySweep | None = None,
) -> Allocation:
    """Expire stale assignments (when ``sweep`` says so; always without one), then
    :func:`assign_next_task`."""
    if sweep is None or sweep.due(now):
        await expire_stale_assignments(
            session, now=now, limit=settings.ALLOCATION_EXPIRY_BATCH_SIZE, actor=actor
        )
    return await assign_next_task(session, caller, now=now, settings=settings, actor=actor)


# --- operator requeue -----------------------------------------------------------------------


async def requeue_task(
    session: AsyncSession, task_id: uuid.UUID, *, reason: str, actor: str, now: datetime
) -> CallTask:
    """Put a stalled task back in the pool (``ASSIGNED/DIALING/EXPIRED → PENDING``), audited."""
    task = await session.scalar(select(CallTask).where(CallTask.id == task_id).with_for_update())
    if task is None:
        raise NotFound(f"call task {task_id} not found", details={"taskId": str(task_id)})
    previous_caller = task.caller_id
    move(
        session,
        task,
        _S.PENDING,
        actor=actor,
        reason=f"requeued: {reason}",
        now=now,
        event="requeued",
        data={
            "reason": reason,
            "previousCallerId": str(previous_caller) if previous_caller else None,
        },
    )
    task.caller_id = None
    task.assigned_at = None
    task.expires_at = None
    task.dialing_started_at = None
    task.requeue_count = task.requeue_count + 1
    await session.flush()
    return task


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
    session: AsyncSession, source: CallTask, *, now: datetime, settings: Settings
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
    session: AsyncSession, source: CallTask, *, now: datetime, settings: Settings
) -> OutcomeResult:
    """A signup-chase task ``SIGNUP_CHASE_DELAY_SECONDS`` later, at most
    ``MAX_SIGNUP_CHASES_PER_DAY`` per expert per (UTC) day of scheduling; over the limit, or
    for an expert who signed up or is suppressed, nothing is scheduled (``skipped`` says why).

    The unique ``(expert_id, chase_date, chase_number)`` key with its 1..3 CHECK is the guard
    against two schedulers racing: the loser tries the next number, then gives up.
    """
    expert = await session.get(Expert, source.expert_id)
    if expert is None or expert.suppressed_at is not None:
        return OutcomeResult(source, skipped="the expert is suppressed")
    if expert.signed_up_at is not None:
        return OutcomeResult(source, skipped="the expert already signed up")
    chase_date = now.astimezone(UTC).date()
    taken = await session.scalar(
        select(func.count())
        .select_from(SignupChase)
        .where(SignupChase.expert_id == source.expert_id, SignupChase.chase_date == chase_date)
    )
    available_after = now + timedelta(seconds=settings.SIGNUP_CHASE_DELAY_SECONDS)
    for number in range(int(taken or 0) + 1, MAX_SIGNUP_CHASES_PER_DAY + 1):
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
    open_query = select(CallTask).where(
        CallTask.expert_id == expert_id, CallTask.status.in_(CALL_TASK_OPEN_STATUSES)
    )
    if kind is not None:
        open_query = open_query.where(CallTask.kind == kind.value)
    if keep_task_id is not None:
        open_query = open_query.where(CallTask.id != keep_task_id)
    open_tasks = (await session.scalars(open_query.with_for_update())).all()
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
    expert = await session.scalar(select(Expert).where(Expert.id == expert_id).with_for_update())
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    correlation_id = correlation_id_var.get()
    await session.execute(
        pg_insert(ExpertSuppression)
        .values(
            expert_id=expert.id,
            reason=reason.value,
            note=note,
            linkedin_url_normalized=expert.linkedin_url_normalized,
            email=expert.primary_email,
            source_call_task_id=source_call_task_id,
            actor=actor,
            correlation_id=correlation_id,
        )
        .on_conflict_do_nothing(index_elements=["expert_id"])
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
    result = await session.execute(
        update(Lead)
        .where(Lead.expert_id == expert.id, Lead.status.in_(disqualifiable))
        .values(
            status=LeadStatus.DISQUALIFIED.value,
            status_reason=status_reason,
            status_changed_at=now,
        )
        .execution_options(synchronize_session=False)
    )
    disqualified = int(getattr(result, "rowcount", 0) or 0)
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
    settings: Settings,
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
    task = await session.scalar(
        select(CallTask)
        .where(CallTask.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
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
    result = await session.execute(
        update(CallTask)
        .where(CallTask.project_id == project_id, CallTask.status == _S.PENDING.value)
        .values(priority=priority)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def cancel_project_tasks(
    session: AsyncSession, project_id: uuid.UUID, *, project_status: str, now: datetime, actor: str
) -> list[uuid.UUID]:
    """A COMPLETED or ARCHIVED project's open tasks are CANCELLED, each audited
    (``call_task.cancelled``). Returns their ids."""
    tasks = (
        await session.scalars(
            select(CallTask)
            .where(CallTask.project_id == project_id, CallTask.status.in_(CALL_TASK_OPEN_STATUSES))
            .order_by(CallTask.id)
            .with_for_update()
        )
    ).all()
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


# --- sign-up --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignupResult:
    """What a sign-up changed (nothing on a replay: ``changed`` is False)."""

    expert_id: uuid.UUID
    signed_up_at: datetime
    changed: bool
    converted_leads: int = 0
    cancelled_task_ids: list[uuid.UUID] = field(default_factory=list)


async def find_expert_for_signup(
    session: AsyncSession, *, expert_id: uuid.UUID | None, email: str | None
) -> Expert | None:
    """The signed-up expert, by id, else by primary email (case-insensitive), row locked."""
    if expert_id is not None:
        condition: ColumnElement[bool] = Expert.id == expert_id
    elif email:
        condition = Expert.primary_email == email.strip().lower()
    else:
        return None
    return await session.scalar(select(Expert).where(condition).with_for_update())


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
    scheduler's chase step schedule no more for them. Audited (``expert.signed_up``) when
    anything changed; a replay changes nothing. Lock the expert row first
    (:func:`find_expert_for_signup`)."""
    first = expert.signed_up_at is None
    if first:
        expert.signed_up_at = signed_up_at
    reason = "expert signed up"
    convertible = [state for state in LEAD.states if LEAD.can(state, LeadStatus.CONVERTED.value)]
    converted = (
        await session.execute(
            update(Lead)
            .where(Lead.expert_id == expert.id, Lead.status.in_(convertible))
            .values(status=LeadStatus.CONVERTED.value, status_reason=reason, status_changed_at=now)
            .returning(Lead.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
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
                    "convertedLeadIds": [str(row[0]) for row in converted],
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
