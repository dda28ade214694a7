"""The call-allocation service: one thin agent over :mod:`sourcing.allocation.handlers`.

* ``call-allocation`` (consumer ``call-allocation``): ``call-allocation.assign-current.v1``,
  ``call-task.requested.v1``, ``expert.signed-up.v1``, ``expert.suppression-requested.v1``,
  ``project.changed.v1`` and the
  scheduler's ``call-allocation.sweep-requested.v1`` and ``signup-chase.sweep-requested.v1``.
"""

from __future__ import annotations

from typing import Any

from sourcing.allocation.handlers import AllocationHandlers
from sourcing.allocation.settings import AllocationSettings
from sourcing.common.clock import Clock, utc_now
from sourcing.common.events import CallAllocationAssignCurrent
from sourcing.common.kafka.app import SourcingApp, create_app, reliable_agent
from sourcing.common.messages.allocation import (
    CallAllocationSweepRequested,
    CallTaskRequested,
    ExpertSignedUp,
    ExpertSuppressionRequested,
    ProjectChanged,
    SignupChaseSweepRequested,
)

SERVICE_NAME = "allocation"
LANE = "call-allocation"
CONSUMER = "call-allocation"


def build_app(
    settings: AllocationSettings, *, clock: Clock = utc_now, **create_app_options: Any
) -> SourcingApp:
    """The Faust app of the allocation service (``create_app_options`` go to ``create_app``)."""
    app = create_app(SERVICE_NAME, settings, **create_app_options)
    handlers = AllocationHandlers(settings, clock=clock)
    reliable_agent(
        app,
        LANE,
        {
            CallAllocationAssignCurrent.message_type: handlers.handle_assign_current,
            CallTaskRequested.message_type: handlers.handle_call_task_requested,
            ExpertSignedUp.message_type: handlers.handle_expert_signed_up,
            ProjectChanged.message_type: handlers.handle_project_changed,
            ExpertSuppressionRequested.message_type: handlers.handle_suppression_requested,
            CallAllocationSweepRequested.message_type: handlers.handle_call_allocation_sweep,
            SignupChaseSweepRequested.message_type: handlers.handle_signup_chase_sweep,
        },
        consumer_name=CONSUMER,
    )
    return app
