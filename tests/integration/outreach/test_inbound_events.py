"""Inbound channel events (issue 16, item 1): each provider family's signed webhook, through the
real broker, into the outreach consumer; opt-outs reach the allocation context.

Every delivery is POSTed to the gateway, read back from the ``outreach`` lane of the real broker
and handled by the outreach handlers in the test's transaction (the agents themselves run in
``tests/e2e/test_inbound_loop.py``).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation.handlers import AllocationHandlers
from sourcing.common.events import Envelope
from sourcing.common.messages.allocation import (
    CallTaskRequested,
    CallTaskTrigger,
    ExpertSuppressionRequested,
)
from sourcing.common.messages.outreach import InboundChannelEvent
from sourcing.common.models import (
    CallTask,
    ContactSuppression,
    Expert,
    Lead,
    OutboxMessage,
    OutreachMessage,
    OutreachThread,
    Project,
    SystemEvent,
)
from sourcing.outreach.handlers import OutreachHandlers
from sourcing.sandbox.inbound import sign_sendgrid
from tests.factories import (
    create_call_task,
    create_lead,
    create_outreach_message,
    create_outreach_thread,
    create_project,
)
from tests.factories_outreach import create_reachable_expert
from tests.fixtures.kafka import read_topic
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
ServeApi = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]
Headers = Callable[..., dict[str, str]]
BASE_URL = "http://gateway.test"


@pytest.fixture
def lane_settings(api_settings_factory: Callable[..., Settings], lane_topics: str) -> Settings:
    return api_settings_factory(KAFKA_TOPIC_PREFIX=lane_topics)


@pytest.fixture
async def gateway(serve_api: ServeApi, lane_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_api(lane_settings) as client:
        yield client


@pytest.fixture
def outreach(lane_settings: Settings, sessionmaker_rolled_back: Any) -> OutreachHandlers:
    return OutreachHandlers(
        settings=lane_settings, sessionmaker=sessionmaker_rolled_back, channels={}
    )


def secret(settings: Settings, name: str) -> str:
    value = getattr(settings, name)
    assert value is not None
    return str(value.get_secret_value())


# --- the six families' signed deliveries ------------------------------------------------------


def sendgrid(events: list[dict[str, Any]]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(events).encode()
    timestamp = str(int(time.time()))
    return body, {
        "content-type": "application/json",
        "X-Twilio-Email-Event-Webhook-Signature": sign_sendgrid(body, timestamp),
        "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
    }


def twilio(settings: Settings, params: dict[str, str]) -> tuple[bytes, dict[str, str]]:
    url = f"{BASE_URL}/webhooks/inbound/twilio"
    data = url + "".join(name + value for name, value in sorted(params.items()))
    key = secret(settings, "TWILIO_WEBHOOK_SECRET").encode()
    signature = base64.b64encode(hmac.new(key, data.encode(), hashlib.sha1).digest()).decode()
    return urlencode(params).encode(), {
        "content-type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": signature,
    }


def whatsapp(settings: Settings, value: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    body = json.dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "waba-1", "changes": [{"field": "messages", "value": value}]}],
        }
    ).encode()
    key = secret(settings, "WHATSAPP_WEBHOOK_SECRET").encode()
    digest = hmac.new(key, body, hashlib.sha256).hexdigest()
    return body, {"content-type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}


def unipile(settings: Settings, event: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return json.dumps(event).encode(), {
        "content-type": "application/json",
        "Unipile-Auth": secret(settings, "LINKEDIN_WEBHOOK_SECRET"),
    }


def telegram(settings: Settings, update: dict[str, Any]) -> tuple[bytes, dict[str, str]]:
    return json.dumps(update).encode(), {
        "content-type": "application/json",
        "X-Telegram-Bot-Api-Secret-Token": secret(settings, "TELEGRAM_WEBHOOK_SECRET"),
    }


def messenger(
    settings: Settings, body: dict[str, Any], event_id: str | None = None
) -> tuple[bytes, dict[str, str]]:
    raw = json.dumps(body).encode()
    key = secret(settings, "MESSENGER_WEBHOOK_SECRET").encode()
    return raw, {
        "content-type": "application/json",
        "x-inbound-signature": hmac.new(key, raw, hashlib.sha256).hexdigest(),
        "x-inbound-timestamp": str(int(time.time())),
        "x-inbound-event-id": event_id or f"msg-{uuid.uuid4()}",
    }


async def events_on_lane(settings: Settings, count: int) -> list[tuple[Envelope, Any]]:
    records = await read_topic(settings, "outreach", min_count=count, settle=0.3)
    envelopes = [record.envelope() for record in records]
    return [(e, InboundChannelEvent.model_validate(e.payload)) for e in envelopes]


@dataclass
class Inbox:
    """POSTs signed deliveries, then hands every record of the lane to the outreach consumer
    (the lane's partitions come back in any order; records handled before are replays the
    consumer drops)."""

    gateway: httpx.AsyncClient
    settings: Settings
    outreach: OutreachHandlers
    session: AsyncSession
    seen: set[str] = field(default_factory=set)
    records: int = 0

    async def deliver(
        self, path: str, signed: tuple[bytes, dict[str, str]]
    ) -> list[InboundChannelEvent]:
        body, headers = signed
        response = await self.gateway.post(
            f"/webhooks/inbound/{path}", content=body, headers=headers
        )
        assert response.status_code == 202, response.text
        queued = response.json()["events"]
        self.records += queued
        on_lane = await events_on_lane(self.settings, self.records)
        new = []
        for envelope, payload in on_lane:
            await self.outreach.inbound(self.session, envelope, payload)
            if envelope.id not in self.seen:
                self.seen.add(envelope.id)
                new.append(payload)
        return new  # a provider's retry carries the envelope id of its first delivery


@pytest.fixture
def inbox(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    outreach: OutreachHandlers,
    session: AsyncSession,
) -> Inbox:
    return Inbox(gateway, lane_settings, outreach, session)


@dataclass
class Conversation:
    project: Project
    expert: Expert
    thread: OutreachThread
    sent: OutreachMessage
    lead: Lead


async def conversation(
    session: AsyncSession, *, channel: str = "email", recipient: str | None = None, **thread: Any
) -> Conversation:
    project = await create_project(session)
    email = f"dana-{uuid.uuid4().hex[:8]}@acme.example"
    expert = await create_reachable_expert(session, email=email, primary_email=email)
    lead = await create_lead(session, project=project, expert=expert, status="CONTACTED")
    opened = await create_outreach_thread(
        session,
        project=project,
        expert=expert,
        channel=channel,
        recipient=recipient or email,
        **thread,
    )
    sent = await create_outreach_message(
        session,
        thread=opened,
        delivery_status="SENT",
        sent_at=func.now(),
        provider="vendor",
        provider_message_id=f"pm-{uuid.uuid4().hex[:12]}",
    )
    await session.refresh(sent)
    return Conversation(project, expert, opened, sent, lead)


async def fresh(session: AsyncSession, row: Any) -> Any:
    await session.refresh(row)
    return row


# --- signatures -----------------------------------------------------------------------------

BAD_SIGNATURES = {
    "email": ("X-Twilio-Email-Event-Webhook-Signature", base64.b64encode(b"x" * 70).decode()),
    "twilio": ("X-Twilio-Signature", base64.b64encode(b"y" * 20).decode()),
    "whatsapp": ("X-Hub-Signature-256", "sha256=" + "0" * 64),
    "linkedin": ("Unipile-Auth", "wrong"),
    "telegram": ("X-Telegram-Bot-Api-Secret-Token", "wrong"),
    "messengers": ("x-inbound-signature", "0" * 64),
}


# Unipile and Telegram authenticate the sender with a shared header value, not the body.
HEADER_SECRETS = ("linkedin", "telegram")


def good_delivery(settings: Settings, family: str) -> tuple[bytes, dict[str, str]]:
    if family == "email":
        return sendgrid([{"event": "delivered", "sg_event_id": "sg-1", "email": "a@b.example"}])
    if family == "twilio":
        return twilio(settings, {"MessageSid": "SM1", "MessageStatus": "delivered", "To": "+1"})
    if family == "whatsapp":
        return whatsapp(settings, {"statuses": [{"id": "wamid.1", "status": "delivered"}]})
    if family == "linkedin":
        return unipile(settings, {"event": "message_delivered", "message_id": "m1"})
    if family == "telegram":
        return telegram(settings, {"update_id": 7, "message": {"chat": {"id": 5}, "text": "hi"}})
    return messenger(settings, {"channel": "LINE", "event": "delivered", "address": "U1"})


@pytest.mark.parametrize("family", list(BAD_SIGNATURES))
async def test_each_family_verifies_its_providers_signature(
    gateway: httpx.AsyncClient, lane_settings: Settings, family: str
) -> None:
    body, headers = good_delivery(lane_settings, family)
    name, wrong = BAD_SIGNATURES[family]
    forged = await gateway.post(
        f"/webhooks/inbound/{family}", content=body, headers=headers | {name: wrong}
    )
    assert forged.status_code == 401, forged.text
    assert forged.json()["error"]["code"] == "unauthorized"
    unsigned = {k: v for k, v in headers.items() if k != name}
    missing = await gateway.post(f"/webhooks/inbound/{family}", content=body, headers=unsigned)
    assert missing.status_code == 401
    if family not in HEADER_SECRETS:  # a signature over the body: any change breaks it
        tampered = await gateway.post(
            f"/webhooks/inbound/{family}", content=body + b" ", headers=headers
        )
        assert tampered.status_code == 401, tampered.text
    with pytest.raises(TimeoutError):
        await read_topic(lane_settings, "outreach", min_count=1, timeout=1.0)

    accepted = await gateway.post(f"/webhooks/inbound/{family}", content=body, headers=headers)
    assert accepted.status_code == 202, accepted.text
    assert accepted.json() == {"accepted": True, "events": 1}


async def test_malformed_bodies_are_400_in_the_envelope(
    gateway: httpx.AsyncClient, lane_settings: Settings
) -> None:
    body, headers = sendgrid([{"event": "delivered"}])  # no sg_event_id
    response = await gateway.post("/webhooks/inbound/email", content=body, headers=headers)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"
    raw, signed = whatsapp(lane_settings, {})
    garbage = b"{not json"
    key = secret(lane_settings, "WHATSAPP_WEBHOOK_SECRET").encode()
    signed["X-Hub-Signature-256"] = "sha256=" + hmac.new(key, garbage, hashlib.sha256).hexdigest()
    bad = await gateway.post("/webhooks/inbound/whatsapp", content=garbage, headers=signed)
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_payload"
    assert raw


# --- what the events do ---------------------------------------------------------------------


async def test_a_reply_is_stored_inbound_and_moves_the_leads_to_replied_once(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
) -> None:
    talk = await conversation(session)
    reply = {
        "event": "inbound",
        "sg_event_id": "sg-reply-1",
        "email": talk.thread.recipient.upper(),  # matched case-insensitively
        "text": "Yes, happy to talk on Tuesday.",
        "timestamp": int(time.time()),
    }
    [event] = await inbox.deliver("email", sendgrid([reply]))
    assert (event.provider, event.kind, event.event_id) == ("sendgrid", "REPLY", "sg-reply-1")

    inbound = (
        await session.scalars(
            select(OutreachMessage).where(
                OutreachMessage.thread_id == talk.thread.id,
                OutreachMessage.direction == "INBOUND",
            )
        )
    ).all()
    assert [m.body for m in inbound] == ["Yes, happy to talk on Tuesday."]
    assert (await fresh(session, talk.lead)).status == "REPLIED"
    thread = await fresh(session, talk.thread)
    assert thread.status == "OPEN" and thread.last_message_at is not None
    audit = await session.scalar(
        select(SystemEvent).where(
            SystemEvent.entity_id == talk.lead.id, SystemEvent.data["to"].astext == "REPLIED"
        )
    )
    assert audit is not None and audit.actor == "inbound:sendgrid"

    # SendGrid retries the same event: nothing changes.
    await inbox.deliver("email", sendgrid([reply]))
    count = (
        select(func.count())
        .select_from(OutreachMessage)
        .where(OutreachMessage.thread_id == talk.thread.id, OutreachMessage.direction == "INBOUND")
    )
    assert await session.scalar(count) == 1


async def test_delivered_and_hard_bounce_update_the_message_and_suppress_the_address(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
) -> None:
    delivered = await conversation(session)
    bounced = await conversation(session)
    events = [
        {
            "event": "delivered",
            "sg_event_id": "sg-d",
            "email": delivered.thread.recipient,
            "sg_message_id": f"{delivered.sent.provider_message_id}.filterdrecv-1",
        },
        {
            "event": "bounce",
            "type": "bounce",
            "reason": "550 5.1.1 no such user",
            "sg_event_id": "sg-b",
            "email": bounced.thread.recipient,
            "sg_message_id": f"{bounced.sent.provider_message_id}.filterdrecv-2",
        },
    ]
    await inbox.deliver("email", sendgrid(events))
    message = await fresh(session, delivered.sent)
    assert message.delivery_status == "DELIVERED" and message.delivered_at is not None
    message = await fresh(session, bounced.sent)
    assert message.delivery_status == "BOUNCED" and "no such user" in (message.error or "")
    suppression = await session.scalar(
        select(ContactSuppression).where(ContactSuppression.value == bounced.thread.recipient)
    )
    assert suppression is not None and suppression.reason == "BOUNCED"
    assert (await fresh(session, bounced.thread)).status == "OPEN"  # the person is not suppressed


async def test_a_soft_bounce_is_only_recorded(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
) -> None:
    talk = await conversation(session, channel="sms", recipient="+14155550100")
    params = {
        "MessageSid": talk.sent.provider_message_id or "",
        "MessageStatus": "undelivered",
        "ErrorCode": "30007",  # carrier filtering: may pass later
        "To": "+14155550100",
    }
    [event] = await inbox.deliver("twilio", twilio(lane_settings, params))
    assert (event.kind, event.hard_bounce) == ("BOUNCED", False)
    message = await fresh(session, talk.sent)
    assert message.delivery_status == "SENT" and "30007" in (message.error or "")
    assert await session.scalar(select(func.count()).select_from(ContactSuppression)) == 0


async def test_an_opt_out_suppresses_address_and_person_and_stops_calls(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
    auth_headers: Headers,
) -> None:
    talk = await conversation(session)
    task = await create_call_task(session, project=talk.project, expert=talk.expert)
    queued = await create_outreach_message(session, thread=talk.thread, delivery_status="QUEUED")
    unsubscribe = {"event": "unsubscribe", "sg_event_id": "sg-u", "email": talk.thread.recipient}
    await inbox.deliver("email", sendgrid([unsubscribe]))

    suppression = await session.scalar(
        select(ContactSuppression).where(ContactSuppression.expert_id == talk.expert.id)
    )
    assert suppression is not None and suppression.reason == "OPT_OUT"
    assert (await fresh(session, talk.thread)).status == "CLOSED"
    assert (await fresh(session, queued)).delivery_status == "CANCELLED"

    refused = await gateway.post(
        "/api/v1/outreach/send",
        headers=auth_headers("ops"),
        json={
            "projectId": str(talk.project.id),
            "expertId": str(talk.expert.id),
            "channel": "SMS",
            "recipient": "+14155550100",
            "body": "One more try?",
        },
    )
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "expert_suppressed" and error["details"]["reason"] == "OPT_OUT"

    # The allocation context is asked to suppress the person: their open task is cancelled
    # and no new one is made.
    row = await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.envelope["type"].astext == ExpertSuppressionRequested.message_type
        )
    )
    assert row is not None
    envelope = Envelope.model_validate(row.envelope)
    request = ExpertSuppressionRequested.model_validate(envelope.payload)
    assert (request.expert_id, request.reason) == (talk.expert.id, "OPT_OUT")
    allocation = AllocationHandlers(lane_settings)
    await allocation.handle_suppression_requested(session, envelope, request)
    assert (await fresh(session, task)).status == "CANCELLED"
    ask = CallTaskRequested(
        project_id=talk.project.id, expert_id=talk.expert.id, trigger=CallTaskTrigger.RANKING
    )
    await allocation.handle_call_task_requested(
        session, Envelope.new(CallTaskRequested.message_type, ask), ask
    )
    open_tasks = (
        select(func.count())
        .select_from(CallTask)
        .where(CallTask.expert_id == talk.expert.id, CallTask.status.in_(["PENDING", "ASSIGNED"]))
    )
    assert await session.scalar(open_tasks) == 0


async def test_a_reply_with_a_stop_phrase_is_a_reply_and_an_opt_out(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
) -> None:
    talk = await conversation(session, channel="sms", recipient="+1 (415) 555-0199")
    params = {
        "MessageSid": "SM-reply-stop",
        "SmsStatus": "received",
        "From": "+14155550199",
        "To": "+15005550006",
        "Body": "Please remove me from your list",
    }
    await inbox.deliver("twilio", twilio(lane_settings, params))
    assert (await fresh(session, talk.lead)).status == "REPLIED"
    stored = await session.scalar(
        select(OutreachMessage.body).where(
            OutreachMessage.thread_id == talk.thread.id, OutreachMessage.direction == "INBOUND"
        )
    )
    assert stored == "Please remove me from your list"
    suppression = await session.scalar(
        select(ContactSuppression).where(ContactSuppression.value == "+14155550199")
    )
    assert suppression is not None and suppression.reason == "OPT_OUT"
    assert suppression.expert_id == talk.expert.id
    assert (await fresh(session, talk.thread)).status == "CLOSED"


async def test_whatsapp_linkedin_telegram_and_messengers_reach_their_threads(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
) -> None:
    wa = await conversation(session, channel="whatsapp", recipient="+447700900123")
    li = await conversation(
        session, channel="linkedin", recipient="ACoAAB-1", external_thread_id="chat-9"
    )
    tg = await conversation(session, channel="telegram", recipient="424242")
    line = await conversation(session, channel="line", recipient="U4af4980629")

    await inbox.deliver(
        "whatsapp",
        whatsapp(
            lane_settings,
            {
                "messages": [
                    {
                        "from": "447700900123",
                        "id": "wamid.R1",
                        "type": "text",
                        "text": {"body": "Sure"},
                    }
                ],
                "statuses": [
                    {
                        "id": wa.sent.provider_message_id,
                        "status": "delivered",
                        "recipient_id": "447700900123",
                    }
                ],
            },
        ),
    )
    assert (await fresh(session, wa.lead)).status == "REPLIED"
    assert (await fresh(session, wa.sent)).delivery_status == "DELIVERED"

    await inbox.deliver(
        "linkedin",
        unipile(
            lane_settings,
            {
                "event": "message_received",
                "account_id": "acc",
                "chat_id": "chat-9",
                "message_id": "li-m1",
                "message": "Interested, tell me more",
                "sender": {"attendee_provider_id": "someone-else-id"},
            },
        ),
    )
    assert (await fresh(session, li.lead)).status == "REPLIED"  # matched by chat id

    await inbox.deliver(
        "telegram",
        telegram(
            lane_settings,
            {
                "update_id": 9001,
                "my_chat_member": {
                    "chat": {"id": 424242},
                    "date": int(time.time()),
                    "new_chat_member": {"status": "kicked"},
                },
            },
        ),
    )
    assert (await fresh(session, tg.thread)).status == "CLOSED"  # blocked the bot: opted out
    request = await session.scalar(
        select(OutboxMessage).where(
            OutboxMessage.envelope["payload"]["expertId"].astext == str(tg.expert.id)
        )
    )
    assert request is not None  # the person is suppressed by allocation (a chat id is no address)

    await inbox.deliver(
        "messengers",
        messenger(
            lane_settings,
            {"channel": "LINE", "event": "reply", "address": "U4af4980629", "text": "OK"},
        ),
    )
    assert (await fresh(session, line.lead)).status == "REPLIED"


async def test_an_unmatched_opt_out_still_suppresses_the_address(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    inbox: Inbox,
    session: AsyncSession,
) -> None:
    params = {
        "MessageSid": "SM-x",
        "MessageStatus": "failed",
        "ErrorCode": "21610",
        "To": "+14155550111",
    }
    [event] = await inbox.deliver("twilio", twilio(lane_settings, params))
    assert event.kind == "OPT_OUT"
    suppression = await session.scalar(
        select(ContactSuppression).where(ContactSuppression.value == "+14155550111")
    )
    assert suppression is not None and suppression.reason == "OPT_OUT"
    unmatched = await session.scalar(
        select(SystemEvent).where(SystemEvent.type == "outreach.inbound_unmatched")
    )
    assert unmatched is not None and unmatched.data["eventId"] == "SM-x:failed"
