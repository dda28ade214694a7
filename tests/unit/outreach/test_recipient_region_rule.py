"""Picked recipients obey the region rule too: screening dispatch and auto outreach never fall
back to a personal mailbox for an expert who may be emailed at professional addresses only."""

from __future__ import annotations

import pytest

from sourcing.common.models import Expert, ExpertContact
from sourcing.common.models.enums import Channel, ContactType
from sourcing.outreach.service import pick_recipient
from sourcing.people.contacts import region_refusal


def expert(country: str, primary_email: str | None = None) -> Expert:
    return Expert(
        full_name="Dana Smith",
        country_iso=country,
        primary_email=primary_email,
        primary_phone="+447700900123",
    )


def email(address: str, *, professional: bool | None, primary: bool = False) -> ExpertContact:
    return ExpertContact(
        type=ContactType.EMAIL.value,
        value=address,
        channel=None,
        is_primary=primary,
        is_professional=professional,
        confidence=0.9,
    )


def test_a_personal_primary_email_is_never_the_fallback_where_the_rule_applies() -> None:
    assert pick_recipient(expert("GB", "dana@gmail.com"), [], Channel.EMAIL) is None
    assert pick_recipient(expert("US", "dana@gmail.com"), [], Channel.EMAIL) == "dana@gmail.com"


def test_a_personal_contact_is_skipped_for_a_professional_one() -> None:
    contacts = [
        email("dana@gmail.com", professional=False, primary=True),
        email("dana.smith@acme.co.uk", professional=True),
    ]
    assert pick_recipient(expert("GB"), contacts, Channel.EMAIL) == "dana.smith@acme.co.uk"
    assert pick_recipient(expert("GB"), contacts[:1], Channel.EMAIL) is None
    assert pick_recipient(expert("US"), contacts, Channel.EMAIL) == "dana@gmail.com"


@pytest.mark.parametrize("channel", [Channel.SMS, Channel.WHATSAPP, Channel.VOICEMAIL])
def test_other_channels_are_not_email_and_not_held_to_it(channel: Channel) -> None:
    assert pick_recipient(expert("GB", "dana@gmail.com"), [], channel) == "+447700900123"


def test_the_refusal_names_the_country_and_the_domain() -> None:
    reason = region_refusal("FR", "dana@orange.fr")
    assert reason is not None and "FR" in reason and "orange.fr" in reason
    assert region_refusal("FR", "dana@totalenergies.com") is None


def test_a_suppressed_address_is_never_picked() -> None:
    contacts = [
        email("dana.smith@acme.co.uk", professional=True, primary=True),
        email("dana@acme-labs.co.uk", professional=True),
    ]
    suppressed = {"dana.smith@acme.co.uk"}
    assert pick_recipient(expert("GB"), contacts, Channel.EMAIL, suppressed) == (
        "dana@acme-labs.co.uk"
    )
    assert pick_recipient(expert("GB"), [], Channel.SMS, {"+447700900123"}) is None
