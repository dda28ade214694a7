"""The call-allocation agent: the same rule as the API, expiry, no-op for refused callers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.allocation.app import build_app
from sourcing.allocation.handlers import AllocationHandlers
from sourcing.common.db import session_scope
from sourcing.common.events import CallAllocationAssignCurrent
from sourcing.common.kafka.outbox import publish
from sourcing.common.models import Caller, CallTask, ProcessedEvent
from tests.factories import create_caller, create_project
from tests.factories_calls import NOW, MutableClock, create_pool_task
from tests.fixtures.kafka import AppFactory, running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


async def test_pre_assigns_the_best_task_once(
    session: AsyncSession, database_settings: Settings
) -> None:
    handlers = AllocationHandlers(database_settings, clock=MutableClock())
    project = await create_project(session, priority=2)
    await create_pool_task(session, ranking_score=0.9)  # lower project priority
    best = await create_pool_task(session, project=project, ranking_score=0.1)
    caller = await create_caller(session, last_seen_at=NOW)  # online: asked for work at NOW

    first = await handlers.assign_current(session, caller.id)
    again = await handlers.assign_current(session, caller.id)

    assert first is not None and first.task_id == best.id and first.newly_assigned
    assert again is not None and again.task_id == best.id and not again.newly_assigned


@pytest.mark.parametrize("status", ["PAUSED_LOW_DIAL_RATE", "RESTRICTED_FRAUD", "SUSPENDED"])
async def test_refused_callers_are_left_alone(
    session: AsyncSession, database_settings: Settings, status: str
) -> None:
    handlers = AllocationHandlers(database_settings, clock=MutableClock())
    task = await create_pool_task(session)
    caller = await create_caller(session, allocation_status=status, last_seen_at=NOW)
    assert await handlers.assign_current(session, caller.id) is None
    assert await handlers.assign_current(session, uuid.uuid4()) is None  # unknown caller
    await session.refresh(task)
    await session.refresh(caller)
    assert task.status == "PENDING"
    assert caller.allocation_status == status


async def test_offline_callers_get_nothing_from_the_agent(
    session: AsyncSession, database_settings: Settings
) -> None:
    clock = MutableClock()
    handlers = AllocationHandlers(database_settings, clock=clock)
    task = await create_pool_task(session)
    never_asked = await create_caller(session)
    idle = await create_caller(session, last_seen_at=NOW)
    clock.advance(seconds=database_settings.CALLER_PRESENCE_TIMEOUT_SECONDS)
    for caller in (never_asked, idle):
        assert await handlers.assign_current(session, caller.id) is None
    await session.refresh(task)
    assert (task.status, task.caller_id) == ("PENDING", None)


async def test_expires_stale_assignments_before_assigning(
    session: AsyncSession, database_settings: Settings
) -> None:
    clock = MutableClock()
    handlers = AllocationHandlers(database_settings, clock=clock)
    task = await create_pool_task(session)
    slow = await create_caller(session, last_seen_at=NOW)
    next_caller = await create_caller(session, last_seen_at=NOW)
    assert (await handlers.assign_current(session, slow.id)).task_id == task.id  # type: ignore[union-attr]
    clock.advance(seconds=database_settings.CALL_TASK_DIAL_DEADLINE_SECONDS)
    result = await handlers.assign_current(session, next_caller.id)
    assert result is not None and result.task_id == task.id
    await session.refresh(task)
    assert (task.status, task.caller_id, task.requeue_count) == ("ASSIGNED", next_caller.id, 1)
    assert task.expires_at == clock.now + timedelta(
        seconds=database_settings.CALL_TASK_DIAL_DEADLINE_SECONDS
    )


async def test_the_agent_consumes_assign_current_from_kafka(
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    kafka_app_factory: AppFactory,
) -> None:
    async with session_scope(kafka_sessionmaker) as session:
        task = await create_pool_task(session)
        caller = await create_caller(session, last_seen_at=NOW)
        # Sent through the outbox like the performance service does.
        await publish(session, CallAllocationAssignCurrent(caller_id=caller.id))
    app = build_app(
        kafka_settings,
        clock=lambda: NOW,
        web_enabled=False,
        sessionmaker=kafka_sessionmaker,
        datadir=None,
    )
    del kafka_app_factory  # the app is built by the service's own factory

    async def assigned() -> bool:
        async with session_scope(kafka_sessionmaker) as session:
            row = await session.get(CallTask, task.id, populate_existing=True)
            return row is not None and row.caller_id == caller.id

    async with running_app(app):
        await wait_until(assigned, timeout=60, message="task assigned by the agent")
    async with session_scope(kafka_sessionmaker) as session:
        done = await session.scalar(
            select(ProcessedEvent).where(ProcessedEvent.consumer == "call-allocation")
        )
        assert done is not None
        fresh = await session.get(Caller, caller.id)
        assert fresh is not None and fresh.allocation_status == "ACTIVE"
