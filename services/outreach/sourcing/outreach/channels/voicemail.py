"""Ringless voicemail drop through Slybroadcast's JSON gateway.

``POST /gateway/vmb.json.php`` form-encoded: ``c_uid`` (account), ``c_password``
(``VOICEMAIL_DROP_API_KEY``), ``c_method=new_campaign``, ``c_phone``, ``c_callerID``,
``c_date=now`` and the audio: ``c_url`` + ``c_audio`` (file type) when the message body is an
audio URL, else ``c_record_audio`` naming a recording stored in the account (a voicemail cannot
speak arbitrary text). Answers HTTP 200 either way: ``{"new_campaign":"OK", "session_id":...}``
or ``{"ERROR": "..."}``. Our message id is the campaign title, for matching dispositions.
"""

from __future__ import annotations

import re
from typing import ClassVar
from urllib.parse import urlparse

from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import (
    OutboundMessage,
    OutreachChannel,
    SendReceipt,
    body_json,
    secret,
)
from sourcing.outreach.channels.settings import ChannelSettings

AUDIO_TYPES = ("mp3", "wav", "m4a")
_FORMATTING = re.compile(r"[\s\-().+]")


def gateway_number(phone: str) -> str:
    """A phone number as the gateway takes it: no ``+``, spaces, dashes, dots or brackets."""
    return _FORMATTING.sub("", phone)


def audio_fields(body: str, recording: str) -> dict[str, str]:
    """``c_url``/``c_audio`` for an audio URL body, else ``c_record_audio``."""
    text = body.strip()
    parsed = urlparse(text)
    if parsed.scheme in ("http", "https") and parsed.netloc and " " not in text:
        extension = parsed.path.rsplit(".", 1)[-1].lower() if "." in parsed.path else ""
        return {"c_url": text, "c_audio": extension if extension in AUDIO_TYPES else "mp3"}
    return {"c_record_audio": recording}


class SlybroadcastVoicemailChannel(OutreachChannel):
    channel = Channel.VOICEMAIL
    credential_env: ClassVar[str] = "VOICEMAIL_DROP_API_KEY"

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        missing = [] if secret(settings.VOICEMAIL_DROP_API_KEY) else [cls.credential_env]
        if not settings.VOICEMAIL_DROP_ACCOUNT:
            missing.append("VOICEMAIL_DROP_ACCOUNT")
        return missing

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        form = {
            "c_uid": self.settings.VOICEMAIL_DROP_ACCOUNT,
            "c_password": self.credential(self.settings.VOICEMAIL_DROP_API_KEY),
            "c_method": "new_campaign",
            "c_phone": gateway_number(message.recipient),
            "c_callerID": gateway_number(self.settings.VOICEMAIL_DROP_CALLER_ID),
            "c_date": "now",
            "c_title": message.idempotency_key,
            **audio_fields(message.body, self.settings.VOICEMAIL_DROP_AUDIO_NAME),
        }
        response = await self.call("POST", f"{self.base_url}/gateway/vmb.json.php", data=form)
        data = body_json(response)
        if "ERROR" in data or str(data.get("new_campaign", "")).upper() != "OK":
            raise self.rejected(str(data.get("ERROR") or response.text[:300]))
        session_id = data.get("session_id")
        return SendReceipt(
            provider=self.provider,
            provider_message_id=None if session_id is None else str(session_id),
            status="queued",
            raw=data,
        )
