"""Webhook → sales-nav-ingestion → lead-ingestion → enrichment, on the real broker and database
with the real ingestion worker (in-process) and its outbox relay."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.models import Expert, Lead, SalesNavSearch
from sourcing.ingestion.app import build_app
from tests.factories import create_project
from tests.factories_sourcing import sales_nav_lead
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import read_topic, running_app
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


async def test_webhook_leads_reach_the_enrichment_lane(
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    api_settings_factory: Callable[..., Settings],
    tmp_path: Path,
) -> None:
    async with session_scope(kafka_sessionmaker) as session:
        project = await create_project(session)
    leads = [sales_nav_lead(countryIso="GB") for _ in range(8)]
    # The same person again in the same delivery, spelled differently: one Expert, one Lead.
    again = {**leads[0], "linkedinUrl": leads[0]["linkedinUrl"].upper() + "/?trk=1"}
    email_only = sales_nav_lead(linkedinUrl=None, email="solo@acme.example")
    body = {
        "projectId": str(project.id),
        "searchUrl": "https://linkedin.com/sales/search/pipeline",
        "leads": [*leads, again, email_only],
    }
    gateway_settings = api_settings_factory(KAFKA_TOPIC_PREFIX=kafka_settings.KAFKA_TOPIC_PREFIX)
    assert gateway_settings.SALES_NAV_WEBHOOK_SECRET is not None
    async with serve_gateway(gateway_settings) as gateway:
        response = await gateway.post(
            "/webhooks/sales-nav",
            json=body,
            headers={
                "x-sales-nav-secret": gateway_settings.SALES_NAV_WEBHOOK_SECRET.get_secret_value(),
                "x-correlation-id": "corr-pipeline-1",
            },
        )
    assert response.status_code == 202, response.text

    app = build_app(
        kafka_settings,
        web_enabled=False,
        sessionmaker=kafka_sessionmaker,
        datadir=tmp_path / "ingestion",
    )
    async with running_app(app):
        fanned_out = await read_topic(kafka_settings, "lead-ingestion", min_count=10)
        requested = await read_topic(kafka_settings, "enrichment", min_count=9, settle=1.0)

    assert len(fanned_out) == 10
    assert len(requested) == 9  # the repeated person is not enriched twice
    envelopes = [record.envelope() for record in requested]
    assert {e.type for e in envelopes} == {"enrichment.requested.v1"}
    assert {e.correlation_id for e in envelopes} == {"corr-pipeline-1"}
    assert all(
        r.key == e.payload["expertId"].encode() for r, e in zip(requested, envelopes, strict=True)
    )
    async with session_scope(kafka_sessionmaker) as session:
        assert await session.scalar(select(func.count()).select_from(Expert)) == 9
        statuses = (await session.scalars(select(Lead.status))).all()
        assert sorted(statuses) == ["ENRICHING"] * 9
        search = await session.scalar(select(SalesNavSearch))
        assert search is not None
        assert search.normalized_url == "https://linkedin.com/sales/search/pipeline"
        assert search.leads_received == 10
        lead_ids = {str(i) for i in (await session.scalars(select(Lead.id))).all()}
        assert {e.payload["leadId"] for e in envelopes} == lead_ids
