"""The pool's checkout check (``sourcing.common.db.create_engine``, in place of SQLAlchemy's
pre-ping): a connection the server closed is replaced before use, whether it came back to the
pool a moment ago (not pinged: its socket tells) or has been idle (pinged)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from sourcing.common import db
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def one_connection_engine(database_settings: Settings) -> AsyncIterator[AsyncEngine]:
    engine = db.create_engine(database_settings.model_copy(update={"DATABASE_POOL_SIZE": 1}))
    try:
        yield engine
    finally:
        await engine.dispose()


async def _backend(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        return int((await connection.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def _terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as connection:  # the engine's other connection: a fresh one
        await connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


@pytest.mark.parametrize("idle", [False, True], ids=["just used", "idle"])
async def test_a_connection_the_server_closed_is_replaced_on_checkout(
    one_connection_engine: AsyncEngine,
    engine: AsyncEngine,
    monkeypatch: pytest.MonkeyPatch,
    idle: bool,
) -> None:
    first = await _backend(one_connection_engine)
    await _terminate(engine, first)
    await asyncio.sleep(0.2)  # the server's goodbye reaches the pooled socket
    if idle:
        monkeypatch.setattr(db, "PING_AFTER_IDLE_SECONDS", 0.0)
    assert await _backend(one_connection_engine) != first
