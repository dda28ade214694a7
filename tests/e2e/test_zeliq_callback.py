"""Zeliq callback completes an enrichment, end to end on the embedded stack: Sales Nav webhook
(gateway) → ``sales-nav-ingestion`` → ``lead-ingestion`` (ingestion app) → ``enrichment``
waterfall (enrichment app) against the provider sandbox, where Zeliq only accepts the jobs →
the sandbox calls each job's signed callback URL back on the gateway, served on a real port →
``zeliq.callback-received.v1`` on the enrichment lane → the enrichment app settles the attempt
and completes the expert: contacts, lead status, ranking.

The waterfall asks Forager and Zeliq: Forager never knows a ``standard`` person, so only Zeliq's
callback can enrich them; a ``nomatch`` person gets empty callbacks and fails with a reason.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.http import ExternalHttp
from sourcing.common.models import (
    EnrichmentAttempt,
    ExpertContact,
    Lead,
    ProcessedWebhookEvent,
    RankingSnapshot,
    SystemEvent,
)
from sourcing.enrichment.providers import build_providers
from sourcing.enrichment.service import EnrichmentDeps
from sourcing.sandbox.server import serve_sandbox
from tests.e2e.stack import Agents, running_apps
from tests.factories import create_project
from tests.fixtures.api import serve_gateway_http
from tests.fixtures.kafka import make_kafka_settings, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "e2e-sales-nav-secret"
# Forager misses every ``standard`` person; Zeliq finds them, by callback.
PROVIDERS = ["forager", "zeliq"]


@pytest.fixture
async def stack(
    infra: Any, kafka_settings: Settings, agents: Agents
) -> AsyncIterator[tuple[Settings, str]]:
    """Sandbox, gateway (on a port the sandbox calls back), ingestion and enrichment apps."""
    async with serve_sandbox() as sandbox_url:
        settings = make_kafka_settings(
            database_url=kafka_settings.DATABASE_URL,
            bootstrap=kafka_settings.KAFKA_BROKER_URL,
            topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
            broker_kind=infra.broker_kind,
            SANDBOX_PROVIDERS=True,
            SANDBOX_URL=sandbox_url,
            ZELIQ_CALLBACK_SECRET="e2e-zeliq-callback-secret",
            SALES_NAV_WEBHOOK_SECRET=SECRET,
            PROVIDER_TIMEOUT_SECONDS=2.0,
            ENRICHMENT_TIME_BUDGET_SECONDS=5.0,
        )
        async with serve_gateway_http(settings) as gateway_url:
            # The enrichment process gives Zeliq the gateway's receiver as the callback base.
            enrichment_settings = settings.model_copy(
                update={"ZELIQ_CALLBACK_URL": f"{gateway_url}/webhooks/zeliq"}
            )
            http = ExternalHttp(timeout_seconds=settings.PROVIDER_TIMEOUT_SECONDS)
            deps = EnrichmentDeps(
                settings=enrichment_settings,
                providers=build_providers(enrichment_settings, http, keys=PROVIDERS),
            )
            ingestion = agents.build("ingestion", settings)
            enrichment = agents.build("enrichment", enrichment_settings, deps=deps)
            try:
                async with running_apps(ingestion, enrichment):
                    yield settings, gateway_url
            finally:
                await http.aclose()


def _person(first: str, marker: str) -> dict[str, Any]:
    return {
        "name": f"{first} {marker.title()}",
        "company": "Acme",
        "title": "VP Payments",
        "linkedinUrl": f"https://www.linkedin.com/in/{first.lower()}-{marker}-7x1",
        "companyDomain": "acme.com",
        "countryIso": "US",
    }


async def test_zeliq_callback_completes_an_enrichment(
    stack: tuple[Settings, str],
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _, gateway_url = stack
    async with kafka_sessionmaker() as session, session.begin():
        project = await create_project(session, geography_iso_codes=["US"])
    async with httpx.AsyncClient(base_url=gateway_url) as api:
        response = await api.post(
            "/webhooks/sales-nav",
            headers={"x-sales-nav-secret": SECRET},
            json={
                "projectId": str(project.id),
                "searchUrl": "https://linkedin.com/sales/search/e2e-zeliq",
                "leads": [_person("Ava", "standard"), _person("Ben", "nomatch")],
            },
        )
    assert response.status_code == 202, response.text

    async def settled() -> bool:
        async with kafka_sessionmaker() as session:
            statuses = (
                await session.scalars(select(Lead.status).where(Lead.project_id == project.id))
            ).all()
            ranked = await session.scalar(
                select(func.count())
                .select_from(RankingSnapshot)
                .where(RankingSnapshot.project_id == project.id)
            )
            return sorted(statuses) == ["ENRICHED", "ENRICHMENT_FAILED"] and ranked == 2

    await wait_until(settled, timeout=90, interval=0.25, message="both leads completed")

    async with kafka_sessionmaker() as session:
        leads = {
            lead.raw_name: lead
            for lead in (
                await session.scalars(select(Lead).where(Lead.project_id == project.id))
            ).all()
        }
        attempts = (await session.scalars(select(EnrichmentAttempt))).all()
        contacts = (await session.scalars(select(ExpertContact))).all()
        claimed = await session.scalar(
            select(func.count())
            .select_from(ProcessedWebhookEvent)
            .where(ProcessedWebhookEvent.source == "zeliq")
        )
        waits = (
            await session.scalars(
                select(SystemEvent).where(
                    SystemEvent.entity_type == "lead",
                    SystemEvent.data["to"].astext == "ENRICHING",
                )
            )
        ).all()

    ava, ben = leads["Ava Standard"], leads["Ben Nomatch"]
    by_lead = {
        lead.id: {a.provider: a for a in attempts if a.lead_id == lead.id} for lead in (ava, ben)
    }
    # Each waterfall waited for Zeliq (the lead went ENRICHING with the reason), then the
    # callbacks settled Zeliq's attempt: both of its jobs answered.
    assert {event.entity_id for event in waits} == {ava.id, ben.id}
    assert all("waiting for the callback of zeliq" in event.data["reason"] for event in waits)
    for lead in (ava, ben):
        assert by_lead[lead.id]["forager"].status == "NO_MATCH"
        zeliq = by_lead[lead.id]["zeliq"]
        assert zeliq.answered_at is not None
        assert set(zeliq.response_payload["callbacks"]) == {"email", "phone"}  # type: ignore[index]
    assert claimed == 4  # two callbacks per lead, each claimed once

    assert by_lead[ava.id]["zeliq"].status == "SUCCESS"
    assert ava.status_reason == "zeliq found contacts at confidence 0.90"
    found = {
        (c.type, c.provider)
        for c in contacts
        if c.expert_id == ava.expert_id and c.source == "ENRICHMENT"
    }
    assert found == {("EMAIL", "zeliq"), ("PHONE", "zeliq")}
    assert ava.ranking_score is not None

    assert by_lead[ben.id]["zeliq"].status == "NO_MATCH"
    assert (ben.status_reason or "").startswith("no provider found a contact (2 tried)")
    assert not [c for c in contacts if c.expert_id == ben.expert_id and c.source == "ENRICHMENT"]
