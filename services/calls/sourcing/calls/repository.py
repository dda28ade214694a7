"""Every query of the calls service (handlers call these; nothing here commits)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    BindParameter,
    Text,
    Uuid,
    any_,
    bindparam,
    exists,
    func,
    literal,
    or_,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from sourcing.calls.fold import CallFold, YayEvent
from sourcing.common.models import (
    Caller,
    CallLog,
    CallLogRaw,
    CallTask,
    Expert,
    ExpertContact,
)
from sourcing.common.models.enums import ContactType
from sourcing.common.statemachines import CALL_TASK_ACTIVE_STATUSES

# The paging types only: the web kernel (FastAPI) stays out of the agent processes.
if TYPE_CHECKING:
    from sourcing.common.web import Keyset

YAY_SOURCE = "yay"


def _array(name: str, item: TypeEngine[Any]) -> BindParameter[Any]:
    """An array parameter: ``column = ANY(:name)`` keeps one statement text whatever the number
    of values (an IN list renders a new text, so a new asyncpg prepare, for every length), so
    the module's prebuilt statements are compiled and prepared once."""
    return bindparam(name, type_=ARRAY(item))


# --- raw webhook events ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RawEvent:
    """A CallLogRaw row to store."""

    event_id: str
    event_type: str
    yay_call_id: str
    payload: dict[str, Any]
    occurred_at: datetime | None
    received_at: datetime
    processing_status: str
    processed_at: datetime | None
    correlation_id: str | None


async def insert_raw_events(session: AsyncSession, events: Sequence[RawEvent]) -> None:
    """Store the events in one statement (an event id stored before is left as it is)."""
    if not events:
        return
    await session.execute(
        _INSERT_RAW_EVENTS,
        {
            "event_ids": [e.event_id for e in events],
            "event_types": [e.event_type[:64] for e in events],
            "calls": [e.yay_call_id for e in events],
            "payloads": [json.dumps(e.payload) for e in events],
            "occurred": [e.occurred_at for e in events],
            "received": [e.received_at for e in events],
            "statuses": [e.processing_status for e in events],
            "processed": [e.processed_at for e in events],
            "correlations": [e.correlation_id for e in events],
        },
    )


# Batch statements take arrays (unnested), so each is compiled and prepared once whatever the
# batch size; a multi-row VALUES list is a new statement for every size.
_INSERT_RAW_EVENTS = text(
    """
    INSERT INTO call_logs_raw (id, event_id, event_type, yay_call_id, payload, signature_valid,
        occurred_at, received_at, processing_status, processed_at, correlation_id)
    SELECT gen_random_uuid(), e, t, y, p, true, o, r, s, pa, c
    FROM unnest(CAST(:event_ids AS text[]), CAST(:event_types AS text[]),
                CAST(:calls AS text[]), CAST(:payloads AS jsonb[]),
                CAST(:occurred AS timestamptz[]), CAST(:received AS timestamptz[]),
                CAST(:statuses AS text[]), CAST(:processed AS timestamptz[]),
                CAST(:correlations AS text[])) AS x(e, t, y, p, o, r, s, pa, c)
    ON CONFLICT (event_id) DO NOTHING
    """
)
_LOCK_CALL_LOGS = text(
    """
    INSERT INTO call_logs (id, yay_call_id)
    SELECT gen_random_uuid(), c FROM unnest(CAST(:calls AS text[])) AS c
    ON CONFLICT (yay_call_id) DO UPDATE SET yay_call_id = excluded.yay_call_id
    RETURNING id, yay_call_id, status, caller_id, call_task_id
    """
)


async def call_events(
    session: AsyncSession, yay_call_ids: Sequence[str], event_types: Sequence[str]
) -> dict[str, list[YayEvent]]:
    """The stored events of these calls (processed types), by call, in one query."""
    events: dict[str, list[YayEvent]] = {call: [] for call in yay_call_ids}
    rows = await session.execute(
        _CALL_EVENTS, {"calls": list(yay_call_ids), "types": list(event_types)}
    )
    for r in rows:
        events[r.yay_call_id].append(
            YayEvent(
                event_id=r.event_id,
                event_type=r.event_type,
                occurred_at=r.occurred_at,
                body=r.payload,
            )
        )
    return events


_CALL_EVENTS = select(
    CallLogRaw.yay_call_id,
    CallLogRaw.event_id,
    CallLogRaw.event_type,
    CallLogRaw.occurred_at,
    CallLogRaw.payload,
).where(
    CallLogRaw.yay_call_id == any_(_array("calls", Text())),
    CallLogRaw.event_type == any_(_array("types", Text())),
)


# --- call logs ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LockedCall:
    """What folding a call's new events reads of its (locked) CallLog."""

    id: uuid.UUID
    yay_call_id: str
    status: str
    caller_id: uuid.UUID | None
    call_task_id: uuid.UUID | None


async def lock_call_logs(
    session: AsyncSession, yay_call_ids: Iterable[str]
) -> dict[str, LockedCall]:
    """The CallLogs of these Yay calls, created if new, locked for this transaction (in call id
    order), by call id; one statement: the no-op update of an existing row takes its lock."""
    rows = await session.execute(_LOCK_CALL_LOGS, {"calls": sorted(set(yay_call_ids))})
    return {row.yay_call_id: LockedCall(**row._mapping) for row in rows}


@dataclass(frozen=True, slots=True)
class FoldedCall:
    """A CallLog's new state: its fold, and the caller and task it was matched to (None keeps
    the stored one)."""

    id: uuid.UUID
    fold: CallFold
    caller_id: uuid.UUID | None
    task: tuple[uuid.UUID, uuid.UUID | None] | None  # (task id, its expert id)


@dataclass(frozen=True, slots=True)
class CallerDial:
    """A caller's dial and presence columns after a batch of their call events."""

    id: uuid.UUID
    shift_started_at: datetime | None
    last_dial_at: datetime | None
    last_seen_at: datetime | None


async def store_folded_calls(
    session: AsyncSession,
    calls: Sequence[FoldedCall],
    callers: Sequence[CallerDial],
    *,
    processing_status: str,
    processed_at: datetime,
    event_types: Sequence[str],
) -> None:
    """In one statement: the call logs' new state, their callers' dial and presence, and the
    calls' processed-type raw events linked to their call log."""
    folds = [call.fold for call in calls]
    await session.execute(
        _STORE_FOLDED_CALLS,
        {
            "ids": [call.id for call in calls],
            "statuses": [f.status for f in folds],
            "started": [f.started_at for f in folds],
            "ringing": [f.ringing_at for f in folds],
            "answered": [f.answered_at for f in folds],
            "ended": [f.ended_at for f in folds],
            "failed": [f.failed_at for f in folds],
            "reasons": [f.failure_reason for f in folds],
            "durations": [f.duration_seconds for f in folds],
            "talks": [f.talk_seconds for f in folds],
            "recordings": [f.recording_url for f in folds],
            "directions": [f.direction for f in folds],
            "froms": [f.from_number for f in folds],
            "tos": [f.to_number for f in folds],
            "agents": [f.agent_email for f in folds],
            "last_events": [f.last_event_at for f in folds],
            "event_counts": [f.event_count for f in folds],
            "callers": [call.caller_id for call in calls],
            "tasks": [call.task[0] if call.task else None for call in calls],
            "experts": [call.task[1] if call.task else None for call in calls],
            "caller_ids": [c.id for c in callers],
            "shifts": [c.shift_started_at for c in callers],
            "dials": [c.last_dial_at for c in callers],
            "seen": [c.last_seen_at for c in callers],
            "status": processing_status,
            "processed_at": processed_at,
            "types": list(event_types),
        },
    )


_STORE_FOLDED_CALLS = text(
    """
    WITH logs AS (
        UPDATE call_logs SET status = v.status, started_at = v.started,
            ringing_at = v.ringing, answered_at = v.answered, ended_at = v.ended,
            failed_at = v.failed, failure_reason = v.reason, duration_seconds = v.duration,
            talk_seconds = v.talk, recording_url = v.recording, direction = v.direction,
            from_number = v.from_number, to_number = v.to_number, agent_email = v.agent,
            last_event_at = v.last_event, event_count = v.event_count,
            caller_id = coalesce(v.caller, call_logs.caller_id),
            call_task_id = coalesce(v.task, call_logs.call_task_id),
            expert_id = CASE WHEN v.task IS NULL THEN call_logs.expert_id ELSE v.expert END,
            updated_at = now()
        FROM unnest(CAST(:ids AS uuid[]), CAST(:statuses AS text[]),
            CAST(:started AS timestamptz[]), CAST(:ringing AS timestamptz[]),
            CAST(:answered AS timestamptz[]), CAST(:ended AS timestamptz[]),
            CAST(:failed AS timestamptz[]), CAST(:reasons AS text[]),
            CAST(:durations AS integer[]), CAST(:talks AS integer[]),
            CAST(:recordings AS text[]), CAST(:directions AS text[]),
            CAST(:froms AS text[]), CAST(:tos AS text[]), CAST(:agents AS text[]),
            CAST(:last_events AS timestamptz[]), CAST(:event_counts AS integer[]),
            CAST(:callers AS uuid[]), CAST(:tasks AS uuid[]), CAST(:experts AS uuid[]))
            AS v(id, status, started, ringing, answered, ended, failed, reason, duration, talk,
                recording, direction, from_number, to_number, agent, last_event, event_count,
                caller, task, expert)
        WHERE call_logs.id = v.id
        RETURNING call_logs.id, call_logs.yay_call_id
    ), callers_dialled AS (
        UPDATE callers SET shift_started_at = c.shift, last_dial_at = c.dial,
            last_seen_at = c.seen, updated_at = now()
        FROM unnest(CAST(:caller_ids AS uuid[]), CAST(:shifts AS timestamptz[]),
            CAST(:dials AS timestamptz[]), CAST(:seen AS timestamptz[])) AS c(id, shift, dial, seen)
        WHERE callers.id = c.id
    )
    UPDATE call_logs_raw SET call_log_id = logs.id, processing_status = :status,
        processed_at = :processed_at
    FROM logs
    WHERE call_logs_raw.yay_call_id = logs.yay_call_id
        AND call_logs_raw.event_type = ANY(CAST(:types AS text[]))
        AND (call_logs_raw.call_log_id IS NULL OR call_logs_raw.processing_status <> :status)
    """
)


@dataclass(frozen=True, slots=True)
class EndedCall:
    """What validating a call reads of its (locked) CallLog."""

    id: uuid.UUID
    yay_call_id: str
    status: str
    call_task_id: uuid.UUID | None
    expert_id: uuid.UUID | None
    started_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    failed_at: datetime | None
    failure_reason: str | None
    talk_seconds: float | None


async def lock_ended_calls(
    session: AsyncSession, call_log_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, EndedCall]:
    """These call logs, locked for this transaction in id order, by id, in one statement."""
    ids = sorted(set(call_log_ids))
    if not ids:
        return {}
    rows = await session.execute(_LOCK_ENDED_CALLS, {"ids": ids})
    return {row.id: EndedCall(**row._mapping) for row in rows}


_LOCK_ENDED_CALLS = text(
    """
    SELECT id, yay_call_id, status, call_task_id, expert_id, started_at, answered_at, ended_at,
        failed_at, failure_reason, talk_seconds
    FROM call_logs WHERE id = ANY(CAST(:ids AS uuid[])) ORDER BY id FOR UPDATE
    """
)


@dataclass(frozen=True, slots=True)
class CallValidationRow:
    """The verdict stored on a CallLog."""

    call_log_id: uuid.UUID
    is_short_call: bool
    timezone_mismatch: bool
    fraud_flags: list[dict[str, Any]]


async def store_validations(
    session: AsyncSession, validations: Sequence[CallValidationRow], *, validated_at: datetime
) -> None:
    """Write the verdicts on their call logs in one statement."""
    if not validations:
        return
    await session.execute(
        _STORE_VALIDATIONS,
        {
            "ids": [v.call_log_id for v in validations],
            "short": [v.is_short_call for v in validations],
            "mismatch": [v.timezone_mismatch for v in validations],
            "flags": [json.dumps(v.fraud_flags) for v in validations],
            "validated_at": validated_at,
        },
    )


_STORE_VALIDATIONS = text(
    """
    UPDATE call_logs SET is_short_call = v.s, timezone_mismatch = v.m,
        fraud_flags = CAST(v.f AS jsonb), validated_at = :validated_at, updated_at = now()
    FROM unnest(CAST(:ids AS uuid[]), CAST(:short AS boolean[]), CAST(:mismatch AS boolean[]),
        CAST(:flags AS text[])) AS v(i, s, m, f)
    WHERE call_logs.id = v.i
    """
)


# --- callers, tasks, experts ----------------------------------------------------------------


async def caller_id_by_email(session: AsyncSession, email: str) -> uuid.UUID | None:
    result = await session.execute(
        select(Caller.id).where(func.lower(Caller.email) == email.strip().lower())
    )
    return result.scalar_one_or_none()


async def lock_callers(session: AsyncSession, caller_ids: Iterable[uuid.UUID]) -> None:
    """Lock these callers' rows in id order: the one order every calls batch takes them in."""
    ids = sorted(set(caller_ids))
    if ids:
        await session.execute(_LOCK_CALLER_IDS, {"ids": ids})


async def lock_callers_by_email(
    session: AsyncSession, emails: Iterable[str]
) -> list[tuple[Caller, bool]]:
    """The callers with these emails (case-insensitive), locked in id order, each with whether
    they have an ASSIGNED/DIALING task (only they can be dialling one), in one statement."""
    normalized = sorted({email.strip().lower() for email in emails})
    if not normalized:
        return []
    result = await session.execute(_LOCK_CALLERS_BY_EMAIL, {"emails": normalized})
    return [(caller, bool(dialling)) for caller, dialling in result]


async def lock_caller(session: AsyncSession, caller_id: uuid.UUID) -> Caller | None:
    result = await session.execute(
        select(Caller)
        .where(Caller.id == caller_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def lock_task(session: AsyncSession, task_id: uuid.UUID) -> CallTask | None:
    result = await session.execute(
        select(CallTask)
        .where(CallTask.id == task_id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return result.scalar_one_or_none()


async def lock_tasks(
    session: AsyncSession, task_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, CallTask]:
    """These call tasks, locked in id order, by id, in one statement."""
    ids = sorted(set(task_ids))
    if not ids:
        return {}
    result = await session.execute(_LOCK_TASKS, {"ids": ids})
    return {task.id: task for task in result.scalars()}


async def lock_callers_by_id(
    session: AsyncSession, caller_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Caller]:
    """These callers, locked in id order (the order every calls batch takes them in), by id."""
    ids = sorted(set(caller_ids))
    if not ids:
        return {}
    result = await session.execute(_LOCK_CALLERS, {"ids": ids})
    return {caller.id: caller for caller in result.scalars()}


_LOCK_CALLER_IDS = (
    select(Caller.id)
    .where(Caller.id == any_(_array("ids", Uuid())))
    .order_by(Caller.id)
    .with_for_update()
)
_LOCK_CALLERS = (
    select(Caller)
    .where(Caller.id == any_(_array("ids", Uuid())))
    .order_by(Caller.id)
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCK_CALLERS_BY_EMAIL = (
    select(
        Caller,
        exists()
        .where(
            CallTask.caller_id == Caller.id,
            CallTask.status == any_(literal(list(CALL_TASK_ACTIVE_STATUSES), ARRAY(Text()))),
        )
        .label("dialling"),
    )
    .where(func.lower(Caller.email) == any_(_array("emails", Text())))
    .order_by(Caller.id)
    .with_for_update(of=Caller)
    .execution_options(populate_existing=True)
)
_LOCK_TASKS = (
    select(CallTask)
    .where(CallTask.id == any_(_array("ids", Uuid())))
    .order_by(CallTask.id)
    .with_for_update()
    .execution_options(populate_existing=True)
)


async def active_task_dialling(
    session: AsyncSession, *, caller_id: uuid.UUID, number_e164: str
) -> uuid.UUID | None:
    """The caller's ASSIGNED/DIALING task whose number (the task's own, the expert's primary
    phone or a dialable PHONE contact of the expert, all stored in E.164) is ``number_e164``."""
    phone_contact = (
        select(literal(1))
        .where(
            ExpertContact.expert_id == CallTask.expert_id,
            ExpertContact.type == ContactType.PHONE.value,
            ExpertContact.value_normalized == number_e164,
        )
        .exists()
    )
    result = await session.execute(
        select(CallTask.id)
        .join(Expert, Expert.id == CallTask.expert_id)
        .where(
            CallTask.caller_id == caller_id,
            CallTask.status.in_(CALL_TASK_ACTIVE_STATUSES),
            or_(
                CallTask.phone_number == number_e164,
                Expert.primary_phone == number_e164,
                phone_contact,
            ),
        )
        .order_by(CallTask.assigned_at.desc().nulls_last())
        .limit(1)
    )
    return result.scalar_one_or_none()


async def expert_zones(
    session: AsyncSession, expert_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[str | None, str | None]]:
    """``(timezone, country_iso)`` of these experts, by id, in one query."""
    ids = set(expert_ids)
    if not ids:
        return {}
    rows = await session.execute(_EXPERT_ZONES, {"ids": list(ids)})
    return {row.id: (row.timezone, row.country_iso) for row in rows}


_EXPERT_ZONES = select(Expert.id, Expert.timezone, Expert.country_iso).where(
    Expert.id == any_(_array("ids", Uuid()))
)


# --- performance ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerWindow:
    """A caller's calls in the performance window, and their latest dials of the shift."""

    dials: int
    connections: int
    short_calls: int
    timezone_mismatches: int
    shift_dial_times: list[datetime]  # newest first


async def caller_windows(
    session: AsyncSession,
    shifts: Mapping[uuid.UUID, datetime | None],
    *,
    since: datetime,
    until: datetime,
    dial_limit: int,
) -> dict[uuid.UUID, CallerWindow]:
    """In one query, for each caller (id → shift start): their calls dialled in
    ``(since, until]`` (dials, answered, short, mismatched), and their latest ``dial_limit``
    dial times in ``[shift start, until]`` (none without a shift)."""
    if not shifts:
        return {}
    rows = await session.execute(
        _CALLER_WINDOWS,
        {
            "ids": list(shifts),
            "shifts": list(shifts.values()),
            "since": since,
            "until": until,
            "dial_limit": dial_limit,
        },
    )
    return {
        row.caller_id: CallerWindow(
            dials=row.dials,
            connections=row.connections,
            short_calls=row.short_calls,
            timezone_mismatches=row.timezone_mismatches,
            shift_dial_times=list(row.dial_times or ()),
        )
        for row in rows
    }


_CALLER_WINDOWS = text(
    """
    SELECT c.id AS caller_id, w.dials, w.connections, w.short_calls, w.timezone_mismatches,
        (SELECT array_agg(d.started_at ORDER BY d.started_at DESC)
         FROM (SELECT started_at FROM call_logs
               WHERE caller_id = c.id AND started_at >= c.shift AND started_at <= :until
               ORDER BY started_at DESC LIMIT :dial_limit) AS d) AS dial_times
    FROM unnest(CAST(:ids AS uuid[]), CAST(:shifts AS timestamptz[])) AS c(id, shift)
    CROSS JOIN LATERAL (
        SELECT count(*) AS dials,
            count(*) FILTER (WHERE answered_at IS NOT NULL OR talk_seconds > 0) AS connections,
            count(*) FILTER (WHERE is_short_call) AS short_calls,
            count(*) FILTER (WHERE timezone_mismatch) AS timezone_mismatches
        FROM call_logs
        WHERE caller_id = c.id AND started_at > :since AND started_at <= :until
    ) AS w
    """
)


@dataclass(frozen=True, slots=True)
class MetricRow:
    """A CallerPerformanceMetric row to store."""

    id: uuid.UUID
    caller_id: uuid.UUID
    window: CallerWindow
    allocation_status: str
    previous_allocation_status: str
    performance_score: float
    details: dict[str, Any]
    correlation_id: str | None


async def insert_metrics(
    session: AsyncSession, metrics: Sequence[MetricRow], *, computed_at: datetime
) -> None:
    """Store the performance snapshots in one statement."""
    if not metrics:
        return
    await session.execute(
        _INSERT_METRICS,
        {
            "ids": [m.id for m in metrics],
            "callers": [m.caller_id for m in metrics],
            "dials": [m.window.dials for m in metrics],
            "connections": [m.window.connections for m in metrics],
            "short": [m.window.short_calls for m in metrics],
            "mismatches": [m.window.timezone_mismatches for m in metrics],
            "statuses": [m.allocation_status for m in metrics],
            "previous": [m.previous_allocation_status for m in metrics],
            "scores": [m.performance_score for m in metrics],
            "details": [json.dumps(m.details) for m in metrics],
            "correlations": [m.correlation_id for m in metrics],
            "computed_at": computed_at,
        },
    )


_INSERT_METRICS = text(
    """
    INSERT INTO caller_performance_metrics (id, caller_id, computed_at, rolling_60_minute_dials,
        rolling_60_minute_connections, short_calls_last_hour, timezone_mismatches_last_hour,
        allocation_status, previous_allocation_status, performance_score, details,
        correlation_id)
    SELECT i, c, CAST(:computed_at AS timestamptz), d, n, s, m, st, p, sc, CAST(de AS jsonb), co
    FROM unnest(CAST(:ids AS uuid[]), CAST(:callers AS uuid[]), CAST(:dials AS integer[]),
        CAST(:connections AS integer[]), CAST(:short AS integer[]),
        CAST(:mismatches AS integer[]), CAST(:statuses AS text[]), CAST(:previous AS text[]),
        CAST(:scores AS double precision[]), CAST(:details AS text[]),
        CAST(:correlations AS text[])) AS x(i, c, d, n, s, m, st, p, sc, de, co)
    """
)


# --- read side (the gateway's call-log endpoints) -----------------------------------------


async def call_task_exists(session: AsyncSession, task_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(exists().where(CallTask.id == task_id))))


async def caller_exists(session: AsyncSession, caller_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(exists().where(Caller.id == caller_id))))


async def list_call_logs(
    session: AsyncSession,
    *,
    call_task_id: uuid.UUID | None = None,
    caller_id: uuid.UUID | None = None,
    started_from: datetime | None = None,
    started_to: datetime | None = None,
    validated: bool | None = None,
    limit: int,
    after: Keyset | None,
) -> list[CallLog]:
    """Call logs ordered by ``(created_at, id)`` ascending (oldest first), after the cursor;
    ``started_from`` is inclusive, ``started_to`` exclusive."""
    query = select(CallLog)
    if call_task_id is not None:
        query = query.where(CallLog.call_task_id == call_task_id)
    if caller_id is not None:
        query = query.where(CallLog.caller_id == caller_id)
    if started_from is not None:
        query = query.where(CallLog.started_at >= started_from)
    if started_to is not None:
        query = query.where(CallLog.started_at < started_to)
    if validated is not None:
        validated_at = CallLog.validated_at
        query = query.where(validated_at.is_not(None) if validated else validated_at.is_(None))
    if after is not None:
        query = query.where(tuple_(CallLog.created_at, CallLog.id) > tuple_(*after))
    query = query.order_by(CallLog.created_at, CallLog.id).limit(limit)
    return list((await session.scalars(query)).all())
