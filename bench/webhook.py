"""``webhook``: signed Yay events accepted per second (each confirmed by the broker, acks=all)
and their latency at a fixed number of connections, closed loop.

Platform: the gateway (``python -m sourcing.api``). Baseline: a bare Starlette handler that
verifies the HMAC, timestamp and event id and produces the same message (the platform's
envelope, key and headers) with acks=all through aiokafka, then the same 202 body
(:mod:`bench.baseline`). Every step of the load is one call (three events); at the end the
lane's offsets are summed to check the accepted events really are on the topic.
"""

from __future__ import annotations

import uuid
from typing import Any

from bench.harness import SECRETS, Child, Figure, Load, Result, Session, messages_on, stop_all
from bench.loadgen import LoadSpec

CONNECTIONS = 64
LANE = "yay-call-events"


def yay_load(url: str, session: Session, **overrides: Any) -> LoadSpec:
    """A Yay load (also used by the ``calls`` benchmark)."""
    spec = LoadSpec(
        url=url,
        scenario="yay",
        params={"secret": SECRETS["YAY_WEBHOOK_SECRET"], "run": uuid.uuid4().hex[:8]},
        connections=CONNECTIONS,
        duration=session.options.duration,
        warmup_steps=CONNECTIONS,
    )
    for name, value in overrides.items():
        setattr(spec, name, value)
    return spec


async def _measure(session: Session, server: Child, prefix: str) -> tuple[Load, int]:
    load = await session.load(yay_load(server.url, session), watch=[server])
    return load, await messages_on(session.bootstrap, prefix + LANE)


async def run(session: Session) -> Result:
    database = await session.database("webhook")

    prefix = await session.topics("webhook-platform")
    children = await session.start_services(["api"], session.env(database, prefix))
    try:
        platform, platform_on_lane = await _measure(session, children[0], prefix)
    finally:
        await stop_all(children)

    prefix = await session.topics("webhook-baseline", [LANE, "sales-nav-ingestion"])
    bare = await session.start_baseline("http", session.env(database, prefix))
    try:
        baseline, baseline_on_lane = await _measure(session, bare, prefix)
    finally:
        await bare.stop()

    def details(load: Load, on_lane: int) -> dict[str, Any]:
        # on the lane: the measured events plus the warm-up's (one call per connection)
        return load.summary("webhook", 202) | {"messages_on_lane": on_lane}

    return Result(
        name="webhook",
        description=(
            "POST /webhooks/yay: signed events verified and produced with acks=all before the "
            f"202, {CONNECTIONS} keep-alive connections, closed loop"
        ),
        parameters={
            "connections": CONNECTIONS,
            "duration_s": session.options.duration,
            "events_per_step": 3,
        },
        figures=[
            Figure(
                "accepted events/s",
                "events/s",
                platform.rate("webhook", 202),
                baseline.rate("webhook", 202),
                "ratio_min",
                0.75,
            ),
            Figure("p50", "ms", platform.latency("webhook", 0.5), baseline.latency("webhook", 0.5)),
            Figure(
                "p99",
                "ms",
                platform.latency("webhook", 0.99),
                baseline.latency("webhook", 0.99),
                "max",
                40,
            ),
            Figure(
                "server process CPU",
                "% of a core",
                sum(platform.process_cpu.values()) * 100,
                sum(baseline.process_cpu.values()) * 100,
            ),
            Figure(
                "server CPU per 1,000 events",
                "ms",
                platform.cpu_per_thousand("webhook", 202),
                baseline.cpu_per_thousand("webhook", 202),
            ),
            Figure(
                "load generator CPU",
                "% of a core",
                platform.generator_cpu * 100,
                baseline.generator_cpu * 100,
            ),
        ],
        platform=details(platform, platform_on_lane),
        baseline=details(baseline, baseline_on_lane),
        notes=[
            "non-202 answers or transport errors are listed under statuses/errors",
            f"messages_on_lane = accepted + {CONNECTIONS * 3} warm-up events when nothing is lost",
        ],
    )
