"""The work of the call-allocation lane: plain async functions over a session (no Kafka).

``call-allocation.assign-current.v1`` (keyed by caller id; sent by the performance service when
a caller's status changes, or by anyone wanting a caller pre-assigned) expires stale
assignments everywhere, then gives the caller their next task if they have none, with the
same rule as ``GET /api/v1/call-tasks/current`` (:mod:`sourcing.common.allocation`). A caller
who may not work (paused, restricted, suspended, deactivated) or is unknown is left alone.

``call-task.requested.v1`` (keyed by expert id; sent by ranking, lead ingestion and the
contact-adding endpoint) gives an expert their initial call task in a project
(:func:`sourcing.allocation.service.ensure_initial_call_task`).
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
from sourcing.common.messages.allocation import CallTaskRequested

log = logging.getLogger("sourcing.allocation")

ACTOR = "call-allocation"


class AllocationHandlers:
    """Handlers bound to the service's settings and clock (tests inject the clock)."""

    def __init__(self, settings: Settings, *, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    async def assign_current(
        self, session: AsyncSession, caller_id: uuid.UUID
    ) -> Allocation | None:
        """Expire stale assignments, then pre-assign the caller's next task; None when the
        caller is unknown or may not take work (nothing changes for them)."""
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
