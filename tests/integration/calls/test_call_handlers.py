"""Handlers of the calls service on the real database (rolled back per test), without Kafka."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.calls.handlers import CallHandlers
from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.messages.calls import CallValidationRequested, YayCallEventReceived
from sourcing.common.models import (
    Caller,
    CallerPerformanceMetric,
    CallerStatusHistory,
    CallLog,
    CallLogRaw,
    CallTask,
    OutboxMessage,
    ProcessedWebhookEvent,
    SystemEvent,
)
from sourcing.common.models.enums import ContactType
from sourcing.people.phones import to_e164
from tests.factories import create_call_task, create_caller, create_expert, create_expert_contact
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

# 15:00 UTC: 10:00 in New York (inside the calling window), midnight in Tokyo (outside).
T0 = datetime(2026, 11, 27, 15, 0, tzinfo=UTC)


class FixedClock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(T0 + timedelta(minutes=1))


@pytest.fixture
def handlers(database_settings: Settings, clock: FixedClock) -> CallHandlers:
    return CallHandlers(database_settings, clock=clock)


def yay(
    kind: str,
    call_id: str,
    email: str,
    *,
    at: datetime,
    event_id: str | None = None,
    **body: Any,
) -> tuple[Envelope, YayCallEventReceived]:
    content: dict[str, Any] = {
        "event": kind,
        "callId": call_id,
        "occurredAt": at.isoformat().replace("+00:00", "Z"),
        "agentEmail": email,
        "from": "+442071234567",
        "direction": "outbound",
        **body,
    }
    payload = YayCallEventReceived(
        event_id=event_id or f"evt-{uuid.uuid4()}",
        event_type=kind,
        call_id=call_id,
        agent_email=email,
        signature_timestamp=at,
        received_at=at,
        body=content,
    )
    return Envelope.new(YayCallEventReceived.message_type, payload), payload


async def call_log(session: AsyncSession, call_id: str) -> CallLog:
    return (
        await session.execute(
            select(CallLog)
            .where(CallLog.yay_call_id == call_id)
            .execution_options(populate_existing=True)
        )
    ).scalar_one()


async def outbox(session: AsyncSession, lane: str) -> list[OutboxMessage]:
    result = await session.execute(
        select(OutboxMessage).where(OutboxMessage.topic == lane).order_by(OutboxMessage.seq)
    )
    return list(result.scalars())


async def assigned_task(
    session: AsyncSession, caller: Caller, *, phone: str = "+14155550100", **expert_fields: Any
) -> CallTask:
    expert = await create_expert(session, **expert_fields)
    await create_expert_contact(
        session,
        expert=expert,
        type=ContactType.PHONE.value,
        value=phone,
        value_normalized=to_e164(phone),
        is_dialable=True,
        is_professional=None,
    )
    return await create_call_task(
        session, expert=expert, caller=caller, status="ASSIGNED", phone_number=None
    )


async def refresh(session: AsyncSession, instance: Any) -> None:
    await session.refresh(instance)


def snapshot(log: CallLog) -> dict[str, Any]:
    return {
        column: getattr(log, column)
        for column in [
            "status",
            "started_at",
            "ringing_at",
            "answered_at",
            "ended_at",
            "failed_at",
            "duration_seconds",
            "talk_seconds",
            "recording_url",
            "direction",
            "from_number",
            "to_number",
            "caller_id",
            "call_task_id",
            "expert_id",
            "event_count",
            "last_event_at",
        ]
    }


# --- yay-call-events ------------------------------------------------------------------------


async def test_events_fold_into_one_call_log_matched_by_task_id(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    caller = await create_caller(session, email="Agent.One@Example.com")
    task = await assigned_task(session, caller)
    meta: dict[str, Any] = {"metadata": {"taskId": str(task.id)}, "to": "+1 999 000 0000"}
    started = yay("call.started", "c-1", "agent.one@example.com", at=T0, **meta)
    await handlers.handle_yay_event(session, *started)
    await refresh(session, task)
    assert task.status == "DIALING"  # first event: ASSIGNED -> DIALING
    assert task.dialing_started_at == T0
    for kind, seconds, extra in (
        ("call.ringing", 2, {}),
        ("call.answered", 5, {}),
        ("call.ended", 65, {"durationSeconds": 65, "talkSeconds": 60}),
        ("call.recording_ready", 70, {"recordingUrl": "https://rec.example/c-1.mp3"}),
    ):
        envelope, payload = yay(
            kind,
            "c-1",
            "AGENT.ONE@example.com",
            at=T0 + timedelta(seconds=seconds),
            **meta,
            **extra,
        )
        await handlers.handle_yay_event(session, envelope, payload)
    log = await call_log(session, "c-1")
    assert log.status == "ENDED"
    assert (log.caller_id, log.call_task_id, log.expert_id) == (caller.id, task.id, task.expert_id)
    assert (log.started_at, log.answered_at) == (T0, T0 + timedelta(seconds=5))
    assert (log.duration_seconds, log.talk_seconds) == (65, 60)
    assert log.recording_url == "https://rec.example/c-1.mp3"
    assert log.event_count == 5
    raws = (
        await session.execute(select(CallLogRaw).where(CallLogRaw.yay_call_id == "c-1"))
    ).scalars()
    assert {(r.processing_status, r.call_log_id) for r in raws} == {("PROCESSED", log.id)}
    await refresh(session, caller)
    assert caller.last_dial_at == T0
    assert caller.shift_started_at == T0
    # The end (and the recording after it) ask for validation, keyed by caller.
    requests = await outbox(session, "call-validation")
    assert len(requests) == 2
    assert {r.key for r in requests} == {str(caller.id)}
    assert requests[0].envelope["payload"]["callLogId"] == str(log.id)


async def test_a_batch_has_the_effect_of_its_events_handled_one_by_one(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    """The lane's batch handler: same call log, task, caller and validation requests (one per
    event at or after the end) as the per-message handler, for a call replayed within."""
    results = []
    for call_id, batched in (("c-alone", False), ("c-batch", True)):
        caller = await create_caller(session)
        task = await assigned_task(session, caller, phone="+14155550123")
        events = [
            yay(kind, call_id, caller.email, at=T0 + timedelta(seconds=s), to="+14155550123", **x)
            for kind, s, x in (
                ("call.started", 0, {}),
                ("call.answered", 5, {}),
                ("call.ended", 65, {"durationSeconds": 65, "talkSeconds": 60}),
                ("call.recording_ready", 70, {"recordingUrl": "https://rec.example/r.mp3"}),
            )
        ]
        replayed = Envelope.new(YayCallEventReceived.message_type, events[1][1])
        events.append((replayed, events[1][1]))
        if batched:
            await handlers.handle_yay_events(session, events)
        else:
            for envelope, payload in events:
                await handlers.handle_yay_event(session, envelope, payload)
        log = await call_log(session, call_id)
        await refresh(session, task)
        await refresh(session, caller)
        requests = [r for r in await outbox(session, "call-validation") if r.key == str(caller.id)]
        results.append(
            (
                {
                    k: v
                    for k, v in snapshot(log).items()
                    if k not in ("caller_id", "call_task_id", "expert_id")
                },
                (log.caller_id, log.call_task_id) == (caller.id, task.id),
                task.status,
                (caller.last_dial_at, caller.shift_started_at),
                [r.envelope["payload"]["callLogId"] == str(log.id) for r in requests],
            )
        )
    alone, batch = results
    assert batch == alone
    assert alone[1:] == (True, "DIALING", (T0, T0), [True, True])


async def test_matched_by_dialled_number_when_no_task_id(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    caller = await create_caller(session)
    other_caller = await create_caller(session)
    await assigned_task(session, other_caller, phone="+1 415 555 0100")  # not this caller's
    task = await assigned_task(session, caller, phone="+1 (415) 555-0100")
    await handlers.handle_yay_event(
        session, *yay("call.started", "c-2", caller.email, at=T0, to="+14155550100")
    )
    log = await call_log(session, "c-2")
    assert log.call_task_id == task.id
    await refresh(session, task)
    assert task.status == "DIALING"


async def test_unmatched_number_and_foreign_task_id_link_no_task(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    caller = await create_caller(session)
    someone_else = await create_caller(session)
    foreign = await assigned_task(session, someone_else)
    await handlers.handle_yay_event(
        session,
        *yay(
            "call.started",
            "c-3",
            caller.email,
            at=T0,
            to="+15550000000",
            metadata={"taskId": str(foreign.id)},
        ),
    )
    log = await call_log(session, "c-3")
    assert log.caller_id == caller.id and log.call_task_id is None
    await refresh(session, foreign)
    assert foreign.status == "ASSIGNED"


async def test_out_of_order_pair_gives_the_same_call_log(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    caller = await create_caller(session)
    task_a = await assigned_task(session, caller, phone="+14155550101")
    logs = []
    for call_id, order in (("c-in-order", (0, 1)), ("c-reversed", (1, 0))):
        events = [
            yay("call.answered", call_id, caller.email, at=T0, to="+14155550101"),
            yay(
                "call.ended",
                call_id,
                caller.email,
                at=T0 + timedelta(seconds=30),
                to="+14155550101",
                talkSeconds=30,
                durationSeconds=31,
            ),
        ]
        for index in order:
            await handlers.handle_yay_event(session, *events[index])
        logs.append(snapshot(await call_log(session, call_id)))
    assert logs[0] == logs[1]
    assert logs[0]["status"] == "ENDED" and logs[0]["call_task_id"] == task_a.id


async def test_replayed_event_changes_nothing(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    caller = await create_caller(session)
    await assigned_task(session, caller)
    ended = yay(
        "call.ended", "c-4", caller.email, at=T0, event_id="evt-replayed", to="+14155550100"
    )
    await handlers.handle_yay_event(session, *ended)
    before = snapshot(await call_log(session, "c-4"))
    replay = Envelope.new(YayCallEventReceived.message_type, ended[1])  # a new delivery
    await handlers.handle_yay_event(session, replay, ended[1])
    assert snapshot(await call_log(session, "c-4")) == before
    raw_count = await session.scalar(
        select(func.count()).select_from(CallLogRaw).where(CallLogRaw.event_id == "evt-replayed")
    )
    dedup_count = await session.scalar(
        select(func.count())
        .select_from(ProcessedWebhookEvent)
        .where(ProcessedWebhookEvent.event_id == "evt-replayed")
    )
    assert (raw_count, dedup_count) == (1, 1)
    assert len(await outbox(session, "call-validation")) == 1


async def test_unknown_event_type_is_stored_and_ignored(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    caller = await create_caller(session)
    await handlers.handle_yay_event(
        session, *yay("call.transferred", "c-5", caller.email, at=T0, event_id="evt-odd")
    )
    raw = (
        await session.execute(select(CallLogRaw).where(CallLogRaw.event_id == "evt-odd"))
    ).scalar_one()
    assert raw.processing_status == "IGNORED"
    assert raw.payload["event"] == "call.transferred"
    assert raw.call_log_id is None
    count = await session.scalar(
        select(func.count()).select_from(CallLog).where(CallLog.yay_call_id == "c-5")
    )
    assert count == 0


async def test_unknown_agent_is_stored_without_caller(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    await handlers.handle_yay_event(
        session, *yay("call.ended", "c-6", "nobody@example.com", at=T0, talkSeconds=10)
    )
    log = await call_log(session, "c-6")
    assert log.caller_id is None and log.status == "ENDED"
    assert await outbox(session, "call-validation") == []


# --- call-validation ------------------------------------------------------------------------


async def ended_call(
    session: AsyncSession,
    handlers: CallHandlers,
    caller: Caller,
    call_id: str,
    *,
    at: datetime = T0,
    talk: int | None = 30,
    answered: bool = True,
    failed: bool = False,
    to: str = "+14155550100",
) -> CallLog:
    await handlers.handle_yay_event(
        session, *yay("call.started", call_id, caller.email, at=at, to=to)
    )
    if answered:
        await handlers.handle_yay_event(
            session,
            *yay("call.answered", call_id, caller.email, at=at + timedelta(seconds=3), to=to),
        )
    kind = "call.failed" if failed else "call.ended"
    extra: dict[str, Any] = {"talkSeconds": talk} if talk is not None else {}
    await handlers.handle_yay_event(
        session,
        *yay(kind, call_id, caller.email, at=at + timedelta(seconds=40), to=to, **extra),
    )
    return await call_log(session, call_id)


async def validate(session: AsyncSession, handlers: CallHandlers, log: CallLog) -> None:
    assert log.caller_id is not None
    payload = CallValidationRequested(
        call_log_id=log.id, caller_id=log.caller_id, yay_call_id=log.yay_call_id
    )
    await handlers.handle_call_validation(
        session, Envelope.new(CallValidationRequested.message_type, payload), payload
    )
    await session.refresh(log)


@pytest.mark.parametrize(
    ("expert", "talk", "answered", "failed", "task_status", "short", "mismatch"),
    [
        ({"timezone": "America/New_York"}, 30, True, False, "COMPLETED", False, False),
        ({"timezone": "America/New_York"}, 2, True, False, "RESTRICTED", True, False),
        ({"timezone": None, "country_iso": "JP"}, 30, True, False, "RESTRICTED", False, True),
        ({"timezone": "America/New_York"}, None, False, True, "CANCELLED", False, False),
        ({"timezone": "America/New_York"}, 0, False, False, "CANCELLED", False, False),
    ],
    ids=["answered", "short", "tokyo-midnight", "failed", "no-answer"],
)
async def test_validation_flags_and_settles_the_task(
    session: AsyncSession,
    handlers: CallHandlers,
    expert: dict[str, Any],
    talk: int | None,
    answered: bool,
    failed: bool,
    task_status: str,
    short: bool,
    mismatch: bool,
) -> None:
    caller = await create_caller(session)
    task = await assigned_task(session, caller, **expert)
    log = await ended_call(
        session, handlers, caller, "v-1", talk=talk, answered=answered, failed=failed
    )
    await validate(session, handlers, log)
    assert (log.is_short_call, log.timezone_mismatch) == (short, mismatch)
    assert log.validated_at == handlers.now()
    assert {f["flag"] for f in log.fraud_flags} == (
        ({"SHORT_CALL"} if short else set()) | ({"TIMEZONE_MISMATCH"} if mismatch else set())
    )
    await refresh(session, task)
    assert task.status == task_status
    assert task.completed_at == T0 + timedelta(seconds=40)
    events = (
        await session.execute(select(SystemEvent).where(SystemEvent.entity_id == task.id))
    ).scalars()
    assert [(e.data["from"], e.data["to"]) for e in events] == [("DIALING", task_status)]
    forwards = await outbox(session, "performance")
    assert [f.key for f in forwards] == [str(caller.id)]
    assert forwards[0].envelope["type"] == PerformanceRecalculate.message_type
    # Validating again (a redelivery or a later event of the call) changes nothing.
    await validate(session, handlers, log)
    await refresh(session, task)
    assert task.status == task_status


async def test_validation_leaves_a_task_already_settled_elsewhere(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    caller = await create_caller(session)
    task = await assigned_task(session, caller)
    log = await ended_call(session, handlers, caller, "v-2", talk=1)
    task.status = "COMPLETED"  # e.g. the caller submitted the outcome first
    await session.flush()
    await validate(session, handlers, log)
    assert log.is_short_call
    await refresh(session, task)
    assert task.status == "COMPLETED"


async def test_a_validation_batch_has_the_effect_of_its_requests_handled_one_by_one(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    """The lane's batch handler: same verdicts, settled tasks, audit and performance requests
    as the per-message handler, for two callers' calls (one short) and a request delivered
    twice."""
    results = []
    for batched in (False, True):
        callers, tasks, requests = [], [], []
        for index, talk in enumerate((30, 2)):
            caller = await create_caller(session)
            callers.append(str(caller.id))
            tasks.append(await assigned_task(session, caller))
            log = await ended_call(session, handlers, caller, f"vb-{batched}-{index}", talk=talk)
            payload = CallValidationRequested(
                call_log_id=log.id, caller_id=caller.id, yay_call_id=log.yay_call_id
            )
            requests.append((Envelope.new(CallValidationRequested.message_type, payload), payload))
        requests.append(requests[0])
        if batched:
            await handlers.handle_call_validations(session, requests)
        else:
            for envelope, payload in requests:
                await handlers.handle_call_validation(session, envelope, payload)
        verdicts = []
        for index in range(2):
            log = await call_log(session, f"vb-{batched}-{index}")
            verdicts.append((log.is_short_call, log.timezone_mismatch, log.fraud_flags))
            assert log.validated_at == handlers.now()
        audits = []
        for task in tasks:
            await refresh(session, task)
            events = (
                await session.execute(select(SystemEvent).where(SystemEvent.entity_id == task.id))
            ).scalars()
            audits.append(
                (task.status, task.completed_at, [(e.data["from"], e.data["to"]) for e in events])
            )
        forwards = [f.key for f in await outbox(session, "performance") if f.key in callers]
        results.append((verdicts, audits, [callers.index(key) for key in forwards]))
    alone, batch = results
    assert batch == alone
    assert [audit[0] for audit in alone[1]] == ["COMPLETED", "RESTRICTED"]
    assert alone[2] == [0, 1, 0]


# --- performance ----------------------------------------------------------------------------


async def recalculate(
    session: AsyncSession, handlers: CallHandlers, caller: Caller
) -> CallerPerformanceMetric:
    payload = PerformanceRecalculate(caller_id=caller.id)
    await handlers.handle_performance_recalculate(
        session, Envelope.new(PerformanceRecalculate.message_type, payload), payload
    )
    metric = (
        await session.execute(
            select(CallerPerformanceMetric)
            .where(CallerPerformanceMetric.caller_id == caller.id)
            .order_by(CallerPerformanceMetric.computed_at.desc())
            .limit(1)
        )
    ).scalar_one()
    await session.refresh(caller)
    return metric


async def test_performance_snapshot_and_status_moves(
    session: AsyncSession, handlers: CallHandlers, clock: FixedClock
) -> None:
    caller = await create_caller(session)
    # Three calls in the first minutes of the shift; one is short.
    for index, talk in enumerate((30, 2, 45)):
        await assigned_task(session, caller, phone=f"+1415555020{index}")
        log = await ended_call(
            session,
            handlers,
            caller,
            f"p-{index}",
            at=T0 + timedelta(minutes=index),
            talk=talk,
            to=f"+1415555020{index}",
        )
        await validate(session, handlers, log)
    assert caller.shift_started_at == T0

    clock.now = T0 + timedelta(minutes=3)  # inside the warm-up grace
    metric = await recalculate(session, handlers, caller)
    assert caller.allocation_status == "WARMUP_GRACE"
    assert (metric.rolling_60_minute_dials, metric.rolling_60_minute_connections) == (3, 3)
    assert (metric.short_calls_last_hour, metric.timezone_mismatches_last_hour) == (1, 0)
    # 0.6 * 3/30 + 0.4 * 1 - 1/3 = 0.1267
    assert metric.performance_score == pytest.approx(12.67)
    assert (metric.previous_allocation_status, metric.allocation_status) == (
        "ACTIVE",
        "WARMUP_GRACE",
    )

    clock.now = T0 + timedelta(minutes=6)  # grace over, last dial at minute 2: rate still ok
    await recalculate(session, handlers, caller)
    assert caller.allocation_status == "ACTIVE"

    clock.now = T0 + timedelta(minutes=8)  # no dial since minute 2: low since minute 7
    await recalculate(session, handlers, caller)
    assert caller.allocation_status == "AT_RISK"

    clock.now = T0 + timedelta(minutes=13)  # low for 6 minutes: paused
    await recalculate(session, handlers, caller)
    assert caller.allocation_status == "PAUSED_LOW_DIAL_RATE"

    # Dialling resumes.
    await assigned_task(session, caller, phone="+14155550299")
    await ended_call(
        session, handlers, caller, "p-resume", at=T0 + timedelta(minutes=14), to="+14155550299"
    )
    clock.now = T0 + timedelta(minutes=15)
    metric = await recalculate(session, handlers, caller)
    assert caller.allocation_status == "ACTIVE"
    assert metric.rolling_60_minute_dials == 4

    history = (
        await session.execute(
            select(CallerStatusHistory.from_status, CallerStatusHistory.to_status)
            .where(CallerStatusHistory.caller_id == caller.id)
            .order_by(CallerStatusHistory.created_at, CallerStatusHistory.id)
        )
    ).all()
    assert {tuple(h) for h in history} == {
        ("ACTIVE", "WARMUP_GRACE"),
        ("WARMUP_GRACE", "ACTIVE"),
        ("ACTIVE", "AT_RISK"),
        ("AT_RISK", "PAUSED_LOW_DIAL_RATE"),
        ("PAUSED_LOW_DIAL_RATE", "ACTIVE"),
    }
    changes = await session.scalar(
        select(func.count())
        .select_from(SystemEvent)
        .where(
            SystemEvent.entity_id == caller.id,
            SystemEvent.type == "caller.allocation_status_changed",
        )
    )
    assert changes == 5
    allocation = await outbox(session, "call-allocation")
    assert len(allocation) == 5 and {m.key for m in allocation} == {str(caller.id)}


async def test_short_calls_restrict_the_caller_until_an_admin_acts(
    session: AsyncSession, handlers: CallHandlers, clock: FixedClock
) -> None:
    caller = await create_caller(session)
    for index in range(3):
        await assigned_task(session, caller, phone=f"+1415555030{index}")
        log = await ended_call(
            session,
            handlers,
            caller,
            f"s-{index}",
            at=T0 + timedelta(minutes=index),
            talk=1,
            to=f"+1415555030{index}",
        )
        await validate(session, handlers, log)
    clock.now = T0 + timedelta(minutes=4)
    metric = await recalculate(session, handlers, caller)
    assert caller.allocation_status == "RESTRICTED_FRAUD"
    assert metric.short_calls_last_hour == 3
    assert "short calls" in (caller.status_reason or "")
    clock.now = T0 + timedelta(hours=3)  # the window has passed: still restricted
    metric = await recalculate(session, handlers, caller)
    assert caller.allocation_status == "RESTRICTED_FRAUD"
    assert metric.rolling_60_minute_dials == 0


async def test_performance_of_an_unknown_caller_writes_nothing(
    session: AsyncSession, handlers: CallHandlers
) -> None:
    payload = PerformanceRecalculate(caller_id=uuid.uuid4())
    await handlers.handle_performance_recalculate(
        session, Envelope.new(PerformanceRecalculate.message_type, payload), payload
    )
    assert await session.scalar(select(func.count()).select_from(CallerPerformanceMetric)) == 0


async def test_a_performance_batch_has_the_effect_of_its_requests_handled_one_by_one(
    session: AsyncSession, handlers: CallHandlers, clock: FixedClock
) -> None:
    """The lane's batch handler: same snapshots, status moves (history, audit) and allocation
    requests as the per-message handler, for a caller asked for twice and another once."""
    results = []
    for batched in (False, True):
        busy, quiet = await create_caller(session), await create_caller(session)
        for index, talk in enumerate((30, 2)):
            log = await ended_call(
                session,
                handlers,
                busy,
                f"pb-{batched}-{index}",
                at=T0 + timedelta(minutes=index),
                talk=talk,
            )
            await validate(session, handlers, log)
        clock.now = T0 + timedelta(minutes=3)  # inside the busy caller's warm-up grace
        requests = []
        for caller in (busy, quiet, busy):
            payload = PerformanceRecalculate(caller_id=caller.id)
            requests.append((Envelope.new(PerformanceRecalculate.message_type, payload), payload))
        if batched:
            await handlers.handle_performance_recalculates(session, requests)
        else:
            for envelope, payload in requests:
                await handlers.handle_performance_recalculate(session, envelope, payload)
        result = []
        for caller in (busy, quiet):
            await refresh(session, caller)
            snapshots = (
                await session.execute(
                    select(
                        CallerPerformanceMetric.rolling_60_minute_dials,
                        CallerPerformanceMetric.rolling_60_minute_connections,
                        CallerPerformanceMetric.short_calls_last_hour,
                        CallerPerformanceMetric.previous_allocation_status,
                        CallerPerformanceMetric.allocation_status,
                        CallerPerformanceMetric.performance_score,
                    )
                    .where(CallerPerformanceMetric.caller_id == caller.id)
                    .order_by(CallerPerformanceMetric.previous_allocation_status)
                )
            ).all()
            history = (
                await session.execute(
                    select(CallerStatusHistory.from_status, CallerStatusHistory.to_status).where(
                        CallerStatusHistory.caller_id == caller.id,
                        CallerStatusHistory.metric_id.is_not(None),
                    )
                )
            ).all()
            requested = [
                m for m in await outbox(session, "call-allocation") if m.key == str(caller.id)
            ]
            result.append(
                (caller.allocation_status, sorted(snapshots), sorted(history), len(requested))
            )
        results.append(result)
        clock.now = T0 + timedelta(minutes=1)
    alone, batch = results
    assert batch == alone
    assert alone[0][0] == "WARMUP_GRACE" and alone[0][2] == [("ACTIVE", "WARMUP_GRACE")]
    assert [s[4] for s in alone[0][1]] == ["WARMUP_GRACE", "WARMUP_GRACE"]
    assert alone[1][1:] == ([tuple(alone[1][1][0])], [], 0)
