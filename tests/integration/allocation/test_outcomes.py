"""POST /api/v1/call-tasks/{taskId}/outcome: the three outcomes and their effects."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    CallTask,
    Expert,
    ExpertSuppression,
    Lead,
    OutboxMessage,
    SignupChase,
    SystemEvent,
)
from tests.factories import (
    create_call_task,
    create_caller,
    create_lead,
    create_project,
    create_signup_chase,
)
from tests.factories_calls import NOW, create_pool_task
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

CURRENT = "/api/v1/call-tasks/current"
Headers = Callable[..., dict[str, str]]


def outcome_url(task_id: object) -> str:
    return f"/api/v1/call-tasks/{task_id}/outcome"


async def _assigned(gateway: Gateway, session: AsyncSession, headers: dict[str, str]) -> CallTask:
    body = (await gateway.client.get(CURRENT, headers=headers)).json()
    task = await session.get(CallTask, uuid.UUID(body["task"]["id"]), populate_existing=True)
    assert task is not None and task.status == "ASSIGNED"
    return task


async def _open_tasks(session: AsyncSession, expert_id: uuid.UUID) -> list[CallTask]:
    rows = await session.scalars(
        select(CallTask)
        .where(CallTask.expert_id == expert_id, CallTask.status == "PENDING")
        .execution_options(populate_existing=True)
    )
    return list(rows.all())


async def _audit_and_sync(session: AsyncSession, task: CallTask, outcome: str) -> None:
    event = await session.scalar(
        select(SystemEvent).where(
            SystemEvent.type == "call_task.outcome_recorded", SystemEvent.entity_id == task.id
        )
    )
    assert event is not None and event.data["outcome"] == outcome
    outbox = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "google-sheets-sync")
        )
    ).all()
    # The sheet has one row per expert: the outcome refreshes the expert's row.
    syncs = [row for row in outbox if row.envelope["payload"]["entityId"] == str(task.expert_id)]
    assert len(syncs) == 1
    assert syncs[0].envelope["type"] == "google-sheets-sync.requested.v1"
    assert syncs[0].envelope["payload"] == {
        "projectId": str(task.project_id),
        "entityType": "expert",
        "entityId": str(task.expert_id),
    }
    assert syncs[0].key == str(task.project_id)


async def test_interested_completes_the_task_and_schedules_a_chase_after_24h(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    await create_pool_task(session)
    caller = await create_caller(session)
    headers = caller_headers(caller)
    task = await _assigned(gateway, session, headers)

    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "INTERESTED_SIGNUP_LINK_SENT", "notes": "sent via SMS"},
        headers=headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"]["status"] == "COMPLETED"
    assert body["task"]["outcome"] == "INTERESTED_SIGNUP_LINK_SENT"
    assert body["task"]["outcomeNotes"] == "sent via SMS"
    assert body["followUpSkipped"] is None
    chase = await session.get(CallTask, uuid.UUID(body["followUpTaskId"]))
    assert chase is not None
    assert (chase.status, chase.kind) == ("PENDING", "SIGNUP_CHASE")
    assert chase.available_after == NOW + timedelta(hours=24)
    assert chase.chase_of_task_id == task.id
    row = await session.scalar(
        select(SignupChase).where(SignupChase.chase_call_task_id == chase.id)
    )
    assert row is not None and row.chase_number == 1 and row.chase_date == NOW.date()
    await _audit_and_sync(session, task, "INTERESTED_SIGNUP_LINK_SENT")

    # The chase is not offered before its time, then it is.
    assert (await gateway.client.get(CURRENT, headers=headers)).json()["task"] is None
    gateway.clock.advance(hours=24)
    body = (await gateway.client.get(CURRENT, headers=headers)).json()
    assert body["task"]["id"] == str(chase.id)
    assert body["task"]["kind"] == "SIGNUP_CHASE"


async def test_the_fourth_chase_of_a_day_is_skipped_cleanly(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    task = await create_pool_task(session)
    for number in (1, 2, 3):  # three chases of this expert today, from other projects
        other = await create_call_task(
            session,
            expert_id=task.expert_id,
            status="COMPLETED",
            outcome="INTERESTED_SIGNUP_LINK_SENT",
        )
        done = await create_call_task(
            session, expert_id=task.expert_id, status="COMPLETED", kind="SIGNUP_CHASE"
        )
        await create_signup_chase(
            session,
            source_task=other,
            chase_task=done,
            chase_number=number,
            chase_date=NOW.date(),
        )
    caller = await create_caller(session)
    headers = caller_headers(caller)
    assigned = await _assigned(gateway, session, headers)
    assert assigned.id == task.id

    response = await gateway.client.post(
        outcome_url(task.id), json={"outcome": "INTERESTED_SIGNUP_LINK_SENT"}, headers=headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"]["status"] == "COMPLETED"
    assert body["followUpTaskId"] is None
    assert "limit reached" in body["followUpSkipped"]
    chases = await session.scalar(
        select(func.count())
        .select_from(SignupChase)
        .where(SignupChase.expert_id == task.expert_id, SignupChase.chase_date == NOW.date())
    )
    assert chases == 3
    # The next day the limit starts again.
    next_day = await create_pool_task(session, expert_id=task.expert_id)
    gateway.clock.advance(days=1)
    assert (await _assigned(gateway, session, headers)).id == next_day.id
    response = await gateway.client.post(
        outcome_url(next_day.id), json={"outcome": "INTERESTED_SIGNUP_LINK_SENT"}, headers=headers
    )
    assert response.json()["followUpTaskId"] is not None
    row = await session.scalar(
        select(SignupChase).where(SignupChase.source_call_task_id == next_day.id)
    )
    assert row is not None
    assert (row.chase_date, row.chase_number) == ((NOW + timedelta(days=1)).date(), 1)


async def test_retryable_rejection_returns_the_expert_after_the_cool_off(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    await create_pool_task(session)
    caller = await create_caller(session)
    headers = caller_headers(caller)
    task = await _assigned(gateway, session, headers)

    response = await gateway.client.post(
        outcome_url(task.id), json={"outcome": "RETRYABLE_REJECTION"}, headers=headers
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"]["status"] == "COMPLETED"
    retry = await session.get(CallTask, uuid.UUID(body["followUpTaskId"]))
    assert retry is not None
    assert (retry.status, retry.kind) == ("PENDING", "RETRY")
    assert retry.available_after == NOW + timedelta(seconds=259_200)
    assert body["followUpAvailableAfter"] is not None
    await _audit_and_sync(session, task, "RETRYABLE_REJECTION")

    assert (await gateway.client.get(CURRENT, headers=headers)).json()["task"] is None
    gateway.clock.advance(seconds=259_200)
    gateway.clock.set(gateway.clock.now.replace(hour=15))
    body = (await gateway.client.get(CURRENT, headers=headers)).json()
    assert body["task"]["id"] == str(retry.id)


async def test_never_contact_again_suppresses_the_expert_everywhere(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    project = await create_project(session, priority=9)
    task = await create_pool_task(session, project=project)
    expert = await session.get(Expert, task.expert_id)
    assert expert is not None
    # The same expert in two other projects: one waiting, one held by another caller.
    waiting = await create_call_task(session, expert=expert)
    other_caller = await create_caller(session)
    held = await create_call_task(session, expert=expert, status="ASSIGNED", caller=other_caller)
    lead = await create_lead(session, project=project, expert=expert, status="CONTACTED")
    converted = await create_lead(session, expert=expert, status="CONVERTED")
    caller = await create_caller(session)
    headers = caller_headers(caller)
    assigned = await _assigned(gateway, session, headers)
    assert assigned.id == task.id

    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "NEVER_CONTACT_AGAIN", "notes": "asked to be removed"},
        headers=headers,
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["task"]["status"] == "COMPLETED"
    assert sorted(body["cancelledTaskIds"]) == sorted([str(waiting.id), str(held.id)])
    assert body["disqualifiedLeads"] == 1
    suppression = await session.scalar(
        select(ExpertSuppression).where(ExpertSuppression.expert_id == expert.id)
    )
    assert suppression is not None
    assert (suppression.reason, suppression.source_call_task_id) == ("NEVER_CONTACT_AGAIN", task.id)
    await session.refresh(expert)
    assert expert.suppressed_at == NOW
    for other in (waiting, held):
        await session.refresh(other)
        assert other.status == "CANCELLED"
    assert held.caller_id is None
    await session.refresh(lead)
    await session.refresh(converted)
    assert lead.status == "DISQUALIFIED"
    assert converted.status == "CONVERTED"  # the lead machine has no way out of CONVERTED
    assert await _open_tasks(session, expert.id) == []
    await _audit_and_sync(session, task, "NEVER_CONTACT_AGAIN")

    # Never allocated again, even if a task for the expert appears later.
    late = await create_call_task(session, expert=expert)
    for who in (caller, other_caller, await create_caller(session)):
        body = (await gateway.client.get(CURRENT, headers=caller_headers(who))).json()
        assert body["task"] is None, who.email
    await session.refresh(late)
    assert late.status == "PENDING"


async def test_an_outcome_on_a_dialling_task(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    caller = await create_caller(session)
    task = await create_call_task(session, status="DIALING", caller=caller)
    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "RETRYABLE_REJECTION"},
        headers=caller_headers(caller),
    )
    assert response.status_code == 200, response.text
    assert response.json()["task"]["status"] == "COMPLETED"


@pytest.mark.parametrize("status", ["CANCELLED", "RESTRICTED", "EXPIRED"])
async def test_an_outcome_on_a_finished_task_is_an_invalid_transition(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, status: str
) -> None:
    caller = await create_caller(session)
    task = await create_call_task(session, status=status, caller=caller)
    response = await gateway.client.post(
        outcome_url(task.id),
        json={"outcome": "RETRYABLE_REJECTION"},
        headers=caller_headers(caller),
    )
    assert response.status_code == 409, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"] == {"entity": "call_task", "from": status, "to": "COMPLETED"}


async def test_a_second_outcome_is_refused(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    await create_pool_task(session)
    caller = await create_caller(session)
    headers = caller_headers(caller)
    task = await _assigned(gateway, session, headers)
    first = await gateway.client.post(
        outcome_url(task.id), json={"outcome": "RETRYABLE_REJECTION"}, headers=headers
    )
    assert first.status_code == 200
    second = await gateway.client.post(
        outcome_url(task.id), json={"outcome": "NEVER_CONTACT_AGAIN"}, headers=headers
    )
    assert second.status_code == 409
    assert second.json()["error"]["code"] == "invalid_transition"


async def test_another_callers_task_or_an_unknown_task_is_not_found(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    owner, intruder = await create_caller(session), await create_caller(session)
    task = await create_call_task(session, status="ASSIGNED", caller=owner)
    for task_id in (task.id, uuid.uuid4()):
        response = await gateway.client.post(
            outcome_url(task_id),
            json={"outcome": "NEVER_CONTACT_AGAIN"},
            headers=caller_headers(intruder),
        )
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"
    await session.refresh(task)
    assert task.status == "ASSIGNED"


@pytest.mark.parametrize(
    "body",
    [{}, {"outcome": "MAYBE"}, {"outcome": "RETRYABLE_REJECTION", "extra": 1}],
)
async def test_bad_outcome_bodies_are_400(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, body: dict[str, object]
) -> None:
    caller = await create_caller(session)
    task = await create_call_task(session, status="ASSIGNED", caller=caller)
    response = await gateway.client.post(
        outcome_url(task.id), json=body, headers=caller_headers(caller)
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_staff_may_not_submit_outcomes(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers
) -> None:
    task = await create_call_task(session, status="ASSIGNED")
    response = await gateway.client.post(
        outcome_url(task.id), json={"outcome": "RETRYABLE_REJECTION"}, headers=auth_headers("ops")
    )
    assert response.status_code == 403
    leads = await session.scalar(select(func.count()).select_from(Lead))
    assert leads is not None
