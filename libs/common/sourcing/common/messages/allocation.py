"""Messages of the call-allocation lane beyond the shared assign-current request."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, Field

from sourcing.common.events import MessagePayload, register_message
from sourcing.common.messages.scheduler import SweepRequested
from sourcing.common.models.enums import SuppressionReason


class CallTaskTrigger(StrEnum):
    """What made an expert's phone known (or their ranking change)."""

    RANKING = "ranking"  # every enrichment result is ranked, then this
    SALES_NAV_LEAD = "sales-nav-lead"  # a lead delivered with a phone
    OPERATOR_CONTACT = "operator-contact"  # POST /api/v1/experts/{expertId}/contacts
    PROJECT_RESUMED = "project-resumed"  # a PAUSED project is ACTIVE again


@register_message("call-task.requested.v1", lane="call-allocation", key="expert_id")
class CallTaskRequested(MessagePayload):
    """An expert of a project may have become callable (or their ranking changed): the
    allocation service gives them their one initial call task, or refreshes the ranking score
    of their PENDING one. Idempotent: the expert's current state decides, not the message.

    Produced through the outbox, keyed by expert id (one expert's requests in order), by the
    ranking of every enrichment result, by lead ingestion when the lead came with a phone, and
    by an operator adding a phone contact (one message per project the expert is a lead of).
    ``trigger`` says which, for the audit trail.
    """

    project_id: uuid.UUID
    expert_id: uuid.UUID
    lead_id: uuid.UUID | None = None
    trigger: CallTaskTrigger


@register_message("expert.signed-up.v1", lane="call-allocation", key="expert_key")
class ExpertSignedUp(MessagePayload):
    """A verified sign-up webhook delivery: the expert (by id, else email) signed up.

    Keyed by expert id (else the lowercased email). The envelope id is derived from the
    delivery id (``x-signup-event-id``), so a replayed delivery is dropped by the consumer's
    ``processed_events``; applying a sign-up twice changes nothing anyway.
    """

    event_id: str = Field(min_length=1, max_length=200)
    expert_id: uuid.UUID | None = None
    email: str | None = Field(default=None, max_length=320)
    signed_up_at: AwareDatetime
    received_at: AwareDatetime

    @property
    def expert_key(self) -> str:
        return str(self.expert_id) if self.expert_id else str(self.email)


@register_message("call-allocation.sweep-requested.v1", lane="call-allocation", key="sweep")
class CallAllocationSweepRequested(SweepRequested):
    """Scheduler step 3: callers idle past the presence timeout go offline (their undialled
    task back to the pool), then every active, online caller is asked for a task."""


@register_message("signup-chase.sweep-requested.v1", lane="call-allocation", key="sweep")
class SignupChaseSweepRequested(SweepRequested):
    """Scheduler step 5: sign-up chase tasks for experts sent a sign-up link long enough ago."""


@register_message("project.changed.v1", lane="call-allocation", key="project_id")
class ProjectChanged(MessagePayload):
    """An operator changed a project's status or priority (``PATCH /projects/{id}``): its
    call tasks follow. A new priority re-orders its PENDING tasks; COMPLETED or ARCHIVED
    cancels its open tasks (audited with ``actor``); a PAUSED project gets no new task and its
    tasks stay in the pool, not handed out, until it is ACTIVE again, when each of its experts
    is given the initial task the pause held back. Keyed by project id, so one project's
    changes apply in order; applying one twice changes nothing."""

    project_id: uuid.UUID
    status: str
    priority: int
    status_changed: bool
    actor: str


@register_message("expert.suppression-requested.v1", lane="call-allocation", key="expert_id")
class ExpertSuppressionRequested(MessagePayload):
    """Another context learnt that an expert must never be contacted again (an opt-out on a
    channel): the allocation service suppresses them the way a never-contact-again outcome does
    (``suppress_expert``: the person's suppression, open call tasks CANCELLED, leads
    DISQUALIFIED). Applying it twice changes nothing."""

    expert_id: uuid.UUID
    reason: SuppressionReason
    actor: str = Field(min_length=1, max_length=200)
    note: str | None = Field(default=None, max_length=1000)
