"""iMessage through Sendblue (Twilio has no iMessage).

``POST /api/send-message`` with headers ``sb-api-key-id`` (``IMESSAGE_API_KEY``) and
``sb-api-secret-key`` (``IMESSAGE_API_SECRET``), JSON ``{number, from_number, content}`` →
``{message_handle, status:"QUEUED"|..., error_code, error_message, ...}``.
"""

from __future__ import annotations

from typing import ClassVar

from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import (
    OutboundMessage,
    OutreachChannel,
    ReceiptStatus,
    SendReceipt,
    body_json,
    secret,
)
from sourcing.outreach.channels.settings import ChannelSettings

_STATUSES: dict[str, ReceiptStatus] = {
    "REGISTERED": "queued",
    "PENDING": "queued",
    "QUEUED": "queued",
    "ACCEPTED": "queued",
    "SENT": "sent",
    "DELIVERED": "delivered",
    "READ": "delivered",
    "FAILED": "failed",
    "ERROR": "failed",
    "DECLINED": "failed",
}


class SendblueIMessageChannel(OutreachChannel):
    channel = Channel.IMESSAGE
    credential_env: ClassVar[str] = "IMESSAGE_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [
            name
            for name, value in (
                ("IMESSAGE_API_KEY", settings.IMESSAGE_API_KEY),
                ("IMESSAGE_API_SECRET", settings.IMESSAGE_API_SECRET),
            )
            if not secret(value)
        ]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        response = await self.call(
            "POST",
            f"{self.base_url}/api/send-message",
            headers={
                "sb-api-key-id": self.credential(self.settings.IMESSAGE_API_KEY),
                "sb-api-secret-key": self.credential(self.settings.IMESSAGE_API_SECRET),
            },
            json={
                "number": message.recipient,
                "from_number": self.settings.IMESSAGE_FROM_NUMBER,
                "content": message.body,
            },
        )
        data = body_json(response)
        status = _STATUSES.get(str(data.get("status", "")).upper(), "queued")
        if status == "failed":
            raise self.rejected(
                str(data.get("error_message") or data.get("message") or data),
                code=data.get("error_code"),
            )
        return SendReceipt(
            provider=self.provider,
            provider_message_id=data.get("message_handle"),
            status=status,
            raw=data,
        )
