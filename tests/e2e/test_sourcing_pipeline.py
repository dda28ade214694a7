"""The sourcing pipeline end to end on the embedded stack: Sales Nav webhook (gateway, HTTP) →
``sales-nav-ingestion`` → ``lead-ingestion`` (ingestion app) → ``enrichment`` waterfall against
the provider sandbox → ``ranking`` (enrichment app) → ``call-allocation`` (allocation app: the
call tasks), the apps running with ``running_app``, the sandbox on a free port
(``SANDBOX_PROVIDERS=1``), real PostgreSQL and broker.

One delivery of 50 leads: 40 people, 10 of them sent twice. The sandbox's persona markers in the
names decide what the vendors answer (`sourcing.sandbox.personas`): ``standard`` (hit), ``personal``
(only personal emails: nothing usable in GB/DE, a personal email in the US), ``lowconf``,
``nomatch``, ``flaky`` (429/500 from some vendors). The ``nomatch`` people come with a phone in
US national format: no vendor knows them, but their lead's phone makes them callable. The
project's costs report (``GET /api/v1/projects/{id}/costs``) adds up the attempts' credits.
"""

from __future__ import annotations

import re
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.models import (
    CallTask,
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    Lead,
    ProcessedEvent,
    RankingSnapshot,
)
from sourcing.people.contacts import is_personal_email, requires_professional_email
from sourcing.sandbox.server import serve_sandbox
from tests.e2e.stack import Agents, sandboxed_settings
from tests.factories import create_project
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import read_topic, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

SECRET = "e2e-sales-nav-secret"
FIRST_NAMES = (
    "Ava", "Ben", "Cleo", "Dan", "Eve", "Finn", "Gia", "Hal", "Ivy", "Jon", "Kai", "Lea", "Max",
    "Nia", "Oto", "Pia", "Quin", "Rae", "Sol", "Tia", "Uma", "Vic", "Wes", "Xia", "Yan", "Zoe",
    "Abe", "Bea", "Cal", "Dee", "Eli", "Fay", "Gus", "Hana", "Ian", "Jade", "Kit", "Liv",
    "Mo", "Ned",
)  # fmt: skip
# (persona marker, country, how many people)
COHORTS = (
    ("standard", "US", 20),
    ("standard", "GB", 4),
    ("standard", "DE", 2),
    ("personal", "GB", 3),
    ("personal", "DE", 3),
    ("personal", "US", 2),
    ("lowconf", "US", 2),
    ("nomatch", "US", 2),
    ("flaky", "US", 2),
)
ENRICHED_MARKERS = {"standard", "lowconf", "flaky"}
# Zeliq answers by callback only and is left unconfigured: nine providers are available.
AVAILABLE_PROVIDERS = 9


def _people() -> list[dict[str, Any]]:
    people: list[dict[str, Any]] = []
    names = iter(FIRST_NAMES)
    for marker, country, count in COHORTS:
        for _ in range(count):
            first = next(names)
            last = marker.title()
            index = len(people)
            people.append(
                {
                    "name": f"{first} {last}",
                    "company": f"Acme {index}",
                    "title": "VP Payments",
                    # The digit segment keeps LinkedIn slugs unique and is ignored by the sandbox.
                    "linkedinUrl": f"https://www.linkedin.com/in/{first.lower()}-{marker}-{index}x9",
                    "companyDomain": f"acme{index}.com",
                    "countryIso": country,
                    "email": None,
                    "phone": f"(415) 555-01{index:02d}" if marker == "nomatch" else None,
                    "marker": marker,  # an unknown extra field: kept, not rejected
                }
            )
    assert len(people) == 40
    return people


@pytest.fixture
async def stack(
    infra: Any, kafka_settings: Settings, agents: Agents
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    """Sandbox, gateway (committing), ingestion, enrichment and allocation apps running."""
    async with serve_sandbox(slow_seconds=1.0) as sandbox_url:
        settings = sandboxed_settings(
            kafka_settings,
            infra,
            sandbox_url,
            SALES_NAV_WEBHOOK_SECRET=SECRET,
        )
        async with (
            agents.running(settings, "ingestion", "enrichment", "allocation"),
            serve_gateway(settings) as client,
        ):
            yield settings, client


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    statement = select(func.count()).select_from(model).where(*where)
    return int((await session.execute(statement)).scalar_one())


async def test_sales_nav_delivery_ends_enriched_ranked_and_explained(
    stack: tuple[Settings, httpx.AsyncClient],
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings, api = stack
    async with kafka_sessionmaker() as session, session.begin():
        project = await create_project(
            session, geography_iso_codes=["US", "GB", "DE"], auto_outreach_channel="email"
        )
    people = _people()
    leads = people + people[:10]  # the same ten people again in the same delivery
    response = await api.post(
        "/webhooks/sales-nav",
        headers={"x-sales-nav-secret": SECRET},
        json={
            "projectId": str(project.id),
            "searchUrl": "https://linkedin.com/sales/search/e2e-1",
            "leads": leads,
        },
    )
    assert response.status_code == 202, response.text

    async def settled() -> bool:
        async with kafka_sessionmaker() as session:
            done = await _count(
                session,
                Lead,
                Lead.project_id == project.id,
                Lead.status.in_(["ENRICHED", "ENRICHMENT_FAILED", "DISQUALIFIED"]),
            )
            ranked = await _count(
                session, RankingSnapshot, RankingSnapshot.project_id == project.id
            )
            return done == 40 and ranked == 40

    await wait_until(settled, timeout=180, interval=0.25, message="40 leads settled and ranked")

    by_name = {person["name"]: person for person in people}
    async with kafka_sessionmaker() as session:
        assert await _count(session, Expert) == 40
        rows = (
            await session.execute(
                select(Lead, Expert)
                .join(Expert, Expert.id == Lead.expert_id)
                .where(Lead.project_id == project.id)
            )
        ).all()
        assert len(rows) == 40  # same person twice in one search: one lead
        attempts = (await session.execute(select(EnrichmentAttempt))).scalars().all()
        contacts = (await session.execute(select(ExpertContact))).scalars().all()
        snapshots = (await session.execute(select(RankingSnapshot))).scalars().all()

    attempts_by_lead = Counter(attempt.lead_id for attempt in attempts)
    enrichment_contacts: dict[uuid.UUID, list[ExpertContact]] = {}
    for contact in contacts:
        if contact.source == "ENRICHMENT":
            enrichment_contacts.setdefault(contact.expert_id, []).append(contact)
    attempt_by_id = {attempt.id: attempt for attempt in attempts}

    def asked_or_held(lead: Lead) -> int:
        """Providers the lead's waterfall asked, plus those it skipped with an open circuit
        (the flaky people's 429 carries ``Retry-After: 1``: no request until it elapses)."""
        held = re.search(r"circuit open: ([a-z, ]+)", lead.status_reason or "")
        return attempts_by_lead[lead.id] + (len(held.group(1).split(", ")) if held else 0)

    statuses: Counter[str] = Counter()
    for lead, expert in rows:
        person = by_name[lead.raw_name]
        marker, country = person["marker"], person["countryIso"]
        statuses[lead.status] += 1
        # Every lead is settled with a reason an operator can read.
        assert lead.status_reason, (lead.raw_name, lead.status)
        assert lead.payload.get("marker") == marker  # unknown fields kept
        found = enrichment_contacts.get(expert.id, [])
        if marker in ENRICHED_MARKERS or (marker == "personal" and country == "US"):
            assert lead.status == "ENRICHED", (lead.raw_name, lead.status_reason)
            assert lead.enriched_at is not None
            # The best result's contacts, all from one provider, tied to its attempt.
            assert found and len({c.provider for c in found}) == 1
            for contact in found:
                attempt = attempt_by_id[contact.enrichment_attempt_id]  # type: ignore[index]
                assert attempt.status == "SUCCESS" and attempt.provider == contact.provider
        else:
            assert lead.status == "ENRICHMENT_FAILED", (lead.raw_name, lead.status_reason)
            assert lead.status_reason.startswith("no provider found a contact")
            assert found == []
            # The fallback asked all (but a provider held by its 429's Retry-After: flaky).
            assert asked_or_held(lead) == AVAILABLE_PROVIDERS, lead.status_reason
        if marker == "personal" and country in ("GB", "DE"):
            assert f"professional email required for {country}" in lead.status_reason
        if marker in ("lowconf",):
            assert "below the 0.70 target" in lead.status_reason
            assert asked_or_held(lead) == AVAILABLE_PROVIDERS, lead.status_reason
        if marker == "standard":
            assert attempts_by_lead[lead.id] == 5  # the parallel phase won
        # Region rule: no personal email for experts in Europe (or CA/AU), whatever the source.
        if requires_professional_email(expert.country_iso):
            personal = [
                c.value
                for c in contacts
                if c.expert_id == expert.id and c.type == "EMAIL" and is_personal_email(c.value)
            ]
            assert personal == [], (lead.raw_name, personal)
        assert lead.ranking_score is not None

    assert statuses == {"ENRICHED": 32, "ENRICHMENT_FAILED": 8}
    assert sum(attempts_by_lead.values()) == len(attempts)
    assert all(attempt.lead_id is not None for attempt in attempts)
    assert len(snapshots) == 40
    assert {s.lead_id for s in snapshots} == {lead.id for lead, _ in rows}
    assert len({a.run_id for a in attempts}) == 40  # one waterfall per lead, none repeated

    # What enrichment spent: every attempt's credits, by provider and per verified contact.
    token = mint_token(settings, Principal(user_id="ops-1", role=Role.OPS))
    response = await api.get(
        f"/api/v1/projects/{project.id}/costs", headers={"Authorization": f"Bearer {token}"}
    )
    assert response.status_code == 200, response.text
    costs = response.json()
    spent: Counter[str] = Counter()
    for attempt in attempts:
        spent[attempt.provider] += attempt.credits
    assert costs["totalCredits"] == pytest.approx(sum(spent.values())) and spent.total() > 0
    assert {row["provider"]: row["credits"] for row in costs["providers"]} == pytest.approx(
        dict(spent)
    )
    assert sum(row["attempts"] for row in costs["providers"]) == len(attempts)
    # LeadMagic reports what it consumed: nothing for a miss.
    assert all(
        a.credits == 0 for a in attempts if a.provider == "leadmagic" and a.status == "NO_MATCH"
    )
    assert costs["verifiedContacts"] > 0
    assert costs["costPerVerifiedContact"] == round(
        costs["totalCredits"] / costs["verifiedContacts"], 4
    )
    assert (costs["budgetCredits"], costs["remainingCredits"]) == (None, None)

    # Follow-ups: one ranking request per lead; auto outreach only for confident contacts.
    ranking = await read_topic(settings, "ranking", min_count=40, settle=0.5)
    assert len(ranking) == 40
    confident = [
        lead
        for lead, _ in rows
        if lead.status == "ENRICHED" and "below the" not in (lead.status_reason or "")
    ]
    outreach = await read_topic(settings, "outreach", min_count=len(confident), settle=0.5)
    assert len(outreach) == len(confident)
    assert {r.envelope().payload["leadId"] for r in outreach} == {str(x.id) for x in confident}

    # Call tasks: every expert with a dialable phone (found by a vendor, or the lead's own in
    # national format, stored E.164) ends with exactly one PENDING initial task, nobody else.
    callable_experts = {
        c.expert_id: c.value_normalized for c in contacts if c.type == "PHONE" and c.is_dialable
    }
    assert all(phone.startswith("+1") for phone in callable_experts.values())
    nomatch = {expert.id for lead, expert in rows if by_name[lead.raw_name]["marker"] == "nomatch"}
    assert nomatch and nomatch <= set(callable_experts)

    # 40 rankings and the two nomatch leads' phones asked for a task: wait until all handled.
    requests = await read_topic(settings, "call-allocation", min_count=42, settle=1.0)
    assert len(requests) == 42
    request_ids = [record.envelope().id for record in requests]

    async def requests_handled() -> bool:
        async with kafka_sessionmaker() as session:
            handled = await _count(
                session,
                ProcessedEvent,
                ProcessedEvent.consumer == "call-allocation",
                ProcessedEvent.event_id.in_(request_ids),
            )
            return handled == len(request_ids)

    await wait_until(requests_handled, timeout=60, interval=0.25, message="call tasks requested")
    async with kafka_sessionmaker() as session:
        tasks = (
            (await session.execute(select(CallTask).where(CallTask.project_id == project.id)))
            .scalars()
            .all()
        )
    assert Counter(t.expert_id for t in tasks) == Counter(set(callable_experts))
    scores = {lead.expert_id: lead.ranking_score for lead, _ in rows}
    for task in tasks:
        assert (task.status, task.kind, task.priority) == ("PENDING", "INITIAL", project.priority)
        assert task.phone_number == callable_experts[task.expert_id]
        assert task.ranking_score == scores[task.expert_id]
