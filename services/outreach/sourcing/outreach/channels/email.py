"""Email through SendGrid v3 ``POST /v3/mail/send`` (Bearer key, JSON).

SendGrid answers 202 with an empty body and the message id in the ``X-Message-Id`` header.
It has no idempotency header; our message id travels in ``custom_args`` so delivery events
(which echo custom args) can be matched to the OutreachMessage.
"""

from __future__ import annotations

from typing import ClassVar

from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import OutboundMessage, OutreachChannel, SendReceipt, secret
from sourcing.outreach.channels.settings import ChannelSettings


class SendGridEmailChannel(OutreachChannel):
    channel = Channel.EMAIL
    credential_env: ClassVar[str] = "EMAIL_PROVIDER_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        return [] if secret(settings.EMAIL_PROVIDER_API_KEY) else [cls.credential_env]

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        key = self.credential(self.settings.EMAIL_PROVIDER_API_KEY)
        payload = {
            "personalizations": [{"to": [{"email": message.recipient}]}],
            "from": {
                "email": self.settings.EMAIL_FROM_ADDRESS,
                "name": self.settings.EMAIL_FROM_NAME,
            },
            "subject": message.subject or self.settings.EMAIL_DEFAULT_SUBJECT,
            "content": [{"type": "text/plain", "value": message.body}],
            "custom_args": {"message_id": message.idempotency_key},
        }
        response = await self.call(
            "POST",
            f"{self.base_url}/v3/mail/send",
            headers={"Authorization": f"Bearer {key}"},
            json=payload,
        )
        message_id = response.headers.get("x-message-id")
        return SendReceipt(
            provider=self.provider,
            provider_message_id=message_id,
            status="queued",  # 202: accepted for delivery; delivery comes by event webhook
            raw={"status_code": response.status_code, "x_message_id": message_id},
        )
