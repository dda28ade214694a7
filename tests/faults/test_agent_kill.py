"""SIGKILL each agent service in turn in the middle of a lead and call-event run, restart it:
every accepted lead and event is processed, none twice.

Real processes on a dedicated stack: the gateway, the provider sandbox, ingestion (Sales Nav →
leads), enrichment (waterfall → ranking), calls (Yay events → validation → performance) and
allocation. 2,000 signed Yay events (500 calls of four events) and 2,000 Sales Nav leads
arrive interleaved. Ingestion, calls and enrichment are each SIGKILLed once while their lane is
partly done, and restarted at once.
Allocation only gets a message when a caller's status changes (a handful per run): there is no
stream to kill it in the middle of; it is SIGKILLed and restarted while the load still arrives,
and its lane is checked like the others.
"""

from __future__ import annotations

import asyncio

import pytest

from tests.faults.harness import (
    FINAL_LEADS_SQL,
    PIPELINE_AGENTS,
    Gateway,
    Platform,
    assert_pipeline_complete,
    interleave,
    run_jobs,
    seed_pipeline,
    wait_for,
    wait_pipeline_done,
)

pytestmark = pytest.mark.integration

LEADS = 2_000
# (service, its progress in committed rows, total, kill once this share is done), in order.
KILLS = (
    ("ingestion", "SELECT count(*) FROM leads", LEADS, 0.25),
    ("calls", "SELECT count(*) FROM call_logs_raw", 2_000, 0.4),
    ("enrichment", FINAL_LEADS_SQL, LEADS, 0.4),
)


async def test_each_agent_sigkilled_mid_stream_loses_and_repeats_nothing(
    platform: Platform,
) -> None:
    for name in ("sandbox", "api", *PIPELINE_AGENTS):
        platform.add(name)
    await platform.start("sandbox", "api", *PIPELINE_AGENTS)
    load = await seed_pipeline(platform, callers=25, calls=500, leads=LEADS, leads_per_delivery=100)
    assert load.events == 2_000

    async with Gateway(platform.api_url) as gateway:
        jobs = interleave(load.call_jobs(gateway), load.lead_jobs(gateway))
        sending = asyncio.create_task(run_jobs(jobs, concurrency=16))
        try:
            at_kill: dict[str, int] = {}
            for name, progress, total, share in KILLS:

                async def reached(sql: str = progress, target: float = total * share) -> bool:
                    return await platform.count(sql) >= target

                await wait_for(reached, timeout=180, message=f"{name}: {share:.0%} done")
                platform[name].kill()
                at_kill[name] = await platform.count(progress)
                platform[name].start()
            platform["allocation"].kill()
            platform["allocation"].start()
            await sending
        finally:
            sending.cancel()

    # Every kill landed mid-stream: part of its lane was done, part still to do.
    for name, _, total, _ in KILLS:
        assert 0 < at_kill[name] < total, (name, at_kill[name], total)
    assert {d.status for d in gateway.deliveries} == {202}
    assert len(gateway.accepted("yay")) == load.events
    assert len(gateway.accepted("sales-nav")) == len(load.lead_batches)

    await wait_pipeline_done(platform, load, timeout=240)
    await assert_pipeline_complete(platform, load)
