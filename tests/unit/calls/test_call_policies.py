"""Pure call rules: short calls, calling window and timezones, shifts, dial rate, score."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from sourcing.calls.service import (
    is_short_call,
    low_dial_rate_since,
    performance_score,
    validate_call,
)
from sourcing.people.callers import shift_start_for_dial
from sourcing.people.timezones import country_timezone, expert_timezone, in_calling_window

NEW_YORK = ZoneInfo("America/New_York")
TOKYO = ZoneInfo("Asia/Tokyo")
# 15:00 UTC = 10:00 in New York (winter, UTC-5) = 00:00 the next day in Tokyo.
AFTERNOON_UTC = datetime(2026, 11, 28, 15, 0, tzinfo=UTC)


def check(moment: datetime, talk: float | None, answered: bool, zone: ZoneInfo | None):  # type: ignore[no-untyped-def]
    return validate_call(
        dialled_at=moment,
        answered=answered,
        talk_seconds=talk,
        zone=zone,
        short_call_seconds=5,
        window_start_hour=8,
        window_end_hour=21,
    )


@pytest.mark.parametrize(
    ("answered", "talk", "short"),
    [(True, 0, True), (True, 4, True), (True, 5, False), (True, 42, False), (False, 0, False)],
)
def test_short_call_is_an_answered_call_under_the_threshold(
    answered: bool, talk: float, short: bool
) -> None:
    assert is_short_call(answered=answered, talk_seconds=talk, short_call_seconds=5) is short
    verdict = check(AFTERNOON_UTC, talk, answered, NEW_YORK)
    assert verdict.is_short_call is short
    assert [f["flag"] for f in verdict.flags] == (["SHORT_CALL"] if short else [])


def test_call_outside_the_experts_local_window_is_a_timezone_mismatch() -> None:
    in_window = check(AFTERNOON_UTC, 42, True, NEW_YORK)
    assert not in_window.timezone_mismatch and not in_window.is_fraud_signal
    assert in_window.expert_local_time == "2026-11-28T10:00:00-05:00"
    midnight_in_tokyo = check(AFTERNOON_UTC, 42, True, TOKYO)
    assert midnight_in_tokyo.timezone_mismatch and midnight_in_tokyo.is_fraud_signal
    assert midnight_in_tokyo.flags[0]["flag"] == "TIMEZONE_MISMATCH"
    assert midnight_in_tokyo.flags[0]["expertTimezone"] == "Asia/Tokyo"
    # No known timezone: no mismatch is claimed.
    assert not check(AFTERNOON_UTC, 42, True, None).timezone_mismatch


@pytest.mark.parametrize(
    ("local_hour", "minute", "inside"),
    [(7, 59, False), (8, 0, True), (20, 59, True), (21, 0, False), (3, 0, False)],
)
def test_window_edges_in_local_time(local_hour: int, minute: int, inside: bool) -> None:
    moment = datetime(2026, 7, 1, local_hour, minute, tzinfo=NEW_YORK)  # summer: UTC-4
    assert in_calling_window(moment.astimezone(UTC), NEW_YORK, start_hour=8, end_hour=21) is inside


def test_window_wrapping_midnight() -> None:
    late = datetime(2026, 7, 1, 23, 0, tzinfo=UTC)
    early = datetime(2026, 7, 1, 5, 0, tzinfo=UTC)
    noon = datetime(2026, 7, 1, 12, 0, tzinfo=UTC)
    zone = ZoneInfo("UTC")
    assert in_calling_window(late, zone, start_hour=22, end_hour=6)
    assert in_calling_window(early, zone, start_hour=22, end_hour=6)
    assert not in_calling_window(noon, zone, start_hour=22, end_hour=6)


def test_expert_timezone_falls_back_to_the_countrys_main_zone() -> None:
    assert expert_timezone("Europe/Berlin", "US") == ZoneInfo("Europe/Berlin")
    assert expert_timezone(None, "us") == NEW_YORK
    assert expert_timezone("Not/AZone", "JP") == TOKYO
    assert expert_timezone(None, "UK") == ZoneInfo("Europe/London")
    assert expert_timezone(None, None) is None
    assert country_timezone("ZZ") is None


def test_countries_outside_the_table_use_the_tz_database() -> None:
    zone = country_timezone("IS")  # Iceland: not in the curated table
    assert zone is not None and zone.key == "Atlantic/Reykjavik"


# --- shifts ---------------------------------------------------------------------------------

GAP = timedelta(hours=4)
NINE = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)


def shift(dialled_at: datetime, **known: datetime | None) -> datetime | None:
    return shift_start_for_dial(
        dialled_at=dialled_at,
        shift_started_at=known.get("shift_started_at"),
        last_dial_at=known.get("last_dial_at"),
        last_task_requested_at=known.get("last_task_requested_at"),
        shift_gap=GAP,
    )


def test_first_dial_ever_starts_the_shift() -> None:
    assert shift(NINE) == NINE


def test_shift_starts_at_the_task_request_that_preceded_the_first_dial() -> None:
    requested = NINE - timedelta(minutes=2)
    assert shift(NINE, last_task_requested_at=requested) == requested


def test_dial_within_the_gap_continues_the_shift() -> None:
    start = NINE - timedelta(hours=1)
    assert shift(NINE, shift_started_at=start, last_dial_at=NINE - timedelta(minutes=30)) is None


def test_dial_after_the_gap_starts_a_new_shift() -> None:
    yesterday = NINE - timedelta(days=1)
    assert shift(NINE, shift_started_at=yesterday, last_dial_at=yesterday) == NINE
    requested = NINE - timedelta(minutes=1)
    assert (
        shift(
            NINE,
            shift_started_at=yesterday,
            last_dial_at=yesterday,
            last_task_requested_at=requested,
        )
        == requested
    )


def test_a_late_event_of_an_old_call_never_starts_a_shift() -> None:
    assert shift(NINE - timedelta(hours=6), shift_started_at=NINE, last_dial_at=NINE) is None


# --- dial rate ------------------------------------------------------------------------------

WINDOW = timedelta(minutes=5)


def test_low_since_is_the_nth_latest_dial_plus_the_window() -> None:
    dials = [NINE + timedelta(minutes=m) for m in (1, 3, 7)]
    assert low_dial_rate_since(
        dial_times=dials, shift_started_at=NINE, window=WINDOW, min_dials=1
    ) == NINE + timedelta(minutes=12)
    assert low_dial_rate_since(
        dial_times=dials, shift_started_at=NINE, window=WINDOW, min_dials=2
    ) == NINE + timedelta(minutes=8)


def test_low_since_without_enough_dials_counts_from_the_shift_start() -> None:
    assert (
        low_dial_rate_since(dial_times=[], shift_started_at=NINE, window=WINDOW, min_dials=1)
        == NINE + WINDOW
    )
    before_shift = [NINE - timedelta(minutes=1)]
    assert (
        low_dial_rate_since(
            dial_times=before_shift, shift_started_at=NINE, window=WINDOW, min_dials=1
        )
        == NINE + WINDOW
    )


# --- performance score ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dials", "connections", "short", "mismatches", "score"),
    [
        (0, 0, 0, 0, 0.0),
        (30, 30, 0, 0, 100.0),
        (60, 30, 0, 0, 80.0),  # dial component capped at 1: 0.6 + 0.4 * 0.5
        (15, 0, 0, 0, 30.0),  # 0.6 * 0.5
        (10, 5, 2, 1, 10.0),  # 0.6 * 10/30 + 0.4 * 0.5 - 3/10 = 0.1
        (4, 4, 4, 0, 0.0),  # penalty floors the score at 0
    ],
)
def test_performance_score(
    dials: int, connections: int, short: int, mismatches: int, score: float
) -> None:
    assert (
        performance_score(
            dials=dials,
            connections=connections,
            short_calls=short,
            timezone_mismatches=mismatches,
            target_dials=30,
        )
        == score
    )
