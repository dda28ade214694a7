"""100 callers ask for work at once over 60 tasks: 60 distinct assignments, 40 told "nothing".

Real commits: every request has its own connection and transaction (no shared rolled-back
session), so ``FOR UPDATE SKIP LOCKED`` and the one-active-task-per-caller index are what
keep two callers off one task.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.api.app import create_app
from sourcing.common.db import session_scope
from sourcing.common.models import Caller, CallTask
from tests.factories import create_caller, create_project
from tests.factories_calls import MutableClock, create_pool_task

pytestmark = pytest.mark.integration

CALLERS, TASKS = 100, 60


async def test_concurrent_callers_never_share_a_task(
    api_settings_factory: Callable[..., object],
    sessionmaker_committing: async_sessionmaker[AsyncSession],
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    async with session_scope(sessionmaker_committing) as session:
        project = await create_project(session, priority=3)
        for index in range(TASKS):
            await create_pool_task(session, project=project, ranking_score=index / TASKS)
        callers = [await create_caller(session) for _ in range(CALLERS)]
    # Admission control out of the way: this is about SKIP LOCKED, not about overload.
    settings = api_settings_factory(
        DATABASE_POOL_SIZE=60,
        RATE_LIMIT_MAX_REQUESTS=10_000,
        ALLOCATION_MAX_IN_FLIGHT=60,
        ALLOCATION_ADMISSION_WAIT_MS=60_000,
    )
    app = create_app(settings)  # type: ignore[arg-type]
    clock = MutableClock()
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        app.state.clock = clock.unix
        start = asyncio.Event()

        async def ask(caller: Caller) -> httpx.Response:
            await start.wait()
            return await client.get(
                "/api/v1/call-tasks/current", headers=auth_headers("caller", str(caller.id))
            )

        requests = [asyncio.create_task(ask(caller)) for caller in callers]
        start.set()
        responses = await asyncio.wait_for(asyncio.gather(*requests), timeout=60)

    assert [r.status_code for r in responses] == [200] * CALLERS, [
        r.text for r in responses if r.status_code != 200
    ]
    bodies = [r.json() for r in responses]
    given = [b["task"]["id"] for b in bodies if b["task"] is not None]
    told_nothing = [b for b in bodies if b["task"] is None]
    assert len(given) == TASKS
    assert len(set(given)) == TASKS  # no task twice
    assert len(told_nothing) == CALLERS - TASKS
    assert all(b["reason"] == "NO_AVAILABLE_TASKS" for b in told_nothing)

    async with session_scope(sessionmaker_committing) as session:
        tasks = (await session.scalars(select(CallTask))).all()
        assert Counter(t.status for t in tasks) == {"ASSIGNED": TASKS}
        owners = [t.caller_id for t in tasks]
        assert len(set(owners)) == TASKS and None not in owners
        by_caller = {str(b["task"]["callerId"]): b["task"]["id"] for b in bodies if b["task"]}
        assert {str(t.caller_id): str(t.id) for t in tasks} == by_caller
        statuses = Counter((await session.scalars(select(Caller.allocation_status))).all())
        assert statuses == {"ACTIVE": TASKS, "IDLE_NO_AVAILABLE_TASKS": CALLERS - TASKS}
