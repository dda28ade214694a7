"""Project closing and sign-ups for the gateway: moves to sourcing.allocation at integration."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.logging import correlation_id_var
from sourcing.common.models import CallTask, Expert, Lead, SystemEvent
from sourcing.common.models.enums import CallTaskKind
from sourcing.common.statemachines import (
    CALL_TASK_OPEN_STATUSES,
    LEAD,
    CallTaskStatus,
    LeadStatus,
    ProjectStatus,
)
from sourcing.common.transitions import move

# A project in one of these statuses has no call tasks to work: its open ones are cancelled,
# no new ones are created.
CLOSED_PROJECT_STATUSES = frozenset({ProjectStatus.COMPLETED.value, ProjectStatus.ARCHIVED.value})

_S = CallTaskStatus


async def cancel_open_tasks(
    session: AsyncSession,
    expert_id: uuid.UUID,
    *,
    reason: str,
    now: datetime,
    actor: str,
    kind: CallTaskKind | None = None,
    keep_task_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """CANCEL the expert's open call tasks (only ``kind``'s when given), each audited
    (``call_task.cancelled``). Returns their ids."""
    open_query = select(CallTask).where(
        CallTask.expert_id == expert_id, CallTask.status.in_(CALL_TASK_OPEN_STATUSES)
    )
    if kind is not None:
        open_query = open_query.where(CallTask.kind == kind.value)
    if keep_task_id is not None:
        open_query = open_query.where(CallTask.id != keep_task_id)
    open_tasks = (await session.scalars(open_query.with_for_update())).all()
    return _cancel(session, open_tasks, reason=reason, now=now, actor=actor)


def _cancel(
    session: AsyncSession,
    tasks: Sequence[CallTask],
    *,
    reason: str,
    now: datetime,
    actor: str,
    data: dict[str, Any] | None = None,
) -> list[uuid.UUID]:
    """Move open tasks to CANCELLED (:func:`move`, audited ``call_task.cancelled``); an
    ASSIGNED task goes back to the pool first: nobody holds it any more. Returns their ids."""
    cancelled: list[uuid.UUID] = []
    for task in tasks:
        previous_caller = task.caller_id
        assigned = task.status == _S.ASSIGNED.value
        move(
            session,
            task,
            _S.CANCELLED,
            actor=actor,
            reason=reason,
            now=now,
            via=[_S.PENDING] if assigned else [],
            event="cancelled",
            data={
                **(data or {}),
                "previousCallerId": str(previous_caller) if previous_caller else None,
            },
        )
        if assigned:
            task.caller_id = None
        cancelled.append(task.id)
    return cancelled


async def reprioritise_project_tasks(
    session: AsyncSession, project_id: uuid.UUID, *, priority: int
) -> int:
    """The project's PENDING tasks take its new priority (the pool's first sort key).
    Returns how many."""
    result = await session.execute(
        update(CallTask)
        .where(CallTask.project_id == project_id, CallTask.status == _S.PENDING.value)
        .values(priority=priority)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def cancel_project_tasks(
    session: AsyncSession, project_id: uuid.UUID, *, project_status: str, now: datetime, actor: str
) -> list[uuid.UUID]:
    """A COMPLETED or ARCHIVED project's open tasks are CANCELLED, each audited
    (``call_task.cancelled``). Returns their ids."""
    tasks = (
        await session.scalars(
            select(CallTask)
            .where(CallTask.project_id == project_id, CallTask.status.in_(CALL_TASK_OPEN_STATUSES))
            .order_by(CallTask.id)
            .with_for_update()
        )
    ).all()
    cancelled = _cancel(
        session,
        tasks,
        reason=f"project {project_status}",
        now=now,
        actor=actor,
        data={"projectId": str(project_id)},
    )
    await session.flush()
    return cancelled


@dataclass(frozen=True, slots=True)
class SignupResult:
    """What a sign-up changed (nothing on a replay: ``changed`` is False)."""

    expert_id: uuid.UUID
    signed_up_at: datetime
    changed: bool
    converted_leads: int = 0
    cancelled_task_ids: list[uuid.UUID] = field(default_factory=list)


async def find_expert_for_signup(
    session: AsyncSession, *, expert_id: uuid.UUID | None, email: str | None
) -> Expert | None:
    """The signed-up expert, by id, else by primary email (case-insensitive), row locked."""
    if expert_id is not None:
        condition: ColumnElement[bool] = Expert.id == expert_id
    elif email:
        condition = Expert.primary_email == email.strip().lower()
    else:
        return None
    return await session.scalar(select(Expert).where(condition).with_for_update())


async def record_signup(
    session: AsyncSession,
    expert: Expert,
    *,
    signed_up_at: datetime,
    actor: str,
    now: datetime,
    source: str,
    note: str | None = None,
) -> SignupResult:
    """The expert signed up: ``signed_up_at`` (the first one wins), their leads CONVERTED where
    the lead machine allows it (from ENRICHED, OUTREACH_PENDING, CONTACTED or REPLIED; leads
    still NEW, ENRICHING, ENRICHMENT_FAILED, or already DISQUALIFIED/CONVERTED, keep their
    status), their open SIGNUP_CHASE tasks CANCELLED. Audited (``expert.signed_up``) when
    anything changed; a replay changes nothing. Lock the expert row first
    (:func:`find_expert_for_signup`)."""
    first = expert.signed_up_at is None
    if first:
        expert.signed_up_at = signed_up_at
    reason = "expert signed up"
    convertible = [state for state in LEAD.states if LEAD.can(state, LeadStatus.CONVERTED.value)]
    converted = (
        await session.execute(
            update(Lead)
            .where(Lead.expert_id == expert.id, Lead.status.in_(convertible))
            .values(status=LeadStatus.CONVERTED.value, status_reason=reason, status_changed_at=now)
            .returning(Lead.id)
            .execution_options(synchronize_session=False)
        )
    ).all()
    cancelled = await cancel_open_tasks(
        session, expert.id, reason=reason, now=now, actor=actor, kind=CallTaskKind.SIGNUP_CHASE
    )
    changed = first or bool(converted) or bool(cancelled)
    assert expert.signed_up_at is not None  # noqa: S101 - narrows the type: set just above
    if changed:
        session.add(
            SystemEvent(
                type="expert.signed_up",
                entity_type="expert",
                entity_id=expert.id,
                actor=actor,
                correlation_id=correlation_id_var.get(),
                data={
                    "source": source,
                    "signedUpAt": expert.signed_up_at.isoformat(),
                    "note": note,
                    "convertedLeadIds": [str(row[0]) for row in converted],
                    "cancelledTaskIds": [str(task_id) for task_id in cancelled],
                },
            )
        )
    await session.flush()
    return SignupResult(
        expert_id=expert.id,
        signed_up_at=expert.signed_up_at,
        changed=changed,
        converted_leads=len(converted),
        cancelled_task_ids=cancelled,
    )
