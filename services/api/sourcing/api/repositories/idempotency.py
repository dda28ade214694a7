"""Queries of the idempotency keys: claim a key, store its answer, release it."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import IdempotencyKey


async def claim(
    session: AsyncSession,
    *,
    owner: str,
    key: str,
    fingerprint: str,
    now: datetime,
    abandoned_before: datetime,
) -> IdempotencyKey | None:
    """Take the key for a first request (None), or return the row that already holds it. A
    claim whose request never finished (its process died) before ``abandoned_before`` is taken
    over, as if new."""
    inserted = await session.scalar(
        insert(IdempotencyKey)
        .values(owner=owner, key=key, fingerprint=fingerprint, created_at=now)
        .on_conflict_do_nothing(index_elements=["owner", "key"])
        .returning(IdempotencyKey.key)
    )
    if inserted is not None:
        return None
    taken_over = await session.scalar(
        update(IdempotencyKey)
        .where(
            IdempotencyKey.owner == owner,
            IdempotencyKey.key == key,
            IdempotencyKey.status_code.is_(None),
            IdempotencyKey.created_at < abandoned_before,
        )
        .values(fingerprint=fingerprint, created_at=now)
        .returning(IdempotencyKey.key)
    )
    if taken_over is not None:
        return None
    return await session.scalar(
        select(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
    )


async def complete(
    session: AsyncSession,
    *,
    owner: str,
    key: str,
    status_code: int,
    content_type: str | None,
    body: str,
    now: datetime,
) -> None:
    await session.execute(
        update(IdempotencyKey)
        .where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
        .values(
            status_code=status_code, content_type=content_type, response_body=body, completed_at=now
        )
    )


async def release(session: AsyncSession, *, owner: str, key: str) -> None:
    await session.execute(
        delete(IdempotencyKey).where(
            IdempotencyKey.owner == owner,
            IdempotencyKey.key == key,
            IdempotencyKey.status_code.is_(None),
        )
    )
