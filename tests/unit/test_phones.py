"""Phones in E.164: national formats read in the person's country, unreadable ones kept."""

from __future__ import annotations

import pytest

from sourcing.people.phones import PhoneNumber, normalize_phone, to_e164


@pytest.mark.parametrize(
    ("given", "country", "e164"),
    [
        ("(415) 555-0100", "US", "+14155550100"),
        ("415.555.0100", "us", "+14155550100"),
        ("4155550100", "US", "+14155550100"),
        ("+1 (415) 555-0100", None, "+14155550100"),
        ("+1 415 555 0100", "GB", "+14155550100"),  # international: the country is not used
        ("020 7946 0958", "GB", "+442079460958"),
        ("020 7946 0958", "UK", "+442079460958"),  # the usual non-ISO spelling
        ("+44 (20) 7946-0958", None, "+442079460958"),
        ("0044 20 7946 0958", None, "+442079460958"),
        ("03-1234-5678", "JP", "+81312345678"),
        ("030 1234567", "DE", "+49301234567"),
    ],
)
def test_national_and_international_formats(given: str, country: str | None, e164: str) -> None:
    assert to_e164(given, country) == e164
    assert normalize_phone(given, country) == PhoneNumber(
        given=given.strip(), normalized=e164, dialable=True
    )


@pytest.mark.parametrize(
    ("given", "country"),
    [
        ("(415) 555-0100", None),  # national, no country: not guessed
        ("12345", "US"),
        ("+1 999 000 0000", None),  # no such area code
        ("call reception", "US"),
        ("", "US"),
        ("+" + "1" * 80, None),
    ],
)
def test_unreadable_numbers_are_kept_as_given_and_not_dialable(
    given: str, country: str | None
) -> None:
    assert to_e164(given, country) is None
    if given:
        number = normalize_phone(f"  {given} ", country)
        assert number == PhoneNumber(given=given, normalized=given, dialable=False)


def test_to_e164_of_nothing() -> None:
    assert to_e164(None) is None
    assert to_e164("   ", "US") is None
