"""Channel normalisation: the one table mapping what people type onto the 13 channels (§10).

Input is squashed before lookup (lower case, spaces, dashes, dots and underscores removed), so
``"Whats App"``, ``"whats-app"`` and ``"WHATSAPP"`` all meet the key ``whatsapp`` and the alias
table only lists genuinely different words and misspellings. Every API route, agent and the
sandbox use this module; no other copy of these aliases may exist.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType

from sourcing.common.errors import InvalidPayload
from sourcing.common.models.enums import Channel

# Extra spellings per channel, written squashed; the channel's own key is always accepted.
CHANNEL_ALIASES: Mapping[Channel, tuple[str, ...]] = MappingProxyType(
    {
        Channel.PHONE: ("call", "phonecall", "telephone", "tel", "voicecall", "coldcall"),
        Channel.EMAIL: ("mail", "emial", "emai", "emaill", "eml"),
        Channel.LINKEDIN: ("li", "linkdin", "linkedln", "linkein", "inmail"),
        Channel.WHATSAPP: ("wa", "whatapp", "whatsap", "watsapp", "wapp", "whatsup"),
        Channel.RESPONDIO: ("respond",),
        Channel.SMS: ("text", "txt", "textmessage", "texting"),
        Channel.IMESSAGE: ("imsg", "imesage", "imessages", "applemessage", "applemessages"),
        Channel.LINE: ("lineapp", "linemessenger"),
        Channel.WECHAT: ("weixin", "weichat", "wechatapp"),
        Channel.VIBER: ("rakutenviber", "vibr"),
        Channel.TELEGRAM: ("tg", "telegramm", "telgram"),
        Channel.KAKAOTALK: ("kakao", "kaokao", "kakotalk", "kaokaotalk", "kakaotok"),
        Channel.VOICEMAIL: ("vm", "vmdrop", "voicemaildrop", "ringlessvoicemail", "rvm"),
    }
)

_SEPARATORS = re.compile(r"[\s\-._]+")


def squash(value: str) -> str:
    """Lower case without spaces, dashes, dots or underscores: the lookup form of a name."""
    return _SEPARATORS.sub("", value.strip().lower())


def _build_lookup() -> Mapping[str, Channel]:
    lookup: dict[str, Channel] = {}
    for channel in Channel:
        for spelling in (channel.value, *CHANNEL_ALIASES.get(channel, ())):
            key = squash(spelling)
            owner = lookup.setdefault(key, channel)
            if owner is not channel:  # a typo here would silently reroute messages
                raise RuntimeError(f"alias {spelling!r} maps to both {owner} and {channel}")
    return MappingProxyType(lookup)


_LOOKUP = _build_lookup()


def api_name(channel: Channel) -> str:
    """The upper-case name the API speaks (``EMAIL``) for a normalised channel."""
    return channel.name


def valid_channel_names() -> list[str]:
    """The 13 API names in the manual's order."""
    return [api_name(channel) for channel in Channel]


class UnknownChannel(InvalidPayload):
    """A channel name that is neither one of the 13 nor a known alias (400 invalid_payload)."""

    def __init__(self, value: str) -> None:
        valid = valid_channel_names()
        super().__init__(
            f"unknown channel {value!r}; valid channels: {', '.join(valid)}",
            details={"field": "channel", "value": value, "validChannels": valid},
        )
        self.value = value


def normalize_channel(value: str) -> Channel:
    """The channel a user-supplied name means, in any case or spacing, aliases included.

    Raises :class:`UnknownChannel` (listing the valid names) when nothing matches.
    """
    channel = _LOOKUP.get(squash(value))
    if channel is None:
        raise UnknownChannel(value)
    return channel


def known_spellings() -> Mapping[str, Channel]:
    """Every accepted squashed spelling and its channel (for docs and tests)."""
    return _LOOKUP
