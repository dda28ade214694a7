"""Pure parts of the allocation rule: refusals, the open calling window, settings."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from sourcing.allocation.service import (
    CallerInactive,
    CallerPaused,
    CallerRestricted,
    open_window,
    refusal_for,
)
from sourcing.common.config import ConfigurationError
from sourcing.common.models import Caller
from sourcing.people.timezones import in_calling_window
from tests.fixtures.settings import load_settings

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def _caller(**fields: object) -> Caller:
    values: dict[str, object] = {
        "email": "c@example.com",
        "allocation_status": "ACTIVE",
        "is_active": True,
    }
    values.update(fields)
    return Caller(**values)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        ("ACTIVE", None),
        ("WARMUP_GRACE", None),
        ("AT_RISK", None),
        ("IDLE_NO_AVAILABLE_TASKS", None),
        ("PAUSED_LOW_DIAL_RATE", CallerPaused),
        ("RESTRICTED_FRAUD", CallerRestricted),
        ("SUSPENDED", CallerRestricted),
    ],
)
def test_refusals_by_status(status: str, error: type[Exception] | None) -> None:
    refusal = refusal_for(_caller(allocation_status=status))
    if error is None:
        assert refusal is None
    else:
        assert isinstance(refusal, error)
        assert refusal.details["howToResume"]


def test_a_deactivated_caller_is_refused_whatever_the_status() -> None:
    assert isinstance(refusal_for(_caller(is_active=False)), CallerInactive)


def test_status_codes() -> None:
    assert (CallerPaused.status, CallerPaused.code) == (409, "caller_paused")
    assert (CallerRestricted.status, CallerRestricted.code) == (403, "caller_restricted")


def test_open_window_matches_the_calls_policy() -> None:
    settings = load_settings(APP_ENV="test")
    window = open_window(NOW, settings)
    assert "America/New_York" in window.zones  # 11:00
    assert "Europe/London" in window.zones  # 15:00
    assert "Asia/Tokyo" not in window.zones  # 00:00
    assert "US" in window.countries and "JP" not in window.countries
    for name in ("America/New_York", "Asia/Tokyo", "Asia/Kathmandu", "Pacific/Chatham"):
        expected = in_calling_window(NOW, ZoneInfo(name), start_hour=9, end_hour=20)
        assert (name in window.zones) == expected


def test_a_window_over_midnight() -> None:
    settings = load_settings(
        APP_ENV="test", CALLING_WINDOW_START_HOUR=22, CALLING_WINDOW_END_HOUR=6
    )
    window = open_window(NOW, settings)
    assert "Asia/Tokyo" in window.zones and "America/New_York" not in window.zones


def test_an_empty_window_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        load_settings(APP_ENV="test", CALLING_WINDOW_START_HOUR=9, CALLING_WINDOW_END_HOUR=9)
