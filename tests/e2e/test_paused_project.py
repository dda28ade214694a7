"""A paused project end to end on the embedded stack (issue 16): the gateway (in-process,
committing), the ingestion, enrichment and allocation apps (real Faust apps on this test's
topics), the provider sandbox, PostgreSQL and the broker. Nothing is seeded in the database.

1. An operator creates a project and pauses it (``PATCH /projects/{id}``).
2. A signed Sales Navigator lead arrives through the webhook with a national-format phone: the
   lead is kept, NEW with the reason it is held, and nothing goes downstream (no enrichment
   request, no call-task request).
3. The operator makes the project ACTIVE again: the held lead is enriched against the sandbox
   and the expert gets their first call task, with the E.164 phone.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.models import CallTask, EnrichmentAttempt, Lead
from sourcing.ingestion.service import HELD_REASON
from sourcing.sandbox.server import serve_sandbox
from tests.e2e.stack import Agents, admin_headers, sandboxed_settings
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import read_topic, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SALES_NAV_SECRET = "paused-sales-nav-secret"
SETTLE_SECONDS = 120.0


@dataclass
class Stack:
    settings: Settings
    api: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    staff: dict[str, str]

    async def scalar(self, statement: Any) -> Any:
        async with self.sessions() as session:
            return await session.scalar(statement)


@pytest.fixture
async def stack(
    infra: Any,
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    agents: Agents,
) -> AsyncIterator[Stack]:
    async with serve_sandbox(slow_seconds=1.0) as sandbox_url:
        settings = sandboxed_settings(
            kafka_settings,
            infra,
            sandbox_url,
            SALES_NAV_WEBHOOK_SECRET=SALES_NAV_SECRET,
        )
        async with (
            agents.running(settings, "ingestion", "enrichment", "allocation"),
            serve_gateway(settings) as api,
        ):
            yield Stack(settings, api, kafka_sessionmaker, admin_headers(settings))


async def test_a_paused_project_holds_a_sales_nav_lead_and_processes_it_on_resume(
    stack: Stack,
) -> None:
    api, staff = stack.api, stack.staff
    created = await api.post(
        "/api/v1/projects",
        headers=staff,
        json={"name": "Paused payments", "targetThreshold": 5, "geographyIsoCodes": ["US"]},
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    paused = await api.patch(
        f"/api/v1/projects/{project_id}", headers=staff, json={"status": "PAUSED"}
    )
    assert paused.status_code == 200 and paused.json()["status"] == "PAUSED", paused.text

    slug = f"jane-standard-{uuid.uuid4().hex[:6]}7x1"
    delivered = await api.post(
        "/webhooks/sales-nav",
        headers={"x-sales-nav-secret": SALES_NAV_SECRET},
        json={
            "projectId": project_id,
            "searchUrl": "https://linkedin.com/sales/search/paused-1",
            "leads": [
                {
                    "name": "Jane Standard",
                    "company": "Acme Payments",
                    "title": "VP Payments",
                    "linkedinUrl": f"https://www.linkedin.com/in/{slug}",
                    "companyDomain": "acmepayments.com",
                    "countryIso": "US",
                    "email": None,
                    "phone": "(415) 555-0100",
                }
            ],
        },
    )
    assert delivered.status_code == 202, delivered.text
    lead_of_project = Lead.project_id == uuid.UUID(project_id)

    async def held() -> bool:
        return await stack.scalar(select(Lead.status).where(lead_of_project)) is not None

    await wait_until(held, timeout=SETTLE_SECONDS, interval=0.2, message="the lead ingested")
    async with stack.sessions() as session:
        lead = await session.scalar(select(Lead).where(lead_of_project))
    assert lead is not None
    assert (lead.status, lead.status_reason) == ("NEW", HELD_REASON)
    # The lead's transaction would have carried its follow-ups: nothing went downstream.
    assert await read_topic(stack.settings, "enrichment", settle=2.0) == []
    call_allocation = await read_topic(stack.settings, "call-allocation", min_count=1, settle=1.0)
    assert [record.envelope().type for record in call_allocation] == ["project.changed.v1"]
    attempts = select(func.count()).select_from(EnrichmentAttempt)
    assert await stack.scalar(attempts.where(EnrichmentAttempt.lead_id == lead.id)) == 0
    tasks = select(func.count()).select_from(CallTask)
    assert await stack.scalar(tasks.where(CallTask.expert_id == lead.expert_id)) == 0

    resumed = await api.patch(
        f"/api/v1/projects/{project_id}", headers=staff, json={"status": "ACTIVE"}
    )
    assert resumed.status_code == 200 and resumed.json()["status"] == "ACTIVE", resumed.text

    async def processed() -> bool:
        enriched = await stack.scalar(select(Lead.enriched_at).where(Lead.id == lead.id))
        task = await stack.scalar(select(CallTask.id).where(CallTask.expert_id == lead.expert_id))
        return enriched is not None and task is not None

    await wait_until(
        processed, timeout=SETTLE_SECONDS, interval=0.2, message="held lead processed on resume"
    )
    async with stack.sessions() as session:
        lead_now = await session.get(Lead, lead.id)
        [task] = (
            await session.scalars(select(CallTask).where(CallTask.expert_id == lead.expert_id))
        ).all()
    assert lead_now is not None and lead_now.status == "ENRICHED"
    assert (task.status, task.kind, task.phone_number) == ("PENDING", "INITIAL", "+14155550100")
    assert str(task.project_id) == project_id
