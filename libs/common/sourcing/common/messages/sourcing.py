"""Messages of the sourcing lanes: Sales Nav deliveries, leads, enrichment, ranking."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import AwareDatetime, Field

from sourcing.common.events import MessagePayload, register_message


@register_message("sales-nav.leads-received.v1", lane="sales-nav-ingestion", key="project_id")
class SalesNavLeadsReceived(MessagePayload):
    """A verified Sales Nav webhook delivery: one search's leads for one project.

    ``leads`` are the validated lead objects as received, unknown fields included.
    """

    project_id: uuid.UUID
    search_url: str = Field(min_length=1, max_length=2048)
    leads: list[dict[str, Any]]
    received_at: AwareDatetime


@register_message("lead.received.v1", lane="lead-ingestion", key="identity")
class LeadReceived(MessagePayload):
    """One lead of a Sales Nav delivery, on its way to deduplication (``lead-ingestion``).

    Keyed by ``identity``, the normalised person identity the publisher computed
    (:func:`sourcing.people.identity.person_identity`), so one person's leads are deduplicated
    in order. ``lead`` is the lead object as received, unknown fields included; the typed fields
    are the ones ingestion reads.
    """

    project_id: uuid.UUID
    search_id: uuid.UUID
    name: str = Field(min_length=1, max_length=500)
    company: str = Field(min_length=1, max_length=500)
    title: str | None = None
    linkedin_url: str | None = None
    email: str | None = None
    phone: str | None = None
    company_domain: str | None = None
    country_iso: str | None = None
    lead: dict[str, Any] = Field(default_factory=dict)
    received_at: AwareDatetime
    identity: str = Field(min_length=1)


@register_message("job-title-discovery.requested.v1", lane="job-title-discovery", key="project_id")
class JobTitleDiscoveryRequested(MessagePayload):
    """``POST /job-title-discovery/trigger`` accepted: plan the run (its row holds the request).

    Keyed by project id."""

    run_id: uuid.UUID
    project_id: uuid.UUID


@register_message("job-title-discovery.company.v1", lane="job-title-discovery", key="project_id")
class JobTitleDiscoveryCompany(MessagePayload):
    """Discover one company's titles for a run: Apollo per geography, then the model; all the
    company's JobTitle rows are written in one transaction. Keyed by project id."""

    run_id: uuid.UUID
    project_id: uuid.UUID
    company_id: uuid.UUID
    geography_iso_codes: list[str] = Field(default_factory=list)
