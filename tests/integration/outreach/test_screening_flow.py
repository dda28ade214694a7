"""Screening (§4.8): dispatch in display order (idempotent), partial answers, completion,
follow-up after 15 idle minutes (clock injected), escalation after the last reminder, and the
404/400/409 refusals."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope
from sourcing.common.messages.outreach import ScreeningFollowUpRequested
from sourcing.common.models import (
    OutboxMessage,
    OutreachMessage,
    ScreeningReminder,
    ScreeningResponse,
)
from sourcing.outreach.handlers import ScreeningHandlers
from sourcing.outreach.service import responses_due_follow_up
from tests.factories import create_project, create_screening_question
from tests.factories_outreach import create_questions, create_reachable_expert
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]


def _clock(at: datetime) -> Callable[[], datetime]:
    return lambda: at


async def _follow_up(
    session: AsyncSession, settings: Settings, response_id: uuid.UUID, at: datetime
) -> None:
    response = await session.get(ScreeningResponse, response_id)
    assert response is not None
    payload = ScreeningFollowUpRequested(response_id=response_id, expert_id=response.expert_id)
    envelope = Envelope.new(ScreeningFollowUpRequested.message_type, payload)
    await ScreeningHandlers(settings=settings, clock=_clock(at)).follow_up(
        session, envelope, payload
    )


async def _rows(session: AsyncSession, expert_id: uuid.UUID) -> list[ScreeningResponse]:
    stmt = (
        select(ScreeningResponse)
        .where(ScreeningResponse.expert_id == expert_id)
        .execution_options(populate_existing=True)
    )
    return list((await session.execute(stmt)).scalars().all())


async def test_dispatch_answers_follow_up_and_completion(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers, api_settings: Settings
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session, preferred_channel="email")
    questions = await create_questions(session, project=project, required=(True, True, False))
    headers = auth_headers("ops")
    body = {"projectId": str(project.id), "expertId": str(expert.id)}

    dispatched = await api.post("/api/v1/screening/dispatch", headers=headers, json=body)
    assert dispatched.status_code == 202, dispatched.text
    data = dispatched.json()
    assert data["created"] == 3 and data["channel"] == "EMAIL" and data["jobId"]
    assert [r["questionId"] for r in data["responses"]] == [str(q.id) for q in questions]
    assert {r["status"] for r in data["responses"]} == {"PENDING"}
    message = await session.get(OutreachMessage, uuid.UUID(data["jobId"]))
    assert message is not None and message.purpose == "SCREENING"
    assert message.body.index("Question 1?") < message.body.index("Question 2?")
    assert message.body.index("Question 2?") < message.body.index("Question 3?")

    again = await api.post("/api/v1/screening/dispatch", headers=headers, json=body)
    assert again.status_code == 202
    assert again.json()["created"] == 0 and again.json()["jobId"] is None
    assert len(await _rows(session, expert.id)) == 3

    now = datetime.now(UTC)
    assert await responses_due_follow_up(session, now=now, limit=10) == []
    due = await responses_due_follow_up(session, now=now + timedelta(minutes=16), limit=10)
    first = next(r for r in await _rows(session, expert.id) if r.question_id == questions[0].id)
    assert due == [first.id]

    # Reminder 1 at +16 min: recorded, counted on every row, and the clock resets.
    await _follow_up(session, api_settings, first.id, now + timedelta(minutes=16))
    reminders = (await session.execute(select(ScreeningReminder))).scalars().all()
    assert [(r.screening_response_id, r.reminder_number) for r in reminders] == [(first.id, 1)]
    assert {r.reminder_count for r in await _rows(session, expert.id)} == {1}
    assert await responses_due_follow_up(session, now=now + timedelta(minutes=20), limit=10) == []
    # A duplicate follow-up of the same moment changes nothing (touched meanwhile).
    await _follow_up(session, api_settings, first.id, now + timedelta(minutes=17))
    assert len((await session.execute(select(ScreeningReminder))).all()) == 1

    async def answer(question_id: uuid.UUID, text: str) -> dict[str, object]:
        response = await api.post(
            "/api/v1/screening/response",
            headers=headers,
            json={**body, "questionId": str(question_id), "responseText": text},
        )
        assert response.status_code == 200, response.text
        result: dict[str, object] = response.json()
        return result

    partial = await answer(questions[0].id, "8 years")
    assert partial["screeningStatus"] == "IN_PROGRESS" and partial["requiredUnanswered"] == 1
    assert {r.status for r in await _rows(session, expert.id)} == {"IN_PROGRESS"}
    optional = await answer(questions[2].id, "no")
    assert optional["screeningStatus"] == "IN_PROGRESS"
    done = await answer(questions[1].id, "yes")
    assert done["screeningStatus"] == "COMPLETE" and done["requiredUnanswered"] == 0
    rows = await _rows(session, expert.id)
    assert {r.status for r in rows} == {"COMPLETE"}
    assert all(r.response_text for r in rows)
    later = now + timedelta(hours=5)
    assert await responses_due_follow_up(session, now=later, limit=10) == []
    sheet_requests = (
        await session.execute(
            select(OutboxMessage).where(OutboxMessage.topic == "google-sheets-sync")
        )
    ).all()
    assert len(sheet_requests) >= 4  # dispatch + three answers


async def test_escalation_after_max_reminders(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers, api_settings: Settings
) -> None:
    assert api_settings.SCREENING_MAX_REMINDERS == 3
    project = await create_project(session)
    expert = await create_reachable_expert(session, email=None, phone="+14155550100")
    await create_questions(session, project=project, required=(True,))
    dispatched = await api.post(
        "/api/v1/screening/dispatch",
        headers=auth_headers("admin"),
        json={"projectId": str(project.id), "expertId": str(expert.id)},
    )
    assert dispatched.status_code == 202
    assert dispatched.json()["channel"] == "SMS"  # preferred EMAIL unreachable: best contact
    response_id = uuid.UUID(dispatched.json()["responses"][0]["id"])
    at = datetime.now(UTC)
    for number in (1, 2, 3):
        at += timedelta(minutes=16)
        assert await responses_due_follow_up(session, now=at, limit=5) == [response_id]
        await _follow_up(session, api_settings, response_id, at)
        (row,) = await _rows(session, expert.id)
        assert (row.status, row.reminder_count) == ("PENDING", number)
    at += timedelta(minutes=16)
    await _follow_up(session, api_settings, response_id, at)
    (row,) = await _rows(session, expert.id)
    assert row.status == "ESCALATED" and row.escalated_at == at
    assert len((await session.execute(select(ScreeningReminder))).all()) == 3
    reminder_messages = (
        await session.execute(
            select(OutreachMessage).where(OutreachMessage.purpose == "SCREENING_REMINDER")
        )
    ).all()
    assert len(reminder_messages) == 3
    assert await responses_due_follow_up(session, now=at + timedelta(days=1), limit=5) == []


async def test_screening_refusals(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    other = await create_project(session)
    expert = await create_reachable_expert(session)
    (question,) = await create_questions(session, project=project, required=(True,))
    foreign = await create_screening_question(session, project=other)
    headers = auth_headers("ops")
    base = {"projectId": str(project.id), "expertId": str(expert.id)}

    async def post(path: str, body: dict[str, str]) -> httpx.Response:
        return await api.post(f"/api/v1/screening/{path}", headers=headers, json=body)

    answer = {**base, "questionId": str(question.id), "responseText": "x"}
    not_dispatched = await post("response", answer)
    assert not_dispatched.status_code == 409
    assert not_dispatched.json()["error"]["code"] == "screening_not_dispatched"
    assert (await post("dispatch", {**base, "projectId": str(uuid.uuid4())})).status_code == 404
    assert (await post("dispatch", {**base, "expertId": str(uuid.uuid4())})).status_code == 404
    empty = await post("dispatch", {**base, "projectId": str(other.id)})
    assert empty.status_code == 202  # other has a question
    assert (await post("response", {**answer, "questionId": str(uuid.uuid4())})).status_code == 404
    assert (await post("response", {**answer, "expertId": str(uuid.uuid4())})).status_code == 404
    assert (await post("response", {**answer, "projectId": str(uuid.uuid4())})).status_code == 404
    wrong = await post("response", {**answer, "questionId": str(foreign.id)})
    assert wrong.status_code == 400 and wrong.json()["error"]["code"] == "invalid_payload"
    no_questions = await create_project(session)
    none = await post("dispatch", {**base, "projectId": str(no_questions.id)})
    assert none.status_code == 409
    assert none.json()["error"]["code"] == "no_screening_questions"
    caller = await api.post("/api/v1/screening/dispatch", headers=auth_headers("caller"), json=base)
    assert caller.status_code == 403
