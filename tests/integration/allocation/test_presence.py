"""Caller presence: online from the first task request until CALLER_PRESENCE_TIMEOUT_SECONDS
pass without a request or a call event; offline callers get no work and lose an undialled task.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation import service as allocation
from sourcing.allocation.handlers import AllocationHandlers
from sourcing.calls.handlers import CallHandlers
from sourcing.common.events import Envelope
from sourcing.common.messages.calls import YayCallEventReceived
from sourcing.common.models import Caller, CallTask
from sourcing.people.callers import is_online
from tests.factories import create_caller
from tests.factories_calls import NOW, create_pool_task
from tests.fixtures.settings import Settings
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

CURRENT = "/api/v1/call-tasks/current"
Headers = Callable[..., dict[str, str]]


async def _call_event(
    session: AsyncSession, settings: Settings, caller: Caller, *, at: timedelta
) -> None:
    moment = NOW + at
    payload = YayCallEventReceived(
        event_id=f"evt-{uuid.uuid4()}",
        event_type="call.ringing",
        call_id=f"call-{uuid.uuid4()}",
        agent_email=caller.email,
        signature_timestamp=moment,
        received_at=moment,
        body={
            "event": "call.ringing",
            "occurredAt": moment.isoformat(),
            "agentEmail": caller.email,
        },
    )
    handlers = CallHandlers(settings, clock=lambda: moment)
    await handlers.handle_yay_event(
        session, Envelope.new(YayCallEventReceived.message_type, payload), payload
    )


async def test_a_task_request_makes_the_caller_online_for_the_agent(
    gateway: Gateway,
    session: AsyncSession,
    caller_headers: Headers,
    database_settings: Settings,
) -> None:
    caller = await create_caller(session)
    agent = AllocationHandlers(database_settings, clock=lambda: NOW)
    await create_pool_task(session)
    assert await agent.assign_current(session, caller.id) is None  # never asked: offline
    body = (await gateway.client.get(CURRENT, headers=caller_headers(caller))).json()
    assert body["task"] is not None  # asking for work is being online
    await session.refresh(caller)
    assert caller.last_seen_at == NOW
    assert is_online(caller, now=NOW, settings=database_settings)


async def test_going_offline_releases_an_undialled_task(
    gateway: Gateway,
    session: AsyncSession,
    caller_headers: Headers,
    database_settings: Settings,
) -> None:
    task = await create_pool_task(session)
    caller, other = await create_caller(session), await create_caller(session)
    body = (await gateway.client.get(CURRENT, headers=caller_headers(caller))).json()
    assert body["task"]["id"] == str(task.id)

    timeout = timedelta(seconds=database_settings.CALLER_PRESENCE_TIMEOUT_SECONDS)
    just_before = NOW + timeout - timedelta(seconds=1)
    assert (
        await allocation.release_offline_callers(
            session, now=just_before, settings=database_settings, actor="test"
        )
        == []
    )
    later = NOW + timeout
    offline = await allocation.release_offline_callers(
        session, now=later, settings=database_settings, actor="test"
    )
    assert offline == [caller.id]
    fresh = await session.get(CallTask, task.id, populate_existing=True)
    assert fresh is not None and (fresh.status, fresh.caller_id) == ("PENDING", None)
    await session.refresh(caller)
    assert caller.last_seen_at is None
    agent = AllocationHandlers(database_settings, clock=lambda: later)
    assert await agent.assign_current(session, caller.id) is None

    gateway.clock.set(later)
    taken = (await gateway.client.get(CURRENT, headers=caller_headers(other))).json()
    assert taken["task"]["id"] == str(task.id)


async def test_a_call_event_keeps_the_caller_online(
    gateway: Gateway,
    session: AsyncSession,
    caller_headers: Headers,
    database_settings: Settings,
) -> None:
    timeout = timedelta(seconds=database_settings.CALLER_PRESENCE_TIMEOUT_SECONDS)
    caller = await create_caller(session)
    await gateway.client.get(CURRENT, headers=caller_headers(caller))
    await _call_event(session, database_settings, caller, at=timeout / 2)
    await session.refresh(caller)
    assert caller.last_seen_at == NOW + timeout / 2

    past_the_request = NOW + timeout
    assert (
        await allocation.release_offline_callers(
            session, now=past_the_request, settings=database_settings, actor="test"
        )
        == []
    )
    await create_pool_task(session)
    agent = AllocationHandlers(database_settings, clock=lambda: past_the_request)
    result = await agent.assign_current(session, caller.id)
    assert result is not None and result.task_id is not None


async def test_a_call_event_does_not_bring_an_offline_caller_back(
    session: AsyncSession, database_settings: Settings
) -> None:
    timeout = timedelta(seconds=database_settings.CALLER_PRESENCE_TIMEOUT_SECONDS)
    never_asked = await create_caller(session)
    idle = await create_caller(session, last_seen_at=NOW)
    for caller in (never_asked, idle):
        await _call_event(session, database_settings, caller, at=timeout)
        await session.refresh(caller)
    assert never_asked.last_seen_at is None
    assert idle.last_seen_at == NOW
    assert not is_online(idle, now=NOW + timeout, settings=database_settings)
