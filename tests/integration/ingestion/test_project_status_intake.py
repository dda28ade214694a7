"""A project's status decides what becomes of its new leads (issue 16): a PAUSED project holds
them (NEW, contacts kept; no enrichment, no call task) and processes them when
``PATCH /projects/{id}`` makes it ACTIVE again; a COMPLETED or ARCHIVED project refuses them
with a recorded reason. The handlers run on the real database; the gateway shares the test's
transaction; what the agents would receive is read from the outbox and handed on by hand."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation.handlers import AllocationHandlers
from sourcing.common.events import Envelope
from sourcing.common.messages.allocation import ProjectChanged
from sourcing.common.models import (
    CallTask,
    Expert,
    ExpertContact,
    Lead,
    OutboxMessage,
    SystemEvent,
)
from sourcing.ingestion.handlers import handle_lead_received
from sourcing.ingestion.service import HELD_REASON, RELEASED_REASON
from tests.factories import create_project, create_sales_nav_search
from tests.factories_sourcing import envelope_of, lead_received, sales_nav_lead
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]


async def _ingest(
    session: AsyncSession, project_id: uuid.UUID, search_id: uuid.UUID, lead: dict[str, Any]
) -> None:
    message = lead_received(project_id, search_id, lead)
    await handle_lead_received(session, envelope_of(message), message)
    await session.flush()


async def _envelopes(session: AsyncSession, topic: str) -> list[Envelope]:
    rows = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.seq)
    )
    return [Envelope.model_validate(row.envelope) for row in rows]


async def _lead_of(session: AsyncSession, linkedin_slug: str) -> Lead:
    lead = await session.scalar(
        select(Lead)
        .where(Lead.linkedin_url.contains(linkedin_slug))
        .execution_options(populate_existing=True)
    )
    assert lead is not None
    return lead


async def test_a_paused_project_holds_the_lead_and_processes_it_on_resume(
    api: httpx.AsyncClient,
    session: AsyncSession,
    auth_headers: Headers,
    database_settings: Settings,
) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    paused = await api.patch(
        f"/api/v1/projects/{project.id}", json={"status": "PAUSED"}, headers=auth_headers("ops")
    )
    assert paused.status_code == 200, paused.text
    slug = f"held-{uuid.uuid4().hex[:8]}"
    lead = sales_nav_lead(
        linkedinUrl=f"https://www.linkedin.com/in/{slug}", phone="(415) 555-0100", countryIso="US"
    )
    await _ingest(session, project.id, search.id, lead)

    # Held: the lead is kept NEW with its reason and contacts; nothing goes downstream.
    held = await _lead_of(session, slug)
    assert (held.status, held.status_reason) == ("NEW", HELD_REASON)
    phone = await session.scalar(
        select(ExpertContact.value_normalized).where(
            ExpertContact.expert_id == held.expert_id, ExpertContact.type == "PHONE"
        )
    )
    assert phone == "+14155550100"
    assert await _envelopes(session, "enrichment") == []
    call_allocation = await _envelopes(session, "call-allocation")
    assert [envelope.type for envelope in call_allocation] == [ProjectChanged.message_type]

    # A redelivery while paused changes nothing.
    await _ingest(session, project.id, search.id, lead)
    count = select(func.count()).select_from(Lead).where(Lead.expert_id == held.expert_id)
    assert await session.scalar(count) == 1

    resumed = await api.patch(
        f"/api/v1/projects/{project.id}", json={"status": "ACTIVE"}, headers=auth_headers("ops")
    )
    assert resumed.status_code == 200, resumed.text
    released = await _lead_of(session, slug)
    assert (released.status, released.status_reason) == ("ENRICHING", RELEASED_REASON)
    [requested] = await _envelopes(session, "enrichment")
    assert requested.type == "enrichment.requested.v1"
    assert requested.payload["leadId"] == str(held.id)
    audit = await session.scalar(
        select(SystemEvent).where(
            SystemEvent.entity_id == held.id, SystemEvent.type == "lead.status_changed"
        )
    )
    assert audit is not None and audit.data["from"] == "NEW" and audit.data["to"] == "ENRICHING"

    # The allocation service, handed the resume, gives the held expert their call task.
    handlers = AllocationHandlers(database_settings)
    changes = [
        e for e in await _envelopes(session, "call-allocation") if e.payload["statusChanged"]
    ]
    assert [change.payload["status"] for change in changes] == ["PAUSED", "ACTIVE"]
    for envelope in changes:
        change = ProjectChanged.model_validate(envelope.payload)
        await handlers.handle_project_changed(session, envelope, change)
    [task] = (
        await session.scalars(select(CallTask).where(CallTask.project_id == project.id))
    ).all()
    assert (task.expert_id, task.status, task.phone_number) == (
        held.expert_id,
        "PENDING",
        "+14155550100",
    )


@pytest.mark.parametrize("status", ["COMPLETED", "ARCHIVED"])
async def test_a_closed_project_refuses_new_leads_with_a_recorded_reason(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers, status: str
) -> None:
    project = await create_project(session, status=status)
    search = await create_sales_nav_search(session, project=project)
    slug = f"refused-{uuid.uuid4().hex[:8]}"
    lead = sales_nav_lead(linkedinUrl=f"https://www.linkedin.com/in/{slug}", phone="+14155550100")
    await _ingest(session, project.id, search.id, lead)

    leads = select(func.count()).select_from(Lead).where(Lead.project_id == project.id)
    assert await session.scalar(leads) == 0
    experts = select(func.count()).select_from(Expert).where(Expert.full_name == lead["name"])
    assert await session.scalar(experts) == 0
    assert await _envelopes(session, "enrichment") == []
    assert await _envelopes(session, "call-allocation") == []
    # The operator reads why on the project's audit trail.
    trail = await api.get(
        "/api/v1/system-events",
        params={"entityType": "project", "entityId": str(project.id), "type": "lead.refused"},
        headers=auth_headers("ops"),
    )
    assert trail.status_code == 200, trail.text
    [refused] = trail.json()["items"]
    assert refused["data"]["reason"] == f"project is {status}: new leads are refused"
    assert refused["data"]["projectStatus"] == status
    assert refused["data"]["searchId"] == str(search.id)
    assert refused["data"]["linkedinUrl"] == f"https://www.linkedin.com/in/{slug}"
