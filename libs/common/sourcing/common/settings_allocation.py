"""Settings of call allocation: assignment, expiry, outcomes, signup chase.

A mixin of :class:`sourcing.common.config.Settings`; document every field in .env.example.
"""

from __future__ import annotations

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings


class AllocationSettings(BaseSettings):
    """Fields of this area (same environment-variable conventions as Settings)."""

    # An ASSIGNED task not dialled within this many seconds expires and returns to the pool.
    CALL_TASK_DIAL_DEADLINE_SECONDS: int = Field(default=300, gt=0)
    # After a RETRYABLE_REJECTION the expert is offered again no sooner than this (3 days).
    RETRY_COOL_OFF_SECONDS: int = Field(default=259_200, ge=0)
    # A signup-link outcome schedules a chase call this long after (manual §4.5: 24 h).
    SIGNUP_CHASE_DELAY_SECONDS: int = Field(default=86_400, ge=0)
    # Experts are called only between these local hours of their own timezone [start, end).
    CALLING_WINDOW_START_HOUR: int = Field(default=9, ge=0, le=23)
    CALLING_WINDOW_END_HOUR: int = Field(default=20, ge=1, le=24)
    # A task request after this long without one starts a new shift (shift_started_at = now).
    CALLER_SHIFT_GAP_SECONDS: int = Field(default=14_400, gt=0)
    # A caller is online from their first task request of a shift until this long passes
    # without a task request or a call event (Yay); offline callers get no tasks, and their
    # undialled (ASSIGNED) task returns to the pool.
    CALLER_PRESENCE_TIMEOUT_SECONDS: int = Field(default=900, gt=0)
    # Most stale assignments one expiry sweep returns to the pool.
    ALLOCATION_EXPIRY_BATCH_SIZE: int = Field(default=500, ge=1, le=10_000)
    # The gateway sweeps every caller's stale assignments back to the pool at most this often
    # (0: on every task request); a caller's own stale task is always expired before they get
    # a new one, and the call-allocation agent sweeps on every message.
    ALLOCATION_EXPIRY_SWEEP_SECONDS: float = Field(default=5.0, ge=0)

    @model_validator(mode="after")
    def _window_is_not_empty(self) -> AllocationSettings:
        if self.CALLING_WINDOW_START_HOUR == self.CALLING_WINDOW_END_HOUR:
            raise ValueError("CALLING_WINDOW_START_HOUR and CALLING_WINDOW_END_HOUR must differ")
        return self
