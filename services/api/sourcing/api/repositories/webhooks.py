"""Queries of the webhooks: whether a Sales Nav delivery names a known project, whose
enrichment attempt a Zeliq callback answers."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import EnrichmentAttempt, Project


async def project_exists(session: AsyncSession, project_id: uuid.UUID) -> bool:
    found = await session.execute(select(Project.id).where(Project.id == project_id))
    return found.scalar_one_or_none() is not None


async def callback_request_expert(session: AsyncSession, request_id: uuid.UUID) -> uuid.UUID | None:
    """The expert of the enrichment attempt placed with this callback request id, if any."""
    found = await session.execute(
        select(EnrichmentAttempt.expert_id).where(
            EnrichmentAttempt.callback_request_id == request_id
        )
    )
    return found.scalar_one_or_none()
