"""The region rule (manual §9: experts in Canada, GB, Australia and Europe are emailed at
professional addresses only) end to end, on every path an email takes: the gateway
(in-process, committing), the ingestion, enrichment and outreach apps on this test's topics, the
provider sandbox (enrichment vendors, email, Google Sheets), PostgreSQL and the broker.

1. Enrichment: Sales Navigator delivers a GB and a US person whom every vendor knows only by a
   personal mailbox (the sandbox's ``personal`` persona). The GB expert's personal finds are
   filtered (attempts FILTERED, the lead ENRICHMENT_FAILED with the reason, no email stored);
   the US expert's are kept.
2. Screening dispatch: a GB expert who already has a personal mailbox as their primary, most
   confident email (seeded: an address from before the rule; no path of the stack stores one
   now) gets the questions at their professional address.
3. ``POST /outreach/send`` naming that personal mailbox: 422 ``recipient_refused`` with the
   reason, nothing queued; the US expert's personal mailbox is accepted.
4. Google Sheets export: the GB expert's row never shows the personal mailbox, the US expert's
   row shows theirs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.models import (
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    GoogleSheetExport,
    Lead,
    OutreachMessage,
    Project,
)
from sourcing.common.models.enums import Channel, ContactSource, ContactType
from sourcing.outreach.service import tab_title
from sourcing.people.contacts import is_personal_email
from sourcing.sandbox.server import serve_sandbox
from sourcing.sandbox.sheets import SHEETS_STATE
from tests.e2e.stack import Agents, sandboxed_settings
from tests.factories import create_expert, create_expert_contact
from tests.factories_outreach import create_enriched_lead, rsa_test_key
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SALES_NAV_SECRET = "region-rule-sales-nav-secret"
SPREADSHEET_ID = "region-rule-sheet"
PERSONAL = "dana.smith@gmail.com"
PROFESSIONAL = "dana.smith@wise-payments.co.uk"
SETTLE_SECONDS = 120.0


@pytest.fixture
async def stack(
    infra: Any, kafka_settings: Settings, agents: Agents
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    """Sandbox, gateway (committing), ingestion, enrichment and outreach apps running; Google
    Sheets configured against the sandbox."""
    pem, _ = rsa_test_key()
    service_account = {
        "type": "service_account",
        "client_email": "sync@project.iam.gserviceaccount.com",
        "private_key_id": "k1",
        "private_key": pem,
        "token_uri": "https://oauth2.googleapis.com/token",
    }
    SHEETS_STATE.pop(SPREADSHEET_ID, None)
    async with serve_sandbox(slow_seconds=1.0) as sandbox_url:
        settings = sandboxed_settings(
            kafka_settings,
            infra,
            sandbox_url,
            SALES_NAV_WEBHOOK_SECRET=SALES_NAV_SECRET,
            CHANNEL_TIMEOUT_SECONDS=5.0,
            GOOGLE_SHEETS_SERVICE_ACCOUNT_JSON=json.dumps(service_account),
            GOOGLE_SHEETS_SPREADSHEET_ID=SPREADSHEET_ID,
        )
        async with (
            agents.running(settings, "ingestion", "enrichment", "outreach"),
            serve_gateway(settings) as client,
        ):
            yield settings, client
    SHEETS_STATE.pop(SPREADSHEET_ID, None)


def _person(first: str, country: str, index: int) -> dict[str, Any]:
    """A Sales Nav lead every sandbox vendor answers with a personal mailbox only."""
    return {
        "name": f"{first} Personal",
        "company": f"Acme {index}",
        "title": "VP Payments",
        "linkedinUrl": f"https://www.linkedin.com/in/{first.lower()}-personal-{index}x9",
        "companyDomain": f"acme{index}.com",
        "countryIso": country,
    }


def _sheet_rows(tab: str) -> dict[str, list[str]]:
    """The tab's rows by expert id (the header skipped)."""
    rows = SHEETS_STATE.get(SPREADSHEET_ID, {}).get(tab, [])
    return {row[0]: row for row in rows[1:]}


async def test_no_personal_mailbox_for_a_gb_expert_on_any_path(
    stack: tuple[Settings, httpx.AsyncClient],
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings, api = stack
    token = mint_token(settings, Principal(user_id="ops-region", role=Role.OPS))
    staff = {"Authorization": f"Bearer {token}"}
    created = await api.post(
        "/api/v1/projects",
        headers=staff,
        json={"name": "UK payments", "targetThreshold": 10, "geographyIsoCodes": ["GB", "US"]},
    )
    assert created.status_code == 201, created.text
    project_id = uuid.UUID(created.json()["id"])
    question = await api.post(
        f"/api/v1/projects/{project_id}/screening-questions",
        headers=staff,
        json={"prompt": "Years in payments?", "displayOrder": 1, "required": True},
    )
    assert question.status_code == 201, question.text

    # 1. Enrichment: the GB expert's personal finds are filtered, the US expert's kept.
    delivered = await api.post(
        "/webhooks/sales-nav",
        headers={"x-sales-nav-secret": SALES_NAV_SECRET},
        json={
            "projectId": str(project_id),
            "searchUrl": "https://linkedin.com/sales/search/region-1",
            "leads": [_person("Gwen", "GB", 1), _person("Uma", "US", 2)],
        },
    )
    assert delivered.status_code == 202, delivered.text

    async def settled() -> bool:
        async with kafka_sessionmaker() as session:
            statuses = await session.scalars(
                select(Lead.status).where(Lead.project_id == project_id)
            )
            done = [s for s in statuses if s in ("ENRICHED", "ENRICHMENT_FAILED")]
            return len(done) == 2

    await wait_until(settled, timeout=SETTLE_SECONDS, interval=0.25, message="2 leads enriched")
    async with kafka_sessionmaker() as session:
        found = {
            expert.country_iso: (expert, lead)
            for lead, expert in await session.execute(
                select(Lead, Expert)
                .join(Expert, Expert.id == Lead.expert_id)
                .where(Lead.project_id == project_id)
            )
        }
        gwen, gwen_lead = found["GB"]
        uma, uma_lead = found["US"]
        gwen_emails = list(
            await session.scalars(
                select(ExpertContact.value).where(
                    ExpertContact.expert_id == gwen.id, ExpertContact.type == "EMAIL"
                )
            )
        )
        uma_emails = list(
            await session.scalars(
                select(ExpertContact.value).where(
                    ExpertContact.expert_id == uma.id, ExpertContact.type == "EMAIL"
                )
            )
        )
        gwen_attempts = list(
            await session.scalars(
                select(EnrichmentAttempt.status).where(EnrichmentAttempt.expert_id == gwen.id)
            )
        )
    assert gwen_lead.status == "ENRICHMENT_FAILED", gwen_lead.status_reason
    assert "professional email required for GB" in (gwen_lead.status_reason or "")
    assert "FILTERED" in gwen_attempts  # vendors did find a personal mailbox
    assert gwen_emails == [] and gwen.primary_email is None
    assert uma_lead.status == "ENRICHED", uma_lead.status_reason
    assert uma_emails and all(is_personal_email(email) for email in uma_emails)

    # 2. Screening dispatch: the GB expert's personal mailbox is primary and most confident,
    #    yet the questions go to the professional address.
    async with kafka_sessionmaker() as session, session.begin():
        project = await session.get(Project, project_id)
        assert project is not None
        dana = await create_expert(
            session, full_name="Dana Smith", country_iso="GB", primary_email=PERSONAL
        )
        await create_enriched_lead(session, project=project, expert=dana)
        for address, primary, confidence in ((PERSONAL, True, 0.99), (PROFESSIONAL, False, 0.6)):
            await create_expert_contact(
                session,
                expert=dana,
                type=ContactType.EMAIL.value,
                channel=Channel.EMAIL.value,
                value=address,
                value_normalized=address,
                is_primary=primary,
                is_professional=None,  # unlabelled: only the rule tells them apart
                source=ContactSource.SALES_NAV.value,
                provider=None,
                confidence=confidence,
            )
    dispatched = await api.post(
        "/api/v1/screening/dispatch",
        headers=staff,
        json={"projectId": str(project_id), "expertId": str(dana.id)},
    )
    assert dispatched.status_code == 202, dispatched.text
    assert dispatched.json()["channel"] == "EMAIL"
    async with kafka_sessionmaker() as session:
        screening = await session.get(OutreachMessage, uuid.UUID(dispatched.json()["jobId"]))
        assert screening is not None and screening.recipient == PROFESSIONAL

    # 3. An explicit recipient: the GB expert's personal mailbox is refused with the reason,
    #    the US expert's is accepted.
    refused = await api.post(
        "/api/v1/outreach/send",
        headers=staff,
        json={
            "projectId": str(project_id),
            "expertId": str(dana.id),
            "channel": "EMAIL",
            "recipient": PERSONAL,
            "body": "Hello Dana",
        },
    )
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["code"] == "recipient_refused"
    assert "GB" in error["message"] and "gmail.com" in error["message"]
    assert error["details"] == {
        "field": "recipient",
        "channel": "EMAIL",
        "reason": "REGION",
        "countryIso": "GB",
    }
    accepted = await api.post(
        "/api/v1/outreach/send",
        headers=staff,
        json={
            "projectId": str(project_id),
            "expertId": str(uma.id),
            "channel": "EMAIL",
            "recipient": uma_emails[0],
            "body": "Hello Uma",
        },
    )
    assert accepted.status_code == 202, accepted.text
    async with kafka_sessionmaker() as session:
        to_personal = await session.scalars(
            select(OutreachMessage.id).where(OutreachMessage.recipient == PERSONAL)
        )
        assert list(to_personal) == []

    # 4. The Google Sheet: the GB expert's row has the professional address only.
    tab = tab_title(project)

    async def exported() -> bool:
        rows = _sheet_rows(tab)
        return str(dana.id) in rows and str(uma.id) in rows and str(gwen.id) in rows

    await wait_until(exported, timeout=SETTLE_SECONDS, interval=0.25, message="3 sheet rows")
    rows = _sheet_rows(tab)
    header = SHEETS_STATE[SPREADSHEET_ID][tab][0]
    emails = header.index("Emails")
    assert rows[str(dana.id)][emails] == PROFESSIONAL
    assert rows[str(gwen.id)][emails] == ""
    assert rows[str(uma.id)][emails] == ", ".join(uma_emails)
    async with kafka_sessionmaker() as session:
        exports = list(
            await session.scalars(
                select(GoogleSheetExport).where(GoogleSheetExport.entity_id == dana.id)
            )
        )
    assert exports and all(PERSONAL not in json.dumps(e.row_values) for e in exports)
