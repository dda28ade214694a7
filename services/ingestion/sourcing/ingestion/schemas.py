"""Request and response bodies of the ingestion context's endpoints: projects (companies, Sales
Nav searches, screening questions), the sourcing read side (a project's experts, one expert in
full) and job-title discovery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

from sourcing.common.models.enums import Channel
from sourcing.common.web import (
    CountryCode,
    CursorPage,
    JsonObject,
    LongText,
    NonEmpty,
    RequestModel,
    ResponseModel,
    Url,
)

# Projects


def _channel_key(name: str) -> str:
    """The API's channel name (``EMAIL``, any case) as the stored key (``email``)."""
    try:
        return Channel[name.strip().upper()].value
    except KeyError:
        raise ValueError(f"unknown channel; one of {', '.join(c.name for c in Channel)}") from None


AutoOutreachChannel = Annotated[
    str,
    AfterValidator(_channel_key),
    Field(
        description="Channel of the message sent to every confidently enriched expert; null: none.",
        json_schema_extra={"enum": [channel.name for channel in Channel]},
    ),
]
AutoOutreachTemplate = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2_000),
    Field(
        description=(
            "Its body; `{first_name}`, `{full_name}`, `{last_name}`, `{title}`, `{company}` and "
            "`{project_name}` are filled in. Null: the built-in invitation."
        )
    ),
]


class ProjectCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "name": "APAC Fintech Experts Q1",
                    "description": "Source senior fintech experts in APAC region",
                    "targetThreshold": 50,
                    "geographyIsoCodes": ["SG", "JP", "AU"],
                    "priority": 1,
                    "overrideCooldown": False,
                }
            ]
        }
    )

    name: NonEmpty
    description: LongText | None = None
    target_threshold: Annotated[int, Field(gt=0, le=1_000_000)]
    geography_iso_codes: Annotated[list[CountryCode], Field(min_length=1, max_length=250)]
    priority: Annotated[int, Field(ge=0, le=1_000_000)] = 0
    override_cooldown: bool = False
    region_config: JsonObject = Field(default_factory=dict)
    auto_outreach_channel: AutoOutreachChannel | None = None
    auto_outreach_template: AutoOutreachTemplate | None = None


class ProjectUpdate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"priority": 2, "description": "Updated description"},
                {"enrichmentBudgetCredits": 500},
            ]
        }
    )

    name: NonEmpty | None = None
    description: LongText | None = None
    target_threshold: Annotated[int, Field(gt=0, le=1_000_000)] | None = None
    geography_iso_codes: (
        Annotated[list[CountryCode], Field(min_length=1, max_length=250)] | None
    ) = None
    priority: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    override_cooldown: bool | None = None
    region_config: JsonObject | None = None
    auto_outreach_channel: AutoOutreachChannel | None = None
    auto_outreach_template: AutoOutreachTemplate | None = None
    status: str | None = None
    # Credits enrichment may spend on the project (null: unlimited); raising it releases the
    # leads a spent budget held.
    enrichment_budget_credits: Annotated[float, Field(ge=0, le=1e9)] | None = None


_PROJECT_EXAMPLE: dict[str, Any] = {
    "id": "2d934d30-c3bc-4e29-b238-62518bbb6442",
    "name": "APAC Fintech Experts Q1",
    "description": "Source senior fintech experts in APAC region",
    "targetThreshold": 50,
    "geographyIsoCodes": ["SG", "JP", "AU"],
    "priority": 1,
    "overrideCooldown": False,
    "regionConfig": {},
    "enrichmentBudgetCredits": 500,
    "status": "ACTIVE",
    "createdAt": "2026-12-01T09:00:00Z",
    "updatedAt": "2026-12-01T09:00:00Z",
}


class ProjectOut(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_PROJECT_EXAMPLE]})

    id: uuid.UUID
    name: str
    description: str | None
    target_threshold: int
    geography_iso_codes: list[str]
    priority: int
    override_cooldown: bool
    region_config: JsonObject
    # The enum belongs to the string branch: null (no auto outreach) stays valid.
    auto_outreach_channel: (
        Annotated[str, Field(json_schema_extra={"enum": [channel.name for channel in Channel]})]
        | None
    ) = None
    auto_outreach_template: str | None = None
    enrichment_budget_credits: float | None = None
    status: str
    created_at: datetime
    updated_at: datetime

    @field_validator("auto_outreach_channel", mode="before")
    @classmethod
    def _channel_name(cls, key: str | None) -> str | None:
        return Channel(key).name if key else None


class ProjectPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_PROJECT_EXAMPLE],
                    "nextCursor": "MjAyNi0xMi0wMVQwOTowMDowMCswMDowMHwyZDkzNGQzMA",
                }
            ]
        }
    )

    items: list[ProjectOut]


class CompanyIn(RequestModel):
    name: NonEmpty
    domain: Annotated[str, StringConstraints(strip_whitespace=True, max_length=253)] | None = None
    country_iso: CountryCode | None = None
    metadata: JsonObject | None = None


class CompaniesUpsert(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "companies": [
                        {"name": "Stripe", "domain": "stripe.com", "countryIso": "US"},
                        {"name": "Wise", "domain": "wise.com", "countryIso": "GB"},
                    ]
                }
            ]
        }
    )

    companies: Annotated[list[CompanyIn], Field(min_length=1, max_length=1000)]


class CompaniesUpserted(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"createdOrUpdated": 2}]})

    created_or_updated: int


class SalesNavSearchIn(RequestModel):
    source_url: Url
    normalized_url: Url | None = None


MIN_SALES_NAV_SEARCHES = 6


class SalesNavSearchesCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "searches": [
                        {
                            "sourceUrl": "https://linkedin.com/sales/search/1",
                            "normalizedUrl": "https://linkedin.com/sales/search/1",
                        },
                        {
                            "sourceUrl": "https://linkedin.com/sales/search/2",
                            "normalizedUrl": "https://linkedin.com/sales/search/2",
                        },
                        {
                            "sourceUrl": "https://linkedin.com/sales/search/3",
                            "normalizedUrl": "https://linkedin.com/sales/search/3",
                        },
                        {
                            "sourceUrl": "https://linkedin.com/sales/search/4",
                            "normalizedUrl": "https://linkedin.com/sales/search/4",
                        },
                        {
                            "sourceUrl": "https://linkedin.com/sales/search/5",
                            "normalizedUrl": "https://linkedin.com/sales/search/5",
                        },
                        {
                            "sourceUrl": "https://linkedin.com/sales/search/6",
                            "normalizedUrl": "https://linkedin.com/sales/search/6",
                        },
                    ]
                }
            ]
        }
    )

    searches: Annotated[
        list[SalesNavSearchIn], Field(min_length=MIN_SALES_NAV_SEARCHES, max_length=1000)
    ]


class SalesNavSearchesCreated(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"created": 6}]})

    created: int


class ScreeningQuestionCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "prompt": "How many years of experience do you have in fintech?",
                    "displayOrder": 1,
                    "required": True,
                }
            ]
        }
    )

    prompt: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    display_order: Annotated[int, Field(ge=0, le=10_000)]
    required: bool = True


class ScreeningQuestionUpdate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"prompt": "Updated question text"}]})

    prompt: (
        Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
        | None
    ) = None
    display_order: Annotated[int, Field(ge=0, le=10_000)] | None = None
    required: bool | None = None


_QUESTION_EXAMPLE: dict[str, Any] = {
    "id": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e",
    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
    "prompt": "How many years of experience do you have in fintech?",
    "displayOrder": 1,
    "required": True,
    "createdAt": "2026-12-01T09:05:00Z",
    "updatedAt": "2026-12-01T09:05:00Z",
}


class ScreeningQuestionOut(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_QUESTION_EXAMPLE]})

    id: uuid.UUID
    project_id: uuid.UUID
    prompt: str
    display_order: int
    required: bool
    created_at: datetime
    updated_at: datetime


class ScreeningQuestionList(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"items": [_QUESTION_EXAMPLE]}]})

    items: list[ScreeningQuestionOut]


# Experts


class ContactCreate(RequestModel):
    """An operator's contact for an expert. Phones only for now: stored in E.164 (a national
    format is read in the expert's country); a number that cannot be read is kept as given,
    ``isDialable: false``, and never called."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"type": "PHONE", "value": "+81 3-1234-5678", "isPrimary": True}]
        }
    )

    type: Literal["PHONE"]
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    is_primary: bool = False


_CONTACT_EXAMPLE: dict[str, Any] = {
    "id": "6f7a8b9c-0d1e-4f2a-8b3c-4d5e6f7a8b9c",
    "type": "PHONE",
    "channel": "PHONE",
    "value": "+81 3-1234-5678",
    "valueNormalized": "+81312345678",
    "isPrimary": True,
    "isProfessional": None,
    "isDialable": True,
    "source": "MANUAL",
    "provider": None,
    "confidence": None,
    "enrichmentAttemptId": None,
}


class ContactOut(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CONTACT_EXAMPLE]})

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


class ProjectExpertLead(ResponseModel):
    """One of the project's leads that brought the expert."""

    lead_id: uuid.UUID
    sales_nav_search_id: uuid.UUID
    status: str
    status_reason: str | None
    enriched_at: datetime | None


class ProjectExpertItem(ResponseModel):
    """One expert of the project, however many of its leads brought them."""

    expert_id: uuid.UUID
    full_name: str
    title: str | None
    company_name: str | None
    country_iso: str | None
    ranking_score: float | None = Field(description="The expert's latest score in the project")
    lead_count: int = Field(description="How many of the project's leads are this expert")
    best_lead_status: str = Field(
        description="The furthest of those leads' statuses (NEW → ENRICHING → ENRICHED → "
        "OUTREACH_PENDING → CONTACTED → REPLIED → CONVERTED; ENRICHMENT_FAILED and "
        "DISQUALIFIED count least)"
    )
    leads: list[ProjectExpertLead] = Field(description="Those leads, best status first")
    contacts: list[ContactOut]


class ProjectExpertPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "expertId": "8f0e4c1a-5b7d-4e2f-9a63-0c1d2e3f4a5b",
                            "fullName": "Jane Doe",
                            "title": "Head of Payments",
                            "companyName": "Wise",
                            "countryIso": "GB",
                            "rankingScore": 87.5,
                            "leadCount": 2,
                            "bestLeadStatus": "CONTACTED",
                            "leads": [
                                {
                                    "leadId": "1b2c3d4e-0000-4000-8000-000000000001",
                                    "salesNavSearchId": "5a6b7c8d-0000-4000-8000-000000000002",
                                    "status": "CONTACTED",
                                    "statusReason": None,
                                    "enrichedAt": "2026-12-01T09:05:00Z",
                                },
                                {
                                    "leadId": "1b2c3d4e-0000-4000-8000-000000000003",
                                    "salesNavSearchId": "5a6b7c8d-0000-4000-8000-000000000004",
                                    "status": "ENRICHED",
                                    "statusReason": None,
                                    "enrichedAt": "2026-12-01T09:06:00Z",
                                },
                            ],
                            "contacts": [
                                {
                                    "id": "9c8b7a6d-0000-4000-8000-000000000005",
                                    "type": "EMAIL",
                                    "channel": "email",
                                    "value": "jane.doe@wise.com",
                                    "valueNormalized": "jane.doe@wise.com",
                                    "isPrimary": True,
                                    "isProfessional": True,
                                    "isDialable": None,
                                    "source": "ENRICHMENT",
                                    "provider": "prospeo",
                                    "confidence": 0.92,
                                    "enrichmentAttemptId": "2e3f4a5b-0000-4000-8000-000000000006",
                                }
                            ],
                        }
                    ],
                    "nextCursor": "ODcuNXw4ZjBlNGMxYS01YjdkLTRlMmYtOWE2My0wYzFkMmUzZjRhNWI",
                }
            ]
        }
    )

    items: list[ProjectExpertItem]


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
                    "fullName": "Kenji Sato",
                    "title": "Head of Payments",
                    "companyName": "Rakuten Pay",
                    "companyDomain": "rakuten.co.jp",
                    "countryIso": "JP",
                    "linkedinUrl": "https://www.linkedin.com/in/kenji-sato",
                    "primaryEmail": "kenji.sato@rakuten.co.jp",
                    "suppressed": False,
                    "signedUpAt": None,
                    "contacts": [_CONTACT_EXAMPLE],
                    "enrichment": [],
                    "leads": [
                        {
                            "leadId": "4c5d6e7f-8a9b-4c0d-9e1f-2a3b4c5d6e7f",
                            "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
                            "salesNavSearchId": "6e7f8a9b-0c1d-4e2f-8a3b-4c5d6e7f8a9b",
                            "status": "ENRICHED",
                            "statusReason": None,
                            "rankingScore": 72.12,
                            "createdAt": "2026-12-06T09:00:00Z",
                        }
                    ],
                }
            ]
        }
    )

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


class ErasureOut(ResponseModel):
    """What an erasure did (the same answer for a repeated erasure of the expert)."""

    expert_id: uuid.UUID
    status: Literal["ERASED"] = "ERASED"
    erased_at: datetime
    tables: dict[str, int] = Field(
        description="Rows deleted or cleared per table (the expert row itself included)."
    )
    suppressions: int = Field(
        description="The person's LinkedIn URLs, emails and phones kept as hashes only, so "
        "a new lead bringing one back is DISQUALIFIED."
    )
    sheet_rows_cleared: int = Field(description="Google Sheet rows queued for blanking.")

    model_config = ConfigDict(
        json_schema_extra={
            "example": {
                "expertId": "5f0c1e7a-9d1b-4c55-9a37-0c2e6b1f4d21",
                "status": "ERASED",
                "erasedAt": "2026-12-06T21:30:00Z",
                "tables": {"experts": 1, "expert_contacts": 3, "leads": 2, "outreach_messages": 1},
                "suppressions": 4,
                "sheetRowsCleared": 1,
            }
        }
    )


# Job-title discovery

CompanyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class DiscoveryCompany(RequestModel):
    """A company to discover titles for: by name (created in the project when new), or an
    existing company of the project by id."""

    company_name: CompanyName | None = None
    company_id: uuid.UUID | None = None

    @model_validator(mode="after")
    def _named(self) -> DiscoveryCompany:
        if self.company_name is None and self.company_id is None:
            raise ValueError("a company needs a companyName or a companyId")
        return self


class JobTitleDiscoveryTrigger(RequestModel):
    """``POST /api/v1/job-title-discovery/trigger`` (§4.6).

    ``geographyIsoCodes`` defaults to the project's geographies when left out.
    """

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
                    "companies": [{"companyName": "Stripe"}, {"companyName": "Wise"}],
                    "geographyIsoCodes": ["US", "GB"],
                }
            ]
        }
    )

    project_id: uuid.UUID
    companies: Annotated[list[DiscoveryCompany], Field(min_length=1, max_length=1000)]
    geography_iso_codes: (
        Annotated[list[CountryCode], Field(min_length=1, max_length=250)] | None
    ) = None


class JobTitleDiscoveryAccepted(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"accepted": True, "jobId": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"}]
        }
    )

    accepted: bool
    job_id: uuid.UUID
