"""Request and response bodies of the outreach context's endpoints (manual §4.7, §4.8)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from pydantic import Field, StringConstraints

from sourcing.common.web import NonEmpty, RequestModel, ResponseModel

MessageBody = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=10_000)
]


class OutreachSendRequest(RequestModel):
    project_id: uuid.UUID
    expert_id: uuid.UUID
    # Any spelling the channel table knows (``EMAIL``, ``e-mail``, ``kakao``, ...).
    channel: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    recipient: NonEmpty
    body: MessageBody
    override_cooldown: bool = False
    subject: Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)] | None = None


class OutreachSendAccepted(ResponseModel):
    accepted: bool = True
    # The OutreachMessage id: the queued delivery job.
    job_id: str


class ScreeningDispatchRequest(RequestModel):
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


class ScreeningDispatchAccepted(ResponseModel):
    accepted: bool = True
    # The OutreachMessage carrying the questions; None when nothing new had to be sent.
    job_id: str | None
    channel: str
    created: int = Field(description="ScreeningResponses created by this dispatch")
    responses: list[ScreeningResponseOut]


class ScreeningAnswerRequest(RequestModel):
    project_id: uuid.UUID
    expert_id: uuid.UUID
    question_id: uuid.UUID
    response_text: MessageBody


class ScreeningAnswerRecorded(ResponseModel):
    response: ScreeningResponseOut
    # The status of the expert's screening as a whole (every row shows it).
    screening_status: str
    required_unanswered: int
