"""SMS and phone through Twilio's REST API (form-encoded, HTTP Basic auth).

Auth is an API key pair (``TWILIO_API_KEY`` + ``TWILIO_API_SECRET``) when both are set, else
the account's ``TWILIO_ACCOUNT_SID`` + ``TWILIO_AUTH_TOKEN``; the account SID is in the path
either way. Twilio has no idempotency key, so nothing is sent for it.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar
from xml.sax.saxutils import escape

from sourcing.common.models.enums import Channel
from sourcing.common.outbound import sandbox_enabled
from sourcing.outreach.channels.base import (
    OutboundMessage,
    OutreachChannel,
    ReceiptStatus,
    SendReceipt,
    body_json,
    secret,
)
from sourcing.outreach.channels.settings import ChannelSettings

API_VERSION = "2010-04-01"
# Account SID used against the sandbox when none is configured.
SANDBOX_ACCOUNT_SID = "AC" + "0" * 32

# Twilio message/call statuses → ours. Unknown ones count as queued (Twilio accepted the request).
_STATUSES: dict[str, ReceiptStatus] = {
    "accepted": "queued",
    "scheduled": "queued",
    "queued": "queued",
    "initiated": "queued",
    "ringing": "sent",
    "in-progress": "sent",
    "sending": "sent",
    "sent": "sent",
    "completed": "delivered",
    "delivered": "delivered",
    "read": "delivered",
    "failed": "failed",
    "undelivered": "failed",
    "canceled": "failed",
    "busy": "failed",
    "no-answer": "failed",
}


def twilio_auth(settings: ChannelSettings) -> tuple[str, str] | None:
    """Basic-auth pair: API key + secret when both set, else account SID + auth token."""
    key, key_secret = secret(settings.TWILIO_API_KEY), secret(settings.TWILIO_API_SECRET)
    if key and key_secret:
        return key, key_secret
    sid, token = settings.TWILIO_ACCOUNT_SID, secret(settings.TWILIO_AUTH_TOKEN)
    if sid and token:
        return sid, token
    return None


class _TwilioChannel(OutreachChannel):
    credential_env: ClassVar[str] = "TWILIO_API_KEY"
    resource: ClassVar[str]

    @classmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        missing = [] if settings.TWILIO_ACCOUNT_SID else ["TWILIO_ACCOUNT_SID"]
        if twilio_auth(settings) is None:
            missing.append("TWILIO_API_KEY + TWILIO_API_SECRET (or TWILIO_AUTH_TOKEN)")
        return missing

    @abstractmethod
    def form(self, message: OutboundMessage) -> dict[str, str]:
        """The form fields of the request."""

    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        sid = self.settings.TWILIO_ACCOUNT_SID or SANDBOX_ACCOUNT_SID
        if sandbox_enabled(self.settings):
            auth = (sid, self.credential(None))
        else:
            pair = twilio_auth(self.settings)
            assert pair is not None  # noqa: S101 - narrows the type: send() checked the settings
            auth = pair
        response = await self.call(
            "POST",
            f"{self.base_url}/{API_VERSION}/Accounts/{sid}/{self.resource}",
            data=self.form(message),
            auth=auth,
        )
        data = body_json(response)
        return SendReceipt(
            provider=self.provider,
            provider_message_id=data.get("sid"),
            status=_STATUSES.get(str(data.get("status", "")).lower(), "queued"),
            raw=data,
        )


class TwilioSmsChannel(_TwilioChannel):
    """``POST /2010-04-01/Accounts/{Sid}/Messages.json`` with ``To``, ``From``/``Body``."""

    channel = Channel.SMS
    resource = "Messages.json"

    def form(self, message: OutboundMessage) -> dict[str, str]:
        sender = self.settings.TWILIO_MESSAGING_SERVICE_SID
        origin = (
            {"MessagingServiceSid": sender}
            if sender
            else {"From": self.settings.TWILIO_FROM_NUMBER}
        )
        return {"To": message.recipient, **origin, "Body": message.body}


class TwilioPhoneChannel(_TwilioChannel):
    """``POST /2010-04-01/Accounts/{Sid}/Calls.json``: a call that reads the body (TwiML Say)."""

    channel = Channel.PHONE
    resource = "Calls.json"

    def form(self, message: OutboundMessage) -> dict[str, str]:
        twiml = f"<Response><Say>{escape(message.body)}</Say></Response>"
        return {"To": message.recipient, "From": self.settings.TWILIO_FROM_NUMBER, "Twiml": twiml}
