"""Asking the google-sheets-sync agent to refresh an expert's row: one rule for every producer.

A project's tab has one row per expert (name, contacts, lead status, ranking, screening, calls),
so whatever changed — enrichment, outreach, screening, a call outcome — the row to refresh is
the expert's.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.kafka.outbox import publish
from sourcing.common.messages.outreach import SheetSyncRequested

EXPERT_ENTITY = "expert"


async def request_sheet_sync(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> None:
    """Stage the refresh in the caller's transaction (outbox)."""
    await publish(
        session,
        SheetSyncRequested(project_id=project_id, entity_type=EXPERT_ENTITY, entity_id=expert_id),
    )
