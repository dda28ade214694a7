"""An expert's local time: their own IANA zone, else their country's main zone; and the
calling window in it, which allocation (who may be called now) and call validation (was this
call made at a plausible hour) both apply; and the zone stored on a new expert, which is only
set where a country's clocks all agree (guessing one for the US or Russia would put calls hours
off; enrichment or an operator fills it in later)."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Final
from zoneinfo import TZPATH, ZoneInfo, ZoneInfoNotFoundError

from sourcing.people.contacts import normalize_country

# The zone most of a country's population lives in (ISO 3166-1 alpha-2 → IANA). Countries not
# listed fall back to the first zone the tz database's zone1970.tab/zone.tab names for them.
COUNTRY_MAIN_TIMEZONES: Final[dict[str, str]] = {
    "US": "America/New_York", "CA": "America/Toronto", "MX": "America/Mexico_City",
    "BR": "America/Sao_Paulo", "AR": "America/Argentina/Buenos_Aires", "CL": "America/Santiago",
    "CO": "America/Bogota", "PE": "America/Lima",
    "GB": "Europe/London", "IE": "Europe/Dublin", "FR": "Europe/Paris", "DE": "Europe/Berlin",
    "ES": "Europe/Madrid", "PT": "Europe/Lisbon", "IT": "Europe/Rome", "NL": "Europe/Amsterdam",
    "BE": "Europe/Brussels", "CH": "Europe/Zurich", "AT": "Europe/Vienna",
    "SE": "Europe/Stockholm", "NO": "Europe/Oslo", "DK": "Europe/Copenhagen",
    "FI": "Europe/Helsinki", "PL": "Europe/Warsaw", "CZ": "Europe/Prague",
    "GR": "Europe/Athens", "RO": "Europe/Bucharest", "UA": "Europe/Kyiv", "RU": "Europe/Moscow",
    "TR": "Europe/Istanbul", "IL": "Asia/Jerusalem", "AE": "Asia/Dubai", "SA": "Asia/Riyadh",
    "IN": "Asia/Kolkata", "PK": "Asia/Karachi", "CN": "Asia/Shanghai", "HK": "Asia/Hong_Kong",
    "TW": "Asia/Taipei", "JP": "Asia/Tokyo", "KR": "Asia/Seoul", "SG": "Asia/Singapore",
    "MY": "Asia/Kuala_Lumpur", "ID": "Asia/Jakarta", "TH": "Asia/Bangkok",
    "VN": "Asia/Ho_Chi_Minh", "PH": "Asia/Manila", "AU": "Australia/Sydney",
    "NZ": "Pacific/Auckland", "ZA": "Africa/Johannesburg", "NG": "Africa/Lagos",
    "KE": "Africa/Nairobi", "EG": "Africa/Cairo",
}  # fmt: skip


def _tz_table_directories() -> list[Path]:
    directories = [Path(directory) for directory in TZPATH]
    try:  # the tzdata wheel ships the same tables where the system has no tz database
        import tzdata  # type: ignore[import-untyped, unused-ignore]

        directories.append(Path(tzdata.__file__).parent / "zoneinfo")
    except ImportError:
        pass
    return directories


@cache
def _zones_by_country() -> dict[str, tuple[str, ...]]:
    """Zones per country of the tz database's ``zone.tab``, in its order (empty when absent).

    ``zone.tab`` rather than ``zone1970.tab``: the latter merges countries that have shared a
    clock since 1970 (Iceland is listed under Africa/Abidjan there).
    """
    for directory in _tz_table_directories():
        path = directory / "zone.tab"
        if not path.is_file():
            continue
        zones: defaultdict[str, list[str]] = defaultdict(list)
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("#") or not line.strip():
                continue
            columns = line.split("\t")
            if len(columns) >= 3:
                zones[columns[0].strip().upper()].append(columns[2].strip())
        if zones:
            return {country: tuple(names) for country, names in zones.items()}
    return {}


def _zone(name: str | None) -> ZoneInfo | None:
    if not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def country_timezone(country_iso: str | None) -> ZoneInfo | None:
    """The main timezone of a country (see :data:`COUNTRY_MAIN_TIMEZONES`), or None."""
    if not country_iso:
        return None
    code = normalize_country(country_iso)
    if code is None:
        return None
    return _zone(
        COUNTRY_MAIN_TIMEZONES.get(code) or next(iter(_zones_by_country().get(code, ())), None)
    )


def expert_timezone(timezone: str | None, country_iso: str | None) -> ZoneInfo | None:
    """The expert's own IANA zone when valid, else their country's main zone, else None."""
    return _zone(timezone) or country_timezone(country_iso)


def in_calling_window(moment: datetime, zone: ZoneInfo, *, start_hour: int, end_hour: int) -> bool:
    """Whether ``moment`` falls in ``[start_hour, end_hour)`` of local time in ``zone``.

    A window with ``start_hour > end_hour`` wraps midnight (e.g. 22 → 6).
    """
    local = moment.astimezone(zone)
    hour = local.hour + local.minute / 60 + local.second / 3600
    if start_hour <= end_hour:
        return start_hour <= hour < end_hour
    return hour >= start_hour or hour < end_hour


# --- call validation ------------------------------------------------------------------------


def timezone_for_country(country_iso: str | None) -> str | None:
    """The IANA zone of a single-zone country (GB → Europe/London), else None.

    A country counts as single-zone when all its ``zone.tab`` zones keep the same UTC offsets in
    January and July (DE: Berlin and Busingen); US, CA, AU, RU, BR, ES (Canaries) get none.
    """
    code = normalize_country(country_iso)
    zones = _zones_by_country().get(code, ()) if code else ()
    if not zones:
        return None
    return zones[0] if len({_offsets(zone) for zone in zones}) == 1 else None


@cache
def _offsets(zone: str) -> tuple[float, float]:
    tz = _zone(zone)
    if tz is None:
        return (float("nan"), float("nan"))
    year = datetime.now(UTC).year
    winter = datetime(year, 1, 15, 12, tzinfo=tz).utcoffset()
    summer = datetime(year, 7, 15, 12, tzinfo=tz).utcoffset()
    return (
        winter.total_seconds() if winter is not None else float("nan"),
        summer.total_seconds() if summer is not None else float("nan"),
    )
