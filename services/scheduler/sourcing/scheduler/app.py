"""The scheduler service: the maintenance cycle, the dead-letter sink, the documentation agent.

Thin: agents hand messages to :mod:`sourcing.scheduler.handlers` through the reliability layer;
the cycle (:mod:`sourcing.scheduler.cycle`) runs as a background task of the Faust app.
"""

from __future__ import annotations

from typing import Any

from sourcing.common.clock import Clock, utc_now
from sourcing.common.kafka.app import SourcingApp, create_app, reliable_agent
from sourcing.scheduler.cycle import Scheduler
from sourcing.scheduler.handlers import documentation_handler, handle_dead_letter
from sourcing.scheduler.settings import SchedulerSettings

SERVICE_NAME = "scheduler"
# processed_events keys: never rename.
DEAD_LETTER_CONSUMER = "scheduler.dead-letter-sink"
DOCUMENTATION_CONSUMER = "scheduler.documentation"


def build_app(
    settings: SchedulerSettings,
    *,
    clock: Clock = utc_now,
    run_cycles: bool = True,
    **create_app_options: Any,
) -> SourcingApp:
    """The scheduler's Faust app. ``run_cycles=False`` leaves the maintenance cycle out (for
    tests of the agents alone); ``create_app_options`` go to
    :func:`sourcing.common.kafka.app.create_app`."""
    app = create_app(SERVICE_NAME, settings, **create_app_options)
    reliable_agent(app, "dead-letter", handle_dead_letter, consumer_name=DEAD_LETTER_CONSUMER)
    reliable_agent(
        app,
        "documentation",
        documentation_handler(settings, clock=clock),
        consumer_name=DOCUMENTATION_CONSUMER,
    )
    runtime = app.runtime
    scheduler = Scheduler(settings, runtime.sessionmaker, engine=runtime.engine, clock=clock)
    app.scheduler = scheduler  # type: ignore[attr-defined]

    async def maintenance_cycle() -> None:
        await scheduler.run_forever()

    if run_cycles:
        app.task(maintenance_cycle)
    return app
