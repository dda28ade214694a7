"""The gateway's settings: the kernel's fields plus those of every context it mounts.

The gateway serves the allocation, ingestion and outreach endpoints in its own process, so it
loads and validates their settings too; each context's endpoints read their own class through
:func:`sourcing.common.web.settings_of`.
"""

from __future__ import annotations

from sourcing.allocation.endpoints import AllocationSettings
from sourcing.ingestion.endpoints import IngestionSettings
from sourcing.outreach.endpoints import OutreachSettings


class GatewaySettings(AllocationSettings, IngestionSettings, OutreachSettings):
    """What the gateway process reads (and validates at start-up)."""
