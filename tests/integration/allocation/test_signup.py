"""Sign-up closes the loop: the webhook's consumer and the ops endpoint write ``signed_up_at``,
convert the expert's leads, cancel their signup chases and stop new ones; replays change
nothing."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.allocation.app import build_app
from sourcing.allocation.handlers import AllocationHandlers
from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.kafka.outbox import add_to_outbox
from sourcing.common.messages.allocation import ExpertSignedUp
from sourcing.common.models import CallTask, Expert, Lead, SystemEvent
from tests.factories import (
    create_call_task,
    create_caller,
    create_expert,
    create_lead,
    create_project,
)
from tests.factories_calls import NOW
from tests.fixtures.kafka import AppFactory, running_app, wait_until
from tests.fixtures.settings import Settings
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

Headers = Callable[..., dict[str, str]]
SIGNED_UP_AT = NOW - timedelta(hours=2)


@pytest.fixture
def handlers(database_settings: Settings) -> AllocationHandlers:
    return AllocationHandlers(database_settings, clock=lambda: NOW)


async def _expert_with_leads_and_chases(session: AsyncSession) -> tuple[Expert, dict[str, Lead]]:
    expert = await create_expert(session, primary_email=f"jane-{uuid.uuid4().hex[:8]}@example.com")
    leads = {
        status: await create_lead(session, expert=expert, status=status)
        for status in ("ENRICHED", "CONTACTED", "REPLIED", "ENRICHING", "DISQUALIFIED")
    }
    await create_call_task(session, expert=expert, kind="SIGNUP_CHASE", status="PENDING")
    await create_call_task(session, expert=expert, kind="SIGNUP_CHASE", status="ASSIGNED")
    await create_call_task(session, expert=expert, kind="RETRY", status="PENDING")
    return expert, leads


async def _statuses(session: AsyncSession, expert: Expert) -> dict[str, str]:
    rows = await session.execute(
        select(CallTask.kind, CallTask.status)
        .where(CallTask.expert_id == expert.id)
        .execution_options(populate_existing=True)
    )
    return {f"{kind}:{status}": status for kind, status in rows.all()}


async def _assert_signed_up(session: AsyncSession, expert: Expert, leads: dict[str, Lead]) -> None:
    await session.refresh(expert)
    assert expert.signed_up_at == SIGNED_UP_AT
    for before, lead in leads.items():
        await session.refresh(lead)
        expected = "CONVERTED" if before in ("ENRICHED", "CONTACTED", "REPLIED") else before
        assert lead.status == expected, before
    tasks = (
        await session.execute(
            select(CallTask.kind, CallTask.status).where(CallTask.expert_id == expert.id)
        )
    ).all()
    assert sorted(tasks) == [
        ("RETRY", "PENDING"),
        ("SIGNUP_CHASE", "CANCELLED"),
        ("SIGNUP_CHASE", "CANCELLED"),
    ]


async def _signed_up_events(session: AsyncSession, expert: Expert) -> list[SystemEvent]:
    rows = await session.scalars(
        select(SystemEvent).where(
            SystemEvent.type == "expert.signed_up", SystemEvent.entity_id == expert.id
        )
    )
    return list(rows.all())


def _message(**fields: object) -> tuple[Envelope, ExpertSignedUp]:
    payload = ExpertSignedUp.model_validate(
        {"eventId": "signup-1", "signedUpAt": SIGNED_UP_AT, "receivedAt": NOW, **fields}
    )
    return Envelope.new(ExpertSignedUp.message_type, payload), payload


async def test_the_webhook_consumer_closes_the_loop_once(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    expert, leads = await _expert_with_leads_and_chases(session)
    envelope, payload = _message(expertId=str(expert.id))
    await handlers.handle_expert_signed_up(session, envelope, payload)
    await _assert_signed_up(session, expert, leads)
    events = await _signed_up_events(session, expert)
    assert len(events) == 1
    assert events[0].actor == "signup-webhook"
    assert len(events[0].data["convertedLeadIds"]) == 3
    assert len(events[0].data["cancelledTaskIds"]) == 2

    later, replay = _message(expertId=str(expert.id), signedUpAt=NOW)
    await handlers.handle_expert_signed_up(session, later, replay)
    await _assert_signed_up(session, expert, leads)  # the first sign-up time stays
    assert len(await _signed_up_events(session, expert)) == 1


async def test_the_webhook_consumer_matches_by_email(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    expert, leads = await _expert_with_leads_and_chases(session)
    assert expert.primary_email is not None
    envelope, payload = _message(email=expert.primary_email.upper())
    await handlers.handle_expert_signed_up(session, envelope, payload)
    await _assert_signed_up(session, expert, leads)


async def test_an_unknown_expert_is_stored_and_ignored(
    session: AsyncSession, handlers: AllocationHandlers
) -> None:
    envelope, payload = _message(email="nobody@example.com")
    await handlers.handle_expert_signed_up(session, envelope, payload)
    stored = await session.scalar(
        select(SystemEvent).where(SystemEvent.type == "expert.signup_unmatched")
    )
    assert stored is not None and stored.data["email"] == "nobody@example.com"


async def test_the_ops_endpoint_records_the_signup_idempotently(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers
) -> None:
    expert, leads = await _expert_with_leads_and_chases(session)
    url = f"/api/v1/experts/{expert.id}/signup"
    body = {"signedUpAt": SIGNED_UP_AT.isoformat(), "note": "confirmed by phone"}
    response = await gateway.client.post(url, json=body, headers=auth_headers("ops", "ops-7"))
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["alreadySignedUp"] is False
    assert answer["convertedLeads"] == 3 and len(answer["cancelledTaskIds"]) == 2
    await _assert_signed_up(session, expert, leads)
    events = await _signed_up_events(session, expert)
    assert len(events) == 1 and events[0].actor == "ops:ops-7"
    assert events[0].data["note"] == "confirmed by phone"

    again = await gateway.client.post(url, headers=auth_headers("admin"))
    assert again.status_code == 200, again.text
    assert again.json()["alreadySignedUp"] is True
    assert again.json()["signedUpAt"] == answer["signedUpAt"]
    assert len(await _signed_up_events(session, expert)) == 1

    detail = await gateway.client.get(f"/api/v1/experts/{expert.id}", headers=auth_headers("ops"))
    assert detail.json()["signedUpAt"] == answer["signedUpAt"]


async def test_the_ops_endpoint_refuses_unknown_experts_and_bad_bodies(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers
) -> None:
    missing = await gateway.client.post(
        f"/api/v1/experts/{uuid.uuid4()}/signup", headers=auth_headers("ops")
    )
    assert missing.status_code == 404
    expert = await create_expert(session)
    bad = await gateway.client.post(
        f"/api/v1/experts/{expert.id}/signup",
        json={"signedUpAt": "soon"},
        headers=auth_headers("ops"),
    )
    assert bad.status_code == 400
    caller = await gateway.client.post(
        f"/api/v1/experts/{expert.id}/signup", headers=auth_headers("caller")
    )
    assert caller.status_code == 403


async def test_a_signed_up_expert_gets_no_new_chase(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers, caller_headers: Headers
) -> None:
    project = await create_project(session)
    expert = await create_expert(session)
    caller = await create_caller(session)
    task = await create_call_task(
        session, project=project, expert=expert, caller=caller, status="DIALING"
    )
    signup = await gateway.client.post(
        f"/api/v1/experts/{expert.id}/signup", headers=auth_headers("admin")
    )
    assert signup.status_code == 200
    response = await gateway.client.post(
        f"/api/v1/call-tasks/{task.id}/outcome",
        json={"outcome": "INTERESTED_SIGNUP_LINK_SENT"},
        headers=caller_headers(caller),
    )
    assert response.status_code == 200, response.text
    assert response.json()["followUpTaskId"] is None
    assert response.json()["followUpSkipped"] == "the expert already signed up"
    chases = await session.scalar(
        select(func.count())
        .select_from(CallTask)
        .where(CallTask.expert_id == expert.id, CallTask.kind == "SIGNUP_CHASE")
    )
    assert chases == 0


async def test_the_allocation_service_consumes_signups_from_kafka(
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    kafka_app_factory: AppFactory,
) -> None:
    async with session_scope(kafka_sessionmaker) as session:
        expert = await create_expert(session)
        lead = await create_lead(session, expert=expert, status="ENRICHED")
        envelope, _ = _message(expertId=str(expert.id))
        unknown, _ = _message(eventId="signup-unknown", expertId=str(uuid.uuid4()))
        # The webhook's replay carries the same envelope id: sent twice, applied once.
        for message in (unknown, envelope, envelope):
            await add_to_outbox(session, "call-allocation", message, key=str(expert.id))
    app = build_app(
        kafka_settings,
        clock=lambda: NOW,
        web_enabled=False,
        sessionmaker=kafka_sessionmaker,
        datadir=None,
    )
    del kafka_app_factory  # the app is built by the service's own factory

    async def converted() -> bool:
        async with session_scope(kafka_sessionmaker) as session:
            row = await session.get(Lead, lead.id, populate_existing=True)
            return row is not None and row.status == "CONVERTED"

    async with running_app(app):
        await wait_until(converted, timeout=60, message="lead converted by the sign-up consumer")
    async with session_scope(kafka_sessionmaker) as session:
        fresh = await session.get(Expert, expert.id)
        assert fresh is not None and fresh.signed_up_at == SIGNED_UP_AT
        assert len(await _signed_up_events(session, expert)) == 1
        unmatched = await session.scalar(
            select(func.count())
            .select_from(SystemEvent)
            .where(SystemEvent.type == "expert.signup_unmatched")
        )
        assert unmatched == 1
