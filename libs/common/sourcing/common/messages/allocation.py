"""Messages of the call-allocation lane beyond the shared assign-current request."""

from __future__ import annotations

import uuid

from pydantic import AwareDatetime, Field

from sourcing.common.events import MessagePayload, register_message


@register_message("expert.signed-up.v1")
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
