"""The first consumer's dedup of webhook deliveries (``processed_webhook_events``).

A vendor may deliver the same event twice (a retry, a replay): the consumer claims the
delivery's id, per source, in the transaction of its writes; a second claim finds it taken.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


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
        _CLAIM,
        {
            "source": source,
            "event_ids": [d.event_id for d in deliveries],
            "event_types": [d.event_type[:64] if d.event_type else None for d in deliveries],
            "hashes": [d.payload_sha256 for d in deliveries],
            "received": [d.received_at for d in deliveries],
            "correlations": [d.correlation_id for d in deliveries],
        },
    )
    return set(result.scalars())


# One statement whatever the number of deliveries (arrays unnested): compiled and prepared once.
_CLAIM = text(
    """
    INSERT INTO processed_webhook_events
        (id, source, event_id, event_type, payload_sha256, received_at, correlation_id)
    SELECT gen_random_uuid(), :source, e, t, h, r, c
    FROM unnest(CAST(:event_ids AS text[]), CAST(:event_types AS text[]),
                CAST(:hashes AS text[]), CAST(:received AS timestamptz[]),
                CAST(:correlations AS text[])) AS x(e, t, h, r, c)
    ON CONFLICT (source, event_id) DO NOTHING
    RETURNING event_id
    """
)


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
