"""The enrichment writer's phones: E.164 in the expert's country, unreadable ones not dialable."""

from __future__ import annotations

import uuid

from sourcing.enrichment.providers import FoundPhone, ProviderResult, ResultStatus
from sourcing.enrichment.service import _contact_rows


def test_vendor_phones_are_stored_in_e164_read_in_the_experts_country() -> None:
    result = ProviderResult(
        provider="leadmagic",
        status=ResultStatus.HIT,
        phones=[
            FoundPhone(number="(415) 555-0100", confidence=0.8),  # national: the vendor's way
            FoundPhone(number="+44 20 7946 0958", e164="+442079460958", confidence=0.7),
            FoundPhone(number="555-01", confidence=0.6),
        ],
        confidence=0.8,
    )
    rows = _contact_rows(result, uuid.uuid4(), uuid.uuid4(), country_iso="US")

    assert [(r["value"], r["value_normalized"], r["is_dialable"]) for r in rows] == [
        ("(415) 555-0100", "+14155550100", True),
        ("+442079460958", "+442079460958", True),
        ("555-01", "555-01", False),
    ]
