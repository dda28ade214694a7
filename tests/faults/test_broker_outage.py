"""The broker stopped under webhook load: the gateway refuses (503), never accepts (202) what it
cannot queue, answers promptly, and everything it accepted is processed once the broker is back.

Real processes on a dedicated stack: the gateway, calls (Yay events) and ingestion (Sales Nav
leads). Signed Yay calls and Sales Nav deliveries are sent continuously; Apache Kafka is stopped
(controlled shutdown), kept down, and started again on the same port and data. Then the sender
re-delivers what was refused, as Yay and Sales Nav would, and the database must hold exactly
every accepted event and lead. Needs a broker that keeps its data across a restart: skipped on
Tansu (memory only).
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

import pytest

from tests.faults.harness import (
    Gateway,
    Platform,
    interleave,
    run_jobs,
    seed_pipeline,
    wait_for,
)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 8.0
# The gateway's BROKER_SEND_TIMEOUT_SECONDS is 3 (harness): a refusal may take that long,
# plus queueing behind the other requests on a busy machine, never much more.
PROMPT_SECONDS = 10.0


async def test_gateway_refuses_during_broker_outage_and_loses_nothing_it_accepted(
    platform: Platform,
) -> None:
    broker = platform.stack.broker
    if broker is None or platform.stack.broker_kind != "kafka":
        pytest.skip("needs Apache Kafka: Tansu loses its topics when stopped")
    for name in ("api", "calls", "ingestion"):
        platform.add(name)
    await platform.start("api", "calls", "ingestion")
    load = await seed_pipeline(platform, callers=10, calls=1_500, leads=1_000, leads_per_delivery=5)

    async with Gateway(platform.api_url) as gateway:
        stop_sending = asyncio.Event()
        jobs = interleave(load.call_jobs(gateway), load.lead_jobs(gateway))
        sending = asyncio.create_task(run_jobs(jobs, concurrency=16, stop=stop_sending))

        async def accepted_at_least(n: int) -> bool:
            assert not sending.done(), f"every delivery was sent before {n} were accepted"
            return len(gateway.accepted("yay")) >= n

        try:
            await wait_for(partial(accepted_at_least, 200), timeout=120, message="load under way")
            await broker.astop()
            stopped = time.monotonic()
            await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
            starting = time.monotonic()
            await broker.astart()
            started = time.monotonic()
            await wait_for(
                partial(accepted_at_least, len(gateway.accepted("yay")) + 100),
                timeout=120,
                message="202s again after the restart",
            )
            stop_sending.set()
            await sending
        finally:
            stop_sending.set()
            sending.cancel()

        deliveries = list(gateway.deliveries)
        assert {d.status for d in deliveries} <= {202, 503}, {d.status for d in deliveries}
        # While the broker was down (request sent after the stop completed, answered before the
        # start began) nothing was accepted; around the edges either answer is fine.
        during = [d for d in deliveries if d.sent_at >= stopped and d.answered_at <= starting]
        assert during, "no request fell inside the outage"
        assert {d.status for d in during} == {503}
        slow = [round(d.seconds, 1) for d in deliveries if d.seconds > PROMPT_SECONDS]
        assert not slow, f"answers slower than {PROMPT_SECONDS} s: {slow}"
        assert any(d.status == 202 for d in deliveries if d.sent_at >= started)

        # The senders deliver what was refused again (same event ids); now it is accepted.
        events = {event.event_id: event for call in load.calls for event in call}
        batches = dict(load.lead_batches)
        retries = [partial(gateway.yay, events[key]) for key in gateway.refused("yay")]
        retries += [
            partial(gateway.sales_nav, load.project_id, key, batches[key])
            for key in gateway.refused("sales-nav")
        ]
        await run_jobs(retries, concurrency=16)
    assert gateway.refused("yay") == gateway.refused("sales-nav") == set()
    yay_ids = gateway.accepted("yay")
    leads = sum(len(batches[key]) for key in gateway.accepted("sales-nav"))

    async def caught_up() -> bool:
        return (
            await platform.count("SELECT count(*) FROM processed_webhook_events") >= len(yay_ids)
            and await platform.count("SELECT count(*) FROM leads") >= leads
            and await platform.settled("calls", "ingestion")
        )

    await wait_for(caught_up, timeout=180, message="every accepted event and lead processed")
    stored = await platform.rows("SELECT event_id FROM processed_webhook_events")
    assert {event_id for (event_id,) in stored} == yay_ids
    assert await platform.scalar("SELECT count(*) FROM call_logs_raw") == len(yay_ids)
    assert await platform.rows(
        "SELECT count(*), count(DISTINCT linkedin_url_normalized) FROM experts"
    ) == [(leads, leads)]
    assert await platform.scalar("SELECT count(*) FROM leads") == leads
    assert await platform.topic_size("dead-letter") == 0
