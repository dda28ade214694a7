"""PostgreSQL stopped mid-run and started again 20 s later on the same port and data: the agents
wait for it, nothing is lost, nothing is dead-lettered.

Real processes on a dedicated stack: the gateway, the provider sandbox, ingestion, enrichment,
calls, allocation, and the scheduler (its sink is what would store dead letters in
``dead_letter_jobs``). Agents make 5 attempts with backoff from 1 s (capped at 4 s, see the
harness): all five fit in about 11 s, so an outage of 20 s uses up the attempts of every
message in flight and dead-letters it, unless a database outage is waited out without charging
attempts.
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
    run_jobs,
    seed_pipeline,
    wait_for,
    wait_pipeline_done,
)

pytestmark = pytest.mark.integration

OUTAGE_SECONDS = 20.0
CALLS = 250
LEADS = 200


async def test_agents_wait_out_a_database_restart_and_dead_letter_nothing(
    platform: Platform,
) -> None:
    postgres = platform.stack.postgres
    assert postgres is not None  # a dedicated stack always embeds its PostgreSQL
    services = ("sandbox", "api", *PIPELINE_AGENTS, "scheduler")
    for name in services:
        platform.add(name)
    await platform.start(*services)
    load = await seed_pipeline(
        platform, callers=10, calls=CALLS, leads=LEADS, leads_per_delivery=20
    )

    async with Gateway(platform.api_url) as gateway:
        # The Sales Nav webhook looks the project up: its deliveries all go before the outage.
        # Yay deliveries need no database and keep coming through it.
        await run_jobs(load.lead_jobs(gateway), concurrency=4)
        sending = asyncio.create_task(run_jobs(load.call_jobs(gateway), concurrency=8))
        try:

            async def under_way() -> bool:
                return (
                    await platform.count(FINAL_LEADS_SQL) >= LEADS // 10
                    and await platform.count("SELECT count(*) FROM call_logs_raw")
                    >= load.events // 8
                )

            await wait_for(under_way, timeout=180, message="leads and calls under way")
            leads_done = await platform.count(FINAL_LEADS_SQL)
            await postgres.astop()
            await asyncio.sleep(OUTAGE_SECONDS)  # the outage itself
            await postgres.astart()
            await sending
        finally:
            sending.cancel()

    assert leads_done < LEADS, "the database stopped after the run: nothing was in flight"
    assert {d.status for d in gateway.deliveries} == {202}
    for name in services:
        platform[name].assert_alive()

    await wait_pipeline_done(platform, load, timeout=240)
    await assert_pipeline_complete(platform, load)
    assert await platform.scalar("SELECT count(*) FROM dead_letter_jobs") == 0
