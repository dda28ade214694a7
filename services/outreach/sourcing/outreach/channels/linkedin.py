"""LinkedIn through Unipile (LinkedIn has no public messaging API).

New conversation: ``POST {DSN}/api/v1/chats`` (multipart: ``account_id``, ``attendees_ids``,
``text``) → 201 ``{object:"ChatStarted", chat_id, message_id}``. Follow-up in a known chat
(``thread_ref``): ``POST /api/v1/chats/{chat_id}/messages`` (multipart ``text``) →
``{object:"MessageSent", message_id}``. Header ``X-API-KEY``. Unipile advises 10-20 s between
messages of one account: pacing belongs to the caller, not to this adapter.
"""

from __future__ import annotations

from typing import ClassVar
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


class UnipileLinkedInChannel(OutreachChannel):
    channel = Channel.LINKEDIN
    credential_env: ClassVar[str] = "LINKEDIN_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        missing = [] if secret(settings.LINKEDIN_API_KEY) else [cls.credential_env]
        if not settings.LINKEDIN_ACCOUNT_ID:
            missing.append("LINKEDIN_ACCOUNT_ID")
        return missing

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        headers = {
            "X-API-KEY": self.credential(self.settings.LINKEDIN_API_KEY),
            "Accept": "application/json",
        }
        if message.thread_ref:
            url = f"{self.base_url}/api/v1/chats/{quote(message.thread_ref, safe='')}/messages"
            fields = [("text", message.body)]
        else:
            url = f"{self.base_url}/api/v1/chats"
            fields = [
                ("account_id", self.settings.LINKEDIN_ACCOUNT_ID),
                ("attendees_ids", message.recipient),
                ("text", message.body),
            ]
        response = await self.call("POST", url, headers=headers, multipart=fields)
        data = body_json(response)
        return SendReceipt(
            provider=self.provider,
            provider_message_id=data.get("message_id"),
            status="sent",
            raw=data,
            provider_thread_id=data.get("chat_id") or message.thread_ref,
        )
