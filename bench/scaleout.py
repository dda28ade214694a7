"""``scaleout``: the enrichment and the calls services run as 1, then 2 replicas on the same
topics (one consumer group: the lanes' partitions are spread over the replicas), and the
throughput of each.

Each measurement drains a backlog, so the scaled service is the only thing that limits it:

* enrichment: the gateway, the ingestion service and the provider sandbox (zero latency) take
  Sales Nav deliveries while no enrichment service runs, until every lead's enrichment request
  is on the ``enrichment`` lane; then the replicas start. Leads/s = leads enriched after every
  replica answered ready / seconds until the last one was (``enriched_at``).
* calls: the gateway takes signed Yay calls (three events each, 100 seeded callers) while no
  calls service runs; then the replicas start. Events/s = events of the calls whose caller
  metric row was written after every replica answered ready / seconds until the last row.

Every side gets a fresh database and topic prefix. The replicas' CPU is reported too: on a
machine with fewer free cores than replicas, a second replica adds consumers, not capacity.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url

from bench.calls import CALLERS, EVENTS_PER_CALL, _seed_callers
from bench.devmemory import descendants
from bench.harness import (
    SECRETS,
    Figure,
    Result,
    Session,
    cpu_seconds,
    stop_all,
    wait_until,
)
from bench.loadgen import LoadSpec
from bench.pipeline import PER_WEBHOOK, _project
from bench.webhook import yay_load
from sourcing.common.topics import LANES_BY_NAME
from sourcing.sandbox.server import serve_sandbox

REPLICAS = (1, 2)
LEADS_PER_SECOND_OF_DURATION = 40  # backlog size: this many leads per second of --duration
CALLS_PER_SECOND_OF_DURATION = 20  # and this many Yay calls
DRAIN_TIMEOUT_S = 600.0


@dataclass
class Drain:
    """One replica count draining one backlog."""

    replicas: int
    items: int  # items done after the replicas were ready
    seconds: float
    cpu_share: float  # cores the replicas used meanwhile, summed
    database_cpu_share: float  # cores PostgreSQL (every server process) used meanwhile

    @property
    def per_second(self) -> float:
        return self.items / self.seconds if self.seconds > 0 else 0.0

    def details(self, unit: str) -> dict[str, Any]:
        return {
            "replicas": self.replicas,
            f"{unit}_after_ready": self.items,
            "seconds": round(self.seconds, 2),
            f"{unit}_per_second": round(self.per_second, 1),
            "replica_cpu_cores": round(self.cpu_share, 2),
            "postgresql_cpu_cores": round(self.database_cpu_share, 2),
            f"replica_cpu_ms_per_{unit[:-1]}": round(self._per_item(self.cpu_share), 2),
            f"postgresql_cpu_ms_per_{unit[:-1]}": round(self._per_item(self.database_cpu_share), 2),
        }

    def _per_item(self, cores: float) -> float:
        return cores * self.seconds / self.items * 1000 if self.items else 0.0


async def _drain(
    session: Session,
    service: str,
    replicas: int,
    env: dict[str, str],
    done: Callable[[], Awaitable[int]],
    total: int,
    *,
    sandbox_url: str | None = None,
) -> Drain:
    """Start ``replicas`` copies of ``service``; measure from all ready to ``done() == total``."""
    children = await session.start_services([service] * replicas, env, sandbox_url=sandbox_url)
    try:
        began, before = time.time(), await done()
        cpu = [cpu_seconds(child.pid) or 0.0 for child in children]
        database_before = _postgres_cpu(session)
        await wait_until(done, lambda n: n >= total, within=DRAIN_TIMEOUT_S, interval=0.1)
        seconds = time.time() - began
        used = sum((cpu_seconds(c.pid) or 0.0) - s for c, s in zip(children, cpu, strict=True))
        database = _postgres_cpu(session) - database_before
        for child in children:
            child.ensure_running()
    finally:
        await stop_all(children)
    return Drain(replicas, total - before, seconds, used / seconds, database / seconds)


def _postgres_cpu(session: Session) -> float:
    """CPU seconds used so far by the session's PostgreSQL: its postmaster (found by its port)
    and every backend and worker under it, ended backends excluded (connections are held)."""
    assert session.stack is not None  # noqa: S101 - narrows the type: the stack is started first
    port = make_url(session.stack.database_url).port
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                argv = (entry / "cmdline").read_bytes().split(b"\0")
                if argv and argv[0].endswith(b"postgres") and f"port={port}".encode() in argv:
                    return sum(cpu_seconds(pid) or 0.0 for pid in descendants(int(entry.name)))
    return 0.0


@asynccontextmanager
async def _counter(
    database_url: str, query: str, *args: Any
) -> AsyncIterator[Callable[[], Awaitable[int]]]:
    """``count()``: the value of a ``SELECT count(...)`` query, on one held connection."""
    connection = await asyncpg.connect(database_url)
    try:

        async def count() -> int:
            value: int = await connection.fetchval(query, *args)
            return value

        yield count
    finally:
        await connection.close()


async def _enrichment(session: Session, replicas: int, leads: int) -> Drain:
    database = await session.database(f"scaleout_enrichment_{replicas}")
    prefix = await session.topics(f"scaleout-enrichment-{replicas}")
    async with serve_sandbox(latency_seconds=0.0) as sandbox_url:
        env = session.env(
            database, prefix, SANDBOX_LATENCY_SECONDS="0", ENRICHMENT_POLL_INTERVAL_SECONDS="0"
        )
        project = await _project(database, f"scale-out {replicas}")
        feeders = await session.start_services(["api", "ingestion"], env, sandbox_url=sandbox_url)
        try:
            steps = leads // PER_WEBHOOK
            spec = LoadSpec(
                url=feeders[0].url,
                scenario="sales-nav",
                params={
                    "secret": SECRETS["SALES_NAV_WEBHOOK_SECRET"],
                    "project_id": str(project),
                    "run": uuid.uuid4().hex[:8],
                    "per_webhook": PER_WEBHOOK,
                },
                connections=4,
                duration=300.0,
                max_steps=steps,
            )
            await session.load(spec)
            # the backlog: every lead stored (ENRICHING) and its enrichment request, written
            # through the outbox in the same transaction, published to the lane
            async with _counter(
                database,
                "SELECT CASE WHEN EXISTS (SELECT FROM outbox WHERE published_at IS NULL)"
                " THEN 0 ELSE (SELECT count(*) FROM leads WHERE project_id = $1) END",
                project,
            ) as queued:
                await wait_until(queued, lambda n: n >= leads, within=DRAIN_TIMEOUT_S, interval=0.5)
            async with _counter(
                database,
                "SELECT count(*) FROM leads WHERE project_id = $1 AND enriched_at IS NOT NULL",
                project,
            ) as enriched:
                return await _drain(
                    session, "enrichment", replicas, env, enriched, leads, sandbox_url=sandbox_url
                )
        finally:
            await stop_all(feeders)


async def _calls(session: Session, replicas: int, calls: int) -> Drain:
    database = await session.database(f"scaleout_calls_{replicas}")
    await _seed_callers(database)
    prefix = await session.topics(f"scaleout-calls-{replicas}")
    env = session.env(database, prefix)
    gateway = await session.start_services(["api"], env)
    try:
        spec = yay_load(gateway[0].url, session, max_steps=calls, duration=300.0, warmup_steps=0)
        spec.params["callers"] = CALLERS
        load = await session.load(spec)
        ended = len(load.report.tags)
        async with _counter(
            database,
            "SELECT count(DISTINCT correlation_id) FROM caller_performance_metrics"
            " WHERE correlation_id LIKE $1",
            f"{spec.params['run']}-%",
        ) as written:
            drain = await _drain(session, "calls", replicas, env, written, ended)
    finally:
        await stop_all(gateway)
    drain.items *= EVENTS_PER_CALL
    return drain


def _scaling(drains: list[Drain]) -> float | None:
    return drains[-1].per_second / drains[0].per_second if drains[0].per_second else None


async def run(session: Session) -> Result:
    duration = session.options.duration
    leads = max(PER_WEBHOOK, int(round(LEADS_PER_SECOND_OF_DURATION * duration, -2)))
    calls = max(50, int(CALLS_PER_SECOND_OF_DURATION * duration))
    enrichment = [await _enrichment(session, n, leads) for n in REPLICAS]
    call_drains = [await _calls(session, n, calls) for n in REPLICAS]

    figures = [Figure(f"enrichment x{d.replicas}", "leads/s", d.per_second) for d in enrichment] + [
        Figure(f"calls x{d.replicas}", "events/s", d.per_second) for d in call_drains
    ]
    figures += [
        Figure("enrichment: 2 replicas / 1", "x", _scaling(enrichment)),
        Figure("calls: 2 replicas / 1", "x", _scaling(call_drains)),
    ]
    lanes = ("enrichment", "ranking", "yay-call-events", "call-validation", "performance")
    return Result(
        name="scaleout",
        description=(
            "enrichment and calls services as 1 and 2 replicas in one consumer group, each "
            "draining the same backlog"
        ),
        parameters={
            "replicas": list(REPLICAS),
            "leads": leads,
            "calls": calls,
            "events_per_call": EVENTS_PER_CALL,
            "partitions": {lane: LANES_BY_NAME[lane].partitions for lane in lanes},
        },
        figures=figures,
        platform={
            "enrichment": [d.details("leads") for d in enrichment],
            "calls": [d.details("events") for d in call_drains],
        },
        notes=[
            "throughput counts only the work done after every replica answered ready "
            "(start-up and the consumer group's first join excluded)",
            "replica_cpu_cores: CPU the replicas used during the drain, in cores; the machine's "
            "other processes (broker, PostgreSQL, load) share the same cores",
            "ranking is keyed by project: one project's rankings stay on one partition",
        ],
    )
