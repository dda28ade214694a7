"""Callers' shifts, presence and allocation status moves: the rules the allocation and calls
contexts both apply to a caller.

Shifts
------
A shift starts at the first task request or dial after ``CALLER_SHIFT_GAP_SECONDS`` without
either. One notion, two entry points because the two events differ in what they know: a task
request is stamped as it happens (:func:`task_request_stamp`: a request the gap or more after
the caller's last activity starts a shift at once), a dial may arrive late and out of order
(:func:`shift_start_for_dial`: a late event of an older call never opens a shift, and a shift
a dial opens starts at the task request that preceded it in the gap). The performance service
reads ``shift_started_at`` for the warm-up grace period.

Presence
--------
A caller is online from their first task request of a shift (:func:`task_request_stamp`) until
``CALLER_PRESENCE_TIMEOUT_SECONDS`` pass without a task request or a call event of theirs
(:func:`note_call_activity`). The allocation service assigns only to online callers and marks
the others offline, returning their undialled (ASSIGNED) task to the pool. A call event never
brings an offline caller back online: only asking for work does.

Time is always passed in, never read here.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Interval, and_, bindparam, case, func, or_
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.logging import correlation_id_var
from sourcing.common.models import Caller, CallerStatusHistory
from sourcing.common.transitions import move
from sourcing.people.settings import CallingSettings

# --- shifts ---------------------------------------------------------------------------------


def task_request_stamp(*, now: Any, when: Any) -> dict[str, ColumnElement[Any]]:
    """The ``callers`` columns a task request sets, as SQL for an ``UPDATE`` of the caller's
    row (``now`` and ``when``, a boolean that leaves the row as it is when false, are SQL
    expressions): ``last_task_requested_at`` and presence (``last_seen_at``) at ``now``; a
    request ``CALLER_SHIFT_GAP_SECONDS`` (the bound ``p_shift_gap``, :func:`shift_gap`) or more
    after the caller's last activity (shift start, dial or task request; or the first request
    ever) starts a shift (``shift_started_at = now``).

    The same notion of a shift as :func:`shift_start_for_dial` (module docstring). SQL, so the
    allocation statement stamps the request in the same round trip as the assignment.
    """
    gap = bindparam("p_shift_gap", type_=Interval)
    last_activity = func.greatest(
        Caller.shift_started_at, Caller.last_dial_at, Caller.last_task_requested_at
    )
    new_shift = or_(Caller.shift_started_at.is_(None), now - last_activity >= gap)
    return {
        "shift_started_at": case((and_(when, new_shift), now), else_=Caller.shift_started_at),
        "last_task_requested_at": case((when, now), else_=Caller.last_task_requested_at),
        "last_seen_at": case((when, now), else_=Caller.last_seen_at),
    }


def shift_gap(settings: CallingSettings) -> timedelta:
    """The ``p_shift_gap`` of :func:`task_request_stamp`."""
    return timedelta(seconds=settings.CALLER_SHIFT_GAP_SECONDS)


def shift_start_for_dial(
    *,
    dialled_at: datetime,
    shift_started_at: datetime | None,
    last_dial_at: datetime | None,
    last_task_requested_at: datetime | None,
    shift_gap: timedelta,
) -> datetime | None:
    """The new shift start a dial at ``dialled_at`` opens, or None when it continues a shift.

    The caller's last activity is the latest of shift start, last dial and last task request
    before the dial. A dial ``shift_gap`` or more after it (or the first dial ever) opens a
    shift, which starts at the task request that preceded the dial in the gap, else at the
    dial. A late event of an older call (dialled before the last activity) never opens one.
    """
    if any(m is not None and m > dialled_at for m in (shift_started_at, last_dial_at)):
        return None
    previous = max(
        (m for m in (shift_started_at, last_dial_at) if m is not None and m <= dialled_at),
        default=None,
    )
    request = (
        last_task_requested_at
        if last_task_requested_at is not None
        and last_task_requested_at <= dialled_at
        and dialled_at - last_task_requested_at < shift_gap
        else None
    )
    if request is not None and (previous is None or request - previous >= shift_gap):
        return request  # the task request after the gap opened the shift
    if shift_started_at is None or previous is None:
        return dialled_at
    latest_activity = max(previous, request) if request is not None else previous
    if dialled_at - latest_activity < shift_gap:
        return None
    return dialled_at


# --- presence -------------------------------------------------------------------------------


def presence_cutoff(now: datetime, settings: CallingSettings) -> datetime:
    """A caller last seen at or before this moment is offline at ``now``."""
    return now - timedelta(seconds=settings.CALLER_PRESENCE_TIMEOUT_SECONDS)


def is_online(caller: Caller, *, now: datetime, settings: CallingSettings) -> bool:
    seen = caller.last_seen_at
    return seen is not None and seen > presence_cutoff(now, settings)


def note_call_activity(caller: Caller, *, at: datetime, settings: CallingSettings) -> None:
    """A call event of the caller at ``at`` keeps an online caller online."""
    if is_online(caller, now=at, settings=settings) and (
        caller.last_seen_at is None or at > caller.last_seen_at
    ):
        caller.last_seen_at = at


# --- allocation status ----------------------------------------------------------------------


async def set_caller_status(
    session: AsyncSession,
    caller: Caller,
    to_status: str,
    *,
    reason: str,
    actor: str,
    now: datetime,
    metric_id: uuid.UUID | None = None,
    correlation_id: str | None = None,
) -> None:
    """Move the caller's allocation status (:func:`move`: machine and audit
    ``caller.allocation_status_changed``) with its history row."""
    correlation_id = correlation_id or correlation_id_var.get()
    from_status = move(
        session,
        caller,
        to_status,
        actor=actor,
        reason=reason,
        now=now,
        event="allocation_status_changed",
        correlation_id=correlation_id,
    )
    session.add(
        CallerStatusHistory(
            caller_id=caller.id,
            from_status=from_status,
            to_status=to_status,
            reason=reason,
            actor=actor,
            metric_id=metric_id,
            correlation_id=correlation_id,
        )
    )
