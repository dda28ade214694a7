"""Never-contact-again: one rule for every place that must refuse to reach an expert."""

from __future__ import annotations

from sqlalchemy import exists, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Expert, ExpertSuppression


async def is_suppressed(session: AsyncSession, expert: Expert) -> bool:
    """The denormalised stamp on the expert, or a suppression row."""
    if expert.suppressed_at is not None:
        return True
    stmt = select(exists().where(ExpertSuppression.expert_id == expert.id))
    return bool((await session.execute(stmt)).scalar_one())
