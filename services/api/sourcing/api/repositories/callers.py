"""Queries of the callers area."""

from __future__ import annotations

import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Caller, CallerPerformanceMetric


async def get_caller(session: AsyncSession, caller_id: uuid.UUID) -> Caller | None:
    return await session.get(Caller, caller_id)


async def email_taken(
    session: AsyncSession, email: str, *, except_caller: uuid.UUID | None = None
) -> bool:
    query = select(Caller.id).where(func.lower(Caller.email) == email.lower())
    if except_caller is not None:
        query = query.where(Caller.id != except_caller)
    return (await session.scalar(query.limit(1))) is not None


async def latest_performance(
    session: AsyncSession, caller_id: uuid.UUID
) -> CallerPerformanceMetric | None:
    return await session.scalar(
        select(CallerPerformanceMetric)
        .where(CallerPerformanceMetric.caller_id == caller_id)
        .order_by(CallerPerformanceMetric.computed_at.desc())
        .limit(1)
    )
