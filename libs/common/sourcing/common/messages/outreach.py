"""Messages of the outreach, screening and google-sheets-sync lanes."""

from __future__ import annotations

import uuid

from pydantic import Field

from sourcing.common.events import MessagePayload, register_message
from sourcing.common.messages.scheduler import SweepRequested


@register_message("outreach.auto.v1", lane="outreach", key="expert_id")
class AutoOutreachRequested(MessagePayload):
    """An expert of a project that wants outreach was enriched: the outreach service picks the
    channel, recipient and template from the project and the expert's contacts."""

    project_id: uuid.UUID
    expert_id: uuid.UUID
    lead_id: uuid.UUID | None = None


@register_message("screening.follow-up.v1", lane="screening", key="expert_id")
class ScreeningFollowUpRequested(MessagePayload):
    """Remind an expert of an untouched screening response (scheduled by the scheduler).

    Keyed by the response's expert, so one expert's reminders are handled in order."""

    response_id: uuid.UUID
    expert_id: uuid.UUID


# The one entity type producers ask a sheet refresh for (a tab has one row per expert).
SHEET_EXPERT_ENTITY = "expert"


@register_message("google-sheets-sync.requested.v1", lane="google-sheets-sync", key="project_id")
class SheetSyncRequested(MessagePayload):
    """An entity shown in a project's sheet changed; refresh its row.

    A project's tab has one row per expert (name, contacts, lead status, ranking, screening,
    calls), so whatever changed — enrichment, outreach, screening, a call outcome — producers
    ask for the expert's row (:meth:`for_expert`).
    """

    project_id: uuid.UUID
    entity_type: str = Field(min_length=1, max_length=64)
    entity_id: uuid.UUID

    @classmethod
    def for_expert(cls, *, project_id: uuid.UUID, expert_id: uuid.UUID) -> SheetSyncRequested:
        return cls(project_id=project_id, entity_type=SHEET_EXPERT_ENTITY, entity_id=expert_id)


@register_message("outreach.send.v1", lane="outreach", key="expert_id")
class OutreachSendRequested(MessagePayload):
    """Deliver one queued OutreachMessage through its thread's channel (keyed by expert id).

    Everything else (channel, recipient, body) is read from the message row, written in the
    same transaction as this message's outbox row.
    """

    message_id: uuid.UUID
    expert_id: uuid.UUID
    project_id: uuid.UUID
    subject: str | None = Field(default=None, max_length=500)


@register_message("project.closed.v1", lane="outreach", key="project_id")
class ProjectClosed(MessagePayload):
    """An operator moved a project to COMPLETED or ARCHIVED (``PATCH /projects/{id}``): the
    outreach service cancels its queued, never sent messages (audited with ``actor``). Applying
    it twice changes nothing."""

    project_id: uuid.UUID
    status: str
    actor: str


@register_message("screening.follow-up-sweep.v1", lane="screening", key="sweep")
class ScreeningFollowUpSweepRequested(SweepRequested):
    """Scheduler step 4: a reminder for every screening response left untouched for
    ``SCREENING_FOLLOW_UP_IDLE_MINUTES``."""
