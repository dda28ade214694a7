"""``allocation``: ``GET /api/v1/call-tasks/current`` with 100 callers over 100,000 pending tasks.

The database is seeded with ``TASKS`` PENDING call tasks over 20 projects of mixed priority,
each for its own expert, by bulk ``INSERT ... SELECT generate_series``: a quarter of the
experts live in a zone outside the calling window now and a tenth of the tasks ask for a
language nobody speaks, so the allocation query has to skip rows, as in production.

Each load step is one caller asking for their current task (a fresh assignment from the pool,
the measured request) and an operator requeueing it, so the next request allocates again.
Platform: the gateway. Baseline: bare Starlette + asyncpg with the JWT check and the same
allocation query written by hand (:mod:`bench.baseline`). Three phases per side:

* closed loop, 100 callers back to back: saturation throughput; its latency is only
  concurrency / throughput (Little's law), not a service level;
* open loop at ``OPEN_RATES`` requests/s spread over the 100 callers (100/s: each caller
  asks about once a second), latency counted from the scheduled time: the service level. At
  400/s, past the gateway's capacity on the reference machine, the figure is the p99 of every
  answer (the admission control's 503s included) and the share of 503s: it must not collapse.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import asyncpg

from bench.harness import SECRETS, Child, Figure, Load, Result, Session, stop_all
from bench.loadgen import LoadSpec
from sourcing.allocation.settings import AllocationSettings
from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.config import load_settings

CALLERS = 100
TASKS = 100_000
OPEN_RATES = (100.0, 250.0, 400.0)
# Issue 17: p99 at 100 and 250 requests/s; at 400/s no collapse: past capacity the gateway
# answers 503 + Retry-After (admission control) and every answer, 503s included, stays fast.
P99_TARGETS_MS = {100.0: 25.0, 250.0: 50.0, 400.0: 250.0}
CLOSED_LOOP_RATIO_TARGET = 0.5


def _zones_now(*, inside: bool, start: int = 9, end: int = 20) -> list[str]:
    """Fixed-offset zones whose local hour now is inside (or outside) the calling window."""
    now = datetime.now(UTC)
    zones = []
    for offset in range(-12, 15):
        name = "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc signs are inverted
        hour = now.astimezone(ZoneInfo(name)).hour
        # a margin of an hour each side so the run does not straddle a window edge
        if inside == (start + 1 <= hour < end - 1) and (inside or not start - 1 <= hour < end + 1):
            zones.append(name)
    return zones


PROJECTS_SQL = (
    "INSERT INTO projects (name, target_threshold, geography_iso_codes, priority, status)"
    " SELECT 'Bench project ' || g, 30, ARRAY['US'], g % 4, 'ACTIVE'"
    " FROM generate_series(1, 20) g"
)
EXPERTS_SQL = (
    "INSERT INTO experts (full_name, linkedin_url_normalized, title, company_name, country_iso,"
    " timezone, language_codes)"
    " SELECT 'Expert ' || g, 'https://www.linkedin.com/in/bench-' || g, 'VP Payments',"
    " 'Company ' || (g % 500), 'US',"
    " CASE WHEN g % 4 = 0 THEN ($2::text[])[1 + g % cardinality($2::text[])]"
    " ELSE ($3::text[])[1 + g % cardinality($3::text[])] END, ARRAY['en']"
    " FROM generate_series(1, $1) g"
)
TASKS_SQL = (
    "INSERT INTO call_tasks (project_id, expert_id, priority, ranking_score, region_iso,"
    " language_code, phone_number, created_at)"
    " SELECT p.id, e.id, p.priority, random(), 'US',"
    " CASE WHEN random() < 0.1 THEN 'fi' ELSE 'en' END,"
    " '+1415' || lpad((row_number() OVER ())::text, 7, '0'), now() - random() * interval '30 days'"
    " FROM experts e JOIN LATERAL (SELECT id, priority FROM projects"
    "   ORDER BY id OFFSET (abs(hashtext(e.id::text)) % 20) LIMIT 1) p ON true"
)
CALLERS_SQL = (
    "INSERT INTO callers (email, name, timezone, language_codes, region_iso_codes)"
    " SELECT 'bench-alloc-' || g || '@example.com', 'Caller ' || g, 'America/New_York',"
    " ARRAY['en'], ARRAY['US'] FROM generate_series(1, $1) g"
)


async def _seed(database_url: str, tasks: int) -> list[str]:
    """Seed the pool; return the callers' ids."""
    connection = await asyncpg.connect(database_url)
    try:
        async with connection.transaction():
            await connection.execute(PROJECTS_SQL)
            await connection.execute(
                EXPERTS_SQL, tasks, _zones_now(inside=False), _zones_now(inside=True)
            )
            await connection.execute(TASKS_SQL)
            await connection.execute(CALLERS_SQL, CALLERS)
        await connection.execute("VACUUM ANALYZE")
        rows = await connection.fetch("SELECT id FROM callers ORDER BY email")
        return [str(row["id"]) for row in rows]
    finally:
        await connection.close()


def _specs(url: str, session: Session, tokens: dict[str, Any]) -> dict[str, LoadSpec]:
    common: dict[str, Any] = {
        "url": url,
        "scenario": "allocation",
        "params": tokens,
        "connections": CALLERS,
        "duration": session.options.duration,
        "warmup_steps": CALLERS,
    }
    # Closed loop: a caller told 503 waits its Retry-After (else the 503s are the load).
    specs = {"closed": LoadSpec(**common | {"params": tokens | {"honour_retry_after": True}})}
    for rate in OPEN_RATES:
        specs[f"open {rate:g}/s"] = LoadSpec(**common, mode="open", rate=rate)
    return specs


async def _vacuum(database_url: str) -> None:
    """Clear the dead row versions the previous phase's assign/requeue cycles left at the head
    of the pending index, so no phase (or side) inherits the one before it."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute("VACUUM ANALYZE call_tasks, callers")
    finally:
        await connection.close()


async def _side(
    session: Session, server: Child, database_url: str, tokens: dict[str, Any]
) -> dict[str, Load]:
    loads: dict[str, Load] = {}
    for name, spec in _specs(server.url, session, tokens).items():
        await _vacuum(database_url)
        loads[name] = await session.load(spec, watch=[server])
    return loads


def _share(load: Load, status: int) -> float:
    """The percentage of ``GET /current`` answers with ``status``."""
    answers = load.report.statuses.get("current", {})
    total = sum(answers.values())
    return 100 * answers.get(str(status), 0) / total if total else 0.0


async def run(session: Session) -> Result:
    tasks = 20_000 if session.options.quick else TASKS
    database = await session.database("allocation")
    callers = await _seed(database, tasks)
    settings = load_settings(AllocationSettings, APP_ENV="development", **SECRETS)
    tokens = {
        "tokens": [mint_token(settings, Principal(caller, Role.CALLER)) for caller in callers],
        "operator_token": mint_token(settings, Principal("bench-ops", Role.OPS)),
    }
    # the same pool size for both sides (the gateway's default is 10)
    pool = {"DATABASE_POOL_SIZE": "40"}

    prefix = await session.topics("allocation-platform")
    children = await session.start_services(["api"], session.env(database, prefix, **pool))
    try:
        platform = await _side(session, children[0], database, tokens)
    finally:
        await stop_all(children)

    prefix = await session.topics("allocation-baseline", ["yay-call-events", "sales-nav-ingestion"])
    bare = await session.start_baseline("http", session.env(database, prefix, **pool))
    try:
        baseline = await _side(session, bare, database, tokens)
    finally:
        await bare.stop()

    closed_p, closed_b = platform["closed"], baseline["closed"]
    figures = [
        Figure(
            "closed loop: throughput",
            "req/s",
            closed_p.rate("current", 200),
            closed_b.rate("current", 200),
            check="ratio_min",
            threshold=CLOSED_LOOP_RATIO_TARGET,
        ),
        Figure(
            "closed loop: p50",
            "ms",
            closed_p.latency("current", 0.5),
            closed_b.latency("current", 0.5),
        ),
        Figure(
            "closed loop: p99",
            "ms",
            closed_p.latency("current", 0.99),
            closed_b.latency("current", 0.99),
        ),
    ]
    for rate in OPEN_RATES:
        name = f"open {rate:g}/s"
        figures += [
            Figure(
                f"{name}: p50",
                "ms",
                platform[name].latency("current", 0.5),
                baseline[name].latency("current", 0.5),
            ),
            Figure(
                f"{name}: p99",
                "ms",
                platform[name].latency("current", 0.99),
                baseline[name].latency("current", 0.99),
                check="max",
                threshold=P99_TARGETS_MS[rate],
            ),
            Figure(
                f"{name}: answered 503",
                "%",
                _share(platform[name], 503),
                _share(baseline[name], 503),
            ),
        ]
    return Result(
        name="allocation",
        description=(
            f"GET /api/v1/call-tasks/current, {CALLERS} callers over {tasks:,} pending tasks "
            "(each answer requeued by an operator so every request allocates from the pool)"
        ),
        parameters={
            "callers": CALLERS,
            "pending_tasks": tasks,
            "open_loop_rates": list(OPEN_RATES),
            "p99_targets_ms": {f"{rate:g}": target for rate, target in P99_TARGETS_MS.items()},
            "duration_s": session.options.duration,
            "database_pool_size": 40,
        },
        figures=figures,
        platform={name: load.summary("current", 200) for name, load in platform.items()},
        baseline={name: load.summary("current", 200) for name, load in baseline.items()},
        notes=[
            "closed-loop latency is concurrency / throughput on a saturated server; the p99 "
            "targets are judged in the open loop (100 requests/s: each caller about once a "
            "second)",
            "open-loop latency counts from the scheduled send time (no coordinated omission), "
            "for every answer: the admission control's 503s (Retry-After) included",
            "every GET /current is followed by its requeue on the same connection (not after a "
            "503): the server answers twice the requests the throughput figure counts",
            "baseline: the same work in one hand-written statement per request (caller lock "
            "and stamp, expiry sweep, eligibility with suppressions, assignment, audit and "
            "status history rows; the requeue audited), without admission control",
        ],
    )
