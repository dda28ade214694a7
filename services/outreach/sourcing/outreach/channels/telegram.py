"""Telegram Bot API: ``POST /bot<token>/sendMessage`` with ``{chat_id, text}`` →
``{ok:true, result:{message_id, ...}}``; errors ``{ok:false, error_code, description}``
(429 adds ``parameters.retry_after``; ExternalHttp retries it)."""

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

MAX_TEXT_LENGTH = 4096


class TelegramChannel(OutreachChannel):
    channel = Channel.TELEGRAM
    credential_env: ClassVar[str] = "TELEGRAM_BOT_TOKEN"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [] if secret(settings.TELEGRAM_BOT_TOKEN) else [cls.credential_env]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        if len(message.body) > MAX_TEXT_LENGTH:
            raise self.rejected(f"message text is longer than {MAX_TEXT_LENGTH} characters")
        token = self.credential(self.settings.TELEGRAM_BOT_TOKEN)
        response = await self.call(
            "POST",
            f"{self.base_url}/bot{token}/sendMessage",
            json={"chat_id": message.recipient, "text": message.body},
        )
        data = body_json(response)
        if data.get("ok") is False:
            raise self.rejected(str(data.get("description")), code=data.get("error_code"))
        result = data.get("result")
        message_id = result.get("message_id") if isinstance(result, dict) else None
        return SendReceipt(
            provider=self.provider,
            provider_message_id=None if message_id is None else str(message_id),
            status="sent",
            raw=data,
        )
