"""Response bodies of the calls context's endpoints: the read side of call logs."""

from __future__ import annotations

import uuid
from datetime import datetime

from pydantic import ConfigDict

from sourcing.common.web import CursorPage, JsonObject, ResponseModel


class CallLogOut(ResponseModel):
    """One Yay call as folded from its events, with the validation's verdict."""

    id: uuid.UUID
    yay_call_id: str
    caller_id: uuid.UUID | None
    call_task_id: uuid.UUID | None
    expert_id: uuid.UUID | None
    direction: str | None
    status: str
    started_at: datetime | None
    ringing_at: datetime | None
    answered_at: datetime | None
    ended_at: datetime | None
    failed_at: datetime | None
    failure_reason: str | None
    duration_seconds: int | None
    talk_seconds: int | None
    recording_url: str | None
    is_short_call: bool
    timezone_mismatch: bool
    fraud_flags: list[JsonObject]
    validated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class CallLogPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "0b7e4c1e-5f0a-4d8e-9a53-2f1c7d9e6a41",
                            "yayCallId": "yay-call-7f3a9c",
                            "callerId": "5d2f8a90-1c3b-4e6f-8a7d-9b0c1d2e3f40",
                            "callTaskId": "8c1d2e3f-4a5b-4c6d-8e7f-9a0b1c2d3e4f",
                            "expertId": "3e4f5a6b-7c8d-4e9f-8a0b-1c2d3e4f5a6b",
                            "direction": "OUTBOUND",
                            "status": "ENDED",
                            "startedAt": "2026-01-15T14:02:11Z",
                            "ringingAt": "2026-01-15T14:02:13Z",
                            "answeredAt": "2026-01-15T14:02:20Z",
                            "endedAt": "2026-01-15T14:02:23Z",
                            "failedAt": None,
                            "failureReason": None,
                            "durationSeconds": 12,
                            "talkSeconds": 3,
                            "recordingUrl": None,
                            "isShortCall": True,
                            "timezoneMismatch": False,
                            "fraudFlags": [
                                {"flag": "SHORT_CALL", "talkSeconds": 3, "thresholdSeconds": 5}
                            ],
                            "validatedAt": "2026-01-15T14:02:24Z",
                            "createdAt": "2026-01-15T14:02:11Z",
                            "updatedAt": "2026-01-15T14:02:24Z",
                        }
                    ],
                    "nextCursor": "MjAyNi0xMi0wNlQxMDowMDowMCswMDowMHw0ZjJhOWMxZQ",
                }
            ]
        }
    )

    items: list[CallLogOut]
