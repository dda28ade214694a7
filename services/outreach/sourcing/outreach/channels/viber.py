"""Viber Bot API: ``POST /pa/send_message`` (header ``X-Viber-Auth-Token``) with
``{receiver, type:"text", text, sender:{name}}`` → ``{status:0, status_message:"ok",
message_token}``. Viber answers HTTP 200 even for errors; a non-zero ``status`` is the error
(12 = too many requests, retried later; anything else is a rejection, e.g. 6 = not subscribed).
Our message id goes in ``tracking_data``, which Viber echoes in delivery callbacks.
"""

from __future__ import annotations

from typing import ClassVar

from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import (
    ChannelUnavailable,
    OutboundMessage,
    OutreachChannel,
    SendReceipt,
    body_json,
    secret,
)
from sourcing.outreach.channels.settings import ChannelSettings

TOO_MANY_REQUESTS = 12


class ViberChannel(OutreachChannel):
    channel = Channel.VIBER
    credential_env: ClassVar[str] = "VIBER_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [] if secret(settings.VIBER_API_KEY) else [cls.credential_env]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        response = await self.call(
            "POST",
            f"{self.base_url}/pa/send_message",
            headers={"X-Viber-Auth-Token": self.credential(self.settings.VIBER_API_KEY)},
            json={
                "receiver": message.recipient,
                "type": "text",
                "text": message.body,
                "sender": {"name": self.settings.VIBER_SENDER_NAME},
                "tracking_data": message.idempotency_key,
            },
        )
        data = body_json(response)
        status = data.get("status")
        if status != 0:
            text = f"status {status}: {data.get('status_message') or response.text[:300]}"
            if status == TOO_MANY_REQUESTS:
                raise ChannelUnavailable(self.provider, text)
            raise self.rejected(text, code=status)
        token = data.get("message_token")
        return SendReceipt(
            provider=self.provider,
            provider_message_id=None if token is None else str(token),
            status="sent",
            raw=data,
        )
