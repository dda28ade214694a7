"""Sales Nav ingestion and lead ingestion handlers, called directly on the real database.

Most tests run in the rolled-back ``session``; the concurrency tests commit for real
(``sessionmaker_committing``) so two transactions can race on one person.
"""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.kafka.consumer import mark_processed
from sourcing.common.models import (
    Expert,
    ExpertContact,
    Lead,
    OutboxMessage,
    SalesNavSearch,
)
from sourcing.common.models.enums import SuppressedContactKind, SuppressionReason
from sourcing.ingestion.handlers import (
    SUPPRESSED_REASON,
    handle_lead_received,
    handle_sales_nav_leads,
)
from sourcing.people.identity import person_identity
from sourcing.people.suppression import suppress_contact
from tests.factories import (
    create_expert,
    create_project,
    create_sales_nav_search,
    create_suppression,
)
from tests.factories_sourcing import envelope_of, lead_received, leads_received, sales_nav_lead

pytestmark = pytest.mark.integration


async def _count(session: AsyncSession, model: Any, *where: Any) -> int:
    return int(await session.scalar(select(func.count()).select_from(model).where(*where)) or 0)


async def _outbox(session: AsyncSession, topic: str) -> list[OutboxMessage]:
    rows = await session.scalars(
        select(OutboxMessage).where(OutboxMessage.topic == topic).order_by(OutboxMessage.seq)
    )
    return list(rows.all())


async def _ingest(
    session: AsyncSession, project_id: uuid.UUID, search_id: uuid.UUID, lead: Any
) -> None:
    message = lead_received(project_id, search_id, lead)
    await handle_lead_received(session, envelope_of(message), message)
    await session.flush()


# --- sales-nav-ingestion ------------------------------------------------------------------------


async def test_delivery_registers_its_search_and_fans_out_one_message_per_lead(
    session: AsyncSession,
) -> None:
    project = await create_project(session)
    leads = [
        sales_nav_lead(linkedinUrl="https://uk.linkedin.com/in/JaneDoe/?trk=x", unknownField=1),
        sales_nav_lead(linkedinUrl=None, email=" Bob@Stripe.com "),
        sales_nav_lead(),
    ]
    delivery = leads_received(project.id, leads, search_url="https://linkedin.com/sales/search/77")
    await handle_sales_nav_leads(session, envelope_of(delivery), delivery)

    search = await session.scalar(
        select(SalesNavSearch).where(SalesNavSearch.project_id == project.id)
    )
    assert search is not None
    assert search.normalized_url == "https://linkedin.com/sales/search/77"
    assert search.leads_received == 3
    assert search.last_webhook_at is not None
    rows = await _outbox(session, "lead-ingestion")
    assert [row.key for row in rows] == [
        "https://www.linkedin.com/in/janedoe",
        "bob@stripe.com",
        person_identity(leads[2]["linkedinUrl"], None),
    ]
    first = rows[0].envelope
    assert first["type"] == "lead.received.v1"
    assert first["payload"]["searchId"] == str(search.id)
    assert first["payload"]["projectId"] == str(project.id)
    assert first["payload"]["lead"]["unknownField"] == 1


async def test_delivery_for_a_registered_search_updates_it(session: AsyncSession) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project, leads_received=4)
    delivery = leads_received(
        project.id, [sales_nav_lead(), sales_nav_lead()], search_url=search.source_url
    )
    await handle_sales_nav_leads(session, envelope_of(delivery), delivery)
    await session.refresh(search)
    assert search.leads_received == 6
    assert await _count(session, SalesNavSearch, SalesNavSearch.project_id == project.id) == 1
    rows = await _outbox(session, "lead-ingestion")
    assert {row.envelope["payload"]["searchId"] for row in rows} == {str(search.id)}


async def test_correlation_id_of_the_delivery_flows_to_each_lead(session: AsyncSession) -> None:
    from sourcing.common.kafka.consumer import correlation_scope

    project = await create_project(session)
    delivery = leads_received(project.id, [sales_nav_lead()])
    envelope = envelope_of(delivery)
    with correlation_scope("corr-sales-nav-1"):
        await handle_sales_nav_leads(session, envelope, delivery)
    rows = await _outbox(session, "lead-ingestion")
    assert rows[0].envelope["correlation_id"] == "corr-sales-nav-1"


# --- lead-ingestion -----------------------------------------------------------------------------


async def test_new_lead_creates_expert_lead_contacts_and_requests_enrichment(
    session: AsyncSession,
) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    lead = sales_nav_lead(
        name="Jane Doe",
        linkedinUrl="https://www.linkedin.com/in/JaneDoe/",
        email="Jane.Doe@Stripe.com",
        phone="+1 (415) 555-0100",
        countryIso="GB",
        companyDomain="stripe.com",
        batchId="b-1",
    )
    await _ingest(session, project.id, search.id, lead)

    expert = await session.scalar(
        select(Expert).where(
            Expert.linkedin_url_normalized == "https://www.linkedin.com/in/janedoe"
        )
    )
    assert expert is not None
    assert (expert.full_name, expert.first_name, expert.last_name) == ("Jane Doe", "Jane", "Doe")
    assert expert.primary_email == "jane.doe@stripe.com"
    assert (expert.title, expert.company_name, expert.company_domain) == (
        "VP Payments",
        "Stripe",
        "stripe.com",
    )
    assert (expert.country_iso, expert.timezone) == ("GB", "Europe/London")

    lead_row = await session.scalar(select(Lead).where(Lead.expert_id == expert.id))
    assert lead_row is not None
    assert lead_row.status == "ENRICHING"
    assert lead_row.status_changed_at is not None
    assert lead_row.sales_nav_search_id == search.id
    assert lead_row.payload["batchId"] == "b-1"

    contacts = (
        await session.scalars(select(ExpertContact).where(ExpertContact.expert_id == expert.id))
    ).all()
    by_type = {c.type: c for c in contacts}
    assert set(by_type) == {"LINKEDIN", "EMAIL", "PHONE"}
    assert {c.source for c in contacts} == {"SALES_NAV"}
    assert by_type["EMAIL"].value_normalized == "jane.doe@stripe.com"
    assert by_type["EMAIL"].is_professional is True
    assert by_type["PHONE"].value_normalized == "+14155550100"
    assert by_type["LINKEDIN"].value_normalized == "https://www.linkedin.com/in/janedoe"

    [request] = await _outbox(session, "enrichment")
    assert request.key == str(expert.id)
    assert request.envelope["type"] == "enrichment.requested.v1"
    assert request.envelope["payload"] == {
        "leadId": str(lead_row.id),
        "expertId": str(expert.id),
        "projectId": str(project.id),
    }


async def test_the_lead_takes_the_injected_clocks_time(session: AsyncSession) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    message = lead_received(
        project.id,
        search.id,
        sales_nav_lead(name="Ada Clock", linkedinUrl="https://www.linkedin.com/in/ada-clock"),
    )
    moment = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)

    await handle_lead_received(session, envelope_of(message), message, clock=lambda: moment)

    lead = await session.scalar(select(Lead).where(Lead.sales_nav_search_id == search.id))
    assert lead is not None and lead.status_changed_at == moment


async def test_same_person_from_two_searches_and_two_projects_is_one_expert(
    session: AsyncSession,
) -> None:
    first_project = await create_project(session)
    second_project = await create_project(session)
    search_a = await create_sales_nav_search(session, project=first_project)
    search_b = await create_sales_nav_search(session, project=first_project)
    search_c = await create_sales_nav_search(session, project=second_project)
    slug = f"same-{uuid.uuid4().hex[:8]}"
    await _ingest(
        session,
        first_project.id,
        search_a.id,
        sales_nav_lead(linkedinUrl=f"https://www.linkedin.com/in/{slug}"),
    )
    await _ingest(
        session,
        first_project.id,
        search_b.id,
        sales_nav_lead(linkedinUrl=f"http://uk.linkedin.com/in/{slug.upper()}/?x=1"),
    )
    await _ingest(
        session,
        second_project.id,
        search_c.id,
        sales_nav_lead(linkedinUrl=f"linkedin.com/in/{slug}/"),
    )

    identity = f"https://www.linkedin.com/in/{slug}"
    experts = (
        await session.scalars(select(Expert.id).where(Expert.linkedin_url_normalized == identity))
    ).all()
    assert len(experts) == 1
    leads = (await session.scalars(select(Lead).where(Lead.expert_id == experts[0]))).all()
    assert sorted((lead.project_id, lead.sales_nav_search_id) for lead in leads) == sorted(
        [
            (first_project.id, search_a.id),
            (first_project.id, search_b.id),
            (second_project.id, search_c.id),
        ]
    )
    assert len(await _outbox(session, "enrichment")) == 3


async def test_email_identity_joins_linkedin_identity_of_the_same_person(
    session: AsyncSession,
) -> None:
    project = await create_project(session)
    search_a = await create_sales_nav_search(session, project=project)
    search_b = await create_sales_nav_search(session, project=project)
    email = f"ana.{uuid.uuid4().hex[:6]}@acme.example"
    await _ingest(session, project.id, search_a.id, sales_nav_lead(linkedinUrl=None, email=email))
    linkedin = f"https://www.linkedin.com/in/ana-{uuid.uuid4().hex[:6]}"
    await _ingest(
        session, project.id, search_b.id, sales_nav_lead(linkedinUrl=linkedin, email=email.upper())
    )
    experts = (await session.scalars(select(Expert).where(Expert.primary_email == email))).all()
    assert len(experts) == 1
    assert experts[0].linkedin_url_normalized == linkedin  # the later lead completed it
    assert await _count(session, Lead, Lead.expert_id == experts[0].id) == 2


async def test_redelivered_lead_changes_nothing(session: AsyncSession) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    lead = sales_nav_lead(email="first@stripe.com", title="VP Payments")
    await _ingest(session, project.id, search.id, lead)
    expert = await session.scalar(select(Expert).where(Expert.primary_email == "first@stripe.com"))
    assert expert is not None
    before = {
        "experts": await _count(session, Expert),
        "leads": await _count(session, Lead),
        "contacts": await _count(session, ExpertContact),
        "enrichment": len(await _outbox(session, "enrichment")),
    }
    # A second webhook delivers the same person for the same search (a new message), with
    # a changed title: still one Lead, no second enrichment, the expert untouched.
    await _ingest(session, project.id, search.id, {**lead, "title": "CEO"})
    after = {
        "experts": await _count(session, Expert),
        "leads": await _count(session, Lead),
        "contacts": await _count(session, ExpertContact),
        "enrichment": len(await _outbox(session, "enrichment")),
    }
    assert after == before
    await session.refresh(expert)
    assert expert.title == "VP Payments"


async def test_suppressed_expert_stops_at_a_disqualified_lead(session: AsyncSession) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    expert = await create_expert(session)
    await create_suppression(session, expert=expert)
    await _ingest(
        session,
        project.id,
        search.id,
        sales_nav_lead(linkedinUrl=f"{expert.linkedin_url_normalized}/", email="x@stripe.com"),
    )
    lead = await session.scalar(select(Lead).where(Lead.expert_id == expert.id))
    assert lead is not None
    assert lead.status == "DISQUALIFIED"
    assert lead.status_reason == SUPPRESSED_REASON
    assert await _outbox(session, "enrichment") == []
    assert await _count(session, ExpertContact, ExpertContact.expert_id == expert.id) == 0


async def test_suppression_of_an_identity_also_stops_a_new_expert_row(
    session: AsyncSession,
) -> None:
    """A suppression row naming the email stops the person even if no expert matched it."""
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    other = await create_expert(session)
    email = f"gone.{uuid.uuid4().hex[:6]}@acme.example"
    await create_suppression(session, expert=other, email=email.upper())
    await _ingest(session, project.id, search.id, sales_nav_lead(linkedinUrl=None, email=email))
    lead = await session.scalar(select(Lead).where(Lead.email == email))
    assert lead is not None and lead.status == "DISQUALIFIED"
    assert await _outbox(session, "enrichment") == []


@pytest.mark.parametrize(
    ("kind", "reason", "stopped"),
    [
        (SuppressedContactKind.LINKEDIN_URL, SuppressionReason.ERASED, True),
        (SuppressedContactKind.EMAIL, SuppressionReason.OPT_OUT, True),
        (SuppressedContactKind.EMAIL, SuppressionReason.BOUNCED, False),
    ],
)
async def test_a_suppressed_address_of_a_new_lead_stops_the_person(
    session: AsyncSession,
    kind: SuppressedContactKind,
    reason: SuppressionReason,
    stopped: bool,
) -> None:
    """Matched by hash: an erased person (only hashes kept) or an opt-out is recognised when a
    new lead brings their identity back; a bounce only names a dead address."""
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    handle = uuid.uuid4().hex[:8]
    url, email = f"https://www.linkedin.com/in/back-{handle}", f"back.{handle}@acme.example"
    await suppress_contact(
        session,
        kind,
        url if kind is SuppressedContactKind.LINKEDIN_URL else email,
        reason=reason,
        actor="test",
    )
    await _ingest(
        session,
        project.id,
        search.id,
        sales_nav_lead(linkedinUrl=f"{url.upper()}/", email=email.upper()),
    )
    lead = await session.scalar(select(Lead).where(Lead.sales_nav_search_id == search.id))
    assert lead is not None
    assert (lead.status == "DISQUALIFIED") is stopped


async def test_personal_email_of_a_european_expert_is_not_a_contact(
    session: AsyncSession,
) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    await _ingest(
        session,
        project.id,
        search.id,
        sales_nav_lead(countryIso="DE", email="hans.m@gmail.com"),
    )
    await _ingest(
        session,
        project.id,
        search.id,
        sales_nav_lead(countryIso="US", email="joe.b@gmail.com"),
    )
    emails = (
        await session.scalars(
            select(ExpertContact.value_normalized).where(ExpertContact.type == "EMAIL")
        )
    ).all()
    assert "hans.m@gmail.com" not in emails
    assert "joe.b@gmail.com" in emails
    de_expert = await session.scalar(
        select(Expert).where(Expert.primary_email == "hans.m@gmail.com")
    )
    assert de_expert is not None  # still the person's identity
    assert de_expert.timezone == "Europe/Berlin"


# --- concurrency (real commits) -----------------------------------------------------------------


async def _race(
    sessionmaker: async_sessionmaker[AsyncSession], messages: list[Any], consumer: str
) -> None:
    """Each message in its own transaction (dedup row + handler, as the agent does), all at
    once on separate connections."""

    async def one(message: Any) -> None:
        envelope = envelope_of(message)
        for attempt in range(5):  # the agent's retry of transient errors
            try:
                async with session_scope(sessionmaker) as session:
                    await mark_processed(session, consumer, [envelope.id])
                    await handle_lead_received(session, envelope, message)
                return
            except Exception as exc:
                from sourcing.common.kafka.retry import is_transient

                if not is_transient(exc) or attempt == 4:
                    raise

    await asyncio.gather(*(one(message) for message in messages))


async def test_same_person_in_parallel_from_two_searches_is_one_expert(
    sessionmaker_committing: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessionmaker_committing) as session:
        project = await create_project(session)
        search_a = await create_sales_nav_search(session, project=project)
        search_b = await create_sales_nav_search(session, project=project)
    people = 25
    messages = []
    for n in range(people):
        slug = f"racer-{n}-{uuid.uuid4().hex[:6]}"
        email = f"{slug}@acme.example"
        # Two spellings of one person; half of them one search only knows by email.
        first = sales_nav_lead(linkedinUrl=f"https://www.linkedin.com/in/{slug}", email=email)
        second = sales_nav_lead(
            linkedinUrl=None if n % 2 else f"https://de.linkedin.com/in/{slug.upper()}/",
            email=email.upper(),
        )
        messages.append(lead_received(project.id, search_a.id, first))
        messages.append(lead_received(project.id, search_b.id, second))

    await _race(sessionmaker_committing, messages, consumer="race-test")

    async with session_scope(sessionmaker_committing) as session:
        assert await _count(session, Expert) == people
        assert await _count(session, Lead) == 2 * people
        per_expert = (
            await session.execute(select(Lead.expert_id, func.count()).group_by(Lead.expert_id))
        ).all()
        assert sorted(count for _, count in per_expert) == [2] * people
        assert len(await _outbox(session, "enrichment")) == 2 * people


async def test_same_lead_delivered_twice_in_parallel_is_one_lead(
    sessionmaker_committing: async_sessionmaker[AsyncSession],
) -> None:
    async with session_scope(sessionmaker_committing) as session:
        project = await create_project(session)
        search = await create_sales_nav_search(session, project=project)
    lead = sales_nav_lead(email="twice@acme.example")
    messages = [lead_received(project.id, search.id, lead) for _ in range(4)]
    await _race(sessionmaker_committing, messages, consumer="race-test")
    async with session_scope(sessionmaker_committing) as session:
        assert await _count(session, Expert) == 1
        assert await _count(session, Lead) == 1
        assert len(await _outbox(session, "enrichment")) == 1
