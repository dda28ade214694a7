"""Phone numbers in E.164 (``+14155550100``), the one form contacts, call tasks and Yay's
dialled numbers are stored and compared in. Pure functions, no I/O.

A number written nationally (``(415) 555-0100``) is read in the person's country (the expert's
or the lead's ``country_iso``); one written internationally (``+44 20 7123 4567``, or with the
``00`` prefix) needs no country. A number that cannot be read as a valid number of any country
is kept as given and marked not dialable: it is shown to operators but never called.
"""

from __future__ import annotations

from dataclasses import dataclass

import phonenumbers

from sourcing.people.contacts import normalize_country

# Longest text worth handing to the parser (E.164 has at most 15 digits; extensions and
# separators add some).
_MAX_LENGTH = 64


@dataclass(frozen=True, slots=True)
class PhoneNumber:
    """A phone number as stored: ``normalized`` is E.164 when ``dialable``, else the number as
    given (stripped)."""

    given: str
    normalized: str
    dialable: bool


def to_e164(value: str | None, country_iso: str | None = None) -> str | None:
    """The E.164 form of ``value`` (national formats read in ``country_iso``); None when it is
    not a valid phone number."""
    if not value or not value.strip() or len(value) > _MAX_LENGTH:
        return None
    text = value.strip()
    if text.startswith("00"):
        text = "+" + text[2:]
    region = normalize_country(country_iso)
    try:
        parsed = phonenumbers.parse(text, region if region and len(region) == 2 else None)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(parsed):
        return None
    return phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)


def normalize_phone(value: str, country_iso: str | None = None) -> PhoneNumber:
    """``value`` as stored on a contact: E.164 and dialable, or kept as given and not dialable."""
    given = value.strip()
    e164 = to_e164(given, country_iso)
    if e164 is None:
        return PhoneNumber(given=given, normalized=given, dialable=False)
    return PhoneNumber(given=given, normalized=e164, dialable=True)
