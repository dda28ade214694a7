"""An expert's timezone from their country, where the country's clocks all agree.

Read from the IANA ``zone.tab`` (the system's tz database, else the ``tzdata`` package that
``zoneinfo`` itself falls back to). A country gets its first listed zone when all its zones
keep the same UTC offsets in January and July (DE: Berlin and Busingen; GB: London).
Countries whose zones differ (US, CA, AU, RU, BR, ES with the Canaries, ...) get no timezone:
guessing one would put calls hours off; enrichment or an operator fills it in later.
"""

from __future__ import annotations

import zoneinfo
from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from importlib import resources
from pathlib import Path


def _zone_tab_text() -> str | None:
    for directory in zoneinfo.TZPATH:
        path = Path(directory) / "zone.tab"
        if path.is_file():
            return path.read_text(encoding="utf-8")
    try:
        return (resources.files("tzdata") / "zoneinfo" / "zone.tab").read_text(encoding="utf-8")
    except (ModuleNotFoundError, FileNotFoundError, OSError):
        return None


@cache
def _zones_by_country() -> dict[str, tuple[str, ...]]:
    zones: defaultdict[str, list[str]] = defaultdict(list)
    for line in (_zone_tab_text() or "").splitlines():
        if not line or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) >= 3:
            zones[fields[0].strip().upper()].append(fields[2].strip())
    return {country: tuple(names) for country, names in zones.items()}


def timezone_for_country(country_iso: str | None) -> str | None:
    """The IANA zone of a single-zone country (GB → Europe/London), else None."""
    if not country_iso:
        return None
    code = country_iso.strip().upper()
    zones = _zones_by_country().get("GB" if code == "UK" else code, ())
    if not zones:
        return None
    return zones[0] if len({_offsets(zone) for zone in zones}) == 1 else None


@cache
def _offsets(zone: str) -> tuple[float, float]:
    try:
        tz = zoneinfo.ZoneInfo(zone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return (float("nan"), float("nan"))
    year = datetime.now(UTC).year
    winter = datetime(year, 1, 15, 12, tzinfo=tz).utcoffset()
    summer = datetime(year, 7, 15, 12, tzinfo=tz).utcoffset()
    return (
        winter.total_seconds() if winter is not None else float("nan"),
        summer.total_seconds() if summer is not None else float("nan"),
    )
