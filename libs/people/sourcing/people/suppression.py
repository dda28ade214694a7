"""Never contact again: the one rule every context applies before reaching an expert.

An expert is suppressed when their row carries ``suppressed_at``, or a suppression row names
the expert — or names one of the identities (normalised LinkedIn URL, email) a new lead brings,
so a person suppressed under another expert row is still recognised at ingestion.
"""

from __future__ import annotations

import uuid

from sqlalchemy import ColumnElement, exists, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute

from sourcing.common.models import Expert, ExpertSuppression


def _named(
    expert_id: InstrumentedAttribute[uuid.UUID] | uuid.UUID,
    *,
    linkedin_url: str | None,
    email: str | None,
) -> ColumnElement[bool]:
    named = [ExpertSuppression.expert_id == expert_id]
    if linkedin_url is not None:
        named.append(ExpertSuppression.linkedin_url_normalized == linkedin_url)
    if email is not None:
        named.append(func.lower(ExpertSuppression.email) == email.lower())
    return exists().where(or_(*named))


def suppressed_expert() -> ColumnElement[bool]:
    """SQL truth of the rule for the row of a query over ``Expert``."""
    return or_(
        Expert.suppressed_at.is_not(None),
        _named(Expert.id, linkedin_url=None, email=None),
    )


def suppressed(
    expert_id: uuid.UUID, *, linkedin_url: str | None = None, email: str | None = None
) -> ColumnElement[bool]:
    """SQL truth of the rule for one expert and the identities a new lead brings."""
    stamped = select(Expert.id).where(Expert.id == expert_id, Expert.suppressed_at.is_not(None))
    return or_(exists(stamped), _named(expert_id, linkedin_url=linkedin_url, email=email))


async def is_suppressed(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    linkedin_url: str | None = None,
    email: str | None = None,
) -> bool:
    """Whether the expert (or one of the given identities) must never be contacted again."""
    return bool(
        await session.scalar(select(suppressed(expert_id, linkedin_url=linkedin_url, email=email)))
    )
