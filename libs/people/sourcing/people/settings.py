"""Settings of the rules about callers that allocation and calls both apply.

One calling window and one notion of a shift and of presence: allocation offers tasks inside
them and call validation judges calls against them, so both read these fields from here.
Document every field in .env.example.
"""

from __future__ import annotations

from pydantic import Field, model_validator

from sourcing.common.config import Settings


class CallingSettings(Settings):
    """The calling window, shift and presence fields (a base of each calling context's class)."""

    # Experts are called only between these local hours of their own timezone [start, end).
    CALLING_WINDOW_START_HOUR: int = Field(default=9, ge=0, le=23)
    CALLING_WINDOW_END_HOUR: int = Field(default=20, ge=1, le=24)
    # A task request after this long without one starts a new shift (shift_started_at = now).
    CALLER_SHIFT_GAP_SECONDS: int = Field(default=14_400, gt=0)
    # A caller is online from their first task request of a shift until this long passes
    # without a task request or a call event (Yay); offline callers get no tasks, and their
    # undialled (ASSIGNED) task returns to the pool.
    CALLER_PRESENCE_TIMEOUT_SECONDS: int = Field(default=900, gt=0)

    @model_validator(mode="after")
    def _window_is_not_empty(self) -> CallingSettings:
        if self.CALLING_WINDOW_START_HOUR == self.CALLING_WINDOW_END_HOUR:
            raise ValueError("CALLING_WINDOW_START_HOUR and CALLING_WINDOW_END_HOUR must differ")
        return self
