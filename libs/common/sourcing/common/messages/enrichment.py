"""Messages of the enrichment and ranking lanes."""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import AwareDatetime

from sourcing.common.events import MessagePayload, register_message
from sourcing.common.messages.scheduler import SweepRequested

# What a callback answers: Zeliq's enrich/email and enrich/phone jobs.
CallbackKind = Literal["email", "phone"]


@register_message("enrichment.requested.v1", lane="enrichment", key="expert_id")
class EnrichmentRequested(MessagePayload):
    """Run the enrichment waterfall for one lead's expert (produced by lead ingestion)."""

    lead_id: uuid.UUID
    expert_id: uuid.UUID
    project_id: uuid.UUID


@register_message("zeliq.callback-received.v1", lane="enrichment", key="expert_id")
class ZeliqCallbackReceived(MessagePayload):
    """A Zeliq callback whose URL signature the gateway verified, for a known PENDING attempt.

    ``request_id`` is our id in the callback URL (the attempt's ``callback_request_id``);
    ``body`` is the callback's JSON as received. Keyed by expert, like the enrichment request
    that placed it; the consumer deduplicates on ``event_id`` (processed_webhook_events).
    """

    request_id: uuid.UUID
    kind: CallbackKind
    expert_id: uuid.UUID
    received_at: AwareDatetime
    body: dict[str, Any]

    @property
    def event_id(self) -> str:
        """One callback per request and kind: a second delivery is a replay."""
        return f"{self.request_id}:{self.kind}"


@register_message("enrichment.callback-sweep.v1", lane="enrichment", key="sweep")
class EnrichmentCallbackSweepRequested(SweepRequested):
    """The scheduler's callback-timeout tick (before retention): attempts still PENDING after
    ``ZELIQ_CALLBACK_TIMEOUT_SECONDS`` time out, and the waterfalls they held open complete."""


@register_message("ranking.requested.v1", lane="ranking", key="project_id")
class RankingRequested(MessagePayload):
    """Recompute one expert's priority score within a project (keyed by project id)."""

    project_id: uuid.UUID
    expert_id: uuid.UUID
