"""Messages of the calls lanes: Yay webhook events on their way to validation and performance."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AwareDatetime, Field

from sourcing.common.events import MessagePayload, register_message

YAY_EVENT_TYPES = (
    "call.started",
    "call.ringing",
    "call.answered",
    "call.ended",
    "call.failed",
    "call.recording_ready",
)


@register_message("yay.call-event.received.v1", lane="yay-call-events", key="caller_key")
class YayCallEventReceived(MessagePayload):
    """A Yay webhook delivery whose signature and timestamp the gateway verified.

    ``body`` is the webhook's JSON as received (unknown event types are kept and stored);
    the first consumer deduplicates on ``event_id`` and persists it as CallLogRaw.
    """

    event_id: str = Field(min_length=1, max_length=200)
    event_type: str = Field(min_length=1, max_length=100)
    call_id: str = Field(min_length=1, max_length=200)
    agent_email: str | None = None
    signature_timestamp: datetime
    received_at: AwareDatetime
    body: dict[str, Any]

    @property
    def caller_key(self) -> str:
        """The key: the agent's email (one caller's events in order), else the call id."""
        return (self.agent_email or self.call_id).lower()


@register_message("call-validation.requested.v1", lane="call-validation", key="caller_id")
class CallValidationRequested(MessagePayload):
    """A call ended (or failed): validate it (short call, timezone mismatch), settle its task.

    Sent by the yay-call-events consumer through the outbox, keyed by caller id, each time an
    event of an ended call changes its CallLog; validation is idempotent (same log, same flags).
    """

    call_log_id: uuid.UUID
    caller_id: uuid.UUID
    yay_call_id: str = Field(min_length=1, max_length=200)
