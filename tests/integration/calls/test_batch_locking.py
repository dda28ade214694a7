"""Concurrent batches of the calls lanes lock callers in one order, so they never deadlock.

Two batches name the same two callers in opposite orders and recalculate each one's
performance (which locks the caller row), pausing between messages so both transactions are
open at once. Handler order alone deadlocks them (PostgreSQL aborts one); taking the callers
first, by id, as every calls batch handler does, the second batch simply waits for the first.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.calls import repository
from sourcing.calls.handlers import CallHandlers
from sourcing.common.db import session_scope
from sourcing.common.models import CallerPerformanceMetric
from tests.factories import create_caller
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

PAUSE_SECONDS = 0.3


async def _recalculate_batch(
    sessionmaker: async_sessionmaker[AsyncSession],
    handlers: CallHandlers,
    caller_ids: Sequence[uuid.UUID],
    *,
    lock_first: bool,
) -> None:
    async with session_scope(sessionmaker) as session:
        if lock_first:
            await repository.lock_callers(session, caller_ids)
        for caller_id in caller_ids:
            await handlers.recalculate_performance(session, [(caller_id, None)])
            await asyncio.sleep(PAUSE_SECONDS)


async def _two_callers(sessionmaker: async_sessionmaker[AsyncSession]) -> list[uuid.UUID]:
    async with session_scope(sessionmaker) as session:
        return [(await create_caller(session)).id for _ in range(2)]


async def test_opposite_orders_deadlock_without_the_batch_lock(
    sessionmaker_committing: async_sessionmaker[AsyncSession], database_settings: Settings
) -> None:
    handlers = CallHandlers(database_settings)
    first, second = await _two_callers(sessionmaker_committing)
    results = await asyncio.gather(
        _recalculate_batch(sessionmaker_committing, handlers, [first, second], lock_first=False),
        _recalculate_batch(sessionmaker_committing, handlers, [second, first], lock_first=False),
        return_exceptions=True,
    )
    failures = [result for result in results if isinstance(result, BaseException)]
    assert len(failures) == 1, results
    assert isinstance(failures[0], DBAPIError)
    assert "deadlock" in str(failures[0]).lower()


async def test_opposite_orders_both_commit_with_the_batch_lock(
    sessionmaker_committing: async_sessionmaker[AsyncSession], database_settings: Settings
) -> None:
    handlers = CallHandlers(database_settings)
    first, second = await _two_callers(sessionmaker_committing)
    await asyncio.gather(
        _recalculate_batch(sessionmaker_committing, handlers, [first, second], lock_first=True),
        _recalculate_batch(sessionmaker_committing, handlers, [second, first], lock_first=True),
    )
    async with session_scope(sessionmaker_committing) as session:
        snapshots = await session.scalar(
            select(func.count())
            .select_from(CallerPerformanceMetric)
            .where(CallerPerformanceMetric.caller_id.in_([first, second]))
        )
    assert snapshots == 4
