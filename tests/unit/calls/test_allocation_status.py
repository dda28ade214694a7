"""The performance agent's allocation status rules, one row per move it makes (injected now)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sourcing.calls.service import (
    CallerActivity,
    StatusThresholds,
    evaluate_allocation_status,
)
from sourcing.common.statemachines import CALLER_ALLOCATION

THRESHOLDS = StatusThresholds(
    warmup=timedelta(minutes=5),
    dial_rate_window=timedelta(minutes=5),
    min_dials_per_window=1,
    at_risk_warning=timedelta(minutes=5),
    short_calls_threshold=3,
    timezone_mismatches_threshold=3,
)
SHIFT = datetime(2026, 11, 28, 14, 0, tzinfo=UTC)


def minutes(value: float) -> datetime:
    return SHIFT + timedelta(minutes=value)


def activity(
    status: str,
    *,
    dials: tuple[float, ...] = (),
    changed: float | None = -60,
    shift: bool = True,
    short: int = 0,
    mismatches: int = 0,
) -> CallerActivity:
    dial_times = [minutes(m) for m in dials]
    return CallerActivity(
        status=status,
        status_changed_at=minutes(changed) if changed is not None else None,
        shift_started_at=SHIFT if shift else None,
        last_dial_at=max(dial_times) if dial_times else None,
        shift_dial_times=dial_times,
        short_calls=short,
        timezone_mismatches=mismatches,
    )


CASES = [
    # (id, activity, now in minutes after shift start, expected path)
    ("shift start: ACTIVE -> WARMUP_GRACE", activity("ACTIVE"), 1, ["WARMUP_GRACE"]),
    ("new shift from AT_RISK", activity("AT_RISK"), 0.5, ["WARMUP_GRACE"]),
    ("new shift from PAUSED", activity("PAUSED_LOW_DIAL_RATE"), 0.5, ["WARMUP_GRACE"]),
    ("new shift from IDLE", activity("IDLE_NO_AVAILABLE_TASKS"), 0.5, ["WARMUP_GRACE"]),
    ("grace holds", activity("WARMUP_GRACE", changed=0), 4, []),
    ("grace over, dialling", activity("WARMUP_GRACE", dials=(1, 3), changed=0), 6, ["ACTIVE"]),
    (
        "grace over, no dial: via ACTIVE to AT_RISK",
        activity("WARMUP_GRACE", changed=0),
        6,
        ["ACTIVE", "AT_RISK"],
    ),
    ("left grace: not sent back", activity("ACTIVE", dials=(1,), changed=2), 3, []),
    ("ACTIVE keeps dialling", activity("ACTIVE", dials=(9,), changed=5), 12, []),
    ("ACTIVE -> AT_RISK", activity("ACTIVE", dials=(9,), changed=5), 14.5, ["AT_RISK"]),
    (
        "AT_RISK -> PAUSED after the warning",
        activity("AT_RISK", dials=(9,), changed=14),
        19,
        ["PAUSED_LOW_DIAL_RATE"],
    ),
    ("AT_RISK holds during the warning", activity("AT_RISK", dials=(9,), changed=14), 18, []),
    (
        "ACTIVE long idle: via AT_RISK to PAUSED",
        activity("ACTIVE", dials=(9,), changed=5),
        25,
        ["AT_RISK", "PAUSED_LOW_DIAL_RATE"],
    ),
    ("AT_RISK -> ACTIVE on a dial", activity("AT_RISK", dials=(9, 15), changed=14), 16, ["ACTIVE"]),
    (
        "PAUSED -> ACTIVE on a dial",
        activity("PAUSED_LOW_DIAL_RATE", dials=(9, 30), changed=20),
        31,
        ["ACTIVE"],
    ),
    (
        "short calls: ACTIVE -> RESTRICTED_FRAUD",
        activity("ACTIVE", dials=(9,), changed=5, short=3),
        10,
        ["RESTRICTED_FRAUD"],
    ),
    (
        "mismatches: AT_RISK -> RESTRICTED_FRAUD",
        activity("AT_RISK", dials=(9,), changed=5, mismatches=3),
        15,
        ["RESTRICTED_FRAUD"],
    ),
    (
        "fraud during grace",
        activity("WARMUP_GRACE", dials=(1, 2, 3), changed=0, short=3),
        4,
        ["RESTRICTED_FRAUD"],
    ),
    (
        "fraud while paused",
        activity("PAUSED_LOW_DIAL_RATE", changed=20, short=5),
        30,
        ["RESTRICTED_FRAUD"],
    ),
    (
        "fraud while idle",
        activity("IDLE_NO_AVAILABLE_TASKS", changed=20, mismatches=4),
        30,
        ["RESTRICTED_FRAUD"],
    ),
    ("below the fraud thresholds", activity("ACTIVE", dials=(9,), changed=5, short=2), 10, []),
    ("RESTRICTED_FRAUD waits for an admin", activity("RESTRICTED_FRAUD", dials=(9,)), 10, []),
    ("SUSPENDED waits for an admin", activity("SUSPENDED", dials=(9,), short=9), 10, []),
    ("IDLE stays without a dial", activity("IDLE_NO_AVAILABLE_TASKS", changed=20), 40, []),
    (
        "IDLE -> ACTIVE when dialling resumes",
        activity("IDLE_NO_AVAILABLE_TASKS", dials=(9, 25), changed=20),
        26,
        ["ACTIVE"],
    ),
    ("no shift yet: unchanged", activity("ACTIVE", shift=False), 30, []),
]


@pytest.mark.parametrize(
    ("current", "now", "expected"),
    [(case[1], case[2], case[3]) for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_allocation_status(current: CallerActivity, now: float, expected: list[str]) -> None:
    decision = evaluate_allocation_status(current, THRESHOLDS, now=minutes(now))
    assert list(decision.path) == expected
    assert decision.final == (expected[-1] if expected else current.status)
    assert decision.changed is bool(expected)
    previous = current.status
    for step in decision.path:  # every step is an allowed move of the machine
        CALLER_ALLOCATION.assert_transition(previous, step)
        previous = step
    assert decision.reason


def test_thresholds_come_from_settings() -> None:
    from tests.fixtures.settings import load_settings

    settings = load_settings(
        APP_ENV="test",
        JWT_SECRET="x" * 40,
        YAY_WEBHOOK_SECRET="y" * 20,
        SALES_NAV_WEBHOOK_SECRET="z" * 20,
        WARMUP_GRACE_MINUTES=2,
        AT_RISK_WARNING_MINUTES=7,
        FRAUD_SHORT_CALLS_THRESHOLD=4,
    )
    thresholds = StatusThresholds.from_settings(settings)
    assert thresholds.warmup == timedelta(minutes=2)
    assert thresholds.at_risk_warning == timedelta(minutes=7)
    assert thresholds.short_calls_threshold == 4
    # A stricter warm-up moves the same caller on sooner.
    decision = evaluate_allocation_status(
        activity("WARMUP_GRACE", dials=(1,), changed=0), thresholds, now=minutes(3)
    )
    assert decision.path == ("ACTIVE",)
