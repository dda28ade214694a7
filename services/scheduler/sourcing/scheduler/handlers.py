"""The scheduler service's work, as plain async functions (testable without Kafka).

* the five maintenance steps of manual §5.2, each ``async def step(session, context) -> int``
  run in its own transaction by :mod:`sourcing.scheduler.cycle`, returning how many rows or
  messages it touched;
* :func:`handle_dead_letter`, the dead-letter sink;
* :func:`documentation_handler`, the documentation generator's handler.

Idempotency of the steps: archival is a conditional UPDATE; the enqueueing steps derive each
envelope id from (step, interval, entity) with UUIDv5, so enqueueing twice for the same
interval yields the same ids and every consumer's ``processed_events`` drops the second; the
signup chase checks for a chase dated today and is guarded by ``signup_chases``' unique keys.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common import allocation
from sourcing.common.clock import Clock, utc_now
from sourcing.common.config import Settings
from sourcing.common.events import (
    CallAllocationAssignCurrent,
    DeadLetter,
    DocumentationGenerate,
    Envelope,
    MessagePayload,
    PerformanceRecalculate,
)
from sourcing.common.kafka.outbox import publish
from sourcing.common.kafka.retry import PermanentError
from sourcing.common.messages.outreach import ScreeningFollowUpRequested
from sourcing.common.messages.scheduler import DEAD_LETTER_CONSUMER_HEADER
from sourcing.common.models import CallTask, SignupChase
from sourcing.common.models.enums import MAX_SIGNUP_CHASES_PER_DAY, CallTaskKind, JobStatus
from sourcing.common.statemachines import CALL_TASK
from sourcing.scheduler import metrics, repository
from sourcing.scheduler.documentation import render_documents, write_documents

logger = logging.getLogger(__name__)

# UUIDv5 namespace of the scheduler's envelope ids (a constant: changing it re-sends a cycle).
CYCLE_MESSAGE_NAMESPACE = uuid.UUID("5c4ed0e1-7a52-4c1e-9a57-5ce0d1e0c1c1")


@dataclass(frozen=True, slots=True)
class CycleContext:
    """What a maintenance step knows: the cycle's clock reading and interval."""

    now: datetime
    slot_started_at: datetime
    settings: Settings
    correlation_id: str


Step = Callable[[AsyncSession, CycleContext], Awaitable[int]]


async def publish_for_cycle(
    session: AsyncSession,
    context: CycleContext,
    message: MessagePayload,
    *,
    step: str,
    entity_id: uuid.UUID,
) -> None:
    """Publish ``message`` with an envelope id that is a function of (step, interval, entity):
    re-enqueueing the same interval produces the same id, which consumers deduplicate."""
    name = f"{step}:{context.slot_started_at.isoformat()}:{entity_id}"
    await publish(
        session,
        message,
        correlation_id=context.correlation_id,
        envelope_id=str(uuid.uuid5(CYCLE_MESSAGE_NAMESPACE, name)),
        occurred_at=context.now,
    )


# --- step 1 ---------------------------------------------------------------------------------


async def archive_dead_letters(session: AsyncSession, context: CycleContext) -> int:
    """Flag dead letters older than ``DEAD_LETTER_RETENTION_DAYS`` as archived.

    Archival sets ``archived_at`` instead of moving rows to another table: the unique origin
    key keeps guarding against redeliveries, replays keep their foreign key, and the live
    list is ``archived_at IS NULL`` (partial indexes); ``includeArchived=true`` shows them.
    """
    cutoff = context.now - timedelta(days=context.settings.DEAD_LETTER_RETENTION_DAYS)
    return await repository.archive_dead_letters(session, older_than=cutoff, now=context.now)


# --- steps 2 and 3 --------------------------------------------------------------------------


async def enqueue_performance_recalculations(session: AsyncSession, context: CycleContext) -> int:
    """One ``performance.recalculate.v1`` per active caller (keyed by caller id)."""
    callers = await repository.active_caller_ids(session)
    for caller_id in callers:
        await publish_for_cycle(
            session,
            context,
            PerformanceRecalculate(caller_id=caller_id),
            step="performance_recalculation",
            entity_id=caller_id,
        )
    return len(callers)


async def enqueue_allocation_assignments(session: AsyncSession, context: CycleContext) -> int:
    """Mark idle callers offline (their undialled task back to the pool), then one
    ``call-allocation.assign-current.v1`` per active, online caller (keyed by caller id)."""
    await allocation.release_offline_callers(
        session, now=context.now, settings=context.settings, actor="scheduler"
    )
    callers = await repository.active_caller_ids(
        session, seen_after=allocation.presence_cutoff(context.now, context.settings)
    )
    for caller_id in callers:
        await publish_for_cycle(
            session,
            context,
            CallAllocationAssignCurrent(caller_id=caller_id),
            step="call_allocation",
            entity_id=caller_id,
        )
    return len(callers)


# --- step 4 ---------------------------------------------------------------------------------

SharedDueQuery = Callable[..., Awaitable[Any]]


def shared_follow_up_query() -> SharedDueQuery | None:
    """``sourcing.common.screening.responses_due_follow_up`` when the screening area provides
    it (one definition of "due"); else this service's own query is used."""
    try:
        module = importlib.import_module("sourcing.common.screening")
    except ImportError:
        return None
    query = getattr(module, "responses_due_follow_up", None)
    return query if callable(query) else None


async def _due_responses(
    session: AsyncSession, context: CycleContext
) -> list[repository.DueResponse]:
    idle = context.settings.SCREENING_FOLLOW_UP_IDLE_MINUTES
    limit = context.settings.SCREENING_FOLLOW_UP_BATCH_SIZE
    shared = shared_follow_up_query()
    if shared is None:
        return await repository.screening_responses_due(
            session, idle_before=context.now - timedelta(minutes=idle), limit=limit
        )
    found = list(await shared(session, now=context.now, idle_minutes=idle, limit=limit))
    due: list[repository.DueResponse] = []
    missing: list[uuid.UUID] = []
    for item in found:
        if hasattr(item, "id") and hasattr(item, "expert_id"):
            due.append(repository.DueResponse(id=item.id, expert_id=item.expert_id))
        else:
            missing.append(uuid.UUID(str(item)))
    experts = await repository.expert_ids_of_responses(session, missing)
    due.extend(
        repository.DueResponse(id=rid, expert_id=experts[rid]) for rid in missing if rid in experts
    )
    return due


async def enqueue_screening_follow_ups(session: AsyncSession, context: CycleContext) -> int:
    """One ``screening.follow-up.v1`` per open response untouched for 15+ minutes (keyed by
    expert id); the screening agent sends the reminder and touches the response."""
    due = await _due_responses(session, context)
    for response in due:
        await publish_for_cycle(
            session,
            context,
            ScreeningFollowUpRequested(response_id=response.id, expert_id=response.expert_id),
            step="screening_follow_up",
            entity_id=response.id,
        )
    return len(due)


# --- step 5 ---------------------------------------------------------------------------------


async def create_signup_chases(session: AsyncSession, context: CycleContext) -> int:
    """New PENDING ``SIGNUP_CHASE`` tasks for experts sent a signup link 24+ hours ago who have
    not signed up: at most one per expert per cycle day from here, at most
    ``MAX_SIGNUP_CHASES_PER_DAY`` per expert per day in all.

    Works with the outcome endpoint, which may already have scheduled a chase task
    (``available_after`` = outcome + 24 h): an expert with an open task in that project, or
    with a chase dated today, is skipped; the unique keys of ``signup_chases`` (expert, day,
    number) settle any race, the losing insert is rolled back to its savepoint and skipped.
    """
    today = context.now.astimezone(UTC).date()
    delay = timedelta(seconds=context.settings.SIGNUP_CHASE_DELAY_SECONDS)
    candidates = await repository.signup_chase_candidates(
        session,
        link_sent_before=context.now - delay,
        chase_date=today,
        limit=context.settings.SIGNUP_CHASE_BATCH_SIZE,
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
                    status_changed_at=context.now,
                    kind=CallTaskKind.SIGNUP_CHASE.value,
                    priority=candidate.priority,
                    ranking_score=candidate.ranking_score,
                    region_iso=candidate.region_iso,
                    language_code=candidate.language_code,
                    phone_number=candidate.phone_number,
                    available_after=context.now,
                    chase_of_task_id=candidate.source_task_id,
                    correlation_id=context.correlation_id,
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
                        correlation_id=context.correlation_id,
                    )
                )
                await session.flush()
        except IntegrityError:
            logger.info(
                "signup chase already created elsewhere; skipped",
                extra={"expertId": str(candidate.expert_id)},
            )
            continue
        created += 1
    return created


STEPS: tuple[tuple[str, Step], ...] = (
    ("dead_letter_archival", archive_dead_letters),
    ("performance_recalculation", enqueue_performance_recalculations),
    ("call_allocation", enqueue_allocation_assignments),
    ("screening_follow_ups", enqueue_screening_follow_ups),
    ("signup_chase", create_signup_chases),
)


# --- dead-letter sink -----------------------------------------------------------------------


def dead_letter_row(payload: DeadLetter) -> dict[str, Any]:
    """The ``dead_letter_jobs`` values of one ``dead-letter.recorded.v1`` payload."""
    headers: dict[str, Any] = dict(payload.origin_headers)
    headers[DEAD_LETTER_CONSUMER_HEADER] = payload.consumer
    return {
        "origin_topic": payload.origin_topic,
        "origin_partition": payload.origin_partition,
        "origin_offset": payload.origin_offset,
        "message_key": payload.origin_key,
        "job_id": payload.original_id,
        "message_type": payload.original_type,
        "payload": payload.original_envelope,
        "raw_value": payload.original_value_base64,
        "headers": headers,
        "error": payload.error,
        "error_type": payload.error_type,
        "stack": payload.stack,
        "attempts": payload.attempts,
        "correlation_id": payload.correlation_id,
        "failed_at": payload.failed_at,
    }


async def handle_dead_letter(
    session: AsyncSession, envelope: Envelope, payload: DeadLetter
) -> None:
    """Store a dead letter once per origin (topic, partition, offset): a redelivered or
    re-sent dead letter of the same message hits ``ON CONFLICT DO NOTHING``."""
    stored = await repository.insert_dead_letter(session, dead_letter_row(payload))
    if stored:
        metrics.DEAD_LETTERS_STORED.inc()
    logger.warning(
        "dead letter %s",
        "stored" if stored else "already stored",
        extra={
            "originTopic": payload.origin_topic,
            "originPartition": payload.origin_partition,
            "originOffset": payload.origin_offset,
            "messageType": payload.original_type,
            "error": payload.error[:500],
        },
    )


# --- documentation --------------------------------------------------------------------------

DocumentationHandler = Callable[[AsyncSession, Envelope, DocumentationGenerate], Awaitable[None]]


def documentation_handler(settings: Settings, *, clock: Clock = utc_now) -> DocumentationHandler:
    """The ``documentation.generate.v1`` handler writing to ``DOCS_OUTPUT_DIR``."""
    now = clock

    async def handle(
        session: AsyncSession, envelope: Envelope, payload: DocumentationGenerate
    ) -> None:
        job = await repository.get_documentation_job(session, payload.job_id, for_update=True)
        if job is None:
            raise PermanentError(f"documentation job {payload.job_id} does not exist")
        if job.status == JobStatus.SUCCEEDED.value:
            return
        output_dir = Path(job.output_dir or settings.DOCS_OUTPUT_DIR)
        job.status = JobStatus.RUNNING.value
        job.started_at = now()
        try:
            # File I/O off the event loop. Files are written outside the transaction;
            # rewriting them is harmless (same code, same bytes).
            documents = await asyncio.to_thread(render_documents, settings)
            job.files = await asyncio.to_thread(write_documents, output_dir, documents)
        except Exception as exc:
            logger.exception("documentation job failed", extra={"jobId": str(job.id)})
            job.status = JobStatus.FAILED.value
            job.error = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            job.status = JobStatus.SUCCEEDED.value
            job.error = None
        job.finished_at = now()
        metrics.DOCUMENTATION_JOBS.labels(job.status).inc()

    return handle
