"""Request and response bodies of the outreach context's endpoints (manual §4.7, §4.8) and of
its read side (threads and their messages)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator
from pydantic.config import JsonDict

from sourcing.common.models.enums import (
    DeliveryStatus,
    MessageDirection,
    MessagePurpose,
    SuppressedContactKind,
    SuppressionReason,
)
from sourcing.common.statemachines import OutreachThreadStatus
from sourcing.common.web import CursorPage, NonEmpty, RequestModel, ResponseModel
from sourcing.outreach import service

MessageBody = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)
]


class OutreachSendRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
                    "expertId": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
                    "channel": "EMAIL",
                    "recipient": "expert@example.com",
                    "body": (
                        "Hi, we would like to invite you to participate in our research project."
                    ),
                    "overrideCooldown": False,
                }
            ]
        }
    )

    project_id: uuid.UUID
    expert_id: uuid.UUID
    # Any spelling the channel table knows (``EMAIL``, ``e-mail``, ``kakao``, ...).
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    recipient: NonEmpty
    body: MessageBody
    override_cooldown: bool = False
    subject: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class OutreachSendAccepted(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"accepted": True, "jobId": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"}]
        }
    )

    accepted: bool = True
    # The OutreachMessage id: the queued delivery job.
    job_id: str


class ScreeningDispatchRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
                    "expertId": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
                }
            ]
        }
    )

    project_id: uuid.UUID
    expert_id: uuid.UUID


class ScreeningResponseOut(ResponseModel):
    id: uuid.UUID
    project_id: uuid.UUID
    expert_id: uuid.UUID
    question_id: uuid.UUID
    status: str
    channel: str | None
    response_text: str | None
    answered_at: datetime | None
    reminder_count: int


_SCREENING_RESPONSE_EXAMPLE: dict[str, Any] = {
    "id": "0d1e2f3a-4b5c-4d6e-8f7a-8b9c0d1e2f3a",
    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
    "expertId": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
    "questionId": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e",
    "status": "COMPLETE",
    "channel": "EMAIL",
    "responseText": "I have 8 years of experience in fintech.",
    "answeredAt": "2026-12-06T15:00:00Z",
    "reminderCount": 0,
}


class ScreeningDispatchAccepted(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": True,
                    "jobId": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
                    "channel": "EMAIL",
                    "created": 1,
                    "responses": [_SCREENING_RESPONSE_EXAMPLE],
                }
            ]
        }
    )

    accepted: bool = True
    # The OutreachMessage carrying the questions; None when nothing new had to be sent.
    job_id: str | None
    channel: str
    created: int = Field(description="ScreeningResponses created by this dispatch")
    responses: list[ScreeningResponseOut]


class ScreeningAnswerRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
                    "expertId": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
                    "questionId": "5b6c7d8e-9f0a-4b1c-8d2e-3f4a5b6c7d8e",
                    "responseText": "I have 8 years of experience in fintech.",
                }
            ]
        }
    )

    project_id: uuid.UUID
    expert_id: uuid.UUID
    question_id: uuid.UUID
    response_text: MessageBody


class ScreeningAnswerRecorded(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "response": _SCREENING_RESPONSE_EXAMPLE,
                    "screeningStatus": "COMPLETE",
                    "requiredUnanswered": 0,
                }
            ]
        }
    )

    response: ScreeningResponseOut
    # The status of the expert's screening as a whole (every row shows it).
    screening_status: str
    required_unanswered: int


# --- threads and their messages (read side) -------------------------------------------------

_THREAD_EXAMPLE: JsonDict = {
    "id": "3c6e0a52-9b1f-4d8e-8f43-7a2d5c1f0e21",
    "projectId": "9a1d3e7c-2b4f-4c6a-8e1d-5f7a9b3c2d10",
    "expertId": "0b6f4a52-7d7e-4f8e-9a43-2d5c1f0e9b11",
    "channel": "EMAIL",
    "status": "OPEN",
    "statusChangedAt": None,
    "recipient": "jane.doe@example.com",
    "externalThreadId": None,
    "lastMessageAt": "2026-12-06T10:15:02Z",
    "lastError": None,
    "lastErrorAt": None,
    "createdAt": "2026-12-06T10:15:00Z",
    "updatedAt": "2026-12-06T10:15:02Z",
}

_MESSAGE_EXAMPLE: JsonDict = {
    "id": "7e2b9c41-5d3a-4f1e-b8c7-1a9d0e6f2b33",
    "direction": "OUTBOUND",
    "purpose": "OUTREACH",
    "recipient": "jane.doe@example.com",
    "body": "Hi Jane, we would love to speak with you about payments.",
    "deliveryStatus": "DELIVERED",
    "provider": "sendgrid",
    "providerMessageId": "sg-4f1e9a0c",
    "attempts": 1,
    "error": None,
    "cooldownOverridden": False,
    "correlationId": "c0a8012e-7d4b-4a7e-9f10-3b2a1c0d9e8f",
    "sentAt": "2026-12-06T10:15:02Z",
    "deliveredAt": "2026-12-06T10:15:40Z",
    "failedAt": None,
    "createdAt": "2026-12-06T10:15:00Z",
}


class OutreachThreadOut(ResponseModel):
    """The conversation with one expert, for one project, on one channel."""

    model_config = ConfigDict(json_schema_extra={"examples": [_THREAD_EXAMPLE]})

    id: uuid.UUID
    project_id: uuid.UUID
    expert_id: uuid.UUID
    channel: str = Field(description="The channel's API name, e.g. `EMAIL`.")
    status: OutreachThreadStatus
    status_changed_at: datetime | None
    recipient: str | None
    external_thread_id: str | None
    last_message_at: datetime | None
    last_error: str | None = Field(description="The last delivery failure on this thread.")
    last_error_at: datetime | None
    created_at: datetime
    updated_at: datetime

    @field_validator("channel", mode="before")
    @classmethod
    def _api_channel(cls, value: str) -> str:
        """Stored as the normalised key (``email``); the API speaks ``EMAIL``."""
        return service.api_name(service.normalize_channel(value))


class OutreachThreadPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_THREAD_EXAMPLE],
                    "nextCursor": "MjAyNi0xMi0wNlQxMDowMDowMCswMDowMHw0ZjJhOWMxZQ",
                }
            ]
        }
    )

    items: list[OutreachThreadOut]


class OutreachMessageOut(ResponseModel):
    """One message of a thread, with its provider ids and delivery status."""

    model_config = ConfigDict(json_schema_extra={"examples": [_MESSAGE_EXAMPLE]})

    id: uuid.UUID
    direction: MessageDirection
    purpose: MessagePurpose
    recipient: str | None
    body: str
    delivery_status: DeliveryStatus
    provider: str | None
    provider_message_id: str | None
    attempts: int = Field(description="Delivery attempts so far.")
    error: str | None = Field(description="The last delivery error; cleared once a send succeeds.")
    cooldown_overridden: bool
    correlation_id: str | None
    sent_at: datetime | None
    delivered_at: datetime | None
    failed_at: datetime | None
    created_at: datetime


class OutreachThreadDetail(OutreachThreadOut):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{**_THREAD_EXAMPLE, "messages": [_MESSAGE_EXAMPLE]}]}
    )

    messages: list[OutreachMessageOut] = Field(description="Oldest first.")


# --- suppressions ----------------------------------------------------------------------------

_SUPPRESSION_EXAMPLE: JsonDict = {
    "id": "7d0c8a52-3f4e-4a51-9d35-0b6f1a2e9c11",
    "kind": "EMAIL",
    "value": "dana.smith@acme.co.uk",
    "valueHash": "5f2b0c6a3e1d4b7a9c8e2f1d0b3a4c5e6f7a8b9c0d1e2f3a4b5c6d7e8f9a0b1c",
    "reason": "OPT_OUT",
    "note": "asked by phone not to be emailed again",
    "expertId": "0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a",
    "actor": "ops-1",
    "createdAt": "2026-12-06T10:00:00Z",
}


class SuppressionCreate(RequestModel):
    """An address an operator suppresses: an email, a phone number, a LinkedIn URL or an email
    domain (every address at it)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"kind": "EMAIL", "value": "Dana.Smith@acme.co.uk", "note": "asked by phone"},
                {"kind": "DOMAIN", "value": "competitor.example", "reason": "MANUAL"},
            ]
        }
    )

    kind: SuppressedContactKind
    value: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
    reason: Literal[
        SuppressionReason.MANUAL, SuppressionReason.OPT_OUT, SuppressionReason.BOUNCED
    ] = SuppressionReason.MANUAL
    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    expert_id: uuid.UUID | None = None


class SuppressionOut(ResponseModel):
    """One suppressed address. ``value`` is null once its person was erased: the hash still
    matches, the address is gone."""

    model_config = ConfigDict(json_schema_extra={"examples": [_SUPPRESSION_EXAMPLE]})

    id: uuid.UUID
    kind: SuppressedContactKind
    value: str | None
    value_hash: str
    reason: SuppressionReason
    note: str | None
    expert_id: uuid.UUID | None
    actor: str | None
    created_at: datetime


class SuppressionPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_SUPPRESSION_EXAMPLE],
                    "nextCursor": "MjAyNi0xMi0wNlQxMDowMDowMCswMDowMHw3ZDBjOGE1Mg",
                }
            ]
        }
    )

    items: list[SuppressionOut]
