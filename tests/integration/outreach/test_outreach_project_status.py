"""Outreach follows its project's status and target (issue 16): a PAUSED project takes no
outreach (operator sends, automatic outreach, screening dispatch and reminders) until it is
ACTIVE again; moving it to COMPLETED or ARCHIVED cancels its queued, unsent messages
(``project.closed.v1``, or the delivery itself when it comes first); once it has its
``targetThreshold`` of converted experts, new outreach stops. The gateway shares the test's
transaction; the agents' handlers are called as the broker would call them."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.events import Envelope
from sourcing.common.messages.outreach import (
    AutoOutreachRequested,
    OutreachSendRequested,
    ProjectClosed,
)
from sourcing.common.models import (
    OutboxMessage,
    OutreachMessage,
    Project,
    SystemEvent,
)
from sourcing.outreach.handlers import OutreachHandlers
from sourcing.outreach.service import responses_due_follow_up
from tests.factories import (
    create_lead,
    create_outreach_message,
    create_outreach_thread,
    create_project,
)
from tests.factories_outreach import (
    create_enriched_lead,
    create_questions,
    create_reachable_expert,
)
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


@pytest.fixture
def handlers(
    database_settings: Settings, sessionmaker_rolled_back: async_sessionmaker[AsyncSession]
) -> OutreachHandlers:
    # No channel adapters: a handler that tried to send would fail the test.
    return OutreachHandlers(
        settings=database_settings,
        sessionmaker=sessionmaker_rolled_back,
        channels={},
        clock=lambda: NOW,
    )


def _send(project: Project, expert_id: uuid.UUID) -> dict[str, Any]:
    return {
        "projectId": str(project.id),
        "expertId": str(expert_id),
        "channel": "EMAIL",
        "recipient": "dana@example.com",
        "body": "Hi Dana",
    }


async def _patch(
    api: httpx.AsyncClient,
    session: AsyncSession,
    headers: dict[str, str],
    project: Project,
    **body: Any,
) -> dict[str, Any]:
    """PATCH the project through the gateway; the test's session then reads it afresh, as an
    agent's next transaction would."""
    response = await api.patch(f"/api/v1/projects/{project.id}", json=body, headers=headers)
    assert response.status_code == 200, response.text
    await session.refresh(project)
    result: dict[str, Any] = response.json()
    return result


async def _auto(
    handlers: OutreachHandlers, session: AsyncSession, project: Project, expert_id: uuid.UUID
) -> None:
    payload = AutoOutreachRequested(project_id=project.id, expert_id=expert_id)
    await handlers.auto(session, Envelope.new(AutoOutreachRequested.message_type, payload), payload)
    await session.flush()


async def _messages(session: AsyncSession, expert_id: uuid.UUID) -> int:
    count = select(func.count()).select_from(OutreachMessage)
    return int(await session.scalar(count.where(OutreachMessage.expert_id == expert_id)) or 0)


async def _status(session: AsyncSession, message_id: uuid.UUID) -> str:
    status = await session.scalar(
        select(OutreachMessage.delivery_status)
        .where(OutreachMessage.id == message_id)
        .execution_options(populate_existing=True)
    )
    return str(status)


async def test_a_paused_project_takes_no_outreach_until_it_resumes(
    api: httpx.AsyncClient,
    session: AsyncSession,
    auth_headers: Headers,
    handlers: OutreachHandlers,
) -> None:
    headers = auth_headers("ops")
    project = await create_project(session, auto_outreach_channel="email")
    expert = await create_reachable_expert(session)
    await create_enriched_lead(session, project=project, expert=expert)
    await create_questions(session, project=project, required=(True,))
    await _patch(api, session, headers, project, status="PAUSED")

    sent = await api.post("/api/v1/outreach/send", headers=headers, json=_send(project, expert.id))
    assert sent.status_code == 409, sent.text
    assert sent.json()["error"]["code"] == "project_not_active"
    assert sent.json()["error"]["details"]["status"] == "PAUSED"
    screening = {"projectId": str(project.id), "expertId": str(expert.id)}
    dispatched = await api.post("/api/v1/screening/dispatch", headers=headers, json=screening)
    assert dispatched.status_code == 409, dispatched.text
    assert dispatched.json()["error"]["code"] == "project_not_active"
    await _auto(handlers, session, project, expert.id)
    assert await _messages(session, expert.id) == 0

    await _patch(api, session, headers, project, status="ACTIVE")
    await _auto(handlers, session, project, expert.id)
    assert await _messages(session, expert.id) == 1


async def test_a_paused_projects_screening_gets_no_reminder(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    headers = auth_headers("ops")
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    await create_questions(session, project=project, required=(True,))
    screening = {"projectId": str(project.id), "expertId": str(expert.id)}
    dispatched = await api.post("/api/v1/screening/dispatch", headers=headers, json=screening)
    assert dispatched.status_code == 202, dispatched.text
    response_id = uuid.UUID(dispatched.json()["responses"][0]["id"])
    later = datetime.now(UTC) + timedelta(hours=1)
    assert await responses_due_follow_up(session, now=later, limit=5) == [response_id]
    await _patch(api, session, headers, project, status="PAUSED")
    assert await responses_due_follow_up(session, now=later, limit=5) == []
    await _patch(api, session, headers, project, status="ACTIVE")
    assert await responses_due_follow_up(session, now=later, limit=5) == [response_id]


@pytest.mark.parametrize("status", ["COMPLETED", "ARCHIVED"])
async def test_closing_a_project_cancels_its_queued_outreach(
    api: httpx.AsyncClient,
    session: AsyncSession,
    auth_headers: Headers,
    handlers: OutreachHandlers,
    status: str,
) -> None:
    project = await create_project(session)
    thread = await create_outreach_thread(session, project=project)
    queued = await create_outreach_message(session, thread=thread)
    sent = await create_outreach_message(
        session, thread=thread, delivery_status="SENT", sent_at=NOW
    )
    elsewhere = await create_outreach_message(session)  # another project's
    await _patch(api, session, auth_headers("admin"), project, status=status)

    rows = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == "outreach").order_by(OutboxMessage.seq)
    )
    [envelope] = [Envelope.model_validate(row.envelope) for row in rows]
    assert envelope.type == ProjectClosed.message_type
    closed = ProjectClosed.model_validate(envelope.payload)
    assert (closed.project_id, closed.status) == (project.id, status)
    for _ in range(2):  # redelivered, it changes nothing more
        await handlers.project_closed(session, envelope, closed)
        assert await _status(session, queued.id) == "CANCELLED"
        assert await _status(session, sent.id) == "SENT"
        assert await _status(session, elsewhere.id) == "QUEUED"
    [audit] = (
        await session.scalars(
            select(SystemEvent).where(SystemEvent.type == "outreach_message.cancelled")
        )
    ).all()
    assert (audit.entity_id, audit.data["reason"]) == (queued.id, f"project {status}")
    assert audit.actor == closed.actor

    # The queued message's own delivery job, arriving later, sends nothing.
    job = OutreachSendRequested(
        message_id=queued.id, expert_id=queued.expert_id, project_id=project.id
    )
    await handlers.deliver(session, Envelope.new(OutreachSendRequested.message_type, job), job)
    assert await _status(session, queued.id) == "CANCELLED"


async def test_a_delivery_before_the_closing_message_cancels_instead_of_sending(
    session: AsyncSession, handlers: OutreachHandlers
) -> None:
    project = await create_project(session, status="ARCHIVED")
    thread = await create_outreach_thread(session, project=project)
    queued = await create_outreach_message(session, thread=thread)
    job = OutreachSendRequested(
        message_id=queued.id, expert_id=queued.expert_id, project_id=project.id
    )
    await handlers.deliver(session, Envelope.new(OutreachSendRequested.message_type, job), job)
    assert await _status(session, queued.id) == "CANCELLED"


async def test_reaching_the_target_threshold_stops_new_outreach(
    api: httpx.AsyncClient,
    session: AsyncSession,
    auth_headers: Headers,
    handlers: OutreachHandlers,
) -> None:
    headers = auth_headers("ops")
    project = await create_project(session, auto_outreach_channel="email")
    converted = await create_reachable_expert(session, email="signed@example.com")
    await create_lead(session, project=project, expert=converted, status="CONVERTED")
    expert = await create_reachable_expert(session)
    await create_enriched_lead(session, project=project, expert=expert)
    assert (await _patch(api, session, headers, project, targetThreshold=1))["targetThreshold"] == 1

    sent = await api.post("/api/v1/outreach/send", headers=headers, json=_send(project, expert.id))
    assert sent.status_code == 409, sent.text
    error = sent.json()["error"]
    assert error["code"] == "target_threshold_reached"
    assert (error["details"]["targetThreshold"], error["details"]["convertedExperts"]) == (1, 1)
    await _auto(handlers, session, project, expert.id)
    assert await _messages(session, expert.id) == 0

    # A higher target opens the project to new outreach again.
    await _patch(api, session, headers, project, targetThreshold=2)
    sent = await api.post("/api/v1/outreach/send", headers=headers, json=_send(project, expert.id))
    assert sent.status_code == 202, sent.text
