"""The first consumer's dedup of webhook deliveries (``processed_webhook_events``).

A vendor may deliver the same event twice (a retry, a replay): the consumer claims the
delivery's id, per source, in the transaction of its writes; a second claim finds it taken.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import ProcessedWebhookEvent


def body_sha256(body: dict[str, Any]) -> str:
    """A stable digest of a JSON body (keys sorted), for troubleshooting replays."""
    return hashlib.sha256(json.dumps(body, sort_keys=True, default=str).encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class WebhookDelivery:
    """One delivery to claim: its id per source, and what is kept for troubleshooting."""

    event_id: str
    event_type: str | None
    payload_sha256: str | None
    received_at: datetime
    correlation_id: str | None


async def claim_webhook_events(
    session: AsyncSession, *, source: str, deliveries: Sequence[WebhookDelivery]
) -> set[str]:
    """Record deliveries of ``source`` in one statement; returns the event ids claimed now (an
    id seen before, or twice in ``deliveries``, is claimed at most once: by its first)."""
    if not deliveries:
        return set()
    result = await session.execute(
        pg_insert(ProcessedWebhookEvent)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "source": source,
                    "event_id": delivery.event_id,
                    "event_type": delivery.event_type[:64] if delivery.event_type else None,
                    "payload_sha256": delivery.payload_sha256,
                    "received_at": delivery.received_at,
                    "correlation_id": delivery.correlation_id,
                }
                for delivery in deliveries
            ]
        )
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(ProcessedWebhookEvent.event_id)
    )
    return set(result.scalars())


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
    delivery = WebhookDelivery(event_id, event_type, payload_sha256, received_at, correlation_id)
    return bool(await claim_webhook_events(session, source=source, deliveries=[delivery]))
