"""The outcome after a real call: recorded once per task, whichever of the outcome and the
call's validation settles the task first, with its effects exactly once."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.api.app import create_app
from sourcing.calls.handlers import CallHandlers
from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.messages.calls import CallValidationRequested, YayCallEventReceived
from sourcing.common.models import (
    Caller,
    CallLog,
    CallTask,
    ExpertSuppression,
    SignupChase,
    SystemEvent,
)
from tests.factories import create_caller
from tests.factories_calls import NOW, create_pool_task
from tests.fixtures.settings import Settings
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

CURRENT = "/api/v1/call-tasks/current"
Headers = Callable[..., dict[str, str]]


def outcome_url(task_id: object) -> str:
    return f"/api/v1/call-tasks/{task_id}/outcome"


@pytest.fixture
def handlers(database_settings: Settings) -> CallHandlers:
    return CallHandlers(database_settings, clock=lambda: NOW)


async def _yay(
    handlers: CallHandlers,
    session: AsyncSession,
    caller: Caller,
    task: CallTask,
    call_id: str,
    kind: str,
    *,
    seconds_before_now: int,
    **body: Any,
) -> None:
    at = NOW - timedelta(seconds=seconds_before_now)
    payload = YayCallEventReceived(
        event_id=f"evt-{uuid.uuid4()}",
        event_type=kind,
        call_id=call_id,
        agent_email=caller.email,
        signature_timestamp=at,
        received_at=at,
        body={
            "event": kind,
            "callId": call_id,
            "occurredAt": at.isoformat(),
            "agentEmail": caller.email,
            "to": task.phone_number,
            "direction": "outbound",
            "metadata": {"taskId": str(task.id)},
            **body,
        },
    )
    await handlers.handle_yay_event(
        session, Envelope.new(YayCallEventReceived.message_type, payload), payload
    )


async def _validate(
    handlers: CallHandlers, session: AsyncSession, caller: Caller, call_id: str
) -> None:
    log = await session.scalar(select(CallLog).where(CallLog.yay_call_id == call_id))
    assert log is not None
    payload = CallValidationRequested(call_log_id=log.id, caller_id=caller.id, yay_call_id=call_id)
    await handlers.handle_call_validation(
        session, Envelope.new(CallValidationRequested.message_type, payload), payload
    )


async def _answered_call(
    handlers: CallHandlers, session: AsyncSession, caller: Caller, task: CallTask, call_id: str
) -> None:
    await _yay(handlers, session, caller, task, call_id, "call.started", seconds_before_now=120)
    await _yay(handlers, session, caller, task, call_id, "call.answered", seconds_before_now=110)
    await _yay(
        handlers,
        session,
        caller,
        task,
        call_id,
        "call.ended",
        seconds_before_now=10,
        durationSeconds=110,
        talkSeconds=100,
    )


async def _assigned(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> tuple[Caller, CallTask]:
    await create_pool_task(session)
    caller = await create_caller(session)
    body = (await gateway.client.get(CURRENT, headers=caller_headers(caller))).json()
    task = await session.get(CallTask, uuid.UUID(body["task"]["id"]))
    assert task is not None and task.status == "ASSIGNED"
    return caller, task


async def _follow_ups(session: AsyncSession, task: CallTask, kind: str) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(CallTask)
        .where(CallTask.chase_of_task_id == task.id, CallTask.kind == kind)
    )
    return int(count or 0)


async def _outcome_events(session: AsyncSession, task: CallTask) -> int:
    count = await session.scalar(
        select(func.count())
        .select_from(SystemEvent)
        .where(SystemEvent.type == "call_task.outcome_recorded", SystemEvent.entity_id == task.id)
    )
    return int(count or 0)


async def test_outcome_after_the_validation_completed_the_task(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, handlers: CallHandlers
) -> None:
    caller, task = await _assigned(gateway, session, caller_headers)
    await _answered_call(handlers, session, caller, task, "call-after")
    await _validate(handlers, session, caller, "call-after")
    await session.refresh(task)
    assert task.status == "COMPLETED" and task.outcome is None

    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "INTERESTED_SIGNUP_LINK_SENT"},
        headers=caller_headers(caller),
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"]["status"] == "COMPLETED"
    assert body["task"]["outcome"] == "INTERESTED_SIGNUP_LINK_SENT"
    assert body["followUpTaskId"] is not None

    second = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "INTERESTED_SIGNUP_LINK_SENT"},
        headers=caller_headers(caller),
    )
    assert second.status_code == 409, second.text
    assert second.json()["error"]["code"] == "invalid_transition"
    assert second.json()["error"]["details"]["outcome"] == "INTERESTED_SIGNUP_LINK_SENT"

    await _validate(handlers, session, caller, "call-after")  # a redelivered validation
    assert await _follow_ups(session, task, "SIGNUP_CHASE") == 1
    chases = await session.scalar(
        select(func.count()).select_from(SignupChase).where(SignupChase.expert_id == task.expert_id)
    )
    assert chases == 1
    assert await _outcome_events(session, task) == 1


async def test_outcome_before_the_validation_settles_the_task(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, handlers: CallHandlers
) -> None:
    caller, task = await _assigned(gateway, session, caller_headers)
    await _yay(
        handlers, session, caller, task, "call-before", "call.started", seconds_before_now=90
    )
    await session.refresh(task)
    assert task.status == "DIALING"

    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "RETRYABLE_REJECTION"},
        headers=caller_headers(caller),
    )
    assert response.status_code == 200, response.text
    await _answered_call(handlers, session, caller, task, "call-before")
    await _validate(handlers, session, caller, "call-before")
    await session.refresh(task)
    assert task.status == "COMPLETED" and task.outcome == "RETRYABLE_REJECTION"
    assert await _follow_ups(session, task, "RETRY") == 1
    assert await _outcome_events(session, task) == 1

    second = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "NEVER_CONTACT_AGAIN"},
        headers=caller_headers(caller),
    )
    assert second.status_code == 409
    suppressed = await session.scalar(
        select(func.count())
        .select_from(ExpertSuppression)
        .where(ExpertSuppression.expert_id == task.expert_id)
    )
    assert suppressed == 0


async def test_never_contact_after_the_validation_suppresses_once(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, handlers: CallHandlers
) -> None:
    caller, task = await _assigned(gateway, session, caller_headers)
    await _answered_call(handlers, session, caller, task, "call-never")
    await _validate(handlers, session, caller, "call-never")
    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "NEVER_CONTACT_AGAIN"},
        headers=caller_headers(caller),
    )
    assert response.status_code == 200, response.text
    suppressed = await session.scalar(
        select(func.count())
        .select_from(SystemEvent)
        .where(SystemEvent.type == "expert.suppressed", SystemEvent.entity_id == task.expert_id)
    )
    assert suppressed == 1


async def test_no_outcome_on_an_unanswered_call(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, handlers: CallHandlers
) -> None:
    caller, task = await _assigned(gateway, session, caller_headers)
    await _yay(handlers, session, caller, task, "call-x", "call.started", seconds_before_now=60)
    await _yay(
        handlers,
        session,
        caller,
        task,
        "call-x",
        "call.failed",
        seconds_before_now=30,
        failureReason="no_answer",
    )
    await _validate(handlers, session, caller, "call-x")
    await session.refresh(task)
    assert task.status == "CANCELLED"
    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "RETRYABLE_REJECTION"},
        headers=caller_headers(caller),
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"


RACES = 8


async def test_outcome_and_validation_racing_apply_the_effects_once(
    api_settings_factory: Callable[..., Settings],
    sessionmaker_committing: async_sessionmaker[AsyncSession],
    auth_headers: Headers,
    database_settings: Settings,
) -> None:
    """Real commits, each side in its own transaction: the task row lock orders them."""
    handlers = CallHandlers(database_settings, clock=lambda: NOW)
    pairs: list[tuple[Caller, CallTask]] = []
    async with session_scope(sessionmaker_committing) as session:
        for index in range(RACES):
            caller = await create_caller(session)
            task = await create_pool_task(session, status="DIALING", caller_id=caller.id)
            await _answered_call(handlers, session, caller, task, f"race-{index}")
            pairs.append((caller, task))
    app = create_app(api_settings_factory(DATABASE_POOL_SIZE=2 * RACES))
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        app.state.clock = NOW.timestamp
        start = asyncio.Event()

        async def outcome(caller: Caller, task: CallTask) -> int:
            await start.wait()
            response = await client.post(
                outcome_url(task.id),
                json={"outcome": "RETRYABLE_REJECTION"},
                headers=auth_headers("caller", str(caller.id)),
            )
            return response.status_code

        async def validation(caller: Caller, index: int) -> None:
            await start.wait()
            async with session_scope(sessionmaker_committing) as session:
                await _validate(handlers, session, caller, f"race-{index}")

        racing = [
            asyncio.create_task(coroutine)
            for index, (caller, task) in enumerate(pairs)
            for coroutine in (outcome(caller, task), validation(caller, index))
        ]
        start.set()
        results = await asyncio.wait_for(asyncio.gather(*racing), timeout=60)
    assert [status for status in results if status is not None] == [200] * RACES
    async with session_scope(sessionmaker_committing) as session:
        for _, task in pairs:
            fresh = await session.get(CallTask, task.id)
            assert fresh is not None
            assert (fresh.status, fresh.outcome) == ("COMPLETED", "RETRYABLE_REJECTION")
            assert await _follow_ups(session, fresh, "RETRY") == 1
            assert await _outcome_events(session, fresh) == 1
