"""Messages of the sourcing lanes: Sales Nav deliveries, leads, enrichment, ranking."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, Field

from sourcing.common.events import MessagePayload, register_message


@register_message("sales-nav.leads-received.v1")
class SalesNavLeadsReceived(MessagePayload):
    """A verified Sales Nav webhook delivery: one search's leads for one project.

    ``leads`` are the validated lead objects as received, unknown fields included.
    """

    project_id: uuid.UUID
    search_url: str = Field(min_length=1, max_length=2048)
    leads: list[dict[str, Any]]
    received_at: AwareDatetime
