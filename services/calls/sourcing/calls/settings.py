"""Settings of the calls pipeline: Yay events, call validation, caller performance.

Its own fields on :class:`~sourcing.people.settings.CallingSettings`, which holds the calling
window and the shift gap that allocation applies too; the rules that read them are in
:mod:`sourcing.calls.service`. Document every field in .env.example.
"""

from __future__ import annotations

from pydantic import Field

from sourcing.people.settings import CallingSettings


class CallSettings(CallingSettings):
    """What the calls process reads (and validates at start-up)."""

    # An answered call that talked for less than this many seconds is a short call (fraud signal).
    SHORT_CALL_SECONDS: int = Field(default=5, ge=1)
    # A caller is in WARMUP_GRACE for this many minutes after the shift starts.
    WARMUP_GRACE_MINUTES: int = Field(default=5, ge=0)
    # The dial rate is the number of dials in this trailing window...
    DIAL_RATE_WINDOW_MINUTES: int = Field(default=5, ge=1)
    # ...and it is low (AT_RISK) when fewer than this many dials fall in the window.
    MIN_DIALS_PER_WINDOW: int = Field(default=1, ge=1)
    # A caller AT_RISK for this many minutes is PAUSED_LOW_DIAL_RATE (the "5-minute warning").
    AT_RISK_WARNING_MINUTES: int = Field(default=5, ge=0)
    # RESTRICTED_FRAUD when a caller's short calls in the performance window reach this count.
    FRAUD_SHORT_CALLS_THRESHOLD: int = Field(default=3, ge=1)
    # RESTRICTED_FRAUD when a caller's timezone mismatches in the performance window reach this.
    FRAUD_TIMEZONE_MISMATCHES_THRESHOLD: int = Field(default=3, ge=1)
    # Rolling window of the performance snapshot (dials, connections, short calls, mismatches).
    PERFORMANCE_WINDOW_MINUTES: int = Field(default=60, ge=1)
    # Dials per performance window that earn the full dial component of the performance score.
    PERFORMANCE_TARGET_DIALS: int = Field(default=30, ge=1)
