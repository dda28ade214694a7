"""One base class for every outreach channel, the message it sends and the receipt it returns.

Adapters send their vendor's real request through :class:`~sourcing.common.http.ExternalHttp`
(timeout, bounded retry honouring ``Retry-After``, metrics) and translate the answer:

- 2xx → :class:`SendReceipt` with the vendor's message id and a delivery status;
- 429 / 5xx / transport failure, once ExternalHttp's retries ran out →
  :class:`ChannelUnavailable` (a transient ``ProviderError``: the agent retries the message);
- any other 4xx → :class:`ChannelRejected` with the vendor's own error text (permanent);
- a channel whose credentials are unset → :class:`ChannelNotConfigured` naming the variables.
"""

from __future__ import annotations

import json
import uuid
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx
from pydantic import SecretStr

from sourcing.common.http import ExternalHttp, ProviderError
from sourcing.common.kafka.retry import TRANSIENT_HTTP_STATUSES, PermanentError, TransientError
from sourcing.common.models.enums import Channel, DeliveryStatus
from sourcing.common.outbound import SANDBOX_CREDENTIAL_PREFIX, sandbox_enabled
from sourcing.outreach.channels.settings import CHANNEL_VENDORS, ChannelSettings, channel_base_url

ReceiptStatus = Literal["queued", "sent", "delivered", "failed"]

# Client errors come back as responses so the vendor's error text can be read; the transient
# ones (408, 425, 429) stay with ExternalHttp, which retries them.
CLIENT_ERRORS = frozenset(range(400, 500)) - TRANSIENT_HTTP_STATUSES

_RECEIPT_TO_DELIVERY: Mapping[str, DeliveryStatus] = {
    "queued": DeliveryStatus.QUEUED,
    "sent": DeliveryStatus.SENT,
    "delivered": DeliveryStatus.DELIVERED,
    "failed": DeliveryStatus.FAILED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboundMessage:
    """One message to one recipient on one channel.

    ``recipient`` is what the channel addresses: an E.164 phone (phone, SMS, iMessage,
    WhatsApp, voicemail), an email, a Unipile attendee provider id (LinkedIn), a Respond.io
    identifier (``phone:+E164`` / ``email:x`` / ``id:n``, or a bare phone/email), a LINE user
    id, a WeChat OpenID, a Viber user id, a Telegram chat id or a Kakao friend uuid.
    ``idempotency_key`` is our message id, handed to vendors that deduplicate on it.
    ``thread_ref`` is the vendor's conversation id from an earlier send (LinkedIn chat id).
    """

    channel: Channel
    recipient: str
    body: str
    idempotency_key: str
    expert_id: uuid.UUID | None = None
    project_id: uuid.UUID | None = None
    subject: str | None = None
    thread_ref: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class SendReceipt:
    """What the vendor said: its message id (None when its API returns none), a status and the
    response body (never credentials)."""

    provider: str
    provider_message_id: str | None
    status: ReceiptStatus
    raw: dict[str, Any] = field(default_factory=dict)
    provider_thread_id: str | None = None

    @property
    def delivery_status(self) -> DeliveryStatus:
        """The status as stored on OutreachMessage."""
        return _RECEIPT_TO_DELIVERY[self.status]


class ChannelNotConfigured(PermanentError):
    """The channel's credentials are not set: the message fails with this reason, not retried."""

    def __init__(self, channel: Channel, missing: list[str]) -> None:
        self.channel = channel
        self.missing = missing
        super().__init__(
            f"channel {channel.name} is not configured: set {', '.join(missing)} in the environment"
        )


class ChannelRejected(ProviderError, PermanentError):
    """The vendor refused the message (4xx, or an error in a 200 body): retrying cannot help."""

    def __init__(
        self,
        provider: str,
        message: str,
        *,
        status: int | None = None,
        vendor_code: str | None = None,
    ) -> None:
        super().__init__(provider, message, status=status, transient=False)
        self.vendor_message = message
        self.vendor_code = vendor_code


class ChannelUnavailable(ProviderError, TransientError):
    """Rate limited, vendor down or unreachable after ExternalHttp's retries: try again later."""

    def __init__(self, provider: str, message: str, *, status: int | None = None) -> None:
        super().__init__(provider, message, status=status, transient=True)


def secret(value: SecretStr | None) -> str | None:
    """The plain value of an optional secret, None when unset or empty."""
    if value is None:
        return None
    plain = value.get_secret_value()
    return plain or None


def body_json(response: httpx.Response) -> dict[str, Any]:
    """The response body as a JSON object ({} when empty or not an object)."""
    if not response.content:
        return {}
    try:
        data = response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {"data": data}


_MESSAGE_KEYS = (
    "message",
    "description",
    "detail",
    "error_message",
    "errmsg",
    "status_message",
    "msg",
    "title",
    "error",
)
_CODE_KEYS = ("code", "error_code", "errcode", "status", "type")


def vendor_error(response: httpx.Response) -> tuple[str, str | None]:
    """The vendor's own error text and code from an error response, whatever its shape."""
    data = body_json(response)
    text: str | None = None
    for key in _MESSAGE_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value:
            text = value
            break
    errors = data.get("errors") or data.get("details")
    if isinstance(errors, list):
        parts = [
            str(item.get("message"))
            for item in errors
            if isinstance(item, dict) and item.get("message")
        ]
        if parts:
            text = f"{text}: {'; '.join(parts)}" if text else "; ".join(parts)
    code: str | None = None
    for key in _CODE_KEYS:
        value = data.get(key)
        if value is not None and value != response.status_code and not isinstance(value, dict):
            code = str(value)
            break
    if not text:
        text = response.text[:300] or response.reason_phrase or f"HTTP {response.status_code}"
    return text, code


class OutreachChannel(ABC):
    """Base class of the 13 channel adapters (one vendor each, registered by channel key)."""

    channel: ClassVar[Channel]
    # The §10 variable that holds the channel's credential.
    credential_env: ClassVar[str]

    def __init__(self, *, settings: ChannelSettings, http: ExternalHttp) -> None:
        self.settings = settings
        self.http = http

    @property
    def provider(self) -> str:
        """Vendor name: metrics label, sandbox path prefix, SendReceipt.provider."""
        return CHANNEL_VENDORS[self.channel]

    @property
    def base_url(self) -> str:
        return channel_base_url(self.settings, self.channel)

    @classmethod
    @abstractmethod
    def unset_settings(cls, settings: ChannelSettings) -> list[str]:
        """Names of the variables this channel needs that are unset."""

    @classmethod
    def missing_settings(cls, settings: ChannelSettings) -> list[str]:
        """What is missing before this channel can send (nothing in sandbox mode, where
        placeholder credentials are sent so a real key never reaches the sandbox)."""
        return [] if sandbox_enabled(settings) else cls.unset_settings(settings)

    @classmethod
    def is_configured(cls, settings: ChannelSettings) -> bool:
        return not cls.missing_settings(settings)

    def credential(self, value: SecretStr | None) -> str:
        """A credential to send: the configured one, or the placeholder in sandbox mode."""
        if sandbox_enabled(self.settings):
            return f"{SANDBOX_CREDENTIAL_PREFIX}{self.provider}"
        plain = secret(value)
        if plain is None:  # send() checked the settings; only a misuse gets here
            raise ChannelNotConfigured(self.channel, [self.credential_env])
        return plain

    async def send(self, message: OutboundMessage) -> SendReceipt:
        """Send one message with the vendor's real request; see the module doc for errors."""
        if message.channel is not self.channel:
            raise ValueError(f"{type(self).__name__} sends {self.channel}, not {message.channel}")
        missing = self.missing_settings(self.settings)
        if missing:
            raise ChannelNotConfigured(self.channel, missing)
        return await self.deliver(message)

    @abstractmethod
    async def deliver(self, message: OutboundMessage) -> SendReceipt:
        """The vendor call (credentials already checked)."""

    async def call(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
        data: Mapping[str, Any] | None = None,
        auth: tuple[str, str] | None = None,
        multipart: Sequence[tuple[str, str]] | None = None,
        accept: frozenset[int] = frozenset(),
    ) -> httpx.Response:
        """One vendor request; 4xx → :class:`ChannelRejected`, exhausted retries →
        :class:`ChannelUnavailable`. Statuses in ``accept`` are returned to the caller.

        ``multipart`` sends text fields as ``multipart/form-data`` (repeat a name for arrays).
        """
        # Text fields as multipart/form-data parts without a filename.
        files = [(name, (None, value)) for name, value in multipart] if multipart else None
        try:
            response = await self.http.request(
                self.provider,
                method,
                url,
                headers=headers,
                json=json,
                params=params,
                data=data,
                files=files,
                auth=auth,
                ok_statuses=CLIENT_ERRORS,
            )
        except ProviderError as exc:
            reason = str(exc).removeprefix(f"{exc.provider}: ")
            if exc.transient:
                raise ChannelUnavailable(self.provider, reason, status=exc.status) from exc
            raise ChannelRejected(self.provider, reason, status=exc.status) from exc
        if response.status_code >= 400 and response.status_code not in accept:
            text, code = vendor_error(response)
            raise ChannelRejected(
                self.provider,
                f"HTTP {response.status_code}: {text}",
                status=response.status_code,
                vendor_code=code,
            )
        return response

    def rejected(self, message: str, *, code: object = None) -> ChannelRejected:
        """A permanent failure the vendor reported inside a successful HTTP answer."""
        return ChannelRejected(
            self.provider, message, vendor_code=None if code is None else str(code)
        )
