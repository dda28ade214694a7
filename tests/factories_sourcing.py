"""Builders for the sourcing pipeline's messages (leads, deliveries) used by ingestion tests."""

from __future__ import annotations

import itertools
import uuid
from datetime import UTC, datetime
from typing import Any

from sourcing.common.events import Envelope, MessagePayload
from sourcing.common.messages.sourcing import LeadReceived, SalesNavLeadsReceived
from sourcing.people.identity import person_identity

_counter = itertools.count(1)


def sales_nav_lead(**overrides: Any) -> dict[str, Any]:
    """One webhook lead (camelCase, as the gateway forwards it) with a unique person."""
    n = next(_counter)
    lead: dict[str, Any] = {
        "name": f"Person {n} Example",
        "company": "Stripe",
        "title": "VP Payments",
        "linkedinUrl": f"https://www.linkedin.com/in/person-{n}-{uuid.uuid4().hex[:6]}",
        "companyDomain": "stripe.com",
        "countryIso": "US",
        "email": None,
        "phone": None,
    }
    lead.update(overrides)
    return lead


def leads_received(
    project_id: uuid.UUID,
    leads: list[dict[str, Any]],
    *,
    search_url: str = "https://linkedin.com/sales/search/1",
) -> SalesNavLeadsReceived:
    return SalesNavLeadsReceived(
        project_id=project_id, search_url=search_url, leads=leads, received_at=datetime.now(UTC)
    )


def lead_received(
    project_id: uuid.UUID, search_id: uuid.UUID, lead: dict[str, Any] | None = None
) -> LeadReceived:
    """The lead-ingestion message for a webhook lead (defaults to a new person)."""
    raw = lead if lead is not None else sales_nav_lead()
    return LeadReceived(
        project_id=project_id,
        search_id=search_id,
        name=raw["name"],
        company=raw["company"],
        title=raw.get("title"),
        linkedin_url=raw.get("linkedinUrl"),
        email=raw.get("email"),
        phone=raw.get("phone"),
        company_domain=raw.get("companyDomain"),
        country_iso=raw.get("countryIso"),
        lead=raw,
        received_at=datetime.now(UTC),
        identity=person_identity(raw.get("linkedinUrl"), raw.get("email")),
    )


def envelope_of(payload: MessagePayload) -> Envelope:
    return Envelope.new(payload.message_type, payload)
