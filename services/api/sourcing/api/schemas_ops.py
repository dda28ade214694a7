"""Request and response bodies of operations: dead letters, documentation, audit events
(camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from sourcing.common.web import CursorPage, RequestModel, ResponseModel

_DEAD_LETTER_EXAMPLE: dict[str, Any] = {
    "id": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
    "originTopic": "enrichment",
    "originPartition": 3,
    "originOffset": 1187,
    "messageKey": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
    "jobId": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f",
    "messageType": "enrichment.requested.v1",
    "consumer": "enrichment",
    "payload": {
        "expertId": "82f38cca-674b-4d12-b072-9bdbcc4081c1",
        "projectId": "2d934d30-c3bc-4e29-b238-62518bbb6442",
    },
    "rawValue": None,
    "headers": {"correlation-id": "c0a8012e-7d4b-4a7e-9f10-3b2a1c0d9e8f"},
    "error": "provider answered 503 five times",
    "errorType": "ProviderUnavailable",
    "stack": None,
    "attempts": 5,
    "correlationId": "c0a8012e-7d4b-4a7e-9f10-3b2a1c0d9e8f",
    "failedAt": "2026-12-06T10:15:00Z",
    "archivedAt": None,
    "replayCount": 0,
    "lastReplayedAt": None,
    "createdAt": "2026-12-06T10:15:00Z",
}


class DeadLetterOut(ResponseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [_DEAD_LETTER_EXAMPLE]})

    id: uuid.UUID
    origin_topic: str
    origin_partition: int
    origin_offset: int
    message_key: str | None
    # The envelope id of the failed message (the manual's "job ID").
    job_id: str | None
    message_type: str | None
    consumer: str | None
    # The full original envelope; null when the bytes were not JSON (then rawValue, base64).
    payload: dict[str, Any] | None
    raw_value: str | None
    headers: dict[str, Any]
    error: str
    error_type: str | None
    stack: str | None
    attempts: int
    correlation_id: str | None
    failed_at: datetime
    archived_at: datetime | None
    replay_count: int
    last_replayed_at: datetime | None
    created_at: datetime


class DeadLetterPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [_DEAD_LETTER_EXAMPLE],
                    "nextCursor": "MjAyNi0xMi0wNlQxMDoxNTowMCswMDowMHw5YThiN2M2ZA",
                    "limit": 1,
                    "offset": 0,
                    "total": 3,
                }
            ]
        }
    )

    items: list[DeadLetterOut]
    limit: int
    offset: int
    total: int


class ReplayRequest(RequestModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"reason": "the enrichment provider is back"}]}
    )

    reason: Annotated[str, Field(max_length=2000)] | None = None


class ReplayAccepted(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "accepted": True,
                    "replayId": "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
                    "deadLetterId": "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d",
                    "envelopeId": "8f9a0b1c-2d3e-4f5a-8b6c-7d8e9f0a1b2c",
                    "topic": "enrichment",
                }
            ]
        }
    )

    accepted: bool = True
    replay_id: uuid.UUID
    dead_letter_id: uuid.UUID
    # The republished envelope's id: the original id (consumers deduplicate on it).
    envelope_id: str
    topic: str


class DocumentationAccepted(ResponseModel):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"accepted": True, "jobId": "c1d2e3f4-a5b6-4c7d-8e9f-0a1b2c3d4e5f"}]
        }
    )

    accepted: bool = True
    job_id: uuid.UUID


class SystemEventOut(ResponseModel):
    id: uuid.UUID
    type: str
    entity_type: str | None
    entity_id: uuid.UUID | None
    actor: str | None
    correlation_id: str | None
    data: dict[str, Any]
    created_at: datetime


class SystemEventPage(CursorPage):
    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "items": [
                        {
                            "id": "5f0c2a52-3f7e-4a53-9a43-0f5b3c1d2e10",
                            "type": "call_task.requeued",
                            "entityType": "call_task",
                            "entityId": "8d1b7e0a-4c1f-4f55-a2f4-2f6f0e4b9c31",
                            "actor": "ops:ops-1",
                            "correlationId": "c0a8012e-7d4b-4a7e-9f10-3b2a1c0d9e8f",
                            "data": {"from": "ASSIGNED", "to": "PENDING", "reason": "stuck"},
                            "createdAt": "2026-12-06T10:15:00Z",
                        }
                    ],
                    "nextCursor": "MjAyNi0xMi0wMVQwOTowMDowMCswMDowMHw3YjNmNmEyZQ",
                }
            ]
        }
    )

    items: list[SystemEventOut]
