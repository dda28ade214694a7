"""The work of the call-allocation lane: plain async functions over a session (no Kafka).

``call-allocation.assign-current.v1`` (keyed by caller id; sent by the performance service when
a caller's status changes, or by anyone wanting a caller pre-assigned) expires stale
assignments everywhere, then gives the caller their next task if they have none, with the
same rule as ``GET /api/v1/call-tasks/current`` (:mod:`sourcing.common.allocation`). A caller
who may not work (paused, restricted, suspended, deactivated), is offline
(:func:`sourcing.common.allocation.is_online`) or is unknown is left alone.

``call-task.requested.v1`` (keyed by expert id; sent by ranking, lead ingestion and the
contact-adding endpoint) gives an expert their initial call task in a project
(:func:`sourcing.allocation.service.ensure_initial_call_task`).

``expert.signed-up.v1`` (keyed by expert; sent by the sign-up webhook) records the sign-up
(:func:`sourcing.common.allocation.record_signup`). A sign-up naming no known expert is stored
as an ``expert.signup_unmatched`` system event and acknowledged: never a retry loop.
"""

from __future__ import annotations

import logging
import uuid

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation import service
from sourcing.common import allocation
from sourcing.common.allocation import Allocation
from sourcing.common.clock import Clock, utc_now
from sourcing.common.config import Settings
from sourcing.common.events import CallAllocationAssignCurrent, Envelope
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.allocation import CallTaskRequested, ExpertSignedUp
from sourcing.common.models import SystemEvent

log = logging.getLogger("sourcing.allocation")

ACTOR = "call-allocation"
SIGNUP_ACTOR = "signup-webhook"


class AllocationHandlers:
    """Handlers bound to the service's settings and clock (tests inject the clock)."""

    def __init__(self, settings: Settings, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    async def assign_current(
        self, session: AsyncSession, caller_id: uuid.UUID
    ) -> Allocation | None:
        """Expire stale assignments, then pre-assign the caller's next task; None when the
        caller is unknown, offline or may not take work (nothing changes for them)."""
        now = self.clock()
        await allocation.expire_stale_assignments(
            session, now=now, limit=self.settings.ALLOCATION_EXPIRY_BATCH_SIZE, actor=ACTOR
        )
        caller = await allocation.find_caller(session, str(caller_id), lock=True)
        if caller is None:
            log.warning("assign-current for unknown caller %s: nothing to do", caller_id)
            return None
        refusal = allocation.refusal_for(caller)
        if refusal is not None:
            log.info("caller %s is %s: no task pre-assigned", caller_id, caller.allocation_status)
            return None
        if not allocation.is_online(caller, now=now, settings=self.settings):
            log.info("caller %s is offline: no task pre-assigned", caller_id)
            return None
        return await allocation.assign_next_task(
            session, caller, now=now, settings=self.settings, actor=ACTOR
        )

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
        expert = await allocation.find_expert_for_signup(
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
        result = await allocation.record_signup(
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
