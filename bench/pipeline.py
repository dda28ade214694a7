"""``pipeline``: leads per second from the Sales Nav webhook to ``ENRICHED``; ``memory``: the
RSS of every service process, idle and at its peak under that load.

Platform: the gateway and every agent service as separate processes (as ``make dev`` runs
them), the provider sandbox answering at zero latency (:func:`serve_sandbox`). Every lead's
name contains ``Standard``, the sandbox's fast, high-confidence persona. The clock runs from
the first webhook request to the moment the last lead has ``enriched_at`` set (downstream
lanes, e.g. ranking and outreach, keep running meanwhile, as they would in production).

Baseline: the bare webhook (:mod:`bench.baseline` ``http``) and one bare consumer
(``pipeline``) doing the same work (``tests/bench/test_equal_work_pipeline.py`` compares the
rows): the search, experts, leads and their LinkedIn contacts, the enrichment waterfall against
the same sandbox with the platform's adapters, provider order, parallelism and budgets (every
attempt recorded), the best answer's contacts, leads ``ENRICHED`` with their audit events,
ranking snapshots and scores, and the follow-ups' outbox rows (sheet row, call task), relayed.

Both sides get a warm-up delivery first (consumers joined, connections open).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from bench.harness import (
    SECRETS,
    SERVICES,
    Child,
    Figure,
    Load,
    MemorySampler,
    Result,
    Session,
    stop_all,
    wait_until,
)
from bench.loadgen import LoadSpec
from sourcing.sandbox.server import serve_sandbox

PER_WEBHOOK = 100
LEADS_PER_SECOND_OF_DURATION = 40
WARMUP_LEADS = 50
# Both sides' providers: the sandbox at zero latency, no pause between status polls.
SANDBOX_ENV = {"SANDBOX_LATENCY_SECONDS": "0", "ENRICHMENT_POLL_INTERVAL_SECONDS": "0"}
# The baseline's delivery lane and the lanes its follow-ups go to.
BASELINE_LANES = ("sales-nav-ingestion", "call-allocation", "google-sheets-sync", "outreach")
IDLE_MB_TARGET = 150.0


@dataclass
class Side:
    """What one side (platform or baseline) of the pipeline run measured."""

    leads: int
    load: Load
    finished_at: float  # wall clock when the last lead was seen enriched
    idle_mb: dict[str, float] = field(default_factory=dict)
    peak_mb: dict[str, float] = field(default_factory=dict)

    @property
    def elapsed(self) -> float:
        return self.finished_at - self.load.report.started_at

    @property
    def leads_per_second(self) -> float:
        return self.leads / self.elapsed

    def details(self) -> dict[str, Any]:
        return {
            "leads": self.leads,
            "webhooks_accepted_in_s": round(self.load.report.elapsed, 2),
            "webhook_to_enriched_s": round(self.elapsed, 2),
            "leads_per_second": round(self.leads_per_second, 1),
            "webhook": self.load.summary("webhook", 202),
            "idle_rss_mb": _rounded(self.idle_mb),
            "peak_rss_mb": _rounded(self.peak_mb),
        }


@dataclass
class PipelineRun:
    platform: Side
    baseline: Side


def _rounded(values: dict[str, float]) -> dict[str, float]:
    return {name: round(value, 1) for name, value in values.items()}


async def _project(database_url: str, name: str) -> uuid.UUID:
    connection = await asyncpg.connect(database_url)
    try:
        project: uuid.UUID = await connection.fetchval(
            "INSERT INTO projects (name, target_threshold, geography_iso_codes, status)"
            " VALUES ($1, 100, ARRAY['US'], 'ACTIVE') RETURNING id",
            name,
        )
        return project
    finally:
        await connection.close()


async def _deliver(
    session: Session,
    processes: list[Child],
    database_url: str,
    project: uuid.UUID,
    leads: int,
    expected: int,
) -> tuple[Load, float]:
    """Post ``leads`` leads in webhooks of :data:`PER_WEBHOOK`; wait until ``expected`` leads of
    the project are enriched. Returns the load report and when that was seen (wall clock)."""
    steps = max(1, leads // PER_WEBHOOK)
    spec = LoadSpec(
        url=processes[0].url,
        scenario="sales-nav",
        params={
            "secret": SECRETS["SALES_NAV_WEBHOOK_SECRET"],
            "project_id": str(project),
            "run": uuid.uuid4().hex[:8],
            "per_webhook": min(leads, PER_WEBHOOK),
        },
        connections=min(steps, 4),
        duration=300.0,
        max_steps=steps,
    )
    connection = await asyncpg.connect(database_url)
    try:

        async def enriched() -> int:
            count: int = await connection.fetchval(
                "SELECT count(*) FROM leads WHERE project_id = $1 AND enriched_at IS NOT NULL",
                project,
            )
            return count

        delivery = asyncio.create_task(session.load(spec, watch=processes))
        try:
            await wait_until(enriched, lambda n: n >= expected, within=300.0, interval=0.05)
        finally:
            load = await delivery
        if load.ok("webhook", 202) != steps:
            raise RuntimeError(
                f"webhooks not accepted: {load.report.statuses} {load.report.errors}"
            )
        return load, time.time()
    finally:
        await connection.close()


async def _side(
    session: Session, processes: list[Child], database_url: str, name: str, leads: int
) -> Side:
    """Warm up, sample the idle RSS, then measure ``leads`` (``processes[0]`` takes the
    webhooks)."""
    project = await _project(database_url, f"bench {name}")
    await _deliver(session, processes, database_url, project, WARMUP_LEADS, WARMUP_LEADS)
    sampler = MemorySampler(processes)
    idle = sampler.sample()
    async with sampler:
        load, finished = await _deliver(
            session, processes, database_url, project, leads, WARMUP_LEADS + leads
        )
    return Side(leads, load, finished, idle_mb=idle, peak_mb=sampler.peak_mb)


async def measure(session: Session) -> PipelineRun:
    """Both sides, once per session (``pipeline`` and ``memory`` share the run)."""
    cached = session.cache.get("pipeline")
    if isinstance(cached, PipelineRun):
        return cached
    # the work scales with --duration (600 leads at the default 15 s)
    leads = max(
        PER_WEBHOOK, int(round(LEADS_PER_SECOND_OF_DURATION * session.options.duration, -2))
    )
    database = await session.database("pipeline")
    async with serve_sandbox(latency_seconds=0.0) as sandbox_url:
        prefix = await session.topics("pipeline-platform")
        env = session.env(database, prefix, **SANDBOX_ENV)
        children = await session.start_services(SERVICES, env, sandbox_url=sandbox_url)
        try:
            # let start-up work (first scheduler cycle, consumer joins) settle before "idle"
            await asyncio.sleep(2.0 if session.options.quick else 8.0)
            platform = await _side(session, children, database, "platform", leads)
        finally:
            await stop_all(children)

        prefix = await session.topics("pipeline-baseline", BASELINE_LANES)
        env = session.env(
            database, prefix, **SANDBOX_ENV, SANDBOX_PROVIDERS="1", SANDBOX_URL=sandbox_url
        )
        bare = [
            await session.start_baseline("http", env),
            await session.start_baseline("pipeline", env),
        ]
        try:
            baseline = await _side(session, bare, database, "baseline", leads)
        finally:
            await stop_all(bare)
    run = PipelineRun(platform, baseline)
    session.cache["pipeline"] = run
    return run


async def run(session: Session) -> Result:
    measured = await measure(session)
    platform, baseline = measured.platform, measured.baseline
    return Result(
        name="pipeline",
        description=(
            "Sales Nav webhook to ENRICHED (enriched_at set), provider sandbox at zero latency"
        ),
        parameters={
            "leads": platform.leads,
            "per_webhook": PER_WEBHOOK,
            "warmup_leads": WARMUP_LEADS,
            "platform_processes": list(SERVICES),
        },
        figures=[
            Figure(
                "webhook -> ENRICHED",
                "leads/s",
                platform.leads_per_second,
                baseline.leads_per_second,
                "ratio_min",
                0.50,
            ),
            Figure("all leads enriched after", "s", platform.elapsed, baseline.elapsed),
        ],
        platform=platform.details(),
        baseline=baseline.details(),
        notes=[
            "baseline: one bare consumer doing the platform's work on the path (same rows, "
            "same waterfall against the same sandbox, ranking, follow-ups' outbox rows) in "
            "one transaction per batch; the platform's clock stops at ENRICHED while its "
            "ranking lane still runs",
        ],
    )


async def run_memory(session: Session) -> Result:
    measured = await measure(session)
    platform, baseline = measured.platform, measured.baseline
    figures = [
        Figure(f"{name} idle", "MiB", platform.idle_mb.get(name), None, "max", IDLE_MB_TARGET)
        for name in SERVICES
    ]
    figures += [
        Figure(f"{name} peak under pipeline load", "MiB", platform.peak_mb.get(name))
        for name in SERVICES
    ]
    figures += [
        Figure(
            "all processes idle",
            "MiB",
            sum(platform.idle_mb.values()),
            sum(baseline.idle_mb.values()),
        ),
        Figure(
            "all processes peak",
            "MiB",
            sum(platform.peak_mb.values()),
            sum(baseline.peak_mb.values()),
        ),
    ]
    return Result(
        name="memory",
        description="RSS (VmRSS) of each service process, idle and peak under the pipeline load",
        parameters={"leads": platform.leads, "sample_interval_s": 0.25},
        figures=figures,
        platform={
            "idle_rss_mb": _rounded(platform.idle_mb),
            "peak_rss_mb": _rounded(platform.peak_mb),
        },
        baseline={
            "idle_rss_mb": _rounded(baseline.idle_mb),
            "peak_rss_mb": _rounded(baseline.peak_mb),
        },
        notes=[
            "idle: after start-up, a settle pause and a warm-up delivery; baseline: the bare "
            "webhook server plus the bare pipeline consumer",
        ],
    )
