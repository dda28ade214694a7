"""The calls service's rules (manual §4.5, §8, §14): short calls, the expert's calling window,
the performance score and the caller allocation status machine (shifts are
:mod:`sourcing.people.callers`). Pure functions, no I/O: time is always a parameter (``now``),
never read from the system clock.

Decisions (documented here, tested in ``tests/unit/calls``)
------------------------------------------------------------
* **Short call**: an answered call that talked for less than ``SHORT_CALL_SECONDS`` (5 s).
  A call that was never answered is a failed dial, not a short call.
* **Timezone mismatch**: the call was dialled outside the expert's local calling window
  ``[CALLING_WINDOW_START_HOUR, CALLING_WINDOW_END_HOUR)`` (the allocation settings, so call
  validation and allocation use one window). The expert's timezone is
  :func:`sourcing.people.timezones.expert_timezone`; no timezone known means no mismatch is
  claimed.
* **Shift**: a shift starts at the first task request or dial after ``CALLER_SHIFT_GAP_SECONDS``
  without either (:func:`sourcing.people.callers.shift_start_for_dial`).
* **Dial rate**: dials in the trailing ``DIAL_RATE_WINDOW_MINUTES``; it is *low* when fewer
  than ``MIN_DIALS_PER_WINDOW`` fall in it. It has been low since the N-th most recent dial
  plus the window (N = ``MIN_DIALS_PER_WINDOW``), or since the shift start plus the window
  when the shift has fewer dials (:func:`low_dial_rate_since`).
* **Allocation status** (:func:`evaluate_allocation_status`), first rule that applies:

  1. ``SUSPENDED`` and ``RESTRICTED_FRAUD`` are left alone: only an admin moves them.
  2. short calls or timezone mismatches in the performance window at their threshold →
     ``RESTRICTED_FRAUD``.
  3. no shift started yet → unchanged.
  4. inside the first ``WARMUP_GRACE_MINUTES`` of the shift → ``WARMUP_GRACE`` (entered once
     per shift: a caller already moved on from the grace in this shift is not sent back).
  5. ``IDLE_NO_AVAILABLE_TASKS`` (set by allocation) stays until the caller dials after it was
     set; then → ``ACTIVE``.
  6. dial rate low for ``AT_RISK_WARNING_MINUTES`` or more → ``PAUSED_LOW_DIAL_RATE``; low
     for less → ``AT_RISK`` (the warning); not low → ``ACTIVE``.

  The target is reached through allowed moves only (:data:`CALLER_ALLOCATION`), e.g. a caller
  whose grace ends while not dialling goes ``WARMUP_GRACE → ACTIVE → AT_RISK``; a target with
  no allowed path (``PAUSED_LOW_DIAL_RATE`` straight from ``WARMUP_GRACE``) goes as far as
  the machine allows.
* **Performance score** (:func:`performance_score`), 0..100 over the performance window::

      dial_component    = min(1, dials / PERFORMANCE_TARGET_DIALS)
      connection_rate   = connections / dials            (0 without dials)
      fraud_penalty     = (short_calls + timezone_mismatches) / dials   (0 without dials)
      score = 100 * clamp(0.6 * dial_component + 0.4 * connection_rate - fraud_penalty, 0, 1)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sourcing.common.statemachines import CALLER_ALLOCATION, CallerAllocationStatus
from sourcing.people.timezones import in_calling_window

_A = CallerAllocationStatus


def is_short_call(*, answered: bool, talk_seconds: float | None, short_call_seconds: int) -> bool:
    """An answered call that talked for less than ``short_call_seconds``."""
    return answered and (talk_seconds or 0) < short_call_seconds


@dataclass(frozen=True, slots=True)
class CallValidation:
    """The fraud signals of one call."""

    is_short_call: bool
    timezone_mismatch: bool
    flags: tuple[dict[str, object], ...]
    expert_local_time: str | None  # ISO local time of the dial, when the zone is known

    @property
    def is_fraud_signal(self) -> bool:
        return self.is_short_call or self.timezone_mismatch


def validate_call(
    *,
    dialled_at: datetime | None,
    answered: bool,
    talk_seconds: float | None,
    zone: ZoneInfo | None,
    short_call_seconds: int,
    window_start_hour: int,
    window_end_hour: int,
) -> CallValidation:
    """Short-call and timezone-mismatch checks of one call (see the module docstring)."""
    flags: list[dict[str, object]] = []
    short = is_short_call(
        answered=answered, talk_seconds=talk_seconds, short_call_seconds=short_call_seconds
    )
    if short:
        flags.append(
            {
                "flag": "SHORT_CALL",
                "talkSeconds": talk_seconds or 0,
                "thresholdSeconds": short_call_seconds,
            }
        )
    mismatch = False
    local_time: str | None = None
    if dialled_at is not None and zone is not None:
        local_time = dialled_at.astimezone(zone).isoformat()
        mismatch = not in_calling_window(
            dialled_at, zone, start_hour=window_start_hour, end_hour=window_end_hour
        )
        if mismatch:
            flags.append(
                {
                    "flag": "TIMEZONE_MISMATCH",
                    "expertTimezone": zone.key,
                    "expertLocalTime": local_time,
                    "window": f"{window_start_hour:02d}:00-{window_end_hour:02d}:00",
                }
            )
    return CallValidation(
        is_short_call=short,
        timezone_mismatch=mismatch,
        flags=tuple(flags),
        expert_local_time=local_time,
    )


# --- dial rate and allocation status --------------------------------------------------------


def low_dial_rate_since(
    *,
    dial_times: Sequence[datetime],
    shift_started_at: datetime,
    window: timedelta,
    min_dials: int,
) -> datetime:
    """Since when the trailing-window dial count has been below ``min_dials``.

    ``dial_times`` are the shift's dials (any order, only those at or after the shift start
    count). The count drops below ``min_dials`` ``window`` after the ``min_dials``-th most
    recent dial; with fewer dials in the shift, ``window`` after the shift start. A moment in
    the future means the rate is not low yet.
    """
    in_shift = sorted((t for t in dial_times if t >= shift_started_at), reverse=True)
    if len(in_shift) < min_dials:
        return shift_started_at + window
    return in_shift[min_dials - 1] + window


@dataclass(frozen=True, slots=True)
class StatusThresholds:
    """The settings the allocation status rules read (see :meth:`from_settings`)."""

    warmup: timedelta
    dial_rate_window: timedelta
    min_dials_per_window: int
    at_risk_warning: timedelta
    short_calls_threshold: int
    timezone_mismatches_threshold: int

    @classmethod
    def from_settings(cls, settings: object) -> StatusThresholds:
        def number(name: str) -> int:
            value = getattr(settings, name)
            assert isinstance(value, int)  # noqa: S101 - narrows the type of a declared int setting
            return value

        return cls(
            warmup=timedelta(minutes=number("WARMUP_GRACE_MINUTES")),
            dial_rate_window=timedelta(minutes=number("DIAL_RATE_WINDOW_MINUTES")),
            min_dials_per_window=number("MIN_DIALS_PER_WINDOW"),
            at_risk_warning=timedelta(minutes=number("AT_RISK_WARNING_MINUTES")),
            short_calls_threshold=number("FRAUD_SHORT_CALLS_THRESHOLD"),
            timezone_mismatches_threshold=number("FRAUD_TIMEZONE_MISMATCHES_THRESHOLD"),
        )


@dataclass(frozen=True, slots=True)
class CallerActivity:
    """What the status rules know about a caller at ``now``."""

    status: str
    status_changed_at: datetime | None
    shift_started_at: datetime | None
    last_dial_at: datetime | None
    # Dials of the current shift (at least the last MIN_DIALS_PER_WINDOW of them).
    shift_dial_times: Sequence[datetime]
    short_calls: int  # in the performance window
    timezone_mismatches: int  # in the performance window


@dataclass(frozen=True, slots=True)
class StatusDecision:
    """Where the caller should be, the allowed moves that get there, and why."""

    current: str
    target: str
    path: tuple[str, ...]  # states after ``current``, each an allowed move; empty = no change
    reason: str

    @property
    def final(self) -> str:
        return self.path[-1] if self.path else self.current

    @property
    def changed(self) -> bool:
        return bool(self.path)


def _path(current: str, target: str) -> tuple[str, ...]:
    """Shortest sequence of allowed moves from ``current`` towards ``target``.

    If ``target`` cannot be reached, the path to the reachable state nearest the target along
    the dial-rate ladder (``ACTIVE < AT_RISK < PAUSED_LOW_DIAL_RATE``) is returned instead.
    """
    if current == target:
        return ()
    queue: deque[tuple[str, tuple[str, ...]]] = deque([(current, ())])
    seen = {current}
    reachable: dict[str, tuple[str, ...]] = {}
    while queue:
        state, steps = queue.popleft()
        for nxt in CALLER_ALLOCATION.next_states(state):
            if nxt in seen:
                continue
            seen.add(nxt)
            route = (*steps, nxt)
            if nxt == target:
                return route
            reachable[nxt] = route
            # Never pass through the admin-only states on the way somewhere else.
            if nxt not in (_A.RESTRICTED_FRAUD, _A.SUSPENDED):
                queue.append((nxt, route))
    ladder = (_A.PAUSED_LOW_DIAL_RATE, _A.AT_RISK, _A.ACTIVE)
    if target in ladder:
        for fallback in ladder[ladder.index(target) + 1 :]:
            if fallback == current:
                return ()
            if fallback in reachable:
                return reachable[fallback]
    return ()


def evaluate_allocation_status(
    activity: CallerActivity, thresholds: StatusThresholds, *, now: datetime
) -> StatusDecision:
    """The caller's allocation status at ``now`` (rules in the module docstring)."""
    current = activity.status

    def decide(target: str, reason: str) -> StatusDecision:
        return StatusDecision(current, target, _path(current, target), reason)

    if current in (_A.SUSPENDED, _A.RESTRICTED_FRAUD):
        return StatusDecision(current, current, (), "admin review required")
    if activity.short_calls >= thresholds.short_calls_threshold:
        return decide(
            _A.RESTRICTED_FRAUD,
            f"{activity.short_calls} short calls in the performance window "
            f"(threshold {thresholds.short_calls_threshold})",
        )
    if activity.timezone_mismatches >= thresholds.timezone_mismatches_threshold:
        return decide(
            _A.RESTRICTED_FRAUD,
            f"{activity.timezone_mismatches} calls outside the expert's calling window "
            f"(threshold {thresholds.timezone_mismatches_threshold})",
        )
    shift_start = activity.shift_started_at
    if shift_start is None or shift_start > now:
        return StatusDecision(current, current, (), "no shift started")
    if now < shift_start + thresholds.warmup:
        left_grace_this_shift = (
            current != _A.WARMUP_GRACE
            and activity.status_changed_at is not None
            and activity.status_changed_at >= shift_start
        )
        if not left_grace_this_shift:
            return decide(_A.WARMUP_GRACE, "shift started: warm-up grace")
    if current == _A.IDLE_NO_AVAILABLE_TASKS:
        dialled_since = (
            activity.last_dial_at is not None
            and activity.status_changed_at is not None
            and activity.last_dial_at > activity.status_changed_at
        )
        if not dialled_since:
            return StatusDecision(current, current, (), "no available tasks")
        return decide(_A.ACTIVE, "dialling resumed")
    low_since = low_dial_rate_since(
        dial_times=activity.shift_dial_times,
        shift_started_at=shift_start,
        window=thresholds.dial_rate_window,
        min_dials=thresholds.min_dials_per_window,
    )
    if now < low_since:
        return decide(_A.ACTIVE, "dial rate at or above the minimum")
    low_for = now - low_since
    minutes = int(low_for.total_seconds() // 60)
    if low_for >= thresholds.at_risk_warning:
        return decide(_A.PAUSED_LOW_DIAL_RATE, f"dial rate low for {minutes} min")
    return decide(_A.AT_RISK, f"dial rate low for {minutes} min")


# --- performance score ----------------------------------------------------------------------


def performance_score(
    *, dials: int, connections: int, short_calls: int, timezone_mismatches: int, target_dials: int
) -> float:
    """0..100; formula in the module docstring."""
    if dials <= 0:
        return 0.0
    dial_component = min(1.0, dials / target_dials)
    connection_rate = min(1.0, connections / dials)
    penalty = (short_calls + timezone_mismatches) / dials
    raw = 0.6 * dial_component + 0.4 * connection_rate - penalty
    return round(100.0 * min(1.0, max(0.0, raw)), 2)
