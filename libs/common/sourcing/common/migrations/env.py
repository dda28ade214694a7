"""Alembic environment: asyncpg engine, one transaction, under a PostgreSQL advisory lock.

Configured by :mod:`sourcing.common.migrate` (no alembic.ini): the database URL arrives as the
config attribute ``database_url`` (else the settings' ``DATABASE_URL``); a caller that already
holds a synchronous connection may pass it as the attribute ``connection``.
"""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection, pool, text
from sqlalchemy.ext.asyncio import create_async_engine

from sourcing.common.config import to_asyncpg_url
from sourcing.common.migrate import MIGRATION_LOCK_KEY
from sourcing.common.models import Base

config = context.config
target_metadata = Base.metadata


def _database_url() -> str:
    url = config.attributes.get("database_url")
    if url:
        return str(url)
    from sourcing.common.config import get_settings

    return get_settings().DATABASE_URL


def _configure(**options: object) -> None:
    context.configure(
        target_metadata=target_metadata,
        compare_type=True,
        compare_server_default=True,
        **options,  # type: ignore[arg-type]
    )


def run_migrations_offline() -> None:
    """Emit SQL instead of running it (``alembic upgrade --sql``)."""
    _configure(url=to_asyncpg_url(_database_url()), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: Connection) -> None:
    # Transaction-scoped lock, taken before Alembic reads the version table: a second process
    # waits here until the first commits, then sees the new revision and has nothing to do.
    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
    _configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()
    # The lock opened the transaction, so Alembic treats it as external: commit it here.
    connection.commit()


async def run_async_migrations() -> None:
    engine = create_async_engine(to_asyncpg_url(_database_url()), poolclass=pool.NullPool)
    try:
        async with engine.connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
