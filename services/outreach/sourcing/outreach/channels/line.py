"""LINE Messaging API push: ``POST /v2/bot/message/push`` (Bearer channel access token) with
``{to, messages:[{type:"text", text}]}`` → ``{sentMessages:[{id, quoteToken}]}``.

Our message id becomes the ``X-Line-Retry-Key`` (a UUID): LINE refuses a repeat with 409 and
``x-line-accepted-request-id``, which means the first attempt was delivered, so 409 is success.
"""

from __future__ import annotations

import uuid
from typing import ClassVar

from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import (
    OutboundMessage,
    OutreachChannel,
    SendReceipt,
    body_json,
    secret,
)
from sourcing.outreach.channels.settings import ChannelSettings

_RETRY_KEY_NAMESPACE = uuid.UUID("6f1f6c36-5d0e-4f43-9d7b-5b8f3f0f4a11")


def line_retry_key(idempotency_key: str) -> str:
    """The idempotency key as the UUID LINE requires (stable for the same key)."""
    try:
        return str(uuid.UUID(idempotency_key))
    except ValueError:
        return str(uuid.uuid5(_RETRY_KEY_NAMESPACE, idempotency_key))


class LineChannel(OutreachChannel):
    channel = Channel.LINE
    credential_env: ClassVar[str] = "LINE_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [] if secret(settings.LINE_API_KEY) else [cls.credential_env]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        response = await self.call(
            "POST",
            f"{self.base_url}/v2/bot/message/push",
            headers={
                "Authorization": f"Bearer {self.credential(self.settings.LINE_API_KEY)}",
                "X-Line-Retry-Key": line_retry_key(message.idempotency_key),
            },
            json={"to": message.recipient, "messages": [{"type": "text", "text": message.body}]},
            accept=frozenset({409}),
        )
        data = body_json(response)
        if response.status_code == 409:
            accepted = response.headers.get("x-line-accepted-request-id")
            if not accepted:  # a 409 without it is a genuine conflict
                raise self.rejected(f"HTTP 409: {data.get('message') or response.text[:300]}")
            return SendReceipt(
                provider=self.provider,
                provider_message_id=None,  # LINE does not repeat the message ids
                status="sent",
                raw={**data, "accepted_request_id": accepted},
            )
        sent = data.get("sentMessages") or [{}]
        first = sent[0] if isinstance(sent, list) and sent and isinstance(sent[0], dict) else {}
        message_id = first.get("id")
        return SendReceipt(
            provider=self.provider,
            provider_message_id=None if message_id is None else str(message_id),
            status="sent",
            raw=data,
        )
