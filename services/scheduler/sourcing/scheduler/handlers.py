"""The scheduler service's work, as plain async functions (testable without Kafka).

* the five maintenance steps of manual §5.2, then callback timeouts and, last, retention (step
  6), each ``async def step(session, context) -> int`` run in its own transaction by
  :mod:`sourcing.scheduler.cycle`, returning how many rows or messages it touched; steps 3 to
  5 and the callback timeouts only publish a tick (:func:`publish_sweep`) to the context owning
  the work (call allocation and sign-up chases: the allocation service; screening follow-ups:
  the outreach service; Zeliq callbacks that never came: the enrichment service);
* :func:`handle_dead_letter`, the dead-letter sink;
* :func:`documentation_handler`, the documentation generator's handler.

Idempotency of the steps: archival and retention are conditional writes; the enqueueing steps
derive each envelope id from (step, interval, entity) with UUIDv5, so enqueueing twice for the
same interval yields the same ids and every consumer's ``processed_events`` drops the second.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.clock import Clock, utc_now
from sourcing.common.events import (
    DeadLetter,
    DocumentationGenerate,
    Envelope,
    MessagePayload,
    PerformanceRecalculate,
)
from sourcing.common.kafka.outbox import publish
from sourcing.common.kafka.retry import PermanentError
from sourcing.common.messages.allocation import (
    CallAllocationSweepRequested,
    SignupChaseSweepRequested,
)
from sourcing.common.messages.enrichment import EnrichmentCallbackSweepRequested
from sourcing.common.messages.outreach import ScreeningFollowUpSweepRequested
from sourcing.common.messages.scheduler import DEAD_LETTER_CONSUMER_HEADER, SweepRequested
from sourcing.common.models.enums import JobStatus
from sourcing.scheduler import metrics, repository
from sourcing.scheduler.documentation import render_documents, write_documents
from sourcing.scheduler.settings import SchedulerSettings

logger = logging.getLogger(__name__)

# UUIDv5 namespace of the scheduler's envelope ids (a constant: changing it re-sends a cycle).
CYCLE_MESSAGE_NAMESPACE = uuid.UUID("5c4ed0e1-7a52-4c1e-9a57-5ce0d1e0c1c1")
# The one entity of a sweep tick (one tick per step and interval).
SWEEP_ENTITY_ID = uuid.UUID(int=0)


@dataclass(frozen=True, slots=True)
class CycleContext:
    """What a maintenance step knows: the cycle's clock reading and interval."""

    now: datetime
    slot_started_at: datetime
    settings: SchedulerSettings
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


async def publish_sweep(
    session: AsyncSession, context: CycleContext, message: SweepRequested, *, step: str
) -> int:
    """Publish the step's one tick of the interval (:func:`publish_for_cycle`); returns 1."""
    await publish_for_cycle(session, context, message, step=step, entity_id=SWEEP_ENTITY_ID)
    return 1


# --- step 1 ---------------------------------------------------------------------------------


async def archive_dead_letters(session: AsyncSession, context: CycleContext) -> int:
    """Flag dead letters older than ``DEAD_LETTER_RETENTION_DAYS`` as archived.

    Archival sets ``archived_at`` instead of moving rows to another table: the unique origin
    key keeps guarding against redeliveries, replays keep their foreign key, and the live
    list is ``archived_at IS NULL`` (partial indexes); ``includeArchived=true`` shows them.
    """
    cutoff = context.now - timedelta(days=context.settings.DEAD_LETTER_RETENTION_DAYS)
    return await repository.archive_dead_letters(session, older_than=cutoff, now=context.now)


# --- step 2 ---------------------------------------------------------------------------------


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


# --- step 3 ---------------------------------------------------------------------------------


async def request_call_allocation_sweep(session: AsyncSession, context: CycleContext) -> int:
    """The allocation service's call-allocation sweep: idle callers go offline (their undialled
    task back to the pool), then every active, online caller is asked for a task."""
    return await publish_sweep(
        session,
        context,
        CallAllocationSweepRequested(requested_at=context.now),
        step="call_allocation",
    )


# --- step 4 ---------------------------------------------------------------------------------


async def request_screening_follow_up_sweep(session: AsyncSession, context: CycleContext) -> int:
    """The outreach service's screening sweep: a reminder for each open response untouched for
    15+ minutes."""
    return await publish_sweep(
        session,
        context,
        ScreeningFollowUpSweepRequested(requested_at=context.now),
        step="screening_follow_up",
    )


# --- step 5 ---------------------------------------------------------------------------------


async def request_signup_chase_sweep(session: AsyncSession, context: CycleContext) -> int:
    """The allocation service's sign-up chase sweep: chase tasks for experts sent a sign-up
    link long enough ago who have not signed up."""
    return await publish_sweep(
        session,
        context,
        SignupChaseSweepRequested(requested_at=context.now),
        step="signup_chase",
    )


# --- callback timeouts (not in the manual; before retention) ---------------------------------


async def request_callback_timeout_sweep(session: AsyncSession, context: CycleContext) -> int:
    """The enrichment service's callback sweep: Zeliq attempts still waiting past
    ``ZELIQ_CALLBACK_TIMEOUT_SECONDS`` time out and complete their experts' waterfalls."""
    return await publish_sweep(
        session,
        context,
        EnrichmentCallbackSweepRequested(requested_at=context.now),
        step="enrichment_callback_timeouts",
    )


# --- step 6 (not in the manual) -------------------------------------------------------------


async def prune_expired_rows(session: AsyncSession, context: CycleContext) -> int:
    """Retention: dedup rows, performance snapshots (each caller's latest kept), audit events,
    raw webhook payloads and idempotency keys older than their settings, at most
    ``RETENTION_BATCH_SIZE`` rows of each per cycle. Idempotent: a second run finds fewer rows,
    never others."""
    settings = context.settings
    limit = settings.RETENTION_BATCH_SIZE

    def before(days: int) -> datetime:
        return context.now - timedelta(days=days)

    dedup = before(settings.DEDUP_RETENTION_DAYS)
    return sum(
        [
            await repository.prune_processed_events(session, older_than=dedup, limit=limit),
            await repository.prune_processed_webhook_events(session, older_than=dedup, limit=limit),
            await repository.prune_performance_snapshots(
                session,
                older_than=before(settings.PERFORMANCE_SNAPSHOT_RETENTION_DAYS),
                limit=limit,
            ),
            await repository.prune_system_events(
                session, older_than=before(settings.SYSTEM_EVENT_RETENTION_DAYS), limit=limit
            ),
            await repository.clear_raw_webhook_payloads(
                session,
                older_than=before(settings.RAW_WEBHOOK_PAYLOAD_RETENTION_DAYS),
                limit=limit,
            ),
            await repository.prune_idempotency_keys(
                session,
                older_than=context.now - timedelta(hours=settings.IDEMPOTENCY_KEY_RETENTION_HOURS),
                limit=limit,
            ),
        ]
    )


STEPS: tuple[tuple[str, Step], ...] = (
    ("dead_letter_archival", archive_dead_letters),
    ("performance_recalculation", enqueue_performance_recalculations),
    ("call_allocation", request_call_allocation_sweep),
    ("screening_follow_ups", request_screening_follow_up_sweep),
    ("signup_chase", request_signup_chase_sweep),
    ("enrichment_callback_timeouts", request_callback_timeout_sweep),
    ("retention_pruning", prune_expired_rows),
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


def documentation_handler(
    settings: SchedulerSettings, *, clock: Clock = utc_now
) -> DocumentationHandler:
    """The ``documentation.generate.v1`` handler writing to ``DOCS_OUTPUT_DIR`` and into the
    job row (what the gateway serves)."""
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
            job.documents = documents
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
