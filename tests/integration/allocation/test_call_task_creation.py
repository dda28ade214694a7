"""Call tasks from the sourcing pipeline (issue 13): an expert with a dialable phone gets one
PENDING initial task per project, from each trigger; projects' priority and status move their
tasks; phones are E.164, so Yay's dialled number finds the task without ``metadata.taskId``.

Producers are called as the agents call them (their outbox rows are then handed to the
allocation handler, as the broker would); the gateway shares the test's transaction.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation import service as allocation
from sourcing.allocation.handlers import ACTOR, AllocationHandlers
from sourcing.calls.handlers import CallHandlers
from sourcing.common.db import SessionStatements
from sourcing.common.events import Envelope
from sourcing.common.messages.allocation import (
    CallTaskRequested,
    CallTaskTrigger,
    ProjectChanged,
)
from sourcing.common.messages.calls import YayCallEventReceived
from sourcing.common.messages.enrichment import RankingRequested
from sourcing.common.models import (
    CallLog,
    CallTask,
    Expert,
    ExpertContact,
    Lead,
    OutboxMessage,
    Project,
    SystemEvent,
)
from sourcing.common.models.enums import ContactType, SuppressedContactKind, SuppressionReason
from sourcing.enrichment.service import handle_ranking_requested
from sourcing.ingestion.handlers import handle_lead_received
from sourcing.people.suppression import suppress_contact
from tests.factories import (
    create_call_task,
    create_caller,
    create_expert,
    create_expert_contact,
    create_lead,
    create_project,
    create_ranking_snapshot,
    create_sales_nav_search,
    create_suppression,
)
from tests.factories_calls import NOW, MutableClock, count_events
from tests.factories_sourcing import envelope_of, lead_received, sales_nav_lead
from tests.fixtures.settings import Settings
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

LANE = "call-allocation"
Headers = Callable[..., dict[str, str]]


@pytest.fixture
def handlers(database_settings: Settings, clock: MutableClock) -> AllocationHandlers:
    return AllocationHandlers(database_settings, clock=clock)


async def staged(session: AsyncSession, message_type: str) -> list[tuple[OutboxMessage, Envelope]]:
    """The outbox rows of the call-allocation lane of ``message_type``, in publish order."""
    rows = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == LANE).order_by(OutboxMessage.seq)
        )
    ).all()
    messages = [(row, Envelope.model_validate(row.envelope)) for row in rows]
    return [(row, env) for row, env in messages if env.type == message_type]


async def call_task_requests(session: AsyncSession) -> list[tuple[OutboxMessage, Envelope]]:
    return await staged(session, CallTaskRequested.message_type)


async def deliver(session: AsyncSession, handlers: AllocationHandlers) -> list[Envelope]:
    """Hand the staged call-task requests to the allocation handler (once each), as the
    broker would; returns them."""
    delivered = []
    for row, envelope in await call_task_requests(session):
        payload = CallTaskRequested.model_validate(envelope.payload)
        await handlers.handle_call_task_requested(session, envelope, payload)
        await session.delete(row)
        delivered.append(envelope)
    await session.flush()
    return delivered


async def deliver_project_changes(session: AsyncSession, handlers: AllocationHandlers) -> None:
    """Hand the ``project.changed.v1`` a project PATCH staged to the allocation handler, as
    the broker would."""
    for row, envelope in await staged(session, ProjectChanged.message_type):
        payload = ProjectChanged.model_validate(envelope.payload)
        await handlers.handle_project_changed(session, envelope, payload)
        await session.delete(row)
    await session.flush()


async def tasks_of(session: AsyncSession, expert_id: uuid.UUID) -> list[CallTask]:
    result = await session.scalars(
        select(CallTask)
        .where(CallTask.expert_id == expert_id)
        .order_by(CallTask.created_at)
        .execution_options(populate_existing=True)
    )
    return list(result)


async def callable_expert(
    session: AsyncSession,
    project: Project,
    *,
    phone: str = "+14155550100",
    lead_status: str = "ENRICHED",
    **expert_fields: Any,
) -> tuple[Expert, Lead]:
    """An expert of ``project`` (a lead) with a dialable E.164 phone."""
    expert = await create_expert(session, **expert_fields)
    lead = await create_lead(session, project=project, expert=expert, status=lead_status)
    await create_expert_contact(
        session,
        expert=expert,
        type=ContactType.PHONE.value,
        value=phone,
        value_normalized=phone,
        is_dialable=True,
        is_professional=None,
    )
    return expert, lead


def request(
    project: Project, expert: Expert, trigger: CallTaskTrigger = CallTaskTrigger.RANKING
) -> tuple[Envelope, CallTaskRequested]:
    payload = CallTaskRequested(project_id=project.id, expert_id=expert.id, trigger=trigger)
    return envelope_of(payload), payload


MANUAL = SuppressionReason.MANUAL
OPT_OUT = SuppressionReason.OPT_OUT


async def test_a_bounced_email_does_not_stop_the_person(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    """A hard bounce names a dead address, not an objection: the expert is still called."""
    project = await create_project(session)
    expert, _ = await callable_expert(session, project, primary_email="old@acme.example")
    await suppress_contact(
        session,
        SuppressedContactKind.EMAIL,
        "old@acme.example",
        reason=SuppressionReason.BOUNCED,
        actor="channel",
    )
    envelope, payload = request(project, expert)
    await handlers.handle_call_task_requested(session, envelope, payload)
    assert len(await tasks_of(session, expert.id)) == 1


# --- triggers -------------------------------------------------------------------------------


async def test_a_sales_nav_lead_with_a_national_phone_gets_one_pending_task(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    project = await create_project(session, priority=7)
    search = await create_sales_nav_search(session, project=project)
    lead = sales_nav_lead(phone="(415) 555-0100", countryIso="US")
    message = lead_received(project.id, search.id, lead)

    await handle_lead_received(session, envelope_of(message), message)

    [(row, _)] = await call_task_requests(session)
    expert = await session.scalar(select(Expert).join(Lead).where(Lead.project_id == project.id))
    assert expert is not None
    assert row.key == str(expert.id)
    phone = await session.scalar(
        select(ExpertContact).where(
            ExpertContact.expert_id == expert.id, ExpertContact.type == ContactType.PHONE.value
        )
    )
    assert phone is not None
    assert (phone.value, phone.value_normalized, phone.is_dialable) == (
        "(415) 555-0100",
        "+14155550100",
        True,
    )

    [envelope] = await deliver(session, handlers)
    assert envelope.payload["trigger"] == "sales-nav-lead"
    [task] = await tasks_of(session, expert.id)
    assert (task.status, task.kind, task.priority, task.phone_number, task.region_iso) == (
        "PENDING",
        "INITIAL",
        7,
        "+14155550100",
        "US",
    )
    assert task.ranking_score == 0.0  # not ranked yet; ranking will refresh it
    event = await session.scalar(select(SystemEvent).where(SystemEvent.entity_id == task.id))
    assert event is not None and (event.type, event.actor) == ("call_task.created", ACTOR)
    assert event.data == {
        "projectId": str(project.id),
        "expertId": str(expert.id),
        "leadId": str(task.lead_id),
        "trigger": "sales-nav-lead",
        "kind": "INITIAL",
    }
    assert task.lead_id is not None and task.requeue_count == 0


async def test_the_ranking_of_an_enrichment_result_creates_the_task_with_its_score(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    project = await create_project(session, priority=3, geography_iso_codes=["US"])
    expert, lead = await callable_expert(session, project, language_codes=["EN", "fr"])
    ranking = RankingRequested(project_id=project.id, expert_id=expert.id)

    await handle_ranking_requested(session, envelope_of(ranking), ranking)
    await deliver(session, handlers)

    [task] = await tasks_of(session, expert.id)
    await session.refresh(lead)
    assert lead.ranking_score is not None and lead.ranking_score > 0
    assert (task.status, task.priority, task.ranking_score) == ("PENDING", 3, lead.ranking_score)
    assert (task.lead_id, task.language_code, task.phone_number) == (lead.id, "en", "+14155550100")


async def test_an_operator_adding_a_phone_creates_the_task_in_each_project(
    gateway: Gateway,
    session: AsyncSession,
    handlers: AllocationHandlers,
    auth_headers: Headers,
) -> None:
    first, second = await create_project(session), await create_project(session)
    expert = await create_expert(session, country_iso="GB", timezone="Europe/London")
    await create_lead(session, project=first, expert=expert, status="ENRICHED")
    await create_lead(session, project=second, expert=expert, status="ENRICHMENT_FAILED")
    url = f"/api/v1/experts/{expert.id}/contacts"

    response = await gateway.client.post(
        url,
        json={"type": "PHONE", "value": "020 7946 0958", "isPrimary": True},
        headers=auth_headers("ops"),
    )

    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["value"], body["valueNormalized"], body["isDialable"], body["isPrimary"]) == (
        "020 7946 0958",
        "+442079460958",
        True,
        True,
    )
    assert body["source"] == "MANUAL"
    delivered = await deliver(session, handlers)
    assert {env.payload["trigger"] for env in delivered} == {"operator-contact"}
    tasks = await tasks_of(session, expert.id)
    assert sorted(str(t.project_id) for t in tasks) == sorted([str(first.id), str(second.id)])
    assert {(t.status, t.phone_number, t.region_iso) for t in tasks} == {
        ("PENDING", "+442079460958", "GB")
    }

    again = await gateway.client.post(
        url, json={"type": "PHONE", "value": "+44 20 7946 0958"}, headers=auth_headers("admin")
    )
    assert again.status_code == 201 and again.json()["id"] == body["id"]
    await deliver(session, handlers)
    assert len(await tasks_of(session, expert.id)) == 2  # nothing new


async def test_an_unreadable_phone_is_kept_flagged_and_never_dialled(
    gateway: Gateway,
    session: AsyncSession,
    handlers: AllocationHandlers,
    auth_headers: Headers,
) -> None:
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    message = lead_received(project.id, search.id, sales_nav_lead(phone="ext. 12", countryIso="US"))
    await handle_lead_received(session, envelope_of(message), message)
    assert await call_task_requests(session) == []
    expert = await session.scalar(select(Expert).join(Lead).where(Lead.project_id == project.id))
    assert expert is not None

    response = await gateway.client.post(
        f"/api/v1/experts/{expert.id}/contacts",
        json={"type": "PHONE", "value": "555-0100"},  # too short for a US number
        headers=auth_headers("ops"),
    )
    assert response.status_code == 201, response.text
    assert (response.json()["valueNormalized"], response.json()["isDialable"]) == (
        "555-0100",
        False,
    )
    assert await call_task_requests(session) == []

    # Even asked explicitly (a later ranking), an expert with unreadable phones gets no task.
    envelope, payload = request(project, expert)
    await handlers.handle_call_task_requested(session, envelope, payload)
    assert await tasks_of(session, expert.id) == []
    phones = (
        await session.scalars(
            select(ExpertContact.value).where(
                ExpertContact.expert_id == expert.id, ExpertContact.is_dialable.is_(False)
            )
        )
    ).all()
    assert sorted(phones) == ["555-0100", "ext. 12"]


async def test_adding_a_contact_refuses_bad_input(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers
) -> None:
    expert = await create_expert(session)
    url = f"/api/v1/experts/{expert.id}/contacts"
    for body in ({"type": "EMAIL", "value": "a@b.com"}, {"type": "PHONE", "value": ""}, {}):
        response = await gateway.client.post(url, json=body, headers=auth_headers("ops"))
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_payload"
    missing = await gateway.client.post(
        f"/api/v1/experts/{uuid.uuid4()}/contacts",
        json={"type": "PHONE", "value": "+14155550100"},
        headers=auth_headers("ops"),
    )
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "not_found"


# --- idempotence and who gets no task -------------------------------------------------------


async def test_replaying_a_request_creates_nothing_new(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    project = await create_project(session)
    expert, _ = await callable_expert(session, project)
    envelope, payload = request(project, expert)

    for _ in range(3):
        await handlers.handle_call_task_requested(session, envelope, payload)
    [task] = await tasks_of(session, expert.id)
    assert await count_events(session, "call_task.created", entity_id=task.id) == 1

    # Done with: a late replay does not start the expert over.
    task.status = "COMPLETED"
    task.outcome = "RETRYABLE_REJECTION"
    await session.flush()
    await handlers.handle_call_task_requested(session, envelope, payload)
    assert len(await tasks_of(session, expert.id)) == 1


async def test_the_open_task_index_is_the_last_guard(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    """An open task of the expert in the project (a retry, say) wins: no second open task."""
    project = await create_project(session)
    expert, _ = await callable_expert(session, project)
    retry = await create_call_task(session, project=project, expert=expert, kind="RETRY")
    envelope, payload = request(project, expert)
    await handlers.handle_call_task_requested(session, envelope, payload)
    assert [t.id for t in await tasks_of(session, expert.id)] == [retry.id]


@pytest.mark.parametrize(
    "case",
    [
        "suppressed",
        "never-contact-again",
        "opted-out",
        "converted",
        "signed-up",
        "disqualified",
        "linkedin-url-suppressed",
        "email-opted-out",
        "only-phone-suppressed",
    ],
)
async def test_no_task_for_experts_who_may_not_be_called(
    session: AsyncSession, handlers: AllocationHandlers, case: str
) -> None:
    project = await create_project(session)
    lead_status = {"converted": "CONVERTED", "disqualified": "DISQUALIFIED"}.get(case, "ENRICHED")
    expert, _ = await callable_expert(session, project, lead_status=lead_status)
    if case == "suppressed":
        expert.suppressed_at = NOW
    elif case == "never-contact-again":
        await create_suppression(session, expert=expert)
    elif case == "opted-out":
        await create_suppression(session, expert=expert, reason=SuppressionReason.OPT_OUT.value)
        expert.suppressed_at = None  # the suppression row alone is enough
    elif case == "signed-up":
        expert.signed_up_at = NOW
    elif case == "linkedin-url-suppressed":
        url = expert.linkedin_url_normalized
        assert url is not None
        await suppress_contact(
            session, SuppressedContactKind.LINKEDIN_URL, url, reason=MANUAL, actor="ops"
        )
    elif case == "email-opted-out":
        expert.primary_email = "dana.doe@acme.example"
        await suppress_contact(
            session, SuppressedContactKind.EMAIL, "dana.doe@acme.example", reason=OPT_OUT, actor="t"
        )
    elif case == "only-phone-suppressed":
        await suppress_contact(
            session, SuppressedContactKind.PHONE, "+14155550100", reason=MANUAL, actor="ops"
        )
    await session.flush()

    envelope, payload = request(project, expert)
    await handlers.handle_call_task_requested(session, envelope, payload)
    assert await tasks_of(session, expert.id) == []


@pytest.mark.parametrize("status", ["COMPLETED", "ARCHIVED"])
async def test_no_task_in_a_closed_project(
    session: AsyncSession, handlers: AllocationHandlers, status: str
) -> None:
    project = await create_project(session, status=status)
    expert, _ = await callable_expert(session, project)
    envelope, payload = request(project, expert)
    await handlers.handle_call_task_requested(session, envelope, payload)
    assert await tasks_of(session, expert.id) == []


# --- ranking and project changes ------------------------------------------------------------


async def test_pending_tasks_take_the_new_ranking_score(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    project = await create_project(session)
    expert, _ = await callable_expert(session, project)
    assigned_elsewhere = await create_call_task(
        session, expert=expert, status="ASSIGNED", ranking_score=0.1
    )
    await create_ranking_snapshot(
        session, project=project, expert=expert, score=0.2, computed_at=NOW
    )
    envelope, payload = request(project, expert)
    await handlers.handle_call_task_requested(session, envelope, payload)
    [task] = [t for t in await tasks_of(session, expert.id) if t.project_id == project.id]
    assert task.ranking_score == 0.2

    await create_ranking_snapshot(
        session, project=project, expert=expert, score=0.9, computed_at=NOW + timedelta(minutes=1)
    )
    await handlers.handle_call_task_requested(session, envelope, payload)
    tasks = await tasks_of(session, expert.id)
    assert len(tasks) == 2
    assert {t.id: t.ranking_score for t in tasks} == {task.id: 0.9, assigned_elsewhere.id: 0.1}


async def test_a_priority_change_reorders_the_projects_pending_tasks(
    gateway: Gateway,
    session: AsyncSession,
    handlers: AllocationHandlers,
    auth_headers: Headers,
    caller_headers: Headers,
) -> None:
    low = await create_project(session, priority=1)
    high = await create_project(session, priority=5)
    low_expert, _ = await callable_expert(session, low, phone="+14155550101")
    high_expert, _ = await callable_expert(session, high, phone="+14155550102")
    for project, expert in ((low, low_expert), (high, high_expert)):
        envelope, payload = request(project, expert)
        await handlers.handle_call_task_requested(session, envelope, payload)

    response = await gateway.client.patch(
        f"/api/v1/projects/{low.id}", json={"priority": 9}, headers=auth_headers("ops")
    )
    assert response.status_code == 200, response.text
    await deliver_project_changes(session, handlers)

    [low_task] = await tasks_of(session, low_expert.id)
    [high_task] = await tasks_of(session, high_expert.id)
    assert (low_task.priority, high_task.priority) == (9, 5)
    caller = await create_caller(session)
    current = await gateway.client.get("/api/v1/call-tasks/current", headers=caller_headers(caller))
    assert current.json()["task"]["id"] == str(low_task.id)


async def test_a_paused_project_gets_no_task_and_hands_none_out_until_it_resumes(
    gateway: Gateway,
    session: AsyncSession,
    handlers: AllocationHandlers,
    auth_headers: Headers,
    caller_headers: Headers,
) -> None:
    project = await create_project(session)
    earlier, _ = await callable_expert(session, project)
    await handlers.handle_call_task_requested(session, *request(project, earlier))
    [waiting] = await tasks_of(session, earlier.id)
    paused = await gateway.client.patch(
        f"/api/v1/projects/{project.id}", json={"status": "PAUSED"}, headers=auth_headers("ops")
    )
    assert paused.status_code == 200, paused.text
    await deliver_project_changes(session, handlers)
    # While paused: a request (ranking, an operator's phone, a lead's) creates no task, and
    # the task created before the pause is not handed out.
    expert, _ = await callable_expert(session, project, phone="+14155550101")
    for trigger in (CallTaskTrigger.RANKING, CallTaskTrigger.OPERATOR_CONTACT):
        await handlers.handle_call_task_requested(session, *request(project, expert, trigger))
    assert await tasks_of(session, expert.id) == []
    caller = await create_caller(session)
    current = await gateway.client.get("/api/v1/call-tasks/current", headers=caller_headers(caller))
    assert current.status_code == 200, current.text
    assert current.json()["task"] is None and current.json()["reason"] == "NO_AVAILABLE_TASKS"

    resumed = await gateway.client.patch(
        f"/api/v1/projects/{project.id}", json={"status": "ACTIVE"}, headers=auth_headers("ops")
    )
    assert resumed.status_code == 200, resumed.text
    [(_, staged_change)] = await staged(session, ProjectChanged.message_type)
    await deliver_project_changes(session, handlers)
    for _ in range(2):  # redelivered, the change creates nothing more
        [held_back] = await tasks_of(session, expert.id)
        assert (held_back.status, held_back.kind) == ("PENDING", "INITIAL")
        assert await tasks_of(session, earlier.id) == [waiting]
        change = ProjectChanged.model_validate(staged_change.payload)
        await handlers.handle_project_changed(session, staged_change, change)
    created = await session.scalar(
        select(SystemEvent).where(
            SystemEvent.type == "call_task.created", SystemEvent.entity_id == held_back.id
        )
    )
    assert created is not None and created.data["trigger"] == "project-resumed"
    active = await gateway.client.get("/api/v1/call-tasks/current", headers=caller_headers(caller))
    assert active.json()["task"]["id"] in {str(waiting.id), str(held_back.id)}


@pytest.mark.parametrize("status", ["COMPLETED", "ARCHIVED"])
async def test_completing_or_archiving_a_project_cancels_its_open_tasks(
    gateway: Gateway,
    session: AsyncSession,
    handlers: AllocationHandlers,
    auth_headers: Headers,
    status: str,
) -> None:
    project = await create_project(session)
    other = await create_project(session)
    pending = await create_call_task(session, project=project)
    assigned = await create_call_task(session, project=project, status="ASSIGNED")
    done = await create_call_task(session, project=project, status="COMPLETED")
    elsewhere = await create_call_task(session, project=other)

    response = await gateway.client.patch(
        f"/api/v1/projects/{project.id}", json={"status": status}, headers=auth_headers("ops")
    )

    assert response.status_code == 200, response.text
    await deliver_project_changes(session, handlers)
    for task in (pending, assigned, done, elsewhere):
        await session.refresh(task)
    assert (pending.status, assigned.status, done.status, elsewhere.status) == (
        "CANCELLED",
        "CANCELLED",
        "COMPLETED",
        "PENDING",
    )
    assert assigned.caller_id is None
    assert pending.status_reason == f"project {status}"
    events = (
        await session.scalars(
            select(SystemEvent)
            .where(SystemEvent.type == "call_task.cancelled")
            .where(SystemEvent.entity_id.in_([pending.id, assigned.id]))
        )
    ).all()
    assert {(e.entity_id, e.data["from"], e.actor) for e in events} == {
        (pending.id, "PENDING", "ops:user-1"),
        (assigned.id, "ASSIGNED", "ops:user-1"),
    }


# --- Yay matching on E.164 ------------------------------------------------------------------


async def test_yay_finds_the_task_of_a_national_format_lead_phone_without_a_task_id(
    session: AsyncSession,
    handlers: AllocationHandlers,
    database_settings: Settings,
    clock: MutableClock,
) -> None:
    """The manual's quick flow: a US lead's phone given as ``(415) 555-0100``, Yay reporting
    ``+14155550100`` and no ``metadata.taskId``."""
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    lead = sales_nav_lead(phone="(415) 555-0100", countryIso="US")
    message = lead_received(project.id, search.id, lead)
    await handle_lead_received(session, envelope_of(message), message)
    await deliver(session, handlers)
    caller = await create_caller(session)
    given = await allocation.assign_next_task(
        SessionStatements(session),
        str(caller.id),
        now=clock(),
        settings=database_settings,
        actor="test",
    )
    assert given.task_id is not None

    event = YayCallEventReceived(
        event_id=f"evt-{uuid.uuid4()}",
        event_type="call.started",
        call_id="yay-call-e164",
        agent_email=caller.email,
        signature_timestamp=clock(),
        received_at=clock(),
        body={
            "event": "call.started",
            "callId": "yay-call-e164",
            "occurredAt": clock().isoformat(),
            "agentEmail": caller.email,
            "from": "+442071234567",
            "to": "+14155550100",
            "direction": "outbound",
        },
    )
    calls = CallHandlers(database_settings, clock=clock)
    await calls.handle_yay_event(session, envelope_of(event), event)

    log = await session.scalar(select(CallLog).where(CallLog.yay_call_id == "yay-call-e164"))
    assert log is not None and log.call_task_id == given.task_id
    task = await session.get(CallTask, given.task_id, populate_existing=True)
    assert task is not None and task.status == "DIALING"
