"""Asking the google-sheets-sync agent to refresh an expert's row: one rule for every producer.

A project's tab has one row per expert (name, contacts, lead status, ranking, screening, calls),
so whatever changed — enrichment, outreach, screening, a call outcome — the row to refresh is
the expert's.
"""

from __future__ import annotations

import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.kafka.outbox import add_to_outbox
from sourcing.common.messages.outreach import SheetSyncRequested

SHEETS_LANE = "google-sheets-sync"
EXPERT_ENTITY = "expert"


async def request_sheet_sync(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> None:
    """Stage the refresh in the caller's transaction (outbox), keyed by project."""
    await add_to_outbox(
        session,
        SHEETS_LANE,
        Envelope.new(
            SheetSyncRequested.message_type,
            SheetSyncRequested(
                project_id=project_id, entity_type=EXPERT_ENTITY, entity_id=expert_id
            ),
        ),
        key=str(project_id),
    )
