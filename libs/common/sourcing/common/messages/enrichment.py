"""Messages of the enrichment and ranking lanes."""

from __future__ import annotations

import uuid

from sourcing.common.events import MessagePayload, register_message


@register_message("enrichment.requested.v1", lane="enrichment", key="expert_id")
class EnrichmentRequested(MessagePayload):
    """Run the enrichment waterfall for one lead's expert (produced by lead ingestion)."""

    lead_id: uuid.UUID
    expert_id: uuid.UUID
    project_id: uuid.UUID


@register_message("ranking.requested.v1", lane="ranking", key="project_id")
class RankingRequested(MessagePayload):
    """Recompute one expert's priority score within a project (keyed by project id)."""

    project_id: uuid.UUID
    expert_id: uuid.UUID
