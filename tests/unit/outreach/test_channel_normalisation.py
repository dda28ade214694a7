"""Channel normalisation (§10, issue 5): the 13 keys in any case/spacing, aliases, unknowns."""

from __future__ import annotations

import pytest

from sourcing.common.errors import InvalidPayload
from sourcing.common.models.enums import Channel
from sourcing.outreach.service import (
    CHANNEL_ALIASES,
    UnknownChannel,
    api_name,
    known_spellings,
    normalize_channel,
    squash,
    valid_channel_names,
)

API_NAMES = [
    "PHONE",
    "EMAIL",
    "LINKEDIN",
    "WHATSAPP",
    "RESPONDIO",
    "SMS",
    "IMESSAGE",
    "LINE",
    "WECHAT",
    "VIBER",
    "TELEGRAM",
    "KAKAOTALK",
    "VOICEMAIL",
]

# What people type → the channel it means (the examples and the usual suspects).
ALIASES: list[tuple[str, Channel]] = [
    ("kakao", Channel.KAKAOTALK),
    ("kaokao", Channel.KAKAOTALK),
    ("kakao talk", Channel.KAKAOTALK),
    ("KakaoTalk", Channel.KAKAOTALK),
    ("Kakao-Talk", Channel.KAKAOTALK),
    ("whats app", Channel.WHATSAPP),
    ("WhatsApp", Channel.WHATSAPP),
    ("wa", Channel.WHATSAPP),
    ("whats_app", Channel.WHATSAPP),
    ("e-mail", Channel.EMAIL),
    ("E-Mail", Channel.EMAIL),
    ("mail", Channel.EMAIL),
    ("email", Channel.EMAIL),
    ("emial", Channel.EMAIL),
    ("text", Channel.SMS),
    ("txt", Channel.SMS),
    ("text message", Channel.SMS),
    ("sms", Channel.SMS),
    ("linkedin", Channel.LINKEDIN),
    ("linked in", Channel.LINKEDIN),
    ("Linked-In", Channel.LINKEDIN),
    ("li", Channel.LINKEDIN),
    ("respond.io", Channel.RESPONDIO),
    ("respond io", Channel.RESPONDIO),
    ("respondio", Channel.RESPONDIO),
    ("Respond.IO", Channel.RESPONDIO),
    ("imessage", Channel.IMESSAGE),
    ("i-message", Channel.IMESSAGE),
    ("iMessage", Channel.IMESSAGE),
    ("apple messages", Channel.IMESSAGE),
    ("line", Channel.LINE),
    ("LINE", Channel.LINE),
    ("wechat", Channel.WECHAT),
    ("we chat", Channel.WECHAT),
    ("weixin", Channel.WECHAT),
    ("viber", Channel.VIBER),
    ("telegram", Channel.TELEGRAM),
    ("tg", Channel.TELEGRAM),
    ("voicemail", Channel.VOICEMAIL),
    ("voice mail", Channel.VOICEMAIL),
    ("vm drop", Channel.VOICEMAIL),
    ("vm", Channel.VOICEMAIL),
    ("phone", Channel.PHONE),
    ("call", Channel.PHONE),
    ("telephone", Channel.PHONE),
    ("phone call", Channel.PHONE),
    ("  Phone  ", Channel.PHONE),
]

UNKNOWN = ["", "   ", "fax", "pigeon", "signal", "slack", "kakaotalkx", "e mail me", "smss", "-"]


@pytest.mark.parametrize("name", API_NAMES)
def test_every_api_name_in_any_case(name: str) -> None:
    channel = Channel(name.lower())
    for spelling in (name, name.lower(), name.title(), f"  {name}\t"):
        assert normalize_channel(spelling) is channel
    assert api_name(channel) == name


def test_the_table_is_built_on_the_enum() -> None:
    assert valid_channel_names() == API_NAMES
    assert [api_name(channel) for channel in Channel] == API_NAMES
    assert set(known_spellings().values()) == set(Channel)
    assert set(CHANNEL_ALIASES) <= set(Channel)


@pytest.mark.parametrize(("spelling", "channel"), ALIASES)
def test_aliases_and_misspellings(spelling: str, channel: Channel) -> None:
    assert normalize_channel(spelling) is channel


@pytest.mark.parametrize(
    ("channel", "alias"),
    [(channel, alias) for channel, aliases in CHANNEL_ALIASES.items() for alias in aliases],
)
def test_every_table_alias_resolves_to_its_channel(channel: Channel, alias: str) -> None:
    assert squash(alias) == alias, "aliases are written in their squashed form"
    assert normalize_channel(alias) is channel
    assert normalize_channel(alias.upper()) is channel


@pytest.mark.parametrize("value", UNKNOWN)
def test_unknown_channels_are_a_400_listing_the_valid_ones(value: str) -> None:
    with pytest.raises(UnknownChannel) as raised:
        normalize_channel(value)
    error = raised.value
    assert isinstance(error, InvalidPayload)
    assert (error.status, error.code) == (400, "invalid_payload")
    assert error.details["validChannels"] == API_NAMES
    assert error.details["value"] == value
    for name in API_NAMES:
        assert name in error.message
    assert error.envelope()["error"]["code"] == "invalid_payload"
