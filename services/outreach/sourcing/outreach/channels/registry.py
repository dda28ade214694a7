"""The adapter of each channel, registered by channel key."""

from __future__ import annotations

import httpx

from sourcing.common.http import ExternalHttp
from sourcing.common.models.enums import Channel
from sourcing.outreach.channels.base import OutreachChannel
from sourcing.outreach.channels.email import SendGridEmailChannel
from sourcing.outreach.channels.imessage import SendblueIMessageChannel
from sourcing.outreach.channels.kakaotalk import KakaoTalkChannel
from sourcing.outreach.channels.line import LineChannel
from sourcing.outreach.channels.linkedin import UnipileLinkedInChannel
from sourcing.outreach.channels.respondio import RespondIoChannel
from sourcing.outreach.channels.settings import ChannelSettings
from sourcing.outreach.channels.telegram import TelegramChannel
from sourcing.outreach.channels.twilio import TwilioPhoneChannel, TwilioSmsChannel
from sourcing.outreach.channels.viber import ViberChannel
from sourcing.outreach.channels.voicemail import SlybroadcastVoicemailChannel
from sourcing.outreach.channels.wechat import WeChatChannel
from sourcing.outreach.channels.whatsapp import TwoChatWhatsAppChannel

ADAPTERS: dict[Channel, type[OutreachChannel]] = {
    adapter.channel: adapter
    for adapter in (
        TwilioPhoneChannel,
        SendGridEmailChannel,
        UnipileLinkedInChannel,
        TwoChatWhatsAppChannel,
        RespondIoChannel,
        TwilioSmsChannel,
        SendblueIMessageChannel,
        LineChannel,
        WeChatChannel,
        ViberChannel,
        TelegramChannel,
        KakaoTalkChannel,
        SlybroadcastVoicemailChannel,
    )
}
if set(ADAPTERS) != set(Channel):  # pragma: no cover - caught by any import in tests
    raise RuntimeError(f"channels without an adapter: {sorted(set(Channel) - set(ADAPTERS))}")


def build_channel_http(
    settings: ChannelSettings, *, transport: httpx.AsyncBaseTransport | None = None
) -> ExternalHttp:
    """The shared outbound client of the channel adapters (``CHANNEL_TIMEOUT_SECONDS``)."""
    return ExternalHttp(timeout_seconds=settings.CHANNEL_TIMEOUT_SECONDS, transport=transport)


def build_channels(settings: ChannelSettings, http: ExternalHttp) -> dict[Channel, OutreachChannel]:
    """One adapter per channel, configured or not: an unconfigured one raises
    :class:`~sourcing.outreach.channels.base.ChannelNotConfigured` when asked to send."""
    return {channel: adapter(settings=settings, http=http) for channel, adapter in ADAPTERS.items()}


def configured_channels(settings: ChannelSettings) -> list[Channel]:
    """The channels whose credentials are set, in the manual's order."""
    return [channel for channel in Channel if ADAPTERS[channel].is_configured(settings)]
