"""Call tasks from the sourcing pipeline: an expert with a dialable phone gets one initial task.

:func:`ensure_initial_call_task` answers ``call-task.requested.v1`` (sent when the expert's phone
may have become known or their ranking changed). It decides from the database, never from the
message, so a replay or a late message changes nothing:

* no task when the project is gone, COMPLETED or ARCHIVED, the expert is suppressed (never
  contact again), signed up or has a CONVERTED lead in the project, or all their leads in the
  project are DISQUALIFIED, or they have no dialable (E.164) phone;
* an expert who has (or had) any call task in the project gets no new initial one: their
  PENDING tasks only take the latest ranking score;
* otherwise one PENDING ``INITIAL`` task with the project's priority, the latest ranking score,
  the expert's country as region, their first language and the E.164 phone. A PAUSED project's
  task waits in the pool (allocation hands out tasks of ACTIVE projects only).

The partial unique index on open tasks (``ON CONFLICT DO NOTHING``) is the final guard against
two deliveries racing.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation import repository
from sourcing.common.allocation import CLOSED_PROJECT_STATUSES
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.allocation import CallTaskRequested
from sourcing.common.models import SystemEvent
from sourcing.common.models.enums import CallTaskKind
from sourcing.common.statemachines import CallTaskStatus, LeadStatus

log = logging.getLogger("sourcing.allocation")


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
    """The rule of the module docstring for one (project, expert)."""
    facts = await repository.call_task_facts(session, request.project_id, request.expert_id)
    if facts is None or facts.project_status in CLOSED_PROJECT_STATUSES:
        return CallTaskDecision(skipped="the project or expert is gone, or the project closed")
    if facts.suppressed:
        return CallTaskDecision(skipped="the expert must never be contacted again")
    leads = await repository.leads_of(session, request.project_id, request.expert_id)
    if facts.signed_up or any(status == LeadStatus.CONVERTED.value for _, status in leads):
        return CallTaskDecision(skipped="the expert is converted")
    callable_leads = [lead_id for lead_id, status in leads if status != LeadStatus.DISQUALIFIED]
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
    correlation_id = correlation_id_var.get()
    task_id = await repository.insert_open_task(
        session,
        {
            "id": uuid.uuid4(),
            "project_id": request.project_id,
            "expert_id": request.expert_id,
            "lead_id": lead_id,
            "status": CallTaskStatus.PENDING.value,
            "status_changed_at": now,
            "kind": CallTaskKind.INITIAL.value,
            "priority": facts.priority,
            "ranking_score": facts.latest_score if facts.latest_score is not None else 0.0,
            "region_iso": facts.country_iso.upper() if facts.country_iso else None,
            "language_code": facts.language_codes[0].lower() if facts.language_codes else None,
            "phone_number": facts.phone,
            "correlation_id": correlation_id,
        },
    )
    if task_id is None:
        return CallTaskDecision(skipped="the expert already has an open call task")
    session.add(
        SystemEvent(
            type="call_task.created",
            entity_type="call_task",
            entity_id=task_id,
            actor=actor,
            correlation_id=correlation_id,
            data={
                "projectId": str(request.project_id),
                "expertId": str(request.expert_id),
                "leadId": str(lead_id),
                "trigger": request.trigger.value,
                "kind": CallTaskKind.INITIAL.value,
            },
        )
    )
    await session.flush()
    return CallTaskDecision(created=task_id)
