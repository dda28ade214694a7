"""The gateway's settings: the kernel's fields plus those of every context it mounts.

The gateway serves the allocation, enrichment, ingestion and outreach endpoints in its own
process, so it loads and validates their settings too; each context's endpoints read their
own class through :func:`sourcing.common.web.settings_of`.
"""

from __future__ import annotations

from pydantic import Field

from sourcing.allocation.endpoints import AllocationSettings
from sourcing.enrichment.endpoints import EnrichmentSettings
from sourcing.ingestion.endpoints import IngestionSettings
from sourcing.outreach.endpoints import OutreachSettings


class GatewaySettings(AllocationSettings, EnrichmentSettings, IngestionSettings, OutreachSettings):
    """What the gateway process reads (and validates at start-up)."""

    # A first request holding an Idempotency-Key this long without answering (its process
    # died) no longer blocks a retry with the same key.
    IDEMPOTENCY_ABANDONED_AFTER_SECONDS: float = Field(default=60.0, gt=0, le=3600)
