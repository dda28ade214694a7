"""The one way to change an entity's status: :func:`move`.

:func:`move` checks the entity's state machine (:mod:`sourcing.common.statemachines`), sets
the status and the fields that go with it (``status_reason``, ``status_changed_at``) and adds
the audit :class:`SystemEvent` of the change, in the caller's transaction. A forbidden move
raises :class:`sourcing.common.errors.InvalidTransition` and changes nothing.

Set-based sweeps that move many rows in one UPDATE (pool release, expiry, suppression's lead
disqualification) do not load the rows; they check their one move with the machine instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.logging import correlation_id_var
from sourcing.common.models import (
    Caller,
    CallTask,
    Lead,
    OutreachThread,
    Project,
    ScreeningResponse,
    SystemEvent,
)
from sourcing.common.statemachines import (
    CALL_TASK,
    CALLER_ALLOCATION,
    LEAD,
    OUTREACH_THREAD,
    PROJECT,
    SCREENING_RESPONSE,
    StateMachine,
)

Movable = Lead | OutreachThread | ScreeningResponse | CallTask | Caller | Project


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """How one entity's status is kept: its machine, audit name and status column."""

    machine: StateMachine
    entity_type: str
    field: str = "status"
    # The status change counts as activity on the row (``updated_at`` takes the move's time).
    touches: bool = False


LIFECYCLES: dict[type[Movable], Lifecycle] = {
    Lead: Lifecycle(LEAD, "lead"),
    OutreachThread: Lifecycle(OUTREACH_THREAD, "outreach_thread"),
    # The follow-up's idle time is measured from ``updated_at``.
    ScreeningResponse: Lifecycle(SCREENING_RESPONSE, "screening_response", touches=True),
    CallTask: Lifecycle(CALL_TASK, "call_task"),
    Caller: Lifecycle(CALLER_ALLOCATION, "caller", field="allocation_status"),
    Project: Lifecycle(PROJECT, "project"),
}


def lifecycle(entity: Movable) -> Lifecycle:
    return LIFECYCLES[type(entity)]


def move(
    session: AsyncSession,
    entity: Movable,
    to: str,
    *,
    actor: str,
    reason: str | None,
    now: datetime,
    via: Iterable[str] = (),
    allow_same: bool = False,
    event: str | None = "status_changed",
    data: dict[str, Any] | None = None,
    correlation_id: str | None = None,
) -> str:
    """Move ``entity`` to ``to`` (through the states ``via`` first), audited. Returns the
    status it had.

    Every step is checked with the entity's machine (``allow_same`` accepts a step that keeps
    the status: an idempotent handler seeing its own earlier write). The audit event is
    ``<entity>.<event>`` with ``{"from", "to", "reason"}`` and ``data`` merged over them;
    ``event=None`` when the caller writes a richer audit event of the change itself.
    ``correlation_id`` defaults to the current request's or message's.
    """
    kind = lifecycle(entity)
    target = str(to)
    source: str = getattr(entity, kind.field)
    current = source
    for step in (*(str(state) for state in via), target):
        kind.machine.assert_transition(current, step, allow_same=allow_same)
        current = step
    setattr(entity, kind.field, target)
    if isinstance(entity, Lead | CallTask | Caller):
        entity.status_reason = reason
    entity.status_changed_at = now
    if kind.touches:
        entity.updated_at = now
    if event is not None:
        session.add(
            SystemEvent(
                type=f"{kind.entity_type}.{event}",
                entity_type=kind.entity_type,
                entity_id=entity.id,
                actor=actor,
                correlation_id=correlation_id or correlation_id_var.get(),
                data={"from": source, "to": target, "reason": reason, **(data or {})},
            )
        )
    return source
