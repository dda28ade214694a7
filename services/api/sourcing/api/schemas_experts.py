"""Read side of the sourcing pipeline (admin/ops): a project's experts, one expert in full."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import ConfigDict, Field, StringConstraints

from sourcing.common.web import LongText, RequestModel, ResponseModel, UtcDatetime


class ContactCreate(RequestModel):
    """An operator's contact for an expert. Phones only for now: stored in E.164 (a national
    format is read in the expert's country); a number that cannot be read is kept as given,
    ``isDialable: false``, and never called."""

    type: Literal["PHONE"]
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    is_primary: bool = False


class ContactOut(ResponseModel):
    id: uuid.UUID
    type: str
    channel: str | None
    value: str
    value_normalized: str
    is_primary: bool
    is_professional: bool | None
    is_dialable: bool | None = Field(
        description="Phones: E.164 and callable (true), or kept as given and never called"
    )
    source: str
    provider: str | None
    confidence: float | None
    enrichment_attempt_id: uuid.UUID | None


class ProjectExpertItem(ResponseModel):
    """One lead of the project with its expert, contacts and latest score."""

    lead_id: uuid.UUID
    expert_id: uuid.UUID
    full_name: str
    title: str | None
    company_name: str | None
    country_iso: str | None
    lead_status: str
    status_reason: str | None
    ranking_score: float | None
    sales_nav_search_id: uuid.UUID
    enriched_at: datetime | None
    contacts: list[ContactOut]


class ProjectExpertPage(ResponseModel):
    items: list[ProjectExpertItem]
    total: int
    limit: int
    offset: int


class AttemptSummary(ResponseModel):
    """Enrichment attempts of one provider for this expert."""

    provider: str
    attempts: int
    successes: int
    best_confidence: float | None
    last_status: str
    last_attempt_at: datetime
    average_latency_ms: float | None


class ExpertLead(ResponseModel):
    lead_id: uuid.UUID
    project_id: uuid.UUID
    sales_nav_search_id: uuid.UUID
    status: str
    status_reason: str | None
    ranking_score: float | None
    created_at: datetime


class ExpertDetail(ResponseModel):
    id: uuid.UUID
    full_name: str
    title: str | None
    company_name: str | None
    company_domain: str | None
    country_iso: str | None
    linkedin_url: str | None
    primary_email: str | None
    suppressed: bool
    signed_up_at: datetime | None = None
    contacts: list[ContactOut]
    enrichment: list[AttemptSummary]
    leads: list[ExpertLead]


class SignupRecord(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"signedUpAt": "2026-11-28T10:30:00Z", "note": "signed up by phone"}]
        }
    )

    signed_up_at: UtcDatetime | None = Field(
        default=None, description="When the expert signed up (default: now); no offset means UTC"
    )
    note: LongText | None = None


class SignupRecorded(ResponseModel):
    expert_id: uuid.UUID
    signed_up_at: datetime
    already_signed_up: bool = Field(description="True when nothing changed (a replay)")
    converted_leads: int
    cancelled_task_ids: list[uuid.UUID]
