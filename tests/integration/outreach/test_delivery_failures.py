"""Delivery failures are never silent: an unconfigured channel fails the message at once (a
permanent error, so the reliability layer dead-letters it), a transient vendor failure counts
attempts and marks the message FAILED on the last one; the records survive the rollback of
the agent's own transaction."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.kafka.retry import is_transient
from sourcing.common.messages.outreach import OutreachSendRequested
from sourcing.common.models import OutreachMessage, OutreachThread
from sourcing.common.models.enums import Channel, SuppressedContactKind, SuppressionReason
from sourcing.outreach.channels import (
    ChannelNotConfigured,
    ChannelUnavailable,
    OutboundMessage,
    OutreachChannel,
    SendReceipt,
    build_channel_http,
    build_channels,
)
from sourcing.outreach.handlers import OutreachHandlers
from sourcing.people.suppression import suppress_contact
from tests.factories import create_outreach_message, create_outreach_thread
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


class FlakyEmail(OutreachChannel):
    channel = Channel.EMAIL
    credential_env = "EMAIL_PROVIDER_API_KEY"

    @classmethod
    def unset_settings(cls, settings: object) -> list[str]:
        return []

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        raise ChannelUnavailable("sendgrid", "HTTP 429 after retries", status=429)


async def _queued(
    sessionmaker: async_sessionmaker[AsyncSession], channel: Channel
) -> tuple[uuid.UUID, OutreachSendRequested]:
    async with session_scope(sessionmaker) as session:
        thread = await create_outreach_thread(session, channel=channel.value)
        message = await create_outreach_message(session, thread=thread)
        return message.id, OutreachSendRequested(
            message_id=message.id, expert_id=thread.expert_id, project_id=thread.project_id
        )


async def _deliver(
    handlers: OutreachHandlers,
    sessionmaker: async_sessionmaker[AsyncSession],
    payload: OutreachSendRequested,
) -> None:
    async with session_scope(sessionmaker) as session:  # rolled back when it raises
        await handlers.deliver(
            session, Envelope.new(OutreachSendRequested.message_type, payload), payload
        )


async def test_unconfigured_channel_fails_the_message_permanently(
    api_settings: Settings, sessionmaker_committing: async_sessionmaker[AsyncSession]
) -> None:
    assert not api_settings.SANDBOX_PROVIDERS and api_settings.TELEGRAM_BOT_TOKEN is None
    http = build_channel_http(api_settings)
    handlers = OutreachHandlers(
        settings=api_settings,
        sessionmaker=sessionmaker_committing,
        channels=build_channels(api_settings, http),
    )
    message_id, payload = await _queued(sessionmaker_committing, Channel.TELEGRAM)
    with pytest.raises(ChannelNotConfigured) as raised:
        await _deliver(handlers, sessionmaker_committing, payload)
    await http.aclose()
    assert not is_transient(raised.value)  # straight to dead-letter, no retries
    async with sessionmaker_committing() as session:
        message = await session.get(OutreachMessage, message_id)
        assert message is not None
        assert message.delivery_status == "FAILED" and message.failed_at is not None
        assert message.error and "TELEGRAM_BOT_TOKEN" in message.error
        assert message.attempts == 1
        thread = await session.get(OutreachThread, message.thread_id)
        assert thread is not None and thread.last_error == message.error
    # A redelivery of the same job does not send again.
    await _deliver(handlers, sessionmaker_committing, payload)


async def test_transient_failures_count_attempts_and_fail_on_the_last(
    api_settings: Settings, sessionmaker_committing: async_sessionmaker[AsyncSession]
) -> None:
    http = build_channel_http(api_settings)
    handlers = OutreachHandlers(
        settings=api_settings,
        sessionmaker=sessionmaker_committing,
        channels={Channel.EMAIL: FlakyEmail(settings=api_settings, http=http)},
    )
    message_id, payload = await _queued(sessionmaker_committing, Channel.EMAIL)
    for attempt in range(1, api_settings.AGENT_MAX_ATTEMPTS + 1):
        with pytest.raises(ChannelUnavailable) as raised:
            await _deliver(handlers, sessionmaker_committing, payload)
        assert is_transient(raised.value)
        async with sessionmaker_committing() as session:
            message = await session.get(OutreachMessage, message_id)
            assert message is not None and message.attempts == attempt
            last = attempt == api_settings.AGENT_MAX_ATTEMPTS
            assert message.delivery_status == ("FAILED" if last else "QUEUED")
            assert message.error and "429" in message.error
    await http.aclose()


async def test_a_message_to_an_address_suppressed_while_queued_is_cancelled_not_sent(
    api_settings: Settings, sessionmaker_committing: async_sessionmaker[AsyncSession]
) -> None:
    """The last check before a channel is called: FlakyEmail would raise if it were."""
    handlers = OutreachHandlers(
        settings=api_settings,
        sessionmaker=sessionmaker_committing,
        channels={
            Channel.EMAIL: FlakyEmail(settings=api_settings, http=build_channel_http(api_settings))
        },
    )
    message_id, payload = await _queued(sessionmaker_committing, Channel.EMAIL)
    async with session_scope(sessionmaker_committing) as session:
        message = await session.get(OutreachMessage, message_id)
        assert message is not None
        thread = await session.get(OutreachThread, message.thread_id)
        recipient = message.recipient or (thread.recipient if thread else None)
        assert recipient is not None
        await suppress_contact(
            session,
            SuppressedContactKind.EMAIL,
            recipient.lower(),
            reason=SuppressionReason.OPT_OUT,
            actor="test",
        )
    await _deliver(handlers, sessionmaker_committing, payload)
    async with session_scope(sessionmaker_committing) as session:
        message = await session.get(OutreachMessage, message_id)
        assert message is not None
        assert (message.delivery_status, message.attempts, message.sent_at) == (
            "CANCELLED",
            0,
            None,
        )
        assert message.error is not None and "OPT_OUT" in message.error
