"""Outreach end to end on the embedded stack with the provider sandbox: API → outbox →
broker → outreach agent (a real Faust app) → sandbox vendor, on each of the 13 channels; the
30-day cooldown refusal (409, logged), an override (accepted, logged) and a never-contact
expert refused."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.models import CooldownLog, Lead, OutreachMessage, OutreachThread
from sourcing.common.models.enums import Channel
from sourcing.common.statemachines import LeadStatus
from sourcing.sandbox.server import serve_sandbox
from tests.e2e.stack import Agents
from tests.factories import create_project, create_suppression
from tests.factories_outreach import RECIPIENTS, create_enriched_lead, create_reachable_expert
from tests.fixtures.api import serve_gateway
from tests.fixtures.kafka import make_kafka_settings, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

# Vendors whose send API returns no message id (WeChat custom send, Kakao friends message).
NO_VENDOR_ID = {Channel.WECHAT, Channel.KAKAOTALK}


@pytest.fixture
async def stack(
    infra: object, kafka_settings: Settings, agents: Agents
) -> AsyncIterator[tuple[Settings, httpx.AsyncClient]]:
    """Sandbox on a free port, the gateway (committing) and the outreach agent running."""
    async with serve_sandbox() as sandbox_url:
        settings = make_kafka_settings(
            database_url=kafka_settings.DATABASE_URL,
            bootstrap=kafka_settings.KAFKA_BROKER_URL,
            topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
            broker_kind=getattr(infra, "broker_kind", "kafka"),
            SANDBOX_PROVIDERS=True,
            SANDBOX_URL=sandbox_url,
            CHANNEL_TIMEOUT_SECONDS=5.0,
        )
        async with agents.running(settings, "outreach"), serve_gateway(settings) as client:
            yield settings, client


def _headers(settings: Settings, role: str = "ops") -> dict[str, str]:
    token = mint_token(settings, Principal(user_id="ops-1", role=Role(role)))
    return {"Authorization": f"Bearer {token}"}


async def _message(
    sessionmaker: async_sessionmaker[AsyncSession], message_id: str
) -> OutreachMessage:
    async with sessionmaker() as session:
        message = await session.get(OutreachMessage, uuid.UUID(message_id))
        assert message is not None
        return message


async def test_send_on_every_channel_cooldown_override_and_never_contact(
    stack: tuple[Settings, httpx.AsyncClient],
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    settings, api = stack
    headers = _headers(settings)
    async with kafka_sessionmaker() as session, session.begin():
        project = await create_project(session)
        experts = {
            channel: await create_reachable_expert(session, email=None) for channel in Channel
        }
        leads = {
            channel: await create_enriched_lead(session, project=project, expert=expert)
            for channel, expert in experts.items()
        }
        suppressed = await create_reachable_expert(session)
        await create_suppression(session, expert=suppressed)

    # One send per channel, each with the channel's API name in another spelling.
    jobs: dict[Channel, str] = {}
    for channel in Channel:
        response = await api.post(
            "/api/v1/outreach/send",
            headers=headers,
            json={
                "projectId": str(project.id),
                "expertId": str(experts[channel].id),
                "channel": channel.value.title() if channel is not Channel.KAKAOTALK else "kakao",
                "recipient": RECIPIENTS[channel],
                "body": f"Hello on {channel.name}",
                "overrideCooldown": False,
            },
        )
        assert response.status_code == 202, response.text
        assert response.json()["accepted"] is True
        jobs[channel] = response.json()["jobId"]

    async def all_delivered() -> bool:
        for job in jobs.values():
            message = await _message(kafka_sessionmaker, job)
            if message.sent_at is None and message.delivery_status != "FAILED":
                return False
        return True

    await wait_until(all_delivered, timeout=90, message="13 channel deliveries")

    async with kafka_sessionmaker() as session:
        for channel, job in jobs.items():
            message = await session.get(OutreachMessage, uuid.UUID(job))
            assert message is not None
            assert message.delivery_status in {"SENT", "DELIVERED"}, (
                channel,
                message.delivery_status,
                message.error,
            )
            assert message.sent_at is not None and message.attempts == 1
            assert message.provider, channel
            if channel not in NO_VENDOR_ID:
                assert message.provider_message_id, (channel, message.provider)
            thread = await session.get(OutreachThread, message.thread_id)
            assert thread is not None
            assert (thread.channel, thread.status, thread.recipient) == (
                channel.value,
                "OPEN",
                RECIPIENTS[channel],
            )
            lead = await session.get(Lead, leads[channel].id)
            assert lead is not None and lead.status == LeadStatus.CONTACTED.value

    # A second send to the email expert within 30 days: 409 and an ENFORCED log.
    expert = experts[Channel.EMAIL]
    second = {
        "projectId": str(project.id),
        "expertId": str(expert.id),
        "channel": "e-mail",
        "recipient": RECIPIENTS[Channel.EMAIL],
        "body": "Following up",
    }
    refused = await api.post("/api/v1/outreach/send", headers=headers, json=second)
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "cooldown_active"
    assert error["details"]["cooldownEndsAt"]

    # With overrideCooldown: accepted, logged as OVERRIDDEN, delivered.
    overridden = await api.post(
        "/api/v1/outreach/send", headers=headers, json={**second, "overrideCooldown": True}
    )
    assert overridden.status_code == 202, overridden.text
    override_job = overridden.json()["jobId"]

    async def override_sent() -> bool:
        return (await _message(kafka_sessionmaker, override_job)).sent_at is not None

    await wait_until(override_sent, timeout=60, message="override delivery")
    async with kafka_sessionmaker() as session:
        logs = (
            (
                await session.execute(
                    select(CooldownLog)
                    .where(CooldownLog.expert_id == expert.id)
                    .order_by(CooldownLog.created_at)
                )
            )
            .scalars()
            .all()
        )
        assert [(log.action, log.override_source) for log in logs] == [
            ("ENFORCED", None),
            ("OVERRIDDEN", "REQUEST"),
        ]
        assert str(logs[0].id) == error["details"]["cooldownLogId"]
        assert str(logs[1].outreach_message_id) == override_job
        assert logs[0].cooldown_ends_at is not None
        message = await session.get(OutreachMessage, uuid.UUID(override_job))
        assert message is not None and message.cooldown_overridden
        assert message.provider_message_id
        thread_messages = (
            (
                await session.execute(
                    select(OutreachMessage).where(OutreachMessage.thread_id == message.thread_id)
                )
            )
            .scalars()
            .all()
        )
        assert len(thread_messages) == 2  # the thread was reused

    # Never-contact expert: refused, nothing queued.
    never = await api.post(
        "/api/v1/outreach/send",
        headers=headers,
        json={**second, "expertId": str(suppressed.id)},
    )
    assert never.status_code == 409, never.text
    assert never.json()["error"]["code"] == "expert_suppressed"
    async with kafka_sessionmaker() as session:
        queued = (
            await session.execute(
                select(OutreachMessage).where(OutreachMessage.expert_id == suppressed.id)
            )
        ).all()
        assert queued == []
