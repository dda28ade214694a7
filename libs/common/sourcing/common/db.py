"""Async SQLAlchemy engine and unit-of-work helpers.

Nobody commits but the edge: the API's session dependency and the agents' per-message
``session_scope()`` commit on success and roll back on error.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from sqlalchemy.ext.asyncio import (
    AsyncConnection,
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from sourcing.common.config import Settings, to_asyncpg_url


def create_engine(settings: Settings, *, database_url: str | None = None) -> AsyncEngine:
    """An engine whose every statement is bounded by the command timeout.

    A fixed pool, no overflow: an overflow connection is closed as soon as it is returned, and
    each new asyncpg connection pays its handshake, type introspection and statement
    preparation again; under sustained load that churn was the gateway's largest cost. Past
    the pool size a request waits (up to the command timeout) for a connection instead.

    Last in, first out: the connections in use are the few the load needs, already warm (each
    new asyncpg connection introspects types and prepares every statement once, hundreds of
    milliseconds under load), instead of cycling through the whole pool.
    """
    return create_async_engine(
        to_asyncpg_url(database_url or settings.DATABASE_URL),
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=0,
        pool_use_lifo=True,
        pool_pre_ping=True,
        pool_timeout=settings.DATABASE_COMMAND_TIMEOUT_SECONDS,
        connect_args={
            "command_timeout": settings.DATABASE_COMMAND_TIMEOUT_SECONDS,
            "timeout": settings.DATABASE_COMMAND_TIMEOUT_SECONDS,
            "server_settings": {"application_name": "expert-sourcing"},
        },
    )


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def session_scope(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """One unit of work: commit when the block succeeds, roll back when it raises."""
    async with sessionmaker() as session:
        try:
            yield session
            await session.commit()
        except BaseException:
            await session.rollback()
            raise


async def database_answers(bind: AsyncEngine | AsyncConnection, *, within: float) -> bool:
    """Whether PostgreSQL answers ``SELECT 1`` within ``within`` seconds on a connection of its own.

    Not through the pool: a pool whose connections are all busy says nothing about whether the
    database is up.
    """
    engine = bind if isinstance(bind, AsyncEngine) else bind.engine
    dsn = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        async with asyncio.timeout(within):
            connection = await asyncpg.connect(dsn)
            try:
                await connection.fetchval("SELECT 1")
            finally:
                await connection.close()
    except Exception:
        return False
    return True
