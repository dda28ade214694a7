"""Timezone from country: only where every zone of the country keeps the same offsets."""

from __future__ import annotations

import pytest

from sourcing.people.timezones import timezone_for_country


@pytest.mark.parametrize(
    ("country", "zone"),
    [
        ("GB", "Europe/London"),
        ("uk", "Europe/London"),
        ("DE", "Europe/Berlin"),
        ("FR", "Europe/Paris"),
        ("IN", "Asia/Kolkata"),
        ("US", None),
        ("CA", None),
        ("AU", None),
        ("XX", None),
        (None, None),
    ],
)
def test_timezone_for_country(country: str | None, zone: str | None) -> None:
    assert timezone_for_country(country) == zone
