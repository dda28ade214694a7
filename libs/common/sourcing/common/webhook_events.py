"""The first consumer's dedup of webhook deliveries (``processed_webhook_events``).

A vendor may deliver the same event twice (a retry, a replay): the consumer claims the
delivery's id, per source, in the transaction of its writes; a second claim finds it taken.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import ProcessedWebhookEvent


def body_sha256(body: dict[str, Any]) -> str:
    """A stable digest of a JSON body (keys sorted), for troubleshooting replays."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


async def claim_webhook_event(
    session: AsyncSession,
    *,
    source: str,
    event_id: str,
    event_type: str | None,
    payload_sha256: str | None,
    received_at: datetime,
    correlation_id: str | None,
) -> bool:
    """Record a delivery of ``source``; False when its id was seen before (a replay)."""
    result = await session.execute(
        pg_insert(ProcessedWebhookEvent)
        .values(
            id=uuid.uuid4(),
            source=source,
            event_id=event_id,
            event_type=event_type[:64] if event_type else None,
            payload_sha256=payload_sha256,
            received_at=received_at,
            correlation_id=correlation_id,
        )
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(ProcessedWebhookEvent.id)
    )
    return result.scalar_one_or_none() is not None
