"""Request and response bodies: camelCase on the wire, as in the manual."""

from __future__ import annotations

import re
import uuid
from datetime import datetime
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic.alias_generators import to_camel

from sourcing.common.auth import Role
from sourcing.common.web import (
    CountryCode,
    NonEmpty,
    RequestModel,
    ResponseModel,
    Url,
    UtcDatetime,
)

# System and auth


class StatusResponse(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"status": "ok"}, {"status": "ready"}, {"status": "admin-ok"}]
        }
    )

    status: str


class TokenRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"userId": "user-1", "role": "admin"},
                {"userId": "ops-user-42", "role": "ops"},
            ]
        }
    )

    user_id: NonEmpty
    role: Role


class TokenResponse(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"accessToken": "eyJhbGciOiJIUzI1NiIs...", "tokenType": "Bearer", "expiresIn": 3600}
            ]
        }
    )

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type name, not a secret
    expires_in: int


class MeResponse(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"userId": "user-1", "role": "admin"}]}
    )

    user_id: str
    role: Role


class PartitionLagOut(ResponseModel):
    group: str
    topic: str
    partition: int
    committed_offset: int
    end_offset: int
    lag: int


class ConsumerLagResponse(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "partitions": [
                        {
                            "group": "expert-sourcing-allocation",
                            "topic": "call-allocation",
                            "partition": 0,
                            "committedOffset": 1200,
                            "endOffset": 1212,
                            "lag": 12,
                        }
                    ],
                    "totalLag": 12,
                }
            ]
        }
    )

    partitions: list[PartitionLagOut]
    total_lag: int


# Webhooks


class WebhookAccepted(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"accepted": True, "eventId": "evt_01HZX3K9V2", "leads": 2}]
        }
    )

    accepted: bool
    event_id: str
    leads: int | None = None


class InboundAccepted(ResponseModel):
    """A verified inbound channel delivery: how many events in it were queued for outreach
    (opens, clicks and other events outreach does not track are dropped)."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"accepted": True, "events": 2}]})

    accepted: bool
    events: int


# A pattern, not EmailStr: full address validation was a tenth of the Yay webhook's CPU, and the
# address only has to match a caller's.
AgentEmail = Annotated[
    str, StringConstraints(max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
]


class YayWebhookMetadata(BaseModel):
    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    task_id: uuid.UUID | None = None


class YayWebhook(BaseModel):
    """A Yay call event (our contract; see the webhook's description). Extra fields are kept."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "event": "call.ended",
                    "callId": "yay-call-7731",
                    "occurredAt": "2026-12-06T10:12:00Z",
                    "agentEmail": "john.smith@example.com",
                    "from": "+12125550123",
                    "to": "+81312345678",
                    "direction": "outbound",
                    "durationSeconds": 312,
                    "talkSeconds": 290,
                    "recordingUrl": None,
                    "metadata": {"taskId": "0e943653-3f9e-4a1d-8788-f74ce049c91c"},
                }
            ]
        },
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
    )

    event: Annotated[str, StringConstraints(min_length=1, max_length=100)]
    call_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    occurred_at: datetime
    agent_email: AgentEmail | None = None
    from_number: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, alias="from"
    )
    to_number: Annotated[str, StringConstraints(max_length=64)] | None = Field(
        default=None, alias="to"
    )
    direction: Annotated[str, StringConstraints(max_length=32)] | None = None
    duration_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None
    talk_seconds: Annotated[float, Field(ge=0, le=86_400)] | None = None
    recording_url: Annotated[str, StringConstraints(max_length=2048)] | None = None
    metadata: YayWebhookMetadata = Field(default_factory=YayWebhookMetadata)


class SignupWebhook(BaseModel):
    """The sign-up site's event (our contract; see the webhook's description). Unknown fields
    are ignored; a time without an offset is UTC."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="ignore",
        json_schema_extra={
            "examples": [
                {
                    "event": "expert.signed_up",
                    "expertId": "0b6f4a52-7d7e-4f8e-9a43-2d5c1f0e9b11",
                    "email": "jane.doe@example.com",
                    "signedUpAt": "2026-11-28T10:30:00Z",
                }
            ]
        },
    )

    event: Literal["expert.signed_up"]
    expert_id: uuid.UUID | None = None
    email: AgentEmail | None = None
    signed_up_at: UtcDatetime | None = None

    @model_validator(mode="after")
    def _names_the_expert(self) -> SignupWebhook:
        if self.expert_id is None and self.email is None:
            raise ValueError("expertId or email is required")
        return self


_LINKEDIN_URL = re.compile(r"^https?://([a-z0-9-]+\.)*linkedin\.com/", re.IGNORECASE)


def _linkedin_url(value: str) -> str:
    if not _LINKEDIN_URL.match(value):
        raise ValueError("must be a linkedin.com URL")
    return value


class SalesNavLead(BaseModel):
    """One lead of a Sales Nav delivery. Unknown fields are kept, not rejected."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="allow")

    name: NonEmpty
    company: NonEmpty
    title: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None
    linkedin_url: Annotated[Url, AfterValidator(_linkedin_url)] | None = None
    company_domain: (
        Annotated[str, StringConstraints(strip_whitespace=True, max_length=253)] | None
    ) = None
    country_iso: CountryCode | None = None
    email: EmailStr | None = None
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=64)] | None = None

    @model_validator(mode="after")
    def _identifiable(self) -> SalesNavLead:
        if not self.linkedin_url and not self.email:
            raise ValueError("a lead needs a linkedinUrl or an email")
        return self


class SalesNavWebhook(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
                    "searchUrl": "https://linkedin.com/sales/search/1",
                    "leads": [
                        {
                            "name": "Kenji Sato",
                            "company": "Rakuten Pay",
                            "title": "Head of Payments",
                            "linkedinUrl": "https://www.linkedin.com/in/kenji-sato",
                            "companyDomain": "rakuten.co.jp",
                            "countryIso": "JP",
                            "email": None,
                            "phone": None,
                        }
                    ],
                }
            ]
        },
        alias_generator=to_camel,
        populate_by_name=True,
        extra="allow",
    )

    project_id: uuid.UUID
    search_url: Url
    leads: Annotated[list[SalesNavLead], Field(min_length=1, max_length=5000)]
