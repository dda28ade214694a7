"""The inbound loop end to end on the embedded stack: the gateway listening on a real port, the
ingestion, enrichment, allocation and outreach apps (real Faust apps on this test's topics),
the provider sandbox posting SendGrid's signed events back to the gateway, PostgreSQL and the
broker. Nothing is seeded in the database and no event is hand-made: the sandbox answers each
email the way SendGrid's Event Webhook would, chosen by the recipient (README "Inbound events").

1. An operator creates a project; two Sales Navigator leads arrive (Jane and Kai, each with a
   phone: Kai gets a call task) and are enriched.
2. The operator emails Jane at ``reply+jane@...``: SendGrid reports it delivered, then Jane
   answers. Jane's lead is REPLIED, her thread shows her reply and stays OPEN.
3. The operator emails Kai at ``optout+kai@...``: Kai unsubscribes. His address and person are
   suppressed, his thread is CLOSED, the next send is 409 with the suppression reason, and his
   call task is cancelled by the allocation context; no other is made.
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

from sourcing.api.app import create_app as create_gateway
from sourcing.common.models import CallTask, ContactSuppression, Expert, Lead, SystemEvent
from sourcing.sandbox.server import serve_on_free_port, serve_sandbox
from tests.e2e.stack import Agents, admin_headers, sandboxed_settings
from tests.fixtures.kafka import wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SALES_NAV_SECRET = "inbound-loop-sales-nav-secret"
SETTLE_SECONDS = 120.0
OPEN_TASK_STATUSES = ("PENDING", "ASSIGNED", "DIALING")


@dataclass
class Loop:
    settings: Settings
    api: httpx.AsyncClient
    sessions: async_sessionmaker[AsyncSession]
    staff: dict[str, str]

    async def scalar(self, statement: Any) -> Any:
        async with self.sessions() as session:
            return await session.scalar(statement)

    async def lead_in(self, project_id: str, name: str, phone: str) -> uuid.UUID:
        """A Sales Navigator lead, ingested and enriched; returns the expert's id."""
        slug = name.lower().replace(" ", "-")
        response = await self.api.post(
            "/webhooks/sales-nav",
            headers={"x-sales-nav-secret": SALES_NAV_SECRET},
            json={
                "projectId": project_id,
                "searchUrl": "https://linkedin.com/sales/search/inbound",
                "leads": [
                    {
                        "name": name,
                        "company": "Acme Payments",
                        "title": "VP Payments",
                        "linkedinUrl": f"https://www.linkedin.com/in/{slug}-9z",
                        "companyDomain": "acmepayments.com",
                        "countryIso": "US",
                        "email": None,
                        "phone": phone,
                    }
                ],
            },
        )
        assert response.status_code == 202, response.text

        async def enriched() -> bool:
            return (
                await self.scalar(
                    select(Lead.enriched_at).join(Expert).where(Expert.full_name == name)
                )
                is not None
            )

        await wait_until(enriched, timeout=SETTLE_SECONDS, interval=0.2, message=f"{name}")
        return uuid.UUID(str(await self.scalar(select(Expert.id).where(Expert.full_name == name))))

    async def email(self, project_id: str, expert_id: uuid.UUID, recipient: str) -> httpx.Response:
        return await self.api.post(
            "/api/v1/outreach/send",
            headers=self.staff,
            json={
                "projectId": project_id,
                "expertId": str(expert_id),
                "channel": "EMAIL",
                "recipient": recipient,
                "subject": "A paid consultation",
                "body": "Would you be open to a short call about payments?",
            },
        )

    async def thread(self, expert_id: uuid.UUID) -> dict[str, Any]:
        listed = await self.api.get(
            "/api/v1/outreach/threads", headers=self.staff, params={"expertId": str(expert_id)}
        )
        [summary] = listed.json()["items"]
        detail = await self.api.get(f"/api/v1/outreach/threads/{summary['id']}", headers=self.staff)
        assert detail.status_code == 200, detail.text
        thread: dict[str, Any] = detail.json()
        return thread


@pytest.fixture
async def loop(
    infra: Any,
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    agents: Agents,
) -> AsyncIterator[Loop]:
    settings = sandboxed_settings(
        kafka_settings,
        infra,
        None,
        SALES_NAV_WEBHOOK_SECRET=SALES_NAV_SECRET,
    )
    # The gateway listens first: the sandbox posts its provider events to it.
    async with (
        serve_on_free_port(create_gateway(settings), name="the gateway") as gateway_url,
        serve_sandbox(
            slow_seconds=1.0, webhook_url=gateway_url, inbound_delay_seconds=0.5
        ) as sandbox_url,
    ):
        agent_settings = settings.model_copy(update={"SANDBOX_URL": sandbox_url})
        async with (
            agents.running(agent_settings, "ingestion", "enrichment", "allocation", "outreach"),
            httpx.AsyncClient(base_url=gateway_url, timeout=30.0) as api,
        ):
            yield Loop(settings, api, kafka_sessionmaker, admin_headers(settings))


async def test_replies_and_opt_outs_come_back_from_the_channel(loop: Loop) -> None:
    created = await loop.api.post(
        "/api/v1/projects",
        headers=loop.staff,
        json={"name": "Payments replies", "targetThreshold": 5, "geographyIsoCodes": ["US"]},
    )
    assert created.status_code == 201, created.text
    project_id = created.json()["id"]
    jane = await loop.lead_in(project_id, "Jane Inbound", "(415) 555-0142")
    kai = await loop.lead_in(project_id, "Kai Inbound", "(212) 555-0143")

    async def kai_has_a_task() -> bool:
        count = await loop.scalar(
            select(func.count())
            .select_from(CallTask)
            .where(CallTask.expert_id == kai, CallTask.status.in_(OPEN_TASK_STATUSES))
        )
        return bool(count)

    await wait_until(kai_has_a_task, timeout=SETTLE_SECONDS, interval=0.2, message="Kai's task")

    # 2. Jane answers.
    sent = await loop.email(project_id, jane, "reply+jane@acmepayments.com")
    assert sent.status_code == 202, sent.text

    async def jane_replied() -> bool:
        statuses = await loop.scalar(
            select(func.array_agg(Lead.status)).where(Lead.expert_id == jane)
        )
        return statuses == ["REPLIED"]

    await wait_until(jane_replied, timeout=SETTLE_SECONDS, interval=0.2, message="Jane replied")
    thread = await loop.thread(jane)
    assert thread["status"] == "OPEN"
    outbound, inbound = thread["messages"]
    assert (outbound["direction"], outbound["deliveryStatus"]) == ("OUTBOUND", "DELIVERED")
    assert outbound["deliveredAt"] is not None
    assert (inbound["direction"], inbound["body"]) == ("INBOUND", "Yes, happy to talk.")
    # The audit trail names the provider behind the lead's move.
    audited = await loop.scalar(
        select(func.count())
        .select_from(SystemEvent)
        .join(Lead, Lead.id == SystemEvent.entity_id)
        .where(
            Lead.expert_id == jane,
            SystemEvent.actor == "inbound:sendgrid",
            SystemEvent.data["to"].astext == "REPLIED",
        )
    )
    assert audited == 1

    # 3. Kai unsubscribes.
    sent = await loop.email(project_id, kai, "optout+kai@acmepayments.com")
    assert sent.status_code == 202, sent.text

    async def kai_opted_out() -> bool:
        reason = await loop.scalar(
            select(ContactSuppression.reason).where(ContactSuppression.expert_id == kai)
        )
        return reason == "OPT_OUT"

    await wait_until(kai_opted_out, timeout=SETTLE_SECONDS, interval=0.2, message="Kai opted out")
    assert (await loop.thread(kai))["status"] == "CLOSED"
    again = await loop.email(project_id, kai, "kai@acmepayments.com")
    assert again.status_code == 409, again.text
    error = again.json()["error"]
    assert error["code"] == "expert_suppressed" and error["details"]["reason"] == "OPT_OUT"

    async def kai_has_no_task() -> bool:
        return not await kai_has_a_task()

    await wait_until(kai_has_no_task, timeout=SETTLE_SECONDS, interval=0.2, message="task gone")
    cancelled = await loop.scalar(
        select(func.count())
        .select_from(CallTask)
        .where(CallTask.expert_id == kai, CallTask.status == "CANCELLED")
    )
    assert cancelled >= 1
    assert await loop.scalar(select(Expert.suppressed_at).where(Expert.id == kai)) is not None
