"""The work of the three calls lanes, as plain async functions (testable without Kafka).

``yay-call-events`` → :meth:`CallHandlers.handle_yay_event`
    Deduplicates on the Yay event id (``processed_webhook_events``: a replay changes nothing),
    stores every event as CallLogRaw (unknown types as IGNORED), folds the call's events into
    its one CallLog (:mod:`sourcing.calls.fold`), links it to its Caller (``agentEmail``,
    case-insensitive) and CallTask (``metadata.taskId``, else the caller's active task whose
    expert has the dialled number), moves the task ``ASSIGNED → DIALING``, updates the
    caller's last dial and shift start (and keeps an online caller online), and once the call
    has ended (or failed) asks ``call-validation`` to validate it (outbox, keyed by caller).

``call-validation`` → :meth:`CallHandlers.handle_call_validation`
    Flags short calls and timezone mismatches on the CallLog
    (:func:`sourcing.calls.service.validate_call`), settles the task
    (``DIALING → RESTRICTED`` when a fraud signal was raised, ``→ COMPLETED`` when the expert
    answered, ``→ CANCELLED`` otherwise: failed, busy, no answer) and forwards
    ``performance.recalculate.v1`` keyed by caller. The task is settled here, not on the end
    event, because RESTRICTED depends on the validation's verdict. A task no longer DIALING
    (e.g. an outcome already submitted, or requeued) is left as it is.

``performance`` → :meth:`CallHandlers.handle_performance_recalculate`
    Writes a CallerPerformanceMetric snapshot and moves the caller's allocation status by
    :func:`sourcing.calls.service.evaluate_allocation_status` (every step through
    ``CALLER_ALLOCATION``, each with a CallerStatusHistory row and a SystemEvent); a change
    enqueues ``call-allocation.assign-current.v1`` keyed by caller.

Time comes from the injected ``clock`` (a callable returning an aware datetime).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from sourcing.calls import repository
from sourcing.calls.fold import ENDED, FAILED, CallFold, fold_events, is_call_event, parse_time
from sourcing.calls.service import (
    CallerActivity,
    CallValidation,
    StatusDecision,
    StatusThresholds,
    evaluate_allocation_status,
    performance_score,
    validate_call,
)
from sourcing.calls.settings import CallSettings
from sourcing.common.clock import Clock, utc_now
from sourcing.common.events import (
    CallAllocationAssignCurrent,
    Envelope,
    MessagePayload,
    PerformanceRecalculate,
    route,
)
from sourcing.common.kafka.outbox import publish, stage
from sourcing.common.messages.calls import (
    YAY_EVENT_TYPES,
    CallValidationRequested,
    YayCallEventReceived,
)
from sourcing.common.models import (
    Caller,
    CallTask,
)
from sourcing.common.models.enums import CallLogStatus, RawEventStatus
from sourcing.common.statemachines import (
    CallTaskStatus,
)
from sourcing.common.transitions import move
from sourcing.common.webhook_events import WebhookDelivery, body_sha256, claim_webhook_events
from sourcing.people.callers import note_call_activity, set_caller_status, shift_start_for_dial
from sourcing.people.phones import to_e164
from sourcing.people.timezones import expert_timezone

logger = logging.getLogger(__name__)

FINISHING_EVENTS = (ENDED, FAILED)


@dataclass(frozen=True, slots=True)
class _Batch:
    """What a batch of Yay events looked up once: its callers (locked, by lowercase email) and
    those of them with an ASSIGNED/DIALING task; and the callers its calls were matched to."""

    callers: dict[str, Caller]
    dialling: set[uuid.UUID]
    touched: dict[uuid.UUID, Caller] = field(default_factory=dict)


FINISHED_STATUSES = (CallLogStatus.ENDED.value, CallLogStatus.FAILED.value)


# What a batch of call events changes on a caller, written by one statement with the calls.
_DIAL_COLUMNS = ("shift_started_at", "last_dial_at", "last_seen_at")


def _dialled_callers(callers: Iterable[Caller]) -> list[repository.CallerDial]:
    """The callers whose dial or presence columns changed, as rows for the batch's one write;
    the ORM then holds those values as stored (its flush would write them a second time)."""
    rows: list[repository.CallerDial] = []
    for caller in callers:
        state = inspect(caller)
        if not any(state.attrs[column].history.has_changes() for column in _DIAL_COLUMNS):
            continue
        rows.append(
            repository.CallerDial(
                id=caller.id,
                shift_started_at=caller.shift_started_at,
                last_dial_at=caller.last_dial_at,
                last_seen_at=caller.last_seen_at,
            )
        )
        for column in _DIAL_COLUMNS:
            set_committed_value(caller, column, getattr(caller, column))
    return rows


def _occurred_at(payload: YayCallEventReceived) -> datetime:
    return parse_time(payload.body.get("occurredAt")) or payload.signature_timestamp


class CallHandlers:
    """The handlers of the calls service, bound to its settings and clock."""

    def __init__(self, settings: CallSettings, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock
        self.thresholds = StatusThresholds.from_settings(settings)

    def now(self) -> datetime:
        moment = self.clock()
        if moment.tzinfo is None:
            raise ValueError("the clock must return aware datetimes")
        return moment.astimezone(UTC)

    # --- yay-call-events ------------------------------------------------------------------

    async def handle_yay_event(
        self, session: AsyncSession, envelope: Envelope, payload: YayCallEventReceived
    ) -> None:
        """One Yay event (what the lane falls back to when a batch fails)."""
        await self.handle_yay_events(session, [(envelope, payload)])

    async def handle_yay_events(
        self, session: AsyncSession, items: Sequence[tuple[Envelope, YayCallEventReceived]]
    ) -> None:
        """Yay events, with the effect of handling each in order, in a few statements a batch.

        The batch's callers are locked first, in id order (the order every calls lane takes
        them in), each read with whether it has an active task; every delivery is claimed by
        one statement and every raw event stored by another; then each call is folded once
        from all its stored events (the fold is order-independent), and one statement writes
        the call logs, their callers' dial and presence and links the calls' raw events to
        their call logs (tasks still move through ``move()``, audited).
        """
        now = self.now()
        locked = await repository.lock_callers_by_email(
            session, (payload.agent_email for _, payload in items if payload.agent_email)
        )
        batch = _Batch(
            {caller.email.strip().lower(): caller for caller, _ in locked},
            {caller.id for caller, dialling in locked if dialling},
        )
        claimed = await claim_webhook_events(
            session,
            source=repository.YAY_SOURCE,
            deliveries=[
                WebhookDelivery(
                    event_id=payload.event_id,
                    event_type=payload.event_type,
                    payload_sha256=body_sha256(payload.body),
                    received_at=payload.received_at,
                    correlation_id=envelope.correlation_id,
                )
                for envelope, payload in items
            ],
        )
        fresh: list[tuple[Envelope, YayCallEventReceived]] = []
        for envelope, payload in items:
            if payload.event_id in claimed:
                claimed.discard(payload.event_id)  # one delivery twice in the batch: once
                fresh.append((envelope, payload))
            else:
                logger.info("yay event %s replayed: ignored", payload.event_id)
        await repository.insert_raw_events(
            session, [self._raw_event(envelope, payload, now) for envelope, payload in fresh]
        )
        calls: dict[str, list[tuple[Envelope, YayCallEventReceived]]] = {}
        for envelope, payload in fresh:
            if is_call_event(payload.event_type):
                calls.setdefault(payload.call_id, []).append((envelope, payload))
            else:
                logger.info("yay event type %r stored and ignored", payload.event_type)
        if not calls:
            return
        events = await repository.call_events(session, list(calls), YAY_EVENT_TYPES)
        call_logs = await repository.lock_call_logs(session, calls)
        folded = [
            await self._fold_call(
                session, call_logs[call_id], deliveries, fold_events(events[call_id]), batch, now
            )
            for call_id, deliveries in calls.items()
        ]
        await repository.store_folded_calls(
            session,
            folded,
            _dialled_callers(batch.touched.values()),
            processing_status=RawEventStatus.PROCESSED.value,
            processed_at=now,
            event_types=YAY_EVENT_TYPES,
        )
        await session.flush()

    @staticmethod
    def _raw_event(
        envelope: Envelope, payload: YayCallEventReceived, now: datetime
    ) -> repository.RawEvent:
        known = is_call_event(payload.event_type)
        return repository.RawEvent(
            event_id=payload.event_id,
            event_type=payload.event_type,
            yay_call_id=payload.call_id,
            payload=payload.body,
            occurred_at=_occurred_at(payload),
            received_at=payload.received_at,
            processing_status=(RawEventStatus.RECEIVED if known else RawEventStatus.IGNORED).value,
            processed_at=None if known else now,
            correlation_id=envelope.correlation_id,
        )

    async def _fold_call(
        self,
        session: AsyncSession,
        call_log: repository.LockedCall,
        deliveries: Sequence[tuple[Envelope, YayCallEventReceived]],
        fold: CallFold,
        batch: _Batch,
        now: datetime,
    ) -> repository.FoldedCall:
        """One call's new events: its (locked) CallLog's new state from the fold, its caller
        and task matched, the task dialling, the caller's presence and dial (on the locked
        Caller, noted in ``batch.touched``), and one validation request for each new event at
        or after the call's end (as if each event was handled alone)."""
        first = deliveries[0][1]
        finished = call_log.status in FINISHED_STATUSES  # by the events stored before these
        caller = await self._match_caller(session, call_log, fold, first, batch.callers)
        task = await self._match_task(session, call_log, fold, caller, batch)
        state = repository.FoldedCall(
            id=call_log.id,
            fold=fold,
            caller_id=caller.id if caller is not None else None,
            task=(task.id, task.expert_id) if task is not None else None,
        )
        if task is not None and caller is not None and task.caller_id == caller.id:
            self._start_dialing(session, task, fold.started_at, now)
        if caller is None:
            return state
        batch.touched[caller.id] = caller
        if fold.started_at is not None:
            self._record_dial(caller, fold.started_at)
        for envelope, payload in deliveries:
            # Any call event of an online caller keeps them online (presence).
            note_call_activity(caller, at=min(_occurred_at(payload), now), settings=self.settings)
            finished = finished or payload.event_type in FINISHING_EVENTS
            if finished:
                await publish(
                    session,
                    CallValidationRequested(
                        call_log_id=call_log.id, caller_id=caller.id, yay_call_id=first.call_id
                    ),
                    correlation_id=envelope.correlation_id,
                )
        return state

    async def _match_caller(
        self,
        session: AsyncSession,
        call_log: repository.LockedCall,
        fold: CallFold,
        payload: YayCallEventReceived,
        callers: dict[str, Caller],
    ) -> Caller | None:
        """The call log's caller, else the caller of the call's agent email: from the batch's
        locked callers when there (always, unless the earliest event names another agent)."""
        caller_id = call_log.caller_id
        if caller_id is None:
            email = fold.agent_email or payload.agent_email
            if email and email.strip().lower() in callers:
                return callers[email.strip().lower()]
            caller_id = await repository.caller_id_by_email(session, email) if email else None
        if caller_id is None:
            return None
        for caller in callers.values():
            if caller.id == caller_id:
                return caller
        return await repository.lock_caller(session, caller_id)

    async def _match_task(
        self,
        session: AsyncSession,
        call_log: repository.LockedCall,
        fold: CallFold,
        caller: Caller | None,
        batch: _Batch,
    ) -> CallTask | None:
        task_id = call_log.call_task_id
        if task_id is None and caller is not None:
            if fold.task_id is not None:
                candidate = await repository.lock_task(session, fold.task_id)
                # A task id naming another caller's task is not trusted.
                if candidate is not None and candidate.caller_id == caller.id:
                    return candidate
            # Yay reports the dialled number in E.164, as contacts and tasks store it.
            number = to_e164(fold.to_number)
            # A caller of the batch without an active task dials none (no query needed).
            if number is not None and (
                caller.id in batch.dialling or caller not in batch.callers.values()
            ):
                task_id = await repository.active_task_dialling(
                    session, caller_id=caller.id, number_e164=number
                )
        return await repository.lock_task(session, task_id) if task_id is not None else None

    @staticmethod
    def _start_dialing(
        session: AsyncSession, task: CallTask, started_at: datetime | None, now: datetime
    ) -> None:
        """ASSIGNED → DIALING when the first event of its call arrives (or, late, when the call
        is settled); other statuses are left alone."""
        if task.status != CallTaskStatus.ASSIGNED:
            return
        # Not audited: the call log records the dial, the settled call audits the task.
        move(
            session,
            task,
            CallTaskStatus.DIALING,
            actor="call-validation",
            reason="call placed",
            now=now,
            event=None,
        )
        task.dialing_started_at = started_at or now

    def _record_dial(self, caller: Caller, dialled_at: datetime) -> None:
        new_shift = shift_start_for_dial(
            dialled_at=dialled_at,
            shift_started_at=caller.shift_started_at,
            last_dial_at=caller.last_dial_at,
            last_task_requested_at=caller.last_task_requested_at,
            shift_gap=timedelta(seconds=self.settings.CALLER_SHIFT_GAP_SECONDS),
        )
        if new_shift is not None:
            caller.shift_started_at = new_shift
        if caller.last_dial_at is None or dialled_at > caller.last_dial_at:
            caller.last_dial_at = dialled_at

    # --- call-validation ------------------------------------------------------------------

    async def handle_call_validation(
        self, session: AsyncSession, envelope: Envelope, payload: CallValidationRequested
    ) -> None:
        """One validation request (what the lane falls back to when a batch fails)."""
        await self.handle_call_validations(session, [(envelope, payload)])

    async def handle_call_validations(
        self, session: AsyncSession, items: Sequence[tuple[Envelope, CallValidationRequested]]
    ) -> None:
        """Validation requests, with the effect of handling each in order, in a few statements.

        Callers, call logs and tasks are locked in that order, each set by id in one statement
        (callers first, as every calls lane takes them); the experts' zones come from one
        query, the verdicts are written by one statement and the performance requests staged
        by another. A call validated twice in a batch gets the same verdict (the call and the
        clock reading are the same) and its task is settled once (then no longer DIALING).
        """
        now = self.now()
        await repository.lock_callers(session, (payload.caller_id for _, payload in items))
        calls = await repository.lock_ended_calls(
            session, (payload.call_log_id for _, payload in items)
        )
        zones = await repository.expert_zones(
            session, (call.expert_id for call in calls.values() if call.expert_id is not None)
        )
        tasks = await repository.lock_tasks(
            session, (call.call_task_id for call in calls.values() if call.call_task_id)
        )
        verdicts: dict[uuid.UUID, repository.CallValidationRow] = {}
        forwards: list[tuple[MessagePayload, str | None]] = []
        for envelope, payload in items:
            call = calls.get(payload.call_log_id)
            if call is None:
                logger.warning("call log %s not found: nothing to validate", payload.call_log_id)
                continue
            expert = zones.get(call.expert_id) if call.expert_id is not None else None
            answered = call.answered_at is not None or (call.talk_seconds or 0) > 0
            verdict = validate_call(
                dialled_at=call.started_at,
                answered=answered,
                talk_seconds=call.talk_seconds,
                zone=expert_timezone(*expert) if expert is not None else None,
                short_call_seconds=self.settings.SHORT_CALL_SECONDS,
                window_start_hour=self.settings.CALLING_WINDOW_START_HOUR,
                window_end_hour=self.settings.CALLING_WINDOW_END_HOUR,
            )
            verdicts[call.id] = repository.CallValidationRow(
                call_log_id=call.id,
                is_short_call=verdict.is_short_call,
                timezone_mismatch=verdict.timezone_mismatch,
                fraud_flags=[dict(flag) for flag in verdict.flags],
            )
            task = tasks.get(call.call_task_id) if call.call_task_id is not None else None
            if task is not None and task.caller_id == payload.caller_id:
                self._settle_task(
                    session,
                    task,
                    call=call,
                    verdict=verdict,
                    answered=answered,
                    now=now,
                    correlation_id=envelope.correlation_id,
                )
            forwards.append(
                (PerformanceRecalculate(caller_id=payload.caller_id), envelope.correlation_id)
            )
        await repository.store_validations(session, list(verdicts.values()), validated_at=now)
        await _publish_each(session, forwards)
        await session.flush()

    @staticmethod
    def _settle_task(
        session: AsyncSession,
        task: CallTask,
        *,
        call: repository.EndedCall,
        verdict: CallValidation,
        answered: bool,
        now: datetime,
        correlation_id: str | None,
    ) -> None:
        CallHandlers._start_dialing(session, task, call.started_at, now)
        if task.status != CallTaskStatus.DIALING:
            return
        if verdict.is_fraud_signal:
            target, reason = (
                CallTaskStatus.RESTRICTED,
                "call flagged: " + ", ".join(str(flag["flag"]) for flag in verdict.flags),
            )
        elif answered:
            target, reason = CallTaskStatus.COMPLETED, "call answered and ended"
        else:
            target, reason = (
                CallTaskStatus.CANCELLED,
                (f"call not answered ({call.failure_reason or call.status.lower()})"),
            )
        move(
            session,
            task,
            target,
            actor="call-validation",
            reason=reason[:500],
            now=now,
            data={
                "reason": reason,
                "callLogId": str(call.id),
                "yayCallId": call.yay_call_id,
            },
            correlation_id=correlation_id,
        )
        task.completed_at = call.ended_at or call.failed_at or now

    # --- performance ----------------------------------------------------------------------

    async def handle_performance_recalculate(
        self, session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
    ) -> None:
        """One recalculation (what the lane falls back to when a batch fails)."""
        await self.handle_performance_recalculates(session, [(envelope, payload)])

    async def handle_performance_recalculates(
        self, session: AsyncSession, items: Sequence[tuple[Envelope, PerformanceRecalculate]]
    ) -> None:
        await self.recalculate_performance(
            session, [(payload.caller_id, envelope.correlation_id) for envelope, payload in items]
        )

    async def recalculate_performance(
        self, session: AsyncSession, requests: Sequence[tuple[uuid.UUID, str | None]]
    ) -> None:
        """A snapshot + allocation status per ``(caller id, correlation id)`` at ``clock()``,
        with the effect of handling each in order, in a few statements.

        The callers are locked by id in one statement, their windows read by one query and
        the snapshots written by one; a caller asked for twice is evaluated twice, the second
        time from the status the first left (status moves are rare: the ORM writes them).
        """
        now = self.now()
        callers = await repository.lock_callers_by_id(session, (c for c, _ in requests))
        windows = await repository.caller_windows(
            session,
            {caller.id: caller.shift_started_at for caller in callers.values()},
            since=now - timedelta(minutes=self.settings.PERFORMANCE_WINDOW_MINUTES),
            until=now,
            dial_limit=self.thresholds.min_dials_per_window,
        )
        snapshots: list[repository.MetricRow] = []
        forwards: list[tuple[MessagePayload, str | None]] = []
        # The status history rows name their snapshot: none is flushed before the snapshots.
        with session.no_autoflush:
            for caller_id, correlation_id in requests:
                caller = callers.get(caller_id)
                if caller is None:
                    logger.warning("caller %s not found: no performance snapshot", caller_id)
                    continue
                snapshot, decision = self._snapshot(caller, windows[caller.id], now, correlation_id)
                snapshots.append(snapshot)
                if decision.changed:
                    await self._change_status(
                        session,
                        caller,
                        decision,
                        metric_id=snapshot.id,
                        now=now,
                        correlation_id=correlation_id,
                    )
                    forwards.append(
                        (CallAllocationAssignCurrent(caller_id=caller.id), correlation_id)
                    )
            await repository.insert_metrics(session, snapshots, computed_at=now)
        await _publish_each(session, forwards)
        await session.flush()

    def _snapshot(
        self,
        caller: Caller,
        counts: repository.CallerWindow,
        now: datetime,
        correlation_id: str | None,
    ) -> tuple[repository.MetricRow, StatusDecision]:
        decision = evaluate_allocation_status(
            CallerActivity(
                status=caller.allocation_status,
                status_changed_at=caller.status_changed_at,
                shift_started_at=caller.shift_started_at,
                last_dial_at=caller.last_dial_at,
                shift_dial_times=counts.shift_dial_times,
                short_calls=counts.short_calls,
                timezone_mismatches=counts.timezone_mismatches,
            ),
            self.thresholds,
            now=now,
        )
        score = performance_score(
            dials=counts.dials,
            connections=counts.connections,
            short_calls=counts.short_calls,
            timezone_mismatches=counts.timezone_mismatches,
            target_dials=self.settings.PERFORMANCE_TARGET_DIALS,
        )
        snapshot = repository.MetricRow(
            id=uuid.uuid4(),
            caller_id=caller.id,
            window=counts,
            allocation_status=decision.final,
            previous_allocation_status=caller.allocation_status,
            performance_score=score,
            details={
                "reason": decision.reason,
                "target": decision.target,
                "path": list(decision.path),
                "windowMinutes": self.settings.PERFORMANCE_WINDOW_MINUTES,
                "shiftStartedAt": caller.shift_started_at.isoformat()
                if caller.shift_started_at
                else None,
                "lastDialAt": caller.last_dial_at.isoformat() if caller.last_dial_at else None,
            },
            correlation_id=correlation_id,
        )
        return snapshot, decision

    @staticmethod
    async def _change_status(
        session: AsyncSession,
        caller: Caller,
        decision: StatusDecision,
        *,
        metric_id: uuid.UUID,
        now: datetime,
        correlation_id: str | None,
    ) -> None:
        for step in decision.path:
            await set_caller_status(
                session,
                caller,
                step,
                reason=decision.reason,
                actor="performance",
                now=now,
                metric_id=metric_id,
                correlation_id=correlation_id,
            )


async def _publish_each(
    session: AsyncSession, messages: Sequence[tuple[MessagePayload, str | None]]
) -> None:
    """Stage the messages in order, each with its own correlation id, in one statement."""
    rows: list[tuple[str, Envelope, str | None]] = []
    for message, correlation_id in messages:
        target = route(message)
        rows.append((target.lane, Envelope.of(message, correlation_id=correlation_id), target.key))
    await stage(session, rows)
