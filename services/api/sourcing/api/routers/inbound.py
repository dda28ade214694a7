"""Inbound channel events: one signed webhook per provider family, normalised for outreach.

Each route checks its provider's own signature scheme (401 in the error envelope when it does
not verify), reads the provider's own body, turns every reply, delivery report, bounce and
opt-out in it into one ``outreach.inbound.v1`` message and publishes them with acks=all before
answering 202 (like the other webhooks, nothing is written to the database here). Events a
family sends that are none of these (opens, clicks, "sent" statuses) are accepted and dropped.

The envelope id of each message is derived from the provider's event id, and the outreach
consumer records that id in ``processed_webhook_events``: a provider's retry changes nothing.

| route | providers | verification |
| --- | --- | --- |
| ``/webhooks/inbound/email`` | SendGrid Event Webhook | ECDSA P-256 over timestamp + body |
| ``/webhooks/inbound/twilio`` | Twilio SMS (replies, status callbacks) | X-Twilio-Signature |
| ``/webhooks/inbound/whatsapp`` | WhatsApp (Cloud API webhook shape) | X-Hub-Signature-256 |
| ``/webhooks/inbound/linkedin`` | Unipile (LinkedIn messaging) | Unipile-Auth header |
| ``/webhooks/inbound/telegram`` | Telegram Bot API updates | X-Telegram-Bot-Api-Secret-Token |
| ``/webhooks/inbound/messengers`` | the other seven channels | our HMAC contract (Yay's) |
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import uuid
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import parse_qsl

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key
from fastapi import APIRouter, Request, Response, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, RootModel

from sourcing.api.routers.webhooks import (
    EVENT_ID_MAX_LENGTH,
    SignedWebhook,
    header_parameter,
    parse,
    publish,
    secret_matches,
    verify_delivery,
    verify_signature,
)
from sourcing.api.schemas import InboundAccepted
from sourcing.common.config import Settings
from sourcing.common.errors import InvalidPayload, Unauthorized
from sourcing.common.messages.outreach import InboundChannelEvent, InboundKind
from sourcing.common.models.enums import Channel
from sourcing.common.web import (
    LeanRoute,
    RequestModel,
    error_responses,
    get_now,
    reject_unknown_query_params,
)

router = APIRouter(prefix="/webhooks/inbound", tags=["webhooks"])
# UUIDv5 namespace of inbound envelope ids: one id per provider event, so retries deduplicate.
INBOUND_EVENT_NAMESPACE = uuid.UUID("7a3e9c51-2f4d-4b8a-9e06-1c5d8f2a7b43")

Handler = Callable[[Request], Coroutine[Any, Any, Response]]


def _route(
    path: str, endpoint: Handler, summary: str, description: str, extra: dict[str, Any]
) -> None:
    router.add_api_route(
        path,
        endpoint,
        summary=summary,
        methods=["POST"],
        status_code=status.HTTP_202_ACCEPTED,
        response_model=InboundAccepted,
        responses=error_responses(400, 401, 413, 503),
        description=description,
        openapi_extra=extra,
        route_class_override=LeanRoute,
    )


def _headers_doc(
    example: Any, *headers: tuple[str, str], content_type: str = "application/json"
) -> dict[str, Any]:
    """The OpenAPI of a provider's own body shape: its signature headers and an example."""
    schema = {"type": "object"} if content_type == "application/x-www-form-urlencoded" else {}
    return {
        "parameters": [header_parameter(name, text, {"type": "string"}) for name, text in headers],
        "requestBody": {
            "required": True,
            "content": {content_type: {"schema": {**schema, "example": example}}},
        },
    }


async def _publish_all(request: Request, events: list[InboundChannelEvent]) -> Response:
    for event in events:
        envelope_id = uuid.uuid5(INBOUND_EVENT_NAMESPACE, f"{event.provider}:{event.event_id}")
        await publish(request.app.state.broker, event, envelope_id=str(envelope_id))
    accepted = InboundAccepted(accepted=True, events=len(events))
    return Response(
        accepted.model_dump_json(by_alias=True),
        status_code=status.HTTP_202_ACCEPTED,
        media_type="application/json",
    )


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def _event_id(value: object, *, field: str) -> str:
    text = str(value).strip() if value is not None else ""
    if not text or len(text) > EVENT_ID_MAX_LENGTH:
        raise InvalidPayload(
            f"{field} is required (at most {EVENT_ID_MAX_LENGTH} characters)",
            details={"field": field},
        )
    return text


def _json(body: bytes, what: str) -> Any:
    try:
        return json.loads(body)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise InvalidPayload(f"{what} is not JSON", details={"field": "body"}) from None


def _time(value: object, fallback: datetime) -> datetime:
    """A provider's Unix seconds (or ISO-8601) as an aware datetime; ``fallback`` when absent."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str) and value:
        try:
            return datetime.fromtimestamp(float(value), UTC)
        except ValueError:
            pass
        try:
            parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return fallback
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    return fallback


def _event(provider: str, now: datetime, **fields: Any) -> InboundChannelEvent:
    fields.setdefault("occurred_at", now)
    return InboundChannelEvent(provider=provider, received_at=now, **fields)


# --- email: SendGrid Event Webhook ----------------------------------------------------------

SENDGRID_SIGNATURE = "x-twilio-email-event-webhook-signature"
SENDGRID_TIMESTAMP = "x-twilio-email-event-webhook-timestamp"
# SendGrid bounce ``type``: "bounce" is permanent, "blocked" is a refusal that may pass later.
SENDGRID_SOFT_BOUNCE_TYPES = frozenset({"blocked"})
SENDGRID_OPT_OUTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})


def verify_sendgrid(body: bytes, signature: str | None, timestamp: str | None, key: str) -> bool:
    """SendGrid's signed Event Webhook: the base64 ECDSA (P-256, SHA-256) signature of the
    timestamp header followed by the raw body, under the account's verification key (base64
    DER as the console shows it, or PEM)."""
    if not signature or not timestamp:
        return False
    der = "".join(line for line in key.strip().splitlines() if not line.startswith("-----"))
    try:
        public_key = load_der_public_key(base64.b64decode(der))
        if not isinstance(public_key, ec.EllipticCurvePublicKey):
            return False
        public_key.verify(
            base64.b64decode(signature), timestamp.encode() + body, ec.ECDSA(hashes.SHA256())
        )
    except (InvalidSignature, ValueError, binascii.Error):
        return False
    return True


class SendGridEvent(BaseModel):
    """One item of SendGrid's event array (other fields are ignored). ``inbound`` is a reply
    relayed from Inbound Parse in the same signed shape (``email`` = sender, ``text``)."""

    model_config = ConfigDict(extra="ignore")

    event: str = Field(max_length=64)
    sg_event_id: str = Field(min_length=1, max_length=EVENT_ID_MAX_LENGTH)
    email: str | None = Field(default=None, max_length=320)
    sg_message_id: str | None = Field(default=None, max_length=500)
    timestamp: int | None = None
    type: str | None = Field(default=None, max_length=64)
    reason: str | None = Field(default=None, max_length=1000)
    text: str | None = Field(default=None, max_length=20_000)


class SendGridEvents(RootModel[list[SendGridEvent]]):
    """The array SendGrid posts (a batch of events)."""


def _sendgrid_events(batch: SendGridEvents, now: datetime) -> Iterator[InboundChannelEvent]:
    for item in batch.root:
        # sg_message_id is the X-Message-Id of the send, followed by ".filter..." routing.
        message_id = item.sg_message_id.split(".", 1)[0] if item.sg_message_id else None
        common: dict[str, Any] = {
            "event_id": item.sg_event_id,
            "channel": Channel.EMAIL,
            "provider_message_id": message_id,
            "address": item.email.strip().lower() if item.email else None,
            "occurred_at": _time(item.timestamp, now),
            "detail": item.reason,
        }
        if item.event == "delivered":
            yield _event("sendgrid", now, kind=InboundKind.DELIVERED, **common)
        elif item.event in ("bounce", "deferred"):
            hard = item.event == "bounce" and item.type not in SENDGRID_SOFT_BOUNCE_TYPES
            yield _event("sendgrid", now, kind=InboundKind.BOUNCED, hard_bounce=hard, **common)
        elif item.event in SENDGRID_OPT_OUTS:
            yield _event("sendgrid", now, kind=InboundKind.OPT_OUT, **common)
        elif item.event == "inbound":
            yield _event("sendgrid", now, kind=InboundKind.REPLY, text=item.text, **common)


EMAIL_DESCRIPTION = """Email events from SendGrid's signed Event Webhook. Headers
`X-Twilio-Email-Event-Webhook-Signature` (base64 ECDSA P-256/SHA-256 signature of the
`X-Twilio-Email-Event-Webhook-Timestamp` value followed by the raw body) verified with
`EMAIL_WEBHOOK_PUBLIC_KEY`. Body: SendGrid's JSON array of events; `delivered` → DELIVERED,
`bounce` → hard bounce (`type: blocked` and `deferred` are soft), `unsubscribe`,
`group_unsubscribe`, `spamreport` → opt-out, `inbound` (a reply relayed from Inbound Parse:
`email` = sender, `text`) → reply; others are ignored. Deduplicated by `sg_event_id`."""


async def receive_email_events(request: Request) -> Response:
    await reject_unknown_query_params(request)
    body = await request.body()
    key = _settings(request).EMAIL_WEBHOOK_PUBLIC_KEY
    if key is None or not verify_sendgrid(
        body,
        request.headers.get(SENDGRID_SIGNATURE),
        request.headers.get(SENDGRID_TIMESTAMP),
        key.get_secret_value(),
    ):
        raise Unauthorized(f"invalid or missing {SENDGRID_SIGNATURE}")
    batch = parse(SendGridEvents, body, "SendGrid events")
    now = await get_now(request)
    return await _publish_all(request, list(_sendgrid_events(batch, now)))


_route(
    "/email",
    receive_email_events,
    "Receive SendGrid email events (signed webhook)",
    EMAIL_DESCRIPTION,
    _headers_doc(
        [
            {
                "event": "delivered",
                "email": "dana@acme.example",
                "timestamp": 1765015200,
                "sg_event_id": "sg-evt-1",
                "sg_message_id": "sg-msg-1",
            }
        ],
        (SENDGRID_SIGNATURE, "base64 ECDSA signature of timestamp + body"),
        (SENDGRID_TIMESTAMP, "the signed timestamp"),
    ),
)


# --- SMS: Twilio ----------------------------------------------------------------------------

TWILIO_SIGNATURE = "x-twilio-signature"
TWILIO_IDEMPOTENCY = "i-twilio-idempotency-token"
# Error codes of an undelivered SMS that say the number cannot take messages at all.
TWILIO_HARD_BOUNCES = frozenset({"21211", "21614", "30003", "30005", "30006"})
# "Attempt to send to unsubscribed recipient": the number texted STOP.
TWILIO_UNSUBSCRIBED = "21610"


def twilio_signature(url: str, params: list[tuple[str, str]], secret: str) -> str:
    """Twilio's X-Twilio-Signature: base64 HMAC-SHA1 of the full URL followed by every POST
    parameter's name and value, sorted by name."""
    data = url + "".join(name + value for name, value in sorted(params))
    return base64.b64encode(
        hmac.new(secret.encode(), data.encode(), hashlib.sha1).digest()
    ).decode()


def _twilio_events(
    fields: dict[str, str], request: Request, now: datetime
) -> Iterator[InboundChannelEvent]:
    sid = fields.get("MessageSid") or fields.get("SmsSid")
    if not sid:
        return  # a call status callback: nothing outreach tracks
    status_value = (fields.get("MessageStatus") or fields.get("SmsStatus") or "").lower()
    if status_value == "received" or (not status_value and "Body" in fields):
        sender = fields.get("From")
        yield _event(
            "twilio",
            now,
            event_id=_event_id(sid, field="MessageSid"),
            kind=InboundKind.REPLY,
            channel=Channel.SMS,
            address=sender,
            text=fields.get("Body", ""),
        )
        if fields.get("OptOutType", "").upper() == "STOP":
            yield _event(
                "twilio",
                now,
                event_id=f"{sid}:opt-out",
                kind=InboundKind.OPT_OUT,
                channel=Channel.SMS,
                address=sender,
            )
        return
    event_id = _event_id(
        request.headers.get(TWILIO_IDEMPOTENCY) or f"{sid}:{status_value}", field=TWILIO_IDEMPOTENCY
    )
    common: dict[str, Any] = {
        "event_id": event_id,
        "channel": Channel.SMS,
        "provider_message_id": sid,
        "address": fields.get("To"),
    }
    error = fields.get("ErrorCode", "")
    if status_value == "delivered":
        yield _event("twilio", now, kind=InboundKind.DELIVERED, **common)
    elif status_value in ("undelivered", "failed") and error == TWILIO_UNSUBSCRIBED:
        yield _event("twilio", now, kind=InboundKind.OPT_OUT, **common)
    elif status_value in ("undelivered", "failed"):
        yield _event(
            "twilio",
            now,
            kind=InboundKind.BOUNCED,
            hard_bounce=error in TWILIO_HARD_BOUNCES,
            detail=f"Twilio {status_value} (error {error or 'none'})",
            **common,
        )


TWILIO_DESCRIPTION = """SMS from Twilio: incoming messages (replies) and message status callbacks,
form-encoded as Twilio sends them. `X-Twilio-Signature` = base64 HMAC-SHA1, keyed with
`TWILIO_WEBHOOK_SECRET` (the account's auth token), of this URL followed by every parameter's
name and value sorted by name. An incoming message is a reply (`OptOutType=STOP`, or a stop
phrase, also an opt-out), deduplicated by `MessageSid`; a status callback `delivered` →
DELIVERED, `undelivered`/`failed` → bounce (hard for error 21211, 21614, 30003, 30005, 30006;
21610 is an opt-out), deduplicated by `I-Twilio-Idempotency-Token` (else `MessageSid` and
status)."""


async def receive_twilio_events(request: Request) -> Response:
    await reject_unknown_query_params(request)
    body = await request.body()
    try:
        params = parse_qsl(body.decode(), keep_blank_values=True, strict_parsing=bool(body))
    except (UnicodeDecodeError, ValueError):
        params = []
    signature = request.headers.get(TWILIO_SIGNATURE)
    url = str(request.url)
    if not any(
        secret_matches(signature, twilio_signature(url, params, secret))
        for secret in _settings(request).accepted_secrets("TWILIO_WEBHOOK")
    ):
        raise Unauthorized(f"invalid or missing {TWILIO_SIGNATURE}")
    now = await get_now(request)
    return await _publish_all(request, list(_twilio_events(dict(params), request, now)))


_route(
    "/twilio",
    receive_twilio_events,
    "Receive Twilio SMS replies and status callbacks (signed webhook)",
    TWILIO_DESCRIPTION,
    _headers_doc(
        {
            "MessageSid": "SM0123456789abcdef0123456789abcdef",
            "From": "+447700900123",
            "To": "+14155550100",
            "Body": "Happy to talk on Thursday",
        },
        (TWILIO_SIGNATURE, "base64 HMAC-SHA1 of URL + sorted parameters"),
        (TWILIO_IDEMPOTENCY, "Twilio's id of this callback (status callbacks)"),
        content_type="application/x-www-form-urlencoded",
    ),
)


# --- WhatsApp -------------------------------------------------------------------------------

WHATSAPP_SIGNATURE = "x-hub-signature-256"
# Cloud API error of a failed status that says the number cannot receive WhatsApp messages.
WHATSAPP_HARD_BOUNCES = frozenset({131026})


def _whatsapp_text(message: dict[str, Any]) -> str | None:
    for field, key in (("text", "body"), ("button", "text"), ("interactive", "type")):
        part = message.get(field)
        if isinstance(part, dict) and isinstance(part.get(key), str):
            return str(part[key])
    return None


def _whatsapp_values(payload: Any) -> Iterator[dict[str, Any]]:
    entries = payload.get("entry") if isinstance(payload, dict) else None
    for entry in entries if isinstance(entries, list) else []:
        changes = entry.get("changes") if isinstance(entry, dict) else None
        for change in changes if isinstance(changes, list) else []:
            value = change.get("value") if isinstance(change, dict) else None
            if isinstance(value, dict):
                yield value


def _phone(value: object) -> str | None:
    """WhatsApp ids are E.164 digits without the plus."""
    return None if value is None else "+" + str(value).lstrip("+")


def _whatsapp_events(payload: Any, now: datetime) -> Iterator[InboundChannelEvent]:
    for value in _whatsapp_values(payload):
        for message in value.get("messages") or []:
            if not isinstance(message, dict):
                continue
            yield _event(
                "whatsapp",
                now,
                event_id=_event_id(message.get("id"), field="messages.id"),
                kind=InboundKind.REPLY,
                channel=Channel.WHATSAPP,
                address=_phone(message.get("from")),
                text=_whatsapp_text(message),
                occurred_at=_time(message.get("timestamp"), now),
            )
        for report in value.get("statuses") or []:
            if not isinstance(report, dict):
                continue
            state = str(report.get("status", "")).lower()
            common: dict[str, Any] = {
                "event_id": _event_id(f"{report.get('id')}:{state}", field="statuses.id"),
                "channel": Channel.WHATSAPP,
                "provider_message_id": report.get("id"),
                "address": _phone(report.get("recipient_id")),
                "occurred_at": _time(report.get("timestamp"), now),
            }
            if state == "delivered":
                yield _event("whatsapp", now, kind=InboundKind.DELIVERED, **common)
            elif state == "failed":
                errors = report.get("errors") or [{}]
                code = errors[0].get("code") if isinstance(errors[0], dict) else None
                yield _event(
                    "whatsapp",
                    now,
                    kind=InboundKind.BOUNCED,
                    hard_bounce=code in WHATSAPP_HARD_BOUNCES,
                    detail=f"WhatsApp failed (error {code})",
                    **common,
                )


WHATSAPP_DESCRIPTION = """WhatsApp messages and statuses in the Cloud API webhook shape
(`entry[].changes[].value.messages[]` / `.statuses[]`). `X-Hub-Signature-256` = `sha256=` +
hex HMAC-SHA256 of the raw body keyed with `WHATSAPP_WEBHOOK_SECRET` (the app secret). A
message is a reply (deduplicated by its `id`); status `delivered` → DELIVERED, `failed` →
bounce (hard for error 131026), deduplicated by status id and state."""


async def receive_whatsapp_events(request: Request) -> Response:
    await reject_unknown_query_params(request)
    body = await request.body()
    signature = request.headers.get(WHATSAPP_SIGNATURE)
    if not any(
        verify_signature(body, signature, secret)
        for secret in _settings(request).accepted_secrets("WHATSAPP_WEBHOOK")
    ):
        raise Unauthorized(f"invalid or missing {WHATSAPP_SIGNATURE}")
    now = await get_now(request)
    return await _publish_all(request, list(_whatsapp_events(_json(body, "WhatsApp"), now)))


_route(
    "/whatsapp",
    receive_whatsapp_events,
    "Receive WhatsApp messages and statuses (signed webhook)",
    WHATSAPP_DESCRIPTION,
    _headers_doc(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": "waba-1", "changes": []}],
        },
        (WHATSAPP_SIGNATURE, "sha256= + hex HMAC-SHA256 of the body"),
    ),
)


# --- LinkedIn: Unipile ----------------------------------------------------------------------

UNIPILE_AUTH = "unipile-auth"


class UnipileSender(BaseModel):
    model_config = ConfigDict(extra="ignore")
    attendee_provider_id: str | None = Field(default=None, max_length=500)


class UnipileEvent(BaseModel):
    """Unipile's messaging webhook body (fields outreach does not need are ignored)."""

    model_config = ConfigDict(extra="ignore")

    event: str = Field(max_length=64)
    message_id: str = Field(min_length=1, max_length=EVENT_ID_MAX_LENGTH - 70)
    chat_id: str | None = Field(default=None, max_length=500)
    message: str | None = Field(default=None, max_length=20_000)
    sender: UnipileSender | None = None
    is_sender: bool = False
    timestamp: str | None = Field(default=None, max_length=64)


def _unipile_events(event: UnipileEvent, now: datetime) -> Iterator[InboundChannelEvent]:
    common: dict[str, Any] = {
        "event_id": f"{event.event}:{event.message_id}",
        "channel": Channel.LINKEDIN,
        "external_thread_id": event.chat_id,
        "occurred_at": _time(event.timestamp, now),
    }
    if event.event == "message_received" and not event.is_sender:
        sender = event.sender.attendee_provider_id if event.sender else None
        yield _event(
            "unipile", now, kind=InboundKind.REPLY, address=sender, text=event.message, **common
        )
    elif event.event == "message_delivered":
        yield _event(
            "unipile",
            now,
            kind=InboundKind.DELIVERED,
            provider_message_id=event.message_id,
            **common,
        )


LINKEDIN_DESCRIPTION = """LinkedIn messages through Unipile's messaging webhook. Header
`Unipile-Auth` (set when the webhook was created) must equal `LINKEDIN_WEBHOOK_SECRET`.
`message_received` from the expert → reply (matched by `chat_id`, else the sender's provider
id), `message_delivered` → DELIVERED; others are ignored. Deduplicated by event and
`message_id`."""


async def receive_linkedin_events(request: Request) -> Response:
    await reject_unknown_query_params(request)
    provided = request.headers.get(UNIPILE_AUTH)
    if not any(
        secret_matches(provided, secret)
        for secret in _settings(request).accepted_secrets("LINKEDIN_WEBHOOK")
    ):
        raise Unauthorized(f"invalid or missing {UNIPILE_AUTH}")
    event = parse(UnipileEvent, await request.body(), "Unipile event")
    now = await get_now(request)
    return await _publish_all(request, list(_unipile_events(event, now)))


_route(
    "/linkedin",
    receive_linkedin_events,
    "Receive Unipile LinkedIn messages (signed webhook)",
    LINKEDIN_DESCRIPTION,
    _headers_doc(
        {
            "event": "message_received",
            "message_id": "unipile-msg-1",
            "chat_id": "unipile-chat-1",
            "message": "Thanks, sounds interesting",
        },
        (UNIPILE_AUTH, "the secret given to Unipile's webhook"),
    ),
)


# --- Telegram -------------------------------------------------------------------------------

TELEGRAM_SECRET = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name


def _telegram_events(update: Any, now: datetime) -> Iterator[InboundChannelEvent]:
    if not isinstance(update, dict):
        raise InvalidPayload("a Telegram update is a JSON object", details={"field": "body"})
    event_id = _event_id(update.get("update_id"), field="update_id")
    message = update.get("message")
    if isinstance(message, dict):
        chat = message.get("chat") or {}
        yield _event(
            "telegram",
            now,
            event_id=event_id,
            kind=InboundKind.REPLY,
            channel=Channel.TELEGRAM,
            address=str(chat.get("id")) if chat.get("id") is not None else None,
            text=message.get("text") or message.get("caption"),
            occurred_at=_time(message.get("date"), now),
        )
    member = update.get("my_chat_member")
    if isinstance(member, dict) and (member.get("new_chat_member") or {}).get("status") == "kicked":
        chat = member.get("chat") or {}
        yield _event(  # the expert blocked the bot
            "telegram",
            now,
            event_id=event_id,
            kind=InboundKind.OPT_OUT,
            channel=Channel.TELEGRAM,
            address=str(chat.get("id")) if chat.get("id") is not None else None,
            occurred_at=_time(member.get("date"), now),
        )


TELEGRAM_DESCRIPTION = """Telegram Bot API updates (the bot's webhook). Header
`X-Telegram-Bot-Api-Secret-Token` must equal `TELEGRAM_WEBHOOK_SECRET` (the `secret_token` given
to setWebhook). A `message` is a reply (matched by its chat id); `my_chat_member` with status
`kicked` (the expert blocked the bot) is an opt-out. Deduplicated by `update_id`."""


async def receive_telegram_update(request: Request) -> Response:
    await reject_unknown_query_params(request)
    provided = request.headers.get(TELEGRAM_SECRET)
    if not any(
        secret_matches(provided, secret)
        for secret in _settings(request).accepted_secrets("TELEGRAM_WEBHOOK")
    ):
        raise Unauthorized(f"invalid or missing {TELEGRAM_SECRET}")
    update = _json(await request.body(), "Telegram update")
    now = await get_now(request)
    return await _publish_all(request, list(_telegram_events(update, now)))


_route(
    "/telegram",
    receive_telegram_update,
    "Receive a Telegram bot update (signed webhook)",
    TELEGRAM_DESCRIPTION,
    _headers_doc(
        {
            "update_id": 1001,
            "message": {"message_id": 7, "chat": {"id": 42}, "text": "stop"},
        },
        (TELEGRAM_SECRET, "the secret_token given to setWebhook"),
    ),
)


# --- other messengers: our contract ---------------------------------------------------------

MESSENGER_HEADERS = SignedWebhook(
    "x-inbound-signature", "x-inbound-timestamp", "x-inbound-event-id"
)
MessengerChannel = Literal[
    "LINE", "VIBER", "WECHAT", "KAKAOTALK", "RESPONDIO", "IMESSAGE", "VOICEMAIL"
]
MESSENGER_EVENTS: dict[str, InboundKind] = {
    "reply": InboundKind.REPLY,
    "delivered": InboundKind.DELIVERED,
    "bounced": InboundKind.BOUNCED,
    "opt_out": InboundKind.OPT_OUT,
}


class MessengerEvent(RequestModel):
    """Our contract for the messengers without a family route of their own."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "channel": "LINE",
                    "event": "reply",
                    "providerMessageId": "line-msg-1",
                    "address": "U4af4980629",
                    "text": "Yes, Thursday works",
                    "occurredAt": "2026-12-06T10:00:00Z",
                }
            ]
        }
    )

    channel: MessengerChannel
    event: Literal["reply", "delivered", "bounced", "opt_out"]
    provider_message_id: str | None = Field(default=None, max_length=500)
    thread_id: str | None = Field(default=None, max_length=500)
    address: str | None = Field(default=None, max_length=500)
    text: str | None = Field(default=None, max_length=20_000)
    hard_bounce: bool = False
    detail: str | None = Field(default=None, max_length=1000)
    occurred_at: AwareDatetime | None = None


MESSENGER_DESCRIPTION = """Replies, delivery reports, bounces and opt-outs of LINE, Viber,
WeChat, KakaoTalk, Respond.io, iMessage and voicemail, relayed in our own shape and signed like
the Yay webhook: `x-inbound-signature` = hex HMAC-SHA256 of the raw body keyed with
`MESSENGER_WEBHOOK_SECRET`, `x-inbound-timestamp` (5-minute window), `x-inbound-event-id` (the
provider's event id; a replay changes nothing). Body: `channel`, `event` (`reply`,
`delivered`, `bounced`, `opt_out`), `providerMessageId`, `threadId`, `address` (the expert's id
on the channel), `text`, `hardBounce`, `detail`, `occurredAt`."""


async def receive_messenger_event(request: Request) -> Response:
    delivery = await verify_delivery(request, MESSENGER_HEADERS, "MESSENGER_WEBHOOK")
    body = parse(MessengerEvent, delivery.body, "messenger event")
    now = delivery.received_at
    event = _event(
        "messenger",
        now,
        event_id=delivery.event_id,
        kind=MESSENGER_EVENTS[body.event],
        channel=Channel(body.channel.lower()),
        provider_message_id=body.provider_message_id,
        external_thread_id=body.thread_id,
        address=body.address,
        text=body.text,
        hard_bounce=body.hard_bounce,
        detail=body.detail,
        occurred_at=body.occurred_at or now,
    )
    return await _publish_all(request, [event])


_route(
    "/messengers",
    receive_messenger_event,
    "Receive a LINE, Viber, WeChat, KakaoTalk, Respond.io or iMessage event (signed webhook)",
    MESSENGER_DESCRIPTION,
    MESSENGER_HEADERS.openapi(MessengerEvent),
)
