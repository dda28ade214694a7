"""A worker built with the common factory, for the crash test: one row per message.

Reads its settings from the environment like a service (the test passes its own). Extra knobs:
``CRASH_WORKER_RUN`` (the row's ``run`` value), ``CRASH_WORKER_BATCH`` (1 = batch lane),
``CRASH_WORKER_DELAY_SECONDS`` (per-message handler time, so a kill lands mid-stream),
``CRASH_WORKER_SLOW_EVERY`` / ``CRASH_WORKER_SLOW_SECONDS`` (about one message in N takes
longer than the commit interval: an offset committed before its row would be caught),
``CRASH_WORKER_DATADIR`` (Faust's data directory).
The table ``crash_rows`` is created by the test, without a unique key: a message applied twice
would show as two rows.
"""

from __future__ import annotations

import asyncio
import os

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.kafka.app import create_app, reliable_agent, run_worker
from tests.fixtures.settings import load_settings

SERVICE = "crash-test"

RUN = os.environ.get("CRASH_WORKER_RUN", "crash")
DELAY = float(os.environ.get("CRASH_WORKER_DELAY_SECONDS", "0"))
SLOW_EVERY = int(os.environ.get("CRASH_WORKER_SLOW_EVERY", "0"))
SLOW_SECONDS = float(os.environ.get("CRASH_WORKER_SLOW_SECONDS", "0"))

settings = load_settings()
CONSUMER = f"{settings.KAFKA_TOPIC_PREFIX}crash-test-rows"
app = create_app(
    SERVICE,
    settings,
    web_enabled=False,
    relay_outbox=False,
    datadir=os.environ.get("CRASH_WORKER_DATADIR"),
)


async def insert_row(
    session: AsyncSession, envelope: Envelope, payload: PerformanceRecalculate
) -> None:
    await session.execute(
        text("INSERT INTO crash_rows (run, event_id, caller_id) VALUES (:run, :id, :caller)"),
        {"run": RUN, "id": envelope.id, "caller": str(payload.caller_id)},
    )
    if SLOW_EVERY and int(envelope.id[:8], 16) % SLOW_EVERY == 0:
        await asyncio.sleep(SLOW_SECONDS)
    elif DELAY:
        await asyncio.sleep(DELAY)


reliable_agent(
    app,
    "performance",
    insert_row,
    consumer_name=CONSUMER,
    batch=os.environ.get("CRASH_WORKER_BATCH") == "1",
)

if __name__ == "__main__":
    run_worker(app)
