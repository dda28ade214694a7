"""Messages of the outreach, screening and google-sheets-sync lanes, and the inbound channel
events the gateway's webhooks normalise for the outreach context."""

from __future__ import annotations

import uuid
from enum import StrEnum

from pydantic import AwareDatetime, Field

from sourcing.common.events import MessagePayload, register_message
from sourcing.common.messages.scheduler import SweepRequested
from sourcing.common.models.enums import Channel


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


class InboundKind(StrEnum):
    """What a channel reported back (every provider family is normalised onto these)."""

    REPLY = "REPLY"  # the expert wrote back
    DELIVERED = "DELIVERED"  # an outbound message reached the expert
    BOUNCED = "BOUNCED"  # an outbound message could not be delivered (see ``hard_bounce``)
    OPT_OUT = "OPT_OUT"  # the expert unsubscribed, texted STOP, blocked the bot


@register_message("outreach.inbound.v1", lane="outreach", key="routing_key")
class InboundChannelEvent(MessagePayload):
    """One verified event from a channel provider's webhook, in the providers' common shape.

    ``provider`` + ``event_id`` is the provider's own event id (the consumer's dedup key in
    ``processed_webhook_events``). The event names the outbound message it is about
    (``provider_message_id``), the conversation (``external_thread_id``) and/or the expert's
    address on the channel (``address``: the email, phone, chat id the reply came from or the
    bounce went to); the outreach context matches it to a thread. Keyed by the address (else the
    thread, else the message), so one person's events are handled in order.
    """

    provider: str = Field(min_length=1, max_length=24)
    event_id: str = Field(min_length=1, max_length=200)
    kind: InboundKind
    channel: Channel | None = None
    provider_message_id: str | None = Field(default=None, max_length=500)
    external_thread_id: str | None = Field(default=None, max_length=500)
    address: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=20_000)
    hard_bounce: bool = False
    detail: str | None = Field(default=None, max_length=1000)
    occurred_at: AwareDatetime
    received_at: AwareDatetime

    @property
    def routing_key(self) -> str:
        return self.address or self.external_thread_id or self.provider_message_id or self.event_id
