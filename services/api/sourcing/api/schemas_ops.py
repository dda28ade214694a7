"""Request and response bodies of operations: dead letters and documentation (camelCase)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field

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
