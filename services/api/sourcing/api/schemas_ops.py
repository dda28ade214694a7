"""Request and response bodies of operations: dead letters, documentation, audit events
(camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import ConfigDict, Field

from sourcing.common.web import CursorPage, RequestModel, ResponseModel


class DeadLetterOut(ResponseModel):
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
    items: list[DeadLetterOut]
    limit: int
    offset: int
    total: int


class ReplayRequest(RequestModel):
    reason: Annotated[str, Field(max_length=2000)] | None = None


class ReplayAccepted(ResponseModel):
    accepted: bool = True
    replay_id: uuid.UUID
    dead_letter_id: uuid.UUID
    # The republished envelope's id: the original id (consumers deduplicate on it).
    envelope_id: str
    topic: str


class DocumentationAccepted(ResponseModel):
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
