"""The set-based lead-ingestion batch handler has the effect of the per-message handler applied
to each message in order: the same batch is ingested both ways (each inside a savepoint rolled
back afterwards) and the rows written compare equal, ids and timestamps aside. The leads the
batch handler cannot settle together go through the per-message handler: the test names them,
so a batch handler that left every lead to it would fail too."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from sqlalchemy import Select, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.messages.sourcing import LeadReceived
from sourcing.common.models import Expert, ExpertContact, Lead, OutboxMessage, SystemEvent
from sourcing.common.models.enums import SuppressedContactKind, SuppressionReason
from sourcing.ingestion import handlers
from sourcing.ingestion.service import erase_expert
from sourcing.people.suppression import suppress_contact
from tests.factories import (
    create_expert,
    create_lead,
    create_project,
    create_sales_nav_search,
    create_suppression,
)
from tests.factories_sourcing import envelope_of, lead_received, sales_nav_lead

pytestmark = pytest.mark.integration

ModelT = TypeVar("ModelT")
Ingest = Callable[[AsyncSession, list[tuple[Envelope, LeadReceived]]], Awaitable[None]]


async def _one_by_one(session: AsyncSession, items: list[tuple[Envelope, LeadReceived]]) -> None:
    for envelope, payload in items:
        await handlers.handle_lead_received(session, envelope, payload)


def _fresh(model: type[ModelT]) -> Select[tuple[ModelT]]:
    """All rows of ``model`` as the database has them now (not as the session last saw them)."""
    return select(model).execution_options(populate_existing=True)


async def _snapshot(session: AsyncSession) -> dict[str, Counter[Any]]:
    """The rows of the tables the ingestion writes, ids replaced by the person's identity."""
    await session.flush()
    experts = {
        expert.id: expert.linkedin_url_normalized or expert.primary_email or "tombstone"
        for expert in (await session.scalars(_fresh(Expert))).all()
    }
    leads = (await session.scalars(_fresh(Lead))).all()
    lead_of = {lead.id: (experts[lead.expert_id], str(lead.sales_nav_search_id)) for lead in leads}

    def named(value: Any) -> Any:
        if isinstance(value, dict):
            return tuple(sorted((key, named(item)) for key, item in value.items()))
        try:
            key = uuid.UUID(str(value))
        except ValueError:
            return value
        return experts.get(key) or lead_of.get(key) or value

    written = (await session.scalars(_fresh(Expert))).all()
    contacts = (await session.scalars(_fresh(ExpertContact))).all()
    outbox = (await session.scalars(_fresh(OutboxMessage))).all()
    events = (await session.scalars(_fresh(SystemEvent))).all()
    return {
        "experts": Counter(
            (
                e.linkedin_url_normalized,
                e.primary_email,
                e.full_name,
                e.first_name,
                e.last_name,
                e.title,
                e.company_name,
                e.company_domain,
                e.country_iso,
                e.timezone,
                e.erased_at is not None,
            )
            for e in written
        ),
        "leads": Counter(
            (
                lead_of[lead.id],
                str(lead.project_id),
                lead.status,
                lead.status_reason,
                lead.raw_name,
                lead.raw_company,
                lead.linkedin_url,
                lead.email,
                lead.phone,
                lead.country_iso,
                lead.correlation_id,
            )
            for lead in leads
        ),
        "contacts": Counter(
            (
                experts[c.expert_id],
                c.type,
                c.channel,
                c.value,
                c.value_normalized,
                c.is_professional,
                c.is_dialable,
                c.source,
            )
            for c in contacts
        ),
        "outbox": Counter(
            (
                row.topic,
                named(row.key),
                row.envelope["type"],
                row.envelope["correlation_id"],
                named(row.envelope["payload"]),
            )
            for row in outbox
        ),
        "events": Counter(
            (event.type, event.entity_type, named(event.entity_id), named(event.data))
            for event in events
        ),
    }


async def test_a_batch_writes_what_its_leads_write_one_by_one(
    session: AsyncSession, monkeypatch: pytest.MonkeyPatch
) -> None:
    active = await create_project(session)
    paused = await create_project(session, status="PAUSED")
    closed = await create_project(session, status="COMPLETED")
    search = await create_sales_nav_search(session, project=active)
    other_search = await create_sales_nav_search(session, project=active)
    paused_search = await create_sales_nav_search(session, project=paused)
    closed_search = await create_sales_nav_search(session, project=closed)

    known = await create_expert(session, title=None, company_domain=None)
    email_only = await create_expert(
        session,
        linkedin_url_normalized=None,
        primary_email=f"known.{uuid.uuid4().hex[:6]}@acme.example",
    )
    without_email = await create_expert(session)
    suppressed = await create_expert(session)
    await create_suppression(session, expert=suppressed)
    already = await create_expert(session)
    await create_lead(session, project=active, expert=already, search=search)
    opted_out = f"opted.{uuid.uuid4().hex[:6]}@acme.example"
    await suppress_contact(
        session, SuppressedContactKind.EMAIL, opted_out, reason=SuppressionReason.OPT_OUT, actor="t"
    )
    erased = await create_expert(session)
    erased_url = erased.linkedin_url_normalized
    await erase_expert(session, erased.id, actor="admin:user-1", now=datetime.now(UTC))
    await session.flush()

    twice = sales_nav_lead()
    leads: dict[str, tuple[uuid.UUID, uuid.UUID, dict[str, Any]]] = {
        "new with phone": (
            active.id,
            search.id,
            sales_nav_lead(email="New.Person@Stripe.com", phone="+1 415 555 0100"),
        ),
        "new personal email in GB": (
            active.id,
            search.id,
            sales_nav_lead(email="someone@gmail.com", countryIso="GB"),
        ),
        "new, email only": (
            active.id,
            search.id,
            sales_nav_lead(linkedinUrl=None, email=f"only.{uuid.uuid4().hex[:6]}@acme.example"),
        ),
        "known, blanks filled": (
            active.id,
            search.id,
            sales_nav_lead(linkedinUrl=known.linkedin_url_normalized, title="CTO"),
        ),
        "known by email": (
            active.id,
            other_search.id,
            sales_nav_lead(linkedinUrl=None, email=email_only.primary_email),
        ),
        "suppressed": (
            active.id,
            search.id,
            sales_nav_lead(linkedinUrl=suppressed.linkedin_url_normalized),
        ),
        "opted-out address": (
            active.id,
            search.id,
            sales_nav_lead(email=opted_out.upper()),
        ),
        "redelivered": (
            active.id,
            search.id,
            sales_nav_lead(linkedinUrl=already.linkedin_url_normalized),
        ),
        "held": (paused.id, paused_search.id, sales_nav_lead(phone="+1 415 555 0101")),
        # one by one: the same person twice, an email to attach, an erased person, a refusal
        "twice, first": (active.id, search.id, twice),
        "twice, second": (active.id, other_search.id, {**twice, "title": "Another title"}),
        "email to attach": (
            active.id,
            search.id,
            sales_nav_lead(
                linkedinUrl=without_email.linkedin_url_normalized,
                email=f"attach.{uuid.uuid4().hex[:6]}@acme.example",
            ),
        ),
        "erased": (active.id, search.id, sales_nav_lead(linkedinUrl=erased_url)),
        "refused": (closed.id, closed_search.id, sales_nav_lead()),
    }
    items = []
    for project_id, search_id, lead in leads.values():
        message = lead_received(project_id, search_id, lead)
        items.append((envelope_of(message), message))
    names = {id(payload): name for name, (_, payload) in zip(leads, items, strict=True)}

    alone: list[str] = []
    per_message = handlers.handle_lead_received

    async def spy(
        session: AsyncSession, envelope: Envelope, payload: LeadReceived, **kw: Any
    ) -> None:
        alone.append(names[id(payload)])
        await per_message(session, envelope, payload, **kw)

    async def ingest(ingest: Ingest) -> dict[str, Counter[Any]]:
        nested = await session.begin_nested()
        await ingest(session, items)
        snapshot = await _snapshot(session)
        await nested.rollback()
        return snapshot

    expected = await ingest(_one_by_one)
    monkeypatch.setattr(handlers, "handle_lead_received", spy)
    batched = await ingest(handlers.handle_lead_batch)

    assert alone == ["twice, first", "twice, second", "email to attach", "erased", "refused"]
    assert batched == expected
    # every lead but the refused one (the redelivered one was there before)
    assert sum(expected["leads"].values()) == len(leads) - 1
    assert {"enrichment.requested.v1", "call-task.requested.v1"} <= {
        row[2] for row in expected["outbox"]
    }
