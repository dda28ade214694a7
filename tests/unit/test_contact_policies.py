"""Region rule and personal-email rule (manual §9)."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from sourcing.people.contacts import (
    EU_COUNTRIES,
    EUROPEAN_COUNTRIES,
    email_domain,
    filter_emails_for_region,
    is_personal_email,
    is_personal_email_domain,
    normalize_country,
    requires_professional_email,
)


@pytest.mark.parametrize(
    "country",
    ["CA", "GB", "AU", "DE", "FR", "IE", "ES", "PL", "SE", "NO", "IS", "LI", "CH", "UA", "RS",
     "BA", "ME", "MK", "AL", "MD", "BY", "XK", "RU", "AD", "MC", "SM", "VA", "CY", "MT",
     "JE", "GG", "IM", "GI", "FO", "AX"],
)  # fmt: skip
def test_professional_email_only_countries(country: str) -> None:
    assert requires_professional_email(country)
    assert requires_professional_email(country.lower())


@pytest.mark.parametrize(
    "country", ["US", "IN", "BR", "JP", "SG", "NZ", "ZA", "TR", "GE", "KZ", "GL"]
)
def test_other_countries_accept_personal_emails(country: str) -> None:
    assert not requires_professional_email(country)


def test_unknown_country_and_aliases() -> None:
    assert not requires_professional_email(None)
    assert not requires_professional_email("")
    assert requires_professional_email(" uk ")  # common non-ISO spelling of GB
    assert requires_professional_email("EL")  # the EU's code for Greece
    assert normalize_country("uk") == "GB"
    assert len(EU_COUNTRIES) == 27
    assert EU_COUNTRIES < EUROPEAN_COUNTRIES


@pytest.mark.parametrize(
    "address",
    [
        "jane@gmail.com", "Jane.Doe@GoogleMail.com", "j@outlook.com", "j@hotmail.co.uk",
        "j@hotmail.fr", "j@live.nl", "j@msn.com", "j@yahoo.com", "j@yahoo.co.uk", "j@yahoo.com.au",
        "j@yahoo.de", "j@ymail.com", "j@icloud.com", "j@me.com", "j@mac.com", "j@aol.com",
        "j@proton.me", "j@protonmail.com", "j@pm.me", "j@gmx.de", "j@gmx.net", "j@web.de",
        "j@mail.ru", "j@yandex.ru", "j@yandex.kz", "j@zoho.com", "j@fastmail.com", "j@hey.com",
        "j@tutanota.com", "j@qq.com", "j@163.com", "j@126.com", "j@naver.com", "j@daum.net",
        "j@hanmail.net", "j@btinternet.com", "j@orange.fr", "j@libero.it", "j@t-online.de",
        "j@seznam.cz", "j@wp.pl", "j@bigpond.com", "j@shaw.ca", "j@comcast.net",
        "x1y2@privaterelay.appleid.com", "j@mail.yahoo.co.uk.",
    ],
)  # fmt: skip
def test_personal_email_domains(address: str) -> None:
    assert is_personal_email(address)


@pytest.mark.parametrize(
    "address",
    [
        "jane@stripe.com", "jane@eu.stripe.com", "jane@microsoft.com", "jane@google.com",
        "jane@yahooinc.com", "jane@notgmail.com", "jane@gmail.company.com", "jane@live.io",
        "jane@outlook.ai", "jane@apple.com", "jane@gov.uk", "not-an-email", "jane@",
    ],
)  # fmt: skip
def test_professional_or_invalid_addresses_are_not_personal(address: str) -> None:
    assert not is_personal_email(address)


def test_domains() -> None:
    assert email_domain(" Jane@Stripe.COM ") == "stripe.com"
    assert email_domain("no-at-sign") is None
    assert is_personal_email_domain("googlemail.com")
    assert not is_personal_email_domain("co.uk")


@dataclass(frozen=True)
class Email:
    address: str
    vendor_says_personal: bool = False


def test_filter_emails_for_region() -> None:
    emails = ["jane@gmail.com", "jane@stripe.com", "j@yahoo.co.uk"]
    assert filter_emails_for_region(emails, "GB") == ["jane@stripe.com"]
    assert filter_emails_for_region(emails, "US") == emails
    assert filter_emails_for_region(emails, None) == emails
    rich = [
        Email("jane@family-domain.example", vendor_says_personal=True),
        Email("jane@stripe.com"),
    ]
    kept = filter_emails_for_region(
        rich,
        "de",
        address_of=lambda e: e.address,
        labelled_personal=lambda e: e.vendor_says_personal,
    )
    assert kept == [Email("jane@stripe.com")]
    assert filter_emails_for_region(rich, "BR", address_of=lambda e: e.address) == rich
