"""Shared pieces of the channel adapter tests: settings, recordings, request decoding."""

from __future__ import annotations

import base64
import json
import uuid
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx

from sourcing.common.http import RetryPolicy
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels import OutboundMessage
from sourcing.outreach.channels.settings import ChannelSettings
from tests.fixtures.settings import Settings

RECORDINGS = Path(__file__).parent / "recordings"
# Three attempts, no waiting: retries are exercised without slowing the suite down.
FAST_RETRY = RetryPolicy(attempts=3, base_seconds=0.0, cap_seconds=0.0, max_retry_after_seconds=0.0)
ACCOUNT_SID = "AC" + "a" * 32

# Every channel credential set, so a test removes exactly the one it is about.
CREDENTIALS: dict[str, Any] = {
    "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
    "TWILIO_AUTH_TOKEN": "twilio-auth-token",
    "EMAIL_PROVIDER_API_KEY": "SG.test-key",
    "LINKEDIN_API_KEY": "unipile-key",
    "WHATSAPP_2CHAT_API_KEY": "UAK-2chat-key",
    "RESPONDIO_API_KEY": "respondio-token",
    "IMESSAGE_API_KEY": "sendblue-key-id",
    "IMESSAGE_API_SECRET": "sendblue-secret",
    "LINE_API_KEY": "line-channel-token",
    "WECHAT_API_KEY": "wechat-app-secret",
    "VIBER_API_KEY": "viber-auth-token",
    "TELEGRAM_BOT_TOKEN": "123456:ABC-telegram",
    "KAKAOTALK_API_KEY": "kakao-user-token",
    "VOICEMAIL_DROP_API_KEY": "slybroadcast-password",
}


class ChannelTestSettings(Settings, ChannelSettings):
    """Settings as they will be once `Settings` inherits the channel mixin."""


def make_settings(**overrides: Any) -> ChannelTestSettings:
    values = {**CREDENTIALS, **overrides}
    return ChannelTestSettings(**{k: v for k, v in values.items() if v is not None})


def recording(name: str) -> Any:
    return json.loads((RECORDINGS / f"{name}.json").read_text())


def outbound(channel: Channel, recipient: str, **fields: Any) -> OutboundMessage:
    return OutboundMessage(
        channel=channel,
        recipient=recipient,
        body=fields.pop("body", "Hi Dana, would you join a paid 30-minute expert call?"),
        idempotency_key=fields.pop("idempotency_key", str(uuid.uuid4())),
        expert_id=uuid.uuid4(),
        project_id=uuid.uuid4(),
        **fields,
    )


def form_fields(request: httpx.Request) -> dict[str, str]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return {k: v[0] for k, v in parse_qs(request.content.decode(), keep_blank_values=True).items()}


def multipart_fields(request: httpx.Request) -> dict[str, list[str]]:
    content_type = request.headers["content-type"]
    assert content_type.startswith("multipart/form-data; boundary=")
    message = BytesParser(policy=policy.default).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + request.content
    )
    fields: dict[str, list[str]] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        assert isinstance(name, str) and isinstance(payload, bytes)
        fields.setdefault(name, []).append(payload.decode())
    return fields


def json_body(request: httpx.Request) -> Any:
    assert request.headers["content-type"] == "application/json"
    return json.loads(request.content)


def basic_auth(request: httpx.Request) -> tuple[str, str]:
    scheme, _, encoded = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    user, _, password = base64.b64decode(encoded).decode().partition(":")
    return user, password
