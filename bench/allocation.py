"""Benchmark: latency of ``GET /api/v1/call-tasks/current`` under 100 concurrent callers.

Scenario
--------
* A scratch database (created on the stack's PostgreSQL server, migrated, dropped afterwards)
  is seeded with ``--tasks`` (100,000) PENDING call tasks over 20 projects of mixed priority,
  each for its own expert, by bulk ``INSERT ... SELECT generate_series``. A quarter of the
  experts live in a zone outside the calling window now and a tenth of the tasks ask for a
  language nobody speaks, so the allocation query has to skip rows, as in production.
* The gateway runs in a separate process under uvicorn on 127.0.0.1 (``DATABASE_POOL_SIZE``
  40 + 40 overflow, rate limit off).
* ``--callers`` (100) async callers (one httpx client, loopback only) loop until
  ``--duration`` seconds have passed: ``GET /current`` (timed; a fresh assignment almost every
  time), then either submit ``RETRYABLE_REJECTION`` for the task (it is COMPLETED and a RETRY
  task is created for after the cool-off) or have an operator requeue it (back to PENDING):
  so every next ``GET /current`` allocates again from the pool.
* Printed: requests, throughput, p50/p90/p99/max of ``GET /current`` and of the follow-up
  calls, and ``EXPLAIN ANALYZE`` of the pool query at the end.

Run: ``.venv/bin/python bench/allocation.py`` (starts an embedded stack, or uses
``TEST_DATABASE_URL`` / ``TEST_KAFKA_BROKER_URL``).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy import NullPool, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from sourcing.common.auth import Principal, Role, mint_token
from sourcing.common.config import Settings, load_settings, to_asyncpg_url
from sourcing.sandbox.server import free_port

SERVE_FLAG = "--serve"


def _zones_now(*, inside: bool, start: int = 9, end: int = 20) -> list[str]:
    """Fixed-offset zones whose local hour now is inside (or outside) the calling window."""
    now = datetime.now(UTC)
    zones = []
    for offset in range(-12, 15):
        name = "Etc/UTC" if offset == 0 else f"Etc/GMT{-offset:+d}"  # Etc signs are inverted
        hour = now.astimezone(ZoneInfo(name)).hour
        # a margin of an hour each side so the bench does not straddle a window edge
        if inside == (start + 1 <= hour < end - 1) and (inside or not start - 1 <= hour < end + 1):
            zones.append(name)
    return zones


async def _admin(server_url: str, statement: str) -> None:
    engine = create_async_engine(
        to_asyncpg_url(server_url), isolation_level="AUTOCOMMIT", poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def _seed(database_url: str, *, tasks: int, callers: int) -> None:
    inside, outside = _zones_now(inside=True), _zones_now(inside=False)
    engine = create_async_engine(to_asyncpg_url(database_url), poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.execute(
                text(
                    "INSERT INTO projects (name, target_threshold, geography_iso_codes, priority)"
                    " SELECT 'Bench project ' || g, 30, ARRAY['US'], g % 4"
                    " FROM generate_series(1, 20) g"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO experts (full_name, linkedin_url_normalized, title,"
                    " company_name, country_iso, timezone, language_codes)"
                    " SELECT 'Expert ' || g, 'https://www.linkedin.com/in/bench-' || g,"
                    " 'VP Payments', 'Company ' || (g % 500), 'US',"
                    " CASE WHEN g % 4 = 0"
                    " THEN (CAST(:away AS text[]))[1 + g % cardinality(CAST(:away AS text[]))]"
                    " ELSE (CAST(:inside AS text[]))[1 + g % cardinality(CAST(:inside AS text[]))]"
                    " END, ARRAY['en']"
                    " FROM generate_series(1, :n) g"
                ),
                {"n": tasks, "inside": inside, "away": outside},
            )
            await connection.execute(
                text(
                    "INSERT INTO call_tasks (project_id, expert_id, priority, ranking_score,"
                    " region_iso, language_code, phone_number, created_at)"
                    " SELECT p.id, e.id, p.priority, random(), 'US',"
                    " CASE WHEN random() < 0.1 THEN 'fi' ELSE 'en' END,"
                    " '+1415' || lpad((row_number() OVER ())::text, 7, '0'),"
                    " now() - random() * interval '30 days'"
                    " FROM experts e"
                    " JOIN LATERAL (SELECT id, priority FROM projects"
                    "   ORDER BY id OFFSET (abs(hashtext(e.id::text)) % 20) LIMIT 1) p ON true"
                )
            )
            await connection.execute(
                text(
                    "INSERT INTO callers (email, name, timezone, language_codes,"
                    " region_iso_codes) SELECT 'bench-caller-' || g || '@example.com',"
                    " 'Caller ' || g, 'America/New_York', ARRAY['en'], ARRAY['US']"
                    " FROM generate_series(1, :n) g"
                ),
                {"n": callers},
            )
        async with engine.connect() as connection:
            await connection.execute(text("COMMIT"))
            await connection.execute(text("VACUUM ANALYZE"))
    finally:
        await engine.dispose()


async def _caller_ids(database_url: str) -> list[str]:
    engine = create_async_engine(to_asyncpg_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text("SELECT id FROM callers ORDER BY email"))
            return [str(row[0]) for row in rows]
    finally:
        await engine.dispose()


async def _explain(database_url: str) -> str:
    """EXPLAIN ANALYZE of the pool query as the gateway builds it (rolled back)."""
    from sqlalchemy.dialects import postgresql

    from sourcing.common.allocation import _pool_candidate
    from sourcing.common.models import Caller

    settings = load_settings(DATABASE_URL=database_url)
    caller = Caller(language_codes=["en"], region_iso_codes=["US"])
    candidate = _pool_candidate(caller, now=datetime.now(UTC), settings=settings)
    from sqlalchemy import select

    query = select(candidate.c.id)
    compiled = query.compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"literal_binds": True},
    )
    engine = create_async_engine(to_asyncpg_url(database_url), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))
            plan = "\n".join(str(row[0]) for row in rows)
            await connection.rollback()
            return plan
    finally:
        await engine.dispose()


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(fraction * (len(ordered) - 1))))
    return ordered[index]


def _line(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:<28} n=0"
    ms = [v * 1000 for v in values]
    return (
        f"{name:<28} n={len(ms):>6}  p50={_percentile(ms, 0.5):7.1f} ms  "
        f"p90={_percentile(ms, 0.9):7.1f} ms  p99={_percentile(ms, 0.99):7.1f} ms  "
        f"max={max(ms):7.1f} ms  mean={statistics.fmean(ms):6.1f} ms"
    )


async def _load(
    base_url: str, settings: Settings, caller_ids: list[str], *, duration: float
) -> None:
    tokens = {
        caller_id: mint_token(settings, Principal(user_id=caller_id, role=Role.CALLER))
        for caller_id in caller_ids
    }
    ops = {"Authorization": "Bearer " + mint_token(settings, Principal("bench-ops", Role.OPS))}
    current: list[float] = []
    assigned = 0
    nothing = 0
    follow_ups: list[float] = []
    errors: list[str] = []
    limits = httpx.Limits(max_connections=len(caller_ids) + 10, max_keepalive_connections=200)
    async with httpx.AsyncClient(
        base_url=base_url, limits=limits, timeout=httpx.Timeout(30.0)
    ) as client:
        deadline = time.monotonic() + duration
        rng = random.Random(7)

        async def caller_loop(caller_id: str) -> None:
            nonlocal assigned, nothing
            headers = {"Authorization": f"Bearer {tokens[caller_id]}"}
            while time.monotonic() < deadline:
                started = time.perf_counter()
                response = await client.get("/api/v1/call-tasks/current", headers=headers)
                current.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors.append(f"current {response.status_code} {response.text[:200]}")
                    continue
                task = response.json()["task"]
                if task is None:
                    nothing += 1
                    continue
                assigned += int(response.json()["newlyAssigned"])
                started = time.perf_counter()
                if rng.random() < 0.5:
                    response = await client.post(
                        f"/api/v1/call-tasks/{task['id']}/outcome",
                        json={"outcome": "RETRYABLE_REJECTION"},
                        headers=headers,
                    )
                else:
                    response = await client.post(
                        f"/api/v1/call-tasks/operator/tasks/{task['id']}/requeue",
                        json={"reason": "bench: next task"},
                        headers=ops,
                    )
                follow_ups.append(time.perf_counter() - started)
                if response.status_code != 200:
                    errors.append(f"follow-up {response.status_code} {response.text[:200]}")

        began = time.perf_counter()
        await asyncio.gather(*(caller_loop(caller_id) for caller_id in caller_ids))
        elapsed = time.perf_counter() - began
    print(f"callers={len(caller_ids)} duration={elapsed:.1f}s")
    print(_line("GET /call-tasks/current", current))
    print(_line("outcome or requeue", follow_ups))
    print(
        f"GET /current throughput: {len(current) / elapsed:.0f} req/s; newly assigned "
        f"{assigned}, nothing available {nothing}, errors {len(errors)}"
    )
    for error in errors[:5]:
        print("  error:", error)


def _serve() -> None:
    """The gateway process (``bench/allocation.py --serve PORT``), settings from the env."""
    import uvicorn

    from sourcing.api.app import create_app

    port = int(sys.argv[2])
    uvicorn.run(
        create_app(load_settings()),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
    )


async def _wait_ready(base_url: str, process: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError("the gateway exited during start-up")
            with contextlib.suppress(httpx.HTTPError):
                if (await client.get("/api/v1/system/health")).status_code == 200:
                    return
            await asyncio.sleep(0.2)
    raise TimeoutError("the gateway did not start within 60 s")


async def _main(args: argparse.Namespace) -> None:
    from sourcing.common.migrate import upgrade
    from sourcing.devstack import start_test_stack

    stack = start_test_stack()
    server_url = stack.database_url
    name = f"bench_alloc_{uuid.uuid4().hex[:8]}"
    database_url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    await _admin(server_url, f'CREATE DATABASE "{name}"')
    process: subprocess.Popen[bytes] | None = None
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(upgrade, database_url).result()
        began = time.perf_counter()
        await _seed(database_url, tasks=args.tasks, callers=args.callers)
        print(f"seeded {args.tasks} pending tasks in {time.perf_counter() - began:.1f}s")
        env = {
            **os.environ,
            "APP_ENV": "development",
            "DATABASE_URL": database_url,
            "KAFKA_BROKER_URL": stack.bootstrap_servers,
            "DATABASE_POOL_SIZE": "40",
            "RATE_LIMIT_MAX_REQUESTS": "100000000",
            "LOG_LEVEL": "warn",
        }
        settings = load_settings(DATABASE_URL=database_url, APP_ENV="development")
        port = free_port()
        process = subprocess.Popen(  # noqa: ASYNC220 - started once, before the load
            [sys.executable, __file__, SERVE_FLAG, str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        base_url = f"http://127.0.0.1:{port}"
        await _wait_ready(base_url, process)
        await _load(base_url, settings, await _caller_ids(database_url), duration=args.duration)
        if args.explain:
            print("pool query plan:\n" + await _explain(database_url))
    finally:
        if process is not None:
            process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=20)
            if process.poll() is None:
                process.kill()
        await _admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        stack.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == SERVE_FLAG:
        _serve()
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--tasks", type=int, default=100_000)
    parser.add_argument("--callers", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of load")
    parser.add_argument("--explain", action=argparse.BooleanOptionalAction, default=True)
    asyncio.run(_main(parser.parse_args()))


if __name__ == "__main__":
    main()
