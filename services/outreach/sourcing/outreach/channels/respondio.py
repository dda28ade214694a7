"""Respond.io: ``POST /v2/contact/{identifier}/message`` (Bearer token) with
``{channelId?, message:{type:"text", text}}`` → ``{contactId, messageId}``.

The identifier is ``phone:+E164``, ``email:<address>`` or ``id:<n>``; a bare phone number or
email recipient is prefixed here.
"""

from __future__ import annotations

from typing import Any, ClassVar
from urllib.parse import quote

from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import (
    OutboundMessage,
    OutreachChannel,
    SendReceipt,
    body_json,
    secret,
)
from sourcing.outreach.channels.settings import ChannelSettings

_PREFIXES = ("phone:", "email:", "id:")


def respondio_identifier(recipient: str) -> str:
    """``phone:+E164`` / ``email:x`` / ``id:n`` for a recipient given bare or prefixed."""
    value = recipient.strip()
    if value.lower().startswith(_PREFIXES):
        return value
    if "@" in value:
        return f"email:{value}"
    digits = value.replace(" ", "").replace("-", "")
    if digits.startswith("+") or digits.isdigit():
        return f"phone:{digits if digits.startswith('+') else '+' + digits}"
    return f"id:{value}"


class RespondIoChannel(OutreachChannel):
    channel = Channel.RESPONDIO
    credential_env: ClassVar[str] = "RESPONDIO_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [] if secret(settings.RESPONDIO_API_KEY) else [cls.credential_env]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        identifier = quote(respondio_identifier(message.recipient), safe=":+@")
        payload: dict[str, Any] = {"message": {"type": "text", "text": message.body}}
        if self.settings.RESPONDIO_CHANNEL_ID is not None:
            payload = {"channelId": self.settings.RESPONDIO_CHANNEL_ID, **payload}
        response = await self.call(
            "POST",
            f"{self.base_url}/v2/contact/{identifier}/message",
            headers={"Authorization": f"Bearer {self.credential(self.settings.RESPONDIO_API_KEY)}"},
            json=payload,
        )
        data = body_json(response)
        message_id = data.get("messageId")
        return SendReceipt(
            provider=self.provider,
            provider_message_id=None if message_id is None else str(message_id),
            status="queued",
            raw=data,
        )
