"""WhatsApp through 2Chat: ``POST /open/whatsapp/send-message`` with header ``X-User-API-Key``
and JSON ``{from_number, to_number, text}`` → ``{success, message_uuid}``."""

from __future__ import annotations

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


class TwoChatWhatsAppChannel(OutreachChannel):
    channel = Channel.WHATSAPP
    credential_env: ClassVar[str] = "WHATSAPP_2CHAT_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [] if secret(settings.WHATSAPP_2CHAT_API_KEY) else [cls.credential_env]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        response = await self.call(
            "POST",
            f"{self.base_url}/open/whatsapp/send-message",
            headers={"X-User-API-Key": self.credential(self.settings.WHATSAPP_2CHAT_API_KEY)},
            json={
                "from_number": self.settings.WHATSAPP_2CHAT_FROM_NUMBER,
                "to_number": message.recipient,
                "text": message.body,
            },
        )
        data = body_json(response)
        if data.get("success") is False:  # 2Chat reports some refusals inside a 200
            raise self.rejected(str(data.get("message") or data.get("error") or data))
        return SendReceipt(
            provider=self.provider,
            provider_message_id=data.get("message_uuid"),
            status="queued",
            raw=data,
        )
