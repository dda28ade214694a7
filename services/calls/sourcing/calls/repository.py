"""Every query of the calls service (handlers call these; nothing here commits)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import (
    ARRAY,
    BindParameter,
    DateTime,
    Table,
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
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import TypeEngine

from sourcing.calls.fold import YayEvent
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
_CALL_LOG_COLUMNS = cast(Table, CallLog.__table__).columns
_LOCK_CALL_LOGS = text(
    f"""
    INSERT INTO call_logs (id, yay_call_id)
    SELECT gen_random_uuid(), c FROM unnest(CAST(:calls AS text[])) AS c
    ON CONFLICT (yay_call_id) DO UPDATE SET yay_call_id = excluded.yay_call_id
    RETURNING {", ".join(f"call_logs.{column.name}" for column in _CALL_LOG_COLUMNS)}
    """  # noqa: S608 - the column names of our own table
).columns(*_CALL_LOG_COLUMNS)


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


async def link_raw_events(
    session: AsyncSession,
    *,
    yay_call_ids: Sequence[str],
    processing_status: str,
    processed_at: datetime,
    event_types: Sequence[str],
) -> None:
    """Link these calls' processed-type events to their call log, in one statement."""
    await session.execute(
        _LINK_RAW_EVENTS,
        {
            "calls": list(yay_call_ids),
            "types": list(event_types),
            "status": processing_status,
            "processed_at": processed_at,
        },
    )


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
_LINK_RAW_EVENTS = (
    update(CallLogRaw)
    .where(
        CallLogRaw.yay_call_id == any_(_array("calls", Text())),
        CallLogRaw.yay_call_id == CallLog.yay_call_id,
        CallLogRaw.event_type == any_(_array("types", Text())),
        or_(
            CallLogRaw.call_log_id.is_(None),
            CallLogRaw.processing_status != bindparam("status", type_=Text()),
        ),
    )
    .values(
        call_log_id=CallLog.id,
        processing_status=bindparam("status", type_=Text()),
        processed_at=bindparam("processed_at", type_=DateTime(timezone=True)),
    )
    .execution_options(synchronize_session=False)
)


# --- call logs ------------------------------------------------------------------------------


async def lock_call_logs(session: AsyncSession, yay_call_ids: Iterable[str]) -> dict[str, CallLog]:
    """The CallLogs of these Yay calls, created if new, locked for this transaction (in call id
    order), by call id; one statement: the no-op update of an existing row takes its lock."""
    statement = select(CallLog).from_statement(_LOCK_CALL_LOGS)
    result = await session.execute(
        statement,
        {"calls": sorted(set(yay_call_ids))},
        execution_options={"populate_existing": True},
    )
    return {log.yay_call_id: log for log in result.scalars()}


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


async def lock_callers_by_email(session: AsyncSession, emails: Iterable[str]) -> list[Caller]:
    """The callers with these emails (case-insensitive), locked in id order."""
    normalized = sorted({email.strip().lower() for email in emails})
    if not normalized:
        return []
    result = await session.execute(_LOCK_CALLERS_BY_EMAIL, {"emails": normalized})
    return list(result.scalars())


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


async def callers_with_active_tasks(
    session: AsyncSession, caller_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these callers have an ASSIGNED/DIALING task (only they can be dialling one)."""
    ids = set(caller_ids)
    if not ids:
        return set()
    result = await session.execute(_CALLERS_WITH_ACTIVE_TASKS, {"ids": list(ids)})
    return {caller_id for caller_id in result.scalars() if caller_id is not None}


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
    select(Caller)
    .where(func.lower(Caller.email) == any_(_array("emails", Text())))
    .order_by(Caller.id)
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCK_TASKS = (
    select(CallTask)
    .where(CallTask.id == any_(_array("ids", Uuid())))
    .order_by(CallTask.id)
    .with_for_update()
    .execution_options(populate_existing=True)
)
_CALLERS_WITH_ACTIVE_TASKS = (
    select(CallTask.caller_id)
    .where(
        CallTask.caller_id == any_(_array("ids", Uuid())),
        CallTask.status == any_(literal(list(CALL_TASK_ACTIVE_STATUSES), ARRAY(Text()))),
    )
    .distinct()
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
