"""Queries of the webhooks: whether a Sales Nav delivery names a known project."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Project


async def project_exists(session: AsyncSession, project_id: uuid.UUID) -> bool:
    found = await session.execute(select(Project.id).where(Project.id == project_id))
    return found.scalar_one_or_none() is not None
