"""KakaoTalk Message API, "send to friends" with the default text template.

``POST /v1/api/talk/friends/message/default/send`` (Bearer user access token, form-encoded):
``receiver_uuids`` = a JSON array of friend uuids (at most 5), ``template_object`` = the
template as JSON (a text template needs a ``link``) → ``{successful_receiver_uuids:[...],
failure_info:[{code, msg, receiver_uuids}]}``. Errors are ``{msg, code}``. No message id.
"""

from __future__ import annotations

import json
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

# Kakao's text template holds at most 200 characters of text.
MAX_TEXT_LENGTH = 200


class KakaoTalkChannel(OutreachChannel):
    channel = Channel.KAKAOTALK
    credential_env: ClassVar[str] = "KAKAOTALK_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [] if secret(settings.KAKAOTALK_API_KEY) else [cls.credential_env]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        if len(message.body) > MAX_TEXT_LENGTH:
            raise self.rejected(f"message text is longer than {MAX_TEXT_LENGTH} characters")
        link = self.settings.KAKAOTALK_LINK_URL
        template = {
            "object_type": "text",
            "text": message.body,
            "link": {"web_url": link, "mobile_web_url": link},
        }
        response = await self.call(
            "POST",
            f"{self.base_url}/v1/api/talk/friends/message/default/send",
            headers={"Authorization": f"Bearer {self.credential(self.settings.KAKAOTALK_API_KEY)}"},
            data={
                "receiver_uuids": json.dumps([message.recipient]),
                "template_object": json.dumps(template, ensure_ascii=False),
            },
        )
        data = body_json(response)
        if message.recipient not in (data.get("successful_receiver_uuids") or []):
            failures = data.get("failure_info") or []
            first = failures[0] if failures and isinstance(failures[0], dict) else {}
            raise self.rejected(
                f"not delivered to {message.recipient}: {first.get('msg') or data}",
                code=first.get("code"),
            )
        return SendReceipt(
            provider=self.provider, provider_message_id=None, status="sent", raw=data
        )
