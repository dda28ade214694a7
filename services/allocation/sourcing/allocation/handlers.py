"""The work of the call-allocation lane: plain async functions over a session (no Kafka).

``call-allocation.assign-current.v1`` (keyed by caller id; sent by the performance service when
a caller's status changes, by the call-allocation sweep, or by anyone wanting a caller
pre-assigned) expires stale assignments everywhere, then gives the caller their next task if
they have none, with the same rule as ``GET /api/v1/call-tasks/current``
(:mod:`sourcing.allocation.service`). A caller who may not work (paused, restricted, suspended,
deactivated), is offline (:func:`sourcing.people.callers.is_online`) or is unknown is left
alone.

``call-task.requested.v1`` (keyed by expert id; sent by ranking, lead ingestion and the
contact-adding endpoint) gives an expert their initial call task in a project
(:func:`sourcing.allocation.service.ensure_initial_call_task`).

``expert.signed-up.v1`` (keyed by expert; sent by the sign-up webhook) records the sign-up
(:func:`sourcing.allocation.service.record_signup`). A sign-up naming no known expert is stored
as an ``expert.signup_unmatched`` system event and acknowledged: never a retry loop.

``expert.suppression-requested.v1`` (keyed by expert; sent by outreach when an expert opts out
on a channel) suppresses the person like a never-contact-again outcome
(:func:`sourcing.allocation.service.suppress_expert`: open call tasks CANCELLED, leads
DISQUALIFIED). An expert gone meanwhile (erased) is logged and acknowledged.

``project.changed.v1`` (keyed by project; sent by ``PATCH /projects/{id}``): the project's tasks
follow its status and priority, and a resumed project's experts get the initial tasks the
pause held back (:func:`sourcing.allocation.service.apply_project_change`).

The scheduler's ticks (manual §5.2), one per interval on the key "sweep":
``call-allocation.sweep-requested.v1`` marks idle callers offline, then asks for a task for
every active, online caller (one ``call-allocation.assign-current.v1`` each, its envelope id
derived from the tick's and the caller's, so a redelivered tick is deduplicated downstream);
``signup-chase.sweep-requested.v1`` creates the sign-up chase tasks that are due
(:func:`sourcing.allocation.service.create_signup_chases`).
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation import repository, service
from sourcing.allocation.service import Allocation
from sourcing.allocation.settings import AllocationSettings
from sourcing.common.clock import Clock, utc_now
from sourcing.common.db import SessionStatements
from sourcing.common.errors import NotFound
from sourcing.common.events import CallAllocationAssignCurrent, Envelope
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.allocation import (
    CallAllocationSweepRequested,
    CallTaskRequested,
    ExpertSignedUp,
    ExpertSuppressionRequested,
    ProjectChanged,
    SignupChaseSweepRequested,
)
from sourcing.common.models import SystemEvent

log = logging.getLogger("sourcing.allocation")

ACTOR = "call-allocation"
SIGNUP_ACTOR = "signup-webhook"

# UUIDv5 namespace of the assign-current requests a call-allocation sweep sends (a constant:
# changing it re-sends a redelivered sweep's requests).
SWEEP_MESSAGE_NAMESPACE = uuid.UUID("3f0c8a6e-2b1d-4c55-9d7e-a11c0ca7e5e1")


class AllocationHandlers:
    """Handlers bound to the service's settings and clock (tests inject the clock)."""

    def __init__(self, settings: AllocationSettings, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    async def assign_current(
        self, session: AsyncSession, caller_id: uuid.UUID
    ) -> Allocation | None:
        """Return every stale assignment to the pool, then pre-assign the caller's next task;
        None when the caller is unknown, offline or may not take work (nothing changes for
        them)."""
        result = await service.assign_next_task(
            SessionStatements(session),
            str(caller_id),
            now=self.clock(),
            settings=self.settings,
            actor=ACTOR,
            sweep=True,
            online_only=True,
        )
        if result.caller is None:
            log.warning("assign-current for unknown caller %s: nothing to do", caller_id)
            return None
        if not result.may_work:
            log.info(
                "caller %s is %s%s: no task pre-assigned",
                caller_id,
                result.caller.allocation_status,
                "" if result.refusal is not None else " but offline",
            )
            return None
        return result

    async def handle_assign_current(
        self, session: AsyncSession, envelope: Envelope, payload: CallAllocationAssignCurrent
    ) -> None:
        result = await self.assign_current(session, payload.caller_id)
        if result is not None:
            log.info(
                "caller %s: task %s%s",
                payload.caller_id,
                result.task_id,
                " (newly assigned)" if result.newly_assigned else "",
            )

    async def handle_call_task_requested(
        self, session: AsyncSession, envelope: Envelope, payload: CallTaskRequested
    ) -> None:
        decision = await service.ensure_initial_call_task(
            session, payload, now=self.clock(), actor=ACTOR
        )
        log.info(
            "expert %s in project %s (%s): %s",
            payload.expert_id,
            payload.project_id,
            payload.trigger.value,
            f"task {decision.created} created" if decision.created else decision.skipped,
        )

    async def handle_expert_signed_up(
        self, session: AsyncSession, envelope: Envelope, payload: ExpertSignedUp
    ) -> None:
        expert = await repository.find_expert_for_signup(
            session, expert_id=payload.expert_id, email=payload.email
        )
        if expert is None:
            log.warning("sign-up %s names no known expert: stored and ignored", payload.event_id)
            session.add(
                SystemEvent(
                    type="expert.signup_unmatched",
                    entity_type="expert",
                    entity_id=payload.expert_id,
                    actor=SIGNUP_ACTOR,
                    correlation_id=correlation_id_var.get(),
                    data=payload.model_dump(mode="json", by_alias=True),
                )
            )
            await session.flush()
            return
        result = await service.record_signup(
            session,
            expert,
            signed_up_at=payload.signed_up_at,
            actor=SIGNUP_ACTOR,
            now=self.clock(),
            source=f"webhook:{payload.event_id}",
        )
        log.info(
            "expert %s signed up: %d leads converted, %d chase tasks cancelled",
            result.expert_id,
            result.converted_leads,
            len(result.cancelled_task_ids),
        )

    async def handle_suppression_requested(
        self, session: AsyncSession, envelope: Envelope, payload: ExpertSuppressionRequested
    ) -> None:
        try:
            cancelled, disqualified = await service.suppress_expert(
                session,
                payload.expert_id,
                reason=payload.reason,
                now=self.clock(),
                actor=payload.actor,
                note=payload.note,
            )
        except NotFound:
            log.warning("suppression of unknown expert %s ignored", payload.expert_id)
            return
        log.info(
            "expert %s suppressed (%s): %d call tasks cancelled, %d leads disqualified",
            payload.expert_id,
            payload.reason.value,
            len(cancelled),
            disqualified,
        )

    async def handle_project_changed(
        self, session: AsyncSession, envelope: Envelope, payload: ProjectChanged
    ) -> None:
        result = await service.apply_project_change(session, payload, now=self.clock())
        log.info(
            "project %s (%s, priority %d): %d tasks cancelled, %d created, %d re-prioritised",
            payload.project_id,
            payload.status,
            payload.priority,
            len(result.cancelled),
            len(result.created),
            result.reprioritised,
        )

    async def handle_call_allocation_sweep(
        self, session: AsyncSession, envelope: Envelope, payload: CallAllocationSweepRequested
    ) -> None:
        callers = await service.sweep_call_allocation(
            session, now=payload.requested_at, settings=self.settings
        )
        for caller_id in callers:
            await publish(
                session,
                CallAllocationAssignCurrent(caller_id=caller_id),
                correlation_id=envelope.correlation_id,
                envelope_id=str(uuid.uuid5(SWEEP_MESSAGE_NAMESPACE, f"{envelope.id}:{caller_id}")),
                occurred_at=payload.requested_at,
            )
        log.info("call-allocation sweep: %d online callers asked for a task", len(callers))

    async def handle_signup_chase_sweep(
        self, session: AsyncSession, envelope: Envelope, payload: SignupChaseSweepRequested
    ) -> None:
        created = await service.create_signup_chases(
            session,
            now=payload.requested_at,
            settings=self.settings,
            correlation_id=envelope.correlation_id,
        )
        log.info("sign-up chase sweep: %d chase tasks created", created)
