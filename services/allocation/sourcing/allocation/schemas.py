"""Bodies of the call-task (§4.5) and caller (§4.4) endpoints: camelCase on the wire, as in the
manual."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import AliasChoices, ConfigDict, EmailStr, Field, StringConstraints

from sourcing.allocation.service import CallerAction
from sourcing.common.db import ResultRow
from sourcing.common.models import CallTask
from sourcing.common.models.enums import CallOutcome
from sourcing.common.statemachines import CallTaskStatus
from sourcing.common.web import (
    CountryCode,
    CursorPage,
    JsonObject,
    LanguageCode,
    LongText,
    NonEmpty,
    RequestModel,
    ResponseModel,
    Timezone,
    UtcDatetime,
)

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1000)]
Notes = Annotated[str, StringConstraints(strip_whitespace=True, max_length=10_000)]


class ExpertSummary(ResponseModel):
    """Who to call: what the caller's screen shows."""

    id: uuid.UUID
    name: str
    title: str | None
    company: str | None
    phone: str | None
    timezone: str | None
    country_iso: str | None
    language_codes: list[str]


_TASK_EXAMPLE: dict[str, Any] = {
    "id": "0e943653-3f9e-4a1d-8788-f74ce049c91c",
    "status": "PENDING",
    "kind": "INITIAL",
    "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
    "projectName": "Japan payments experts",
    "expert": {
        "id": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
        "name": "Kenji Sato",
        "title": "Head of Payments",
        "company": "Rakuten Pay",
        "phone": "+81312345678",
        "timezone": "Asia/Tokyo",
        "countryIso": "JP",
        "languageCodes": ["ja", "en"],
    },
    "priority": 3,
    "rankingScore": 72.12,
    "regionIso": "JP",
    "requeueCount": 0,
    "createdAt": "2026-12-06T10:00:00Z",
    "updatedAt": "2026-12-06T10:00:00Z",
}


class CallTaskOut(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_TASK_EXAMPLE]})

    id: uuid.UUID
    status: CallTaskStatus
    status_reason: str | None
    kind: str
    project_id: uuid.UUID
    project_name: str
    expert: ExpertSummary
    caller_id: uuid.UUID | None
    priority: int
    ranking_score: float
    region_iso: str | None
    language_code: str | None
    available_after: datetime | None
    assigned_at: datetime | None
    expires_at: datetime | None = Field(
        description="Dial deadline: an ASSIGNED task not dialled by then returns to the pool."
    )
    dialing_started_at: datetime | None
    completed_at: datetime | None
    outcome: CallOutcome | None
    outcome_at: datetime | None
    outcome_notes: str | None
    requeue_count: int
    chase_of_task_id: uuid.UUID | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, task: CallTask) -> CallTaskOut:
        """From a task loaded with its expert and project."""
        expert = task.expert
        return cls._of(
            task,
            project_name=task.project.name,
            expert=ExpertSummary(
                id=expert.id,
                name=expert.full_name,
                title=expert.title,
                company=expert.company_name,
                phone=task.phone_number or expert.primary_phone,
                timezone=expert.timezone,
                country_iso=expert.country_iso,
                language_codes=list(expert.language_codes or []),
            ),
        )

    @classmethod
    def of_row(cls, row: ResultRow) -> CallTaskOut:
        """From the allocation statement's row: the task's columns, the expert's as
        ``expert_<column>`` and ``project_name``."""
        return cls._of(
            row,
            project_name=row.project_name,
            expert=ExpertSummary(
                id=row.expert_id,
                name=row.expert_full_name,
                title=row.expert_title,
                company=row.expert_company_name,
                phone=row.phone_number or row.expert_primary_phone,
                timezone=row.expert_timezone,
                country_iso=row.expert_country_iso,
                language_codes=list(row.expert_language_codes or []),
            ),
        )

    @classmethod
    def _of(
        cls, task: CallTask | ResultRow, *, project_name: str, expert: ExpertSummary
    ) -> CallTaskOut:
        return cls(
            id=task.id,
            status=CallTaskStatus(task.status),
            status_reason=task.status_reason,
            kind=task.kind,
            project_id=task.project_id,
            project_name=project_name,
            expert=expert,
            caller_id=task.caller_id,
            priority=task.priority,
            ranking_score=task.ranking_score,
            region_iso=task.region_iso,
            language_code=task.language_code,
            available_after=task.available_after,
            assigned_at=task.assigned_at,
            expires_at=task.expires_at,
            dialing_started_at=task.dialing_started_at,
            completed_at=task.completed_at,
            outcome=CallOutcome(task.outcome) if task.outcome else None,
            outcome_at=task.outcome_at,
            outcome_notes=task.outcome_notes,
            requeue_count=task.requeue_count,
            chase_of_task_id=task.chase_of_task_id,
            created_at=task.created_at,
            updated_at=task.updated_at,
        )


class CurrentTaskResponse(ResponseModel):
    """``task`` is the caller's task, or null with ``reason: NO_AVAILABLE_TASKS``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task": {
                        **_TASK_EXAMPLE,
                        "status": "ASSIGNED",
                        "callerId": "7b3f6a2e-1c4d-4e8f-9a0b-2c3d4e5f6a7b",
                        "assignedAt": "2026-12-06T14:10:00Z",
                        "expiresAt": "2026-12-06T14:25:00Z",
                    },
                    "newlyAssigned": True,
                    "reason": None,
                    "message": None,
                    "allocationStatus": "ACTIVE",
                }
            ]
        }
    )

    task: CallTaskOut | None
    newly_assigned: bool = Field(description="True when the task was assigned by this request.")
    reason: str | None = Field(
        default=None, description="Why there is no task: `NO_AVAILABLE_TASKS`; null otherwise."
    )
    message: str | None = None
    allocation_status: str


class OutcomeRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "outcome": "INTERESTED_SIGNUP_LINK_SENT",
                    "notes": "Sent the sign-up link by email",
                }
            ]
        }
    )

    outcome: CallOutcome
    notes: Notes | None = None


class OutcomeResponse(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "task": {
                        **_TASK_EXAMPLE,
                        "status": "COMPLETED",
                        "callerId": "7b3f6a2e-1c4d-4e8f-9a0b-2c3d4e5f6a7b",
                        "outcome": "INTERESTED_SIGNUP_LINK_SENT",
                        "outcomeAt": "2026-12-06T14:20:00Z",
                    },
                    "followUpTaskId": "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
                    "followUpAvailableAfter": "2026-12-07T14:20:00Z",
                    "followUpSkipped": None,
                    "cancelledTaskIds": [],
                    "disqualifiedLeads": 0,
                }
            ]
        }
    )

    task: CallTaskOut
    follow_up_task_id: uuid.UUID | None = Field(
        description="The signup-chase or retry task created by this outcome."
    )
    follow_up_available_after: datetime | None
    follow_up_skipped: str | None = Field(
        description="Why no follow-up was created (e.g. the daily signup-chase limit)."
    )
    cancelled_task_ids: list[uuid.UUID] = Field(
        description="NEVER_CONTACT_AGAIN: the expert's other open tasks, now CANCELLED."
    )
    disqualified_leads: int


class OperatorTaskList(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_TASK_EXAMPLE],
                    "nextCursor": "MjAyNi0xMi0wNlQxMDowMDowMCswMDowMHwwZTk0MzY1Mw",
                }
            ]
        }
    )

    items: list[CallTaskOut]


class RequeueRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "Caller reported technical issues"}]}
    )

    reason: Reason


class CallerCreate(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "email": "john.smith@example.com",
                    "name": "John Smith",
                    "timezone": "America/New_York",
                    "languageCodes": ["en", "es"],
                    "regionIsoCodes": ["US", "MX"],
                }
            ]
        }
    )

    email: EmailStr
    name: NonEmpty
    timezone: Timezone
    language_codes: Annotated[list[LanguageCode], Field(min_length=1, max_length=50)]
    region_iso_codes: Annotated[list[CountryCode], Field(min_length=1, max_length=250)]
    metadata: JsonObject | None = None


class CallerUpdate(RequestModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{"timezone": "Europe/London"}]})

    email: EmailStr | None = None
    name: NonEmpty | None = None
    timezone: Timezone | None = None
    language_codes: Annotated[list[LanguageCode], Field(min_length=1, max_length=50)] | None = None
    region_iso_codes: Annotated[list[CountryCode], Field(min_length=1, max_length=250)] | None = (
        None
    )
    metadata: JsonObject | None = None


_CALLER_EXAMPLE: dict[str, Any] = {
    "id": "7b3f6a2e-1c4d-4e8f-9a0b-2c3d4e5f6a7b",
    "email": "john.smith@example.com",
    "name": "John Smith",
    "timezone": "America/New_York",
    "languageCodes": ["en", "es"],
    "regionIsoCodes": ["US", "MX"],
    "metadata": {},
    "allocationStatus": "ACTIVE",
    "statusReason": None,
    "statusChangedAt": None,
    "isActive": True,
    "lastSeenAt": "2026-12-06T14:02:11Z",
    "createdAt": "2026-12-01T09:00:00Z",
    "updatedAt": "2026-12-06T14:02:11Z",
}


class CallerOut(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_CALLER_EXAMPLE]})

    id: uuid.UUID
    email: str
    name: str
    timezone: str
    language_codes: list[str]
    region_iso_codes: list[str]
    # The ORM attribute is `metadata_` (`metadata` is reserved by SQLAlchemy's declarative base).
    metadata: JsonObject = Field(validation_alias=AliasChoices("metadata_", "metadata"))
    allocation_status: str
    status_reason: str | None = None
    status_changed_at: datetime | None = None
    is_active: bool = True
    last_seen_at: datetime | None = Field(
        default=None, description="Presence: the last task request or call event while online"
    )
    created_at: datetime
    updated_at: datetime


class CallerPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_CALLER_EXAMPLE],
                    "nextCursor": "MjAyNi0xMi0wMVQwOTowMDowMCswMDowMHw3YjNmNmEyZQ",
                }
            ]
        }
    )

    items: list[CallerOut]


class CallerStatusRequest(RequestModel):
    """A staff action on a caller's status (see ``POST /api/v1/callers/{callerId}/status``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"action": "clear_fraud", "reason": "reviewed the flagged calls: dropped lines"}
            ]
        }
    )

    action: CallerAction
    reason: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]


class CallerStatusResponse(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "caller": {
                        **_CALLER_EXAMPLE,
                        "allocationStatus": "PAUSED_LOW_DIAL_RATE",
                        "statusReason": "lunch break",
                        "statusChangedAt": "2026-12-06T14:05:00Z",
                    },
                    "action": "pause",
                    "fromStatus": "AT_RISK",
                    "releasedTaskIds": ["0e943653-3f9e-4a1d-8788-f74ce049c91c"],
                }
            ]
        }
    )

    caller: CallerOut
    action: CallerAction
    from_status: str
    released_task_ids: list[uuid.UUID]


class PerformanceOut(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b",
                    "callerId": "7b3f6a2e-1c4d-4e8f-9a0b-2c3d4e5f6a7b",
                    "computedAt": "2026-12-06T14:00:00Z",
                    "rolling60MinuteDials": 24,
                    "rolling60MinuteConnections": 7,
                    "shortCallsLastHour": 1,
                    "timezoneMismatchesLastHour": 0,
                    "allocationStatus": "ACTIVE",
                    "performanceScore": 0.82,
                }
            ]
        }
    )

    id: uuid.UUID
    caller_id: uuid.UUID
    computed_at: datetime
    rolling_60_minute_dials: int
    rolling_60_minute_connections: int
    short_calls_last_hour: int
    timezone_mismatches_last_hour: int
    allocation_status: str
    performance_score: float


# Sign-up


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
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "expertId": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
                    "signedUpAt": "2026-11-28T10:30:00Z",
                    "alreadySignedUp": False,
                    "convertedLeads": 1,
                    "cancelledTaskIds": ["0e943653-3f9e-4a1d-8788-f74ce049c91c"],
                }
            ]
        }
    )

    expert_id: uuid.UUID
    signed_up_at: datetime
    already_signed_up: bool = Field(description="True when nothing changed (a replay)")
    converted_leads: int
    cancelled_task_ids: list[uuid.UUID]
