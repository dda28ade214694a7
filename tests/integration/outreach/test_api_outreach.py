"""POST /api/v1/outreach/send: roles, 400/404/409, cooldown log, two sends at once, and a send
racing a suppression."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.models import CooldownLog, Expert, Lead, OutboxMessage, OutreachMessage
from sourcing.common.statemachines import LeadStatus
from tests.factories import create_project, create_suppression
from tests.factories_outreach import create_enriched_lead, create_reachable_expert
from tests.fixtures.api import serve_gateway
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]


def _body(project_id: uuid.UUID, expert_id: uuid.UUID, **overrides: Any) -> dict[str, Any]:
    return {
        "projectId": str(project_id),
        "expertId": str(expert_id),
        "channel": "EMAIL",
        "recipient": "dana@example.com",
        "body": "Hi Dana",
        **overrides,
    }


async def test_send_queues_message_thread_lead_and_outbox(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    lead = await create_enriched_lead(session, project=project, expert=expert)
    response = await api.post(
        "/api/v1/outreach/send",
        headers=auth_headers("admin"),
        json=_body(project.id, expert.id, channel="E-Mail", subject="Hello"),
    )
    assert response.status_code == 202, response.text
    job = uuid.UUID(response.json()["jobId"])
    message = await session.get(OutreachMessage, job)
    assert message is not None and message.delivery_status == "QUEUED"
    await session.refresh(lead)
    assert lead.status == LeadStatus.OUTREACH_PENDING.value
    outbox = (
        (await session.execute(select(OutboxMessage).where(OutboxMessage.topic == "outreach")))
        .scalars()
        .all()
    )
    assert [row.envelope["payload"]["messageId"] for row in outbox] == [str(job)]
    assert outbox[0].key == str(expert.id)


async def test_caller_is_forbidden_and_anonymous_unauthorized(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    body = _body(project.id, expert.id)
    assert (await api.post("/api/v1/outreach/send", json=body)).status_code == 401
    caller = await api.post("/api/v1/outreach/send", headers=auth_headers("caller"), json=body)
    assert caller.status_code == 403 and caller.json()["error"]["code"] == "forbidden"
    ops = await api.post("/api/v1/outreach/send", headers=auth_headers("ops"), json=body)
    assert ops.status_code == 202


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"channel": "pigeon"}, "channel"),
        ({"channel": "EMAIL", "recipient": "not-an-email"}, "recipient"),
        ({"channel": "sms", "recipient": "call me maybe"}, "recipient"),
        ({"body": ""}, None),
        ({"unknownField": 1}, None),
    ],
)
async def test_bad_payloads_are_400(
    api: httpx.AsyncClient,
    session: AsyncSession,
    auth_headers: Headers,
    overrides: dict[str, Any],
    field: str | None,
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    response = await api.post(
        "/api/v1/outreach/send",
        headers=auth_headers("ops"),
        json=_body(project.id, expert.id, **overrides),
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_payload"
    if field == "channel":
        assert "KAKAOTALK" in error["message"]
        assert len(error["details"]["validChannels"]) == 13


async def test_unknown_project_or_expert_is_404(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    for body in (_body(uuid.uuid4(), expert.id), _body(project.id, uuid.uuid4())):
        response = await api.post("/api/v1/outreach/send", headers=auth_headers("ops"), json=body)
        assert response.status_code == 404, response.text
        assert response.json()["error"]["code"] == "not_found"


async def test_suppressed_expert_is_409(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session)
    await create_suppression(session, expert=expert)
    response = await api.post(
        "/api/v1/outreach/send", headers=auth_headers("ops"), json=_body(project.id, expert.id)
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "expert_suppressed"


async def test_cooldown_refusal_is_logged_and_project_override_accepted(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    project = await create_project(session)
    other = await create_project(session, override_cooldown=True)
    expert = await create_reachable_expert(session)
    first = await api.post(
        "/api/v1/outreach/send", headers=auth_headers("ops"), json=_body(project.id, expert.id)
    )
    assert first.status_code == 202
    # Another channel, same expert: the cooldown is per expert.
    second = await api.post(
        "/api/v1/outreach/send",
        headers=auth_headers("ops"),
        json=_body(project.id, expert.id, channel="whats app", recipient="+14155550100"),
    )
    assert second.status_code == 409
    error = second.json()["error"]
    assert error["code"] == "cooldown_active"
    assert error["details"]["cooldownEndsAt"]
    via_project = await api.post(
        "/api/v1/outreach/send", headers=auth_headers("ops"), json=_body(other.id, expert.id)
    )
    assert via_project.status_code == 202
    logs = (
        (await session.execute(select(CooldownLog).where(CooldownLog.expert_id == expert.id)))
        .scalars()
        .all()
    )
    assert sorted((log.action, log.override_source, log.channel) for log in logs) == [
        ("ENFORCED", None, "whatsapp"),
        ("OVERRIDDEN", "PROJECT", "email"),
    ]


async def test_two_sends_at_once_cannot_both_pass_the_cooldown(
    api_settings: Settings,
    sessionmaker_committing: async_sessionmaker[AsyncSession],
    auth_headers: Headers,
) -> None:
    async with sessionmaker_committing() as session, session.begin():
        project = await create_project(session)
        expert = await create_reachable_expert(session)
        await create_enriched_lead(session, project=project, expert=expert)
    async with serve_gateway(api_settings) as client:  # really committing
        results = await asyncio.gather(
            *(
                client.post(
                    "/api/v1/outreach/send",
                    headers=auth_headers("ops"),
                    json=_body(project.id, expert.id, body=f"attempt {n}"),
                )
                for n in range(4)
            )
        )
    assert sorted(r.status_code for r in results) == [202, 409, 409, 409]
    async with sessionmaker_committing() as session:
        messages = (
            await session.execute(
                select(OutreachMessage).where(OutreachMessage.expert_id == expert.id)
            )
        ).all()
        assert len(messages) == 1
        enforced = (
            await session.execute(select(CooldownLog).where(CooldownLog.expert_id == expert.id))
        ).all()
        assert len(enforced) == 3
        leads = (await session.execute(select(Lead).where(Lead.expert_id == expert.id))).scalars()
        assert [lead.status for lead in leads] == [LeadStatus.OUTREACH_PENDING.value]


async def test_a_send_waits_for_a_suppression_committing_and_is_refused(
    api_settings: Settings,
    sessionmaker_committing: async_sessionmaker[AsyncSession],
    auth_headers: Headers,
) -> None:
    """A never-contact outcome in flight when the send arrives: the send waits for it and gets
    409 (it queued a message for the suppressed expert when it read the suppression first)."""
    async with sessionmaker_committing() as session, session.begin():
        project = await create_project(session)
        expert = await create_reachable_expert(session)
        await create_enriched_lead(session, project=project, expert=expert)
    async with serve_gateway(api_settings) as client:
        async with sessionmaker_committing() as suppressing, suppressing.begin():
            suppressed = await suppressing.get(Expert, expert.id)
            await create_suppression(suppressing, expert=suppressed)  # the row updated, locked
            sending = asyncio.create_task(
                client.post(
                    "/api/v1/outreach/send",
                    headers=auth_headers("ops"),
                    json=_body(project.id, expert.id),
                )
            )
            await asyncio.sleep(0.5)
            assert not sending.done()  # waiting for the suppression's transaction
        response = await asyncio.wait_for(sending, timeout=10)
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "expert_suppressed"
    async with sessionmaker_committing() as session:
        queued = await session.scalars(
            select(OutreachMessage).where(OutreachMessage.expert_id == expert.id)
        )
        assert queued.all() == []


@pytest.mark.parametrize(
    ("country", "recipient", "accepted"),
    [
        ("GB", "dana.smith@gmail.com", False),
        ("DE", "dana@web.de", False),
        ("CA", "dana@yahoo.ca", False),
        ("GB", "dana.smith@acme-industries.co.uk", True),
        ("US", "dana.smith@gmail.com", True),
    ],
)
async def test_an_explicit_email_recipient_is_held_to_the_region_rule(
    api: httpx.AsyncClient,
    session: AsyncSession,
    auth_headers: Headers,
    country: str,
    recipient: str,
    accepted: bool,
) -> None:
    project = await create_project(session)
    expert = await create_reachable_expert(session, country_iso=country)
    response = await api.post(
        "/api/v1/outreach/send",
        headers=auth_headers("ops"),
        json=_body(project.id, expert.id, recipient=recipient),
    )
    if accepted:
        assert response.status_code == 202, response.text
        return
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "recipient_refused"
    assert "professional addresses only" in error["message"]
    assert error["details"] == {
        "field": "recipient",
        "channel": "EMAIL",
        "reason": "REGION",
        "countryIso": country,
    }
    queued = await session.scalars(
        select(OutreachMessage).where(OutreachMessage.expert_id == expert.id)
    )
    assert list(queued) == []
