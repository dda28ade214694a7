"""Factories of the scheduler and operations tests: signup-link tasks, dead-letter payloads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import DeadLetter, Envelope, PerformanceRecalculate
from sourcing.common.models import CallTask, Expert, Project
from sourcing.common.models.enums import CallOutcome
from tests.factories import create_call_task, create_expert, create_project


async def create_signup_link_task(
    session: AsyncSession,
    *,
    outcome_at: datetime,
    expert: Expert | None = None,
    project: Project | None = None,
    **overrides: Any,
) -> CallTask:
    """A COMPLETED task whose outcome sent the expert a signup link at ``outcome_at``."""
    expert = expert or await create_expert(session)
    project = project or await create_project(session)
    return await create_call_task(
        session,
        project=project,
        expert=expert,
        status="COMPLETED",
        outcome=CallOutcome.INTERESTED_SIGNUP_LINK_SENT.value,
        outcome_at=outcome_at,
        completed_at=outcome_at,
        **overrides,
    )


def failed_envelope(caller_id: uuid.UUID | None = None, **overrides: Any) -> Envelope:
    envelope = Envelope.new(
        PerformanceRecalculate.message_type,
        PerformanceRecalculate(caller_id=caller_id or uuid.uuid4()),
        correlation_id=overrides.pop("correlation_id", None) or f"corr-{uuid.uuid4().hex[:8]}",
    )
    return envelope.model_copy(update=overrides) if overrides else envelope


def dead_letter_payload(
    *,
    origin_topic: str = "performance",
    origin_partition: int = 0,
    origin_offset: int = 0,
    envelope: Envelope | None = None,
    raw_value_base64: str | None = None,
    **overrides: Any,
) -> DeadLetter:
    """A ``dead-letter.recorded.v1`` payload as the reliability layer builds it."""
    original = envelope if envelope is not None or raw_value_base64 else failed_envelope()
    values: dict[str, Any] = {
        "consumer": "calls.performance",
        "origin_topic": origin_topic,
        "origin_partition": origin_partition,
        "origin_offset": origin_offset,
        "origin_key": str(uuid.uuid4()),
        "origin_headers": {"correlation-id": original.correlation_id if original else "raw"},
        "original_envelope": original.model_dump(mode="json") if original else None,
        "original_value_base64": raw_value_base64,
        "original_type": original.type if original else None,
        "original_id": original.id if original else None,
        "error": "provider answered 503",
        "error_type": "sourcing.common.kafka.retry.TransientError",
        "stack": "Traceback (most recent call last):\n  ...\n"
        "TransientError: provider answered 503\n",
        "attempts": 5,
        "failed_at": datetime.now(UTC),
        "correlation_id": original.correlation_id if original else None,
    }
    values.update(overrides)
    return DeadLetter(**values)
