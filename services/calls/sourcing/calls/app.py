"""The calls service: three thin agents over :mod:`sourcing.calls.handlers`.

* ``yay-call-events`` (batch lane, consumer ``calls.yay-call-events``)
* ``call-validation`` (batch lane, consumer ``calls.call-validation``)
* ``performance`` (batch lane, consumer ``calls.performance``)
"""

from __future__ import annotations

from typing import Any

from sourcing.calls.handlers import CallHandlers
from sourcing.calls.settings import CallSettings
from sourcing.common.clock import Clock, utc_now
from sourcing.common.events import PerformanceRecalculate
from sourcing.common.kafka.app import SourcingApp, create_app, reliable_agent
from sourcing.common.messages.calls import CallValidationRequested, YayCallEventReceived

SERVICE_NAME = "calls"
YAY_CONSUMER = "calls.yay-call-events"
VALIDATION_CONSUMER = "calls.call-validation"
PERFORMANCE_CONSUMER = "calls.performance"


def build_app(
    settings: CallSettings, *, clock: Clock = utc_now, **create_app_options: Any
) -> SourcingApp:
    """The Faust app of the calls service (``create_app_options`` go to ``create_app``)."""
    app = create_app(SERVICE_NAME, settings, **create_app_options)
    handlers = CallHandlers(settings, clock=clock)
    reliable_agent(
        app,
        "yay-call-events",
        {YayCallEventReceived.message_type: handlers.handle_yay_event},
        consumer_name=YAY_CONSUMER,
        batch=True,
        batch_handler=handlers.handle_yay_events,
    )
    reliable_agent(
        app,
        "call-validation",
        {CallValidationRequested.message_type: handlers.handle_call_validation},
        consumer_name=VALIDATION_CONSUMER,
        batch=True,
        batch_handler=handlers.handle_call_validations,
    )
    reliable_agent(
        app,
        "performance",
        {PerformanceRecalculate.message_type: handlers.handle_performance_recalculate},
        consumer_name=PERFORMANCE_CONSUMER,
        batch=True,
        batch_handler=handlers.handle_performance_recalculates,
    )
    return app
