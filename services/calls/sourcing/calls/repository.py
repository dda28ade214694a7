"""Every query of the calls service (handlers call these; nothing here commits)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import Table, exists, func, literal, or_, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncSession

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
        select(
            CallLogRaw.yay_call_id,
            CallLogRaw.event_id,
            CallLogRaw.event_type,
            CallLogRaw.occurred_at,
            CallLogRaw.payload,
        ).where(
            CallLogRaw.yay_call_id.in_(list(yay_call_ids)),
            CallLogRaw.event_type.in_(event_types),
        )
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
        update(CallLogRaw)
        .where(
            CallLogRaw.yay_call_id.in_(list(yay_call_ids)),
            CallLogRaw.yay_call_id == CallLog.yay_call_id,
            CallLogRaw.event_type.in_(event_types),
            or_(
                CallLogRaw.call_log_id.is_(None), CallLogRaw.processing_status != processing_status
            ),
        )
        .values(
            call_log_id=CallLog.id, processing_status=processing_status, processed_at=processed_at
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


async def get_call_log(
    session: AsyncSession, call_log_id: uuid.UUID, *, lock: bool = False
) -> CallLog | None:
    statement = select(CallLog).where(CallLog.id == call_log_id)
    if lock:
        statement = statement.with_for_update().execution_options(populate_existing=True)
    return (await session.execute(statement)).scalar_one_or_none()


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
        await session.execute(
            select(Caller.id).where(Caller.id.in_(ids)).order_by(Caller.id).with_for_update()
        )


async def lock_callers_by_email(session: AsyncSession, emails: Iterable[str]) -> list[Caller]:
    """The callers with these emails (case-insensitive), locked in id order."""
    normalized = sorted({email.strip().lower() for email in emails})
    if not normalized:
        return []
    result = await session.execute(
        select(Caller)
        .where(func.lower(Caller.email).in_(normalized))
        .order_by(Caller.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
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


async def callers_with_active_tasks(
    session: AsyncSession, caller_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Which of these callers have an ASSIGNED/DIALING task (only they can be dialling one)."""
    ids = set(caller_ids)
    if not ids:
        return set()
    result = await session.execute(
        select(CallTask.caller_id)
        .where(CallTask.caller_id.in_(ids), CallTask.status.in_(CALL_TASK_ACTIVE_STATUSES))
        .distinct()
    )
    return {caller_id for caller_id in result.scalars() if caller_id is not None}


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


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


# --- performance ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CallerWindow:
    """A caller's calls in the performance window, and their latest dials of the shift."""

    dials: int
    connections: int
    short_calls: int
    timezone_mismatches: int
    shift_dial_times: list[datetime]  # newest first


async def caller_window(
    session: AsyncSession,
    *,
    caller_id: uuid.UUID,
    since: datetime,
    until: datetime,
    shift_started_at: datetime | None,
    dial_limit: int,
) -> CallerWindow:
    """In one query: the caller's calls dialled in ``(since, until]`` (dials, answered, short,
    mismatched), and the latest ``dial_limit`` dial times in ``[shift_started_at, until]``
    (none without a shift)."""
    answered = or_(CallLog.answered_at.is_not(None), CallLog.talk_seconds > 0)
    dial_times: Any = literal(None)
    if shift_started_at is not None:
        shift_dials = (
            select(CallLog.started_at)
            .where(
                CallLog.caller_id == caller_id,
                CallLog.started_at >= shift_started_at,
                CallLog.started_at <= until,
            )
            .order_by(CallLog.started_at.desc())
            .limit(dial_limit)
            .subquery()
        )
        newest_first = aggregate_order_by(shift_dials.c.started_at, shift_dials.c.started_at.desc())
        dial_times = select(func.array_agg(newest_first)).scalar_subquery()
    row = (
        await session.execute(
            select(
                func.count(),
                func.count().filter(answered),
                func.count().filter(CallLog.is_short_call),
                func.count().filter(CallLog.timezone_mismatch),
                dial_times,
            ).where(
                CallLog.caller_id == caller_id,
                CallLog.started_at > since,
                CallLog.started_at <= until,
            )
        )
    ).one()
    return CallerWindow(
        dials=row[0],
        connections=row[1],
        short_calls=row[2],
        timezone_mismatches=row[3],
        shift_dial_times=[moment for moment in row[4] or () if moment is not None],
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
