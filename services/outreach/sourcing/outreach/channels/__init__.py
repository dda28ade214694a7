"""Outbound channel adapters: one :class:`OutreachChannel` per channel of §10."""

from sourcing.outreach.channels.base import (
    ChannelNotConfigured,
    ChannelRejected,
    ChannelUnavailable,
    OutboundMessage,
    OutreachChannel,
    ReceiptStatus,
    SendReceipt,
)
from sourcing.outreach.channels.registry import (
    ADAPTERS,
    build_channel_http,
    build_channels,
    configured_channels,
)

__all__ = [
    "ADAPTERS",
    "ChannelNotConfigured",
    "ChannelRejected",
    "ChannelUnavailable",
    "OutboundMessage",
    "OutreachChannel",
    "ReceiptStatus",
    "SendReceipt",
    "build_channel_http",
    "build_channels",
    "configured_channels",
]
