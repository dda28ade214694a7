"""Equal work: the allocation baseline (``bench/baseline.py``) writes what the platform writes.

The same seeded pool goes into two databases; the same task requests and requeues run through
the platform's gateway (real commits) and through the baseline's statements; afterwards every
table holds the same rows in both (seeded ids kept; generated ids and write times aside). A
baseline that skips a write (an audit row, the caller's stamp, a history row) fails here.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest

from bench import baseline
from sourcing.allocation.service import ExpirySweep
from sourcing.api.app import create_app
from sourcing.common.migrate import upgrade
from sourcing.common.models import Base
from tests.fixtures.database import create_empty_database, drop_database

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)  # 10:00 in New York: inside the window
OPS = "ops-1"


def _id(name: str) -> uuid.UUID:
    return uuid.uuid5(uuid.NAMESPACE_URL, f"equal-work/{name}")


def _hash(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


CALLERS = {  # name: (status, regions)
    "ada": ("ACTIVE", ["US"]),
    "bo": ("IDLE_NO_AVAILABLE_TASKS", ["US"]),
    "cy": ("ACTIVE", ["GB"]),  # nothing for GB: goes idle
    "di": ("PAUSED_LOW_DIAL_RATE", ["US"]),  # refused: nothing written
}
# name: (project, priority, score, expert timezone, language, phone)
TASKS = {
    "best": ("p1", 3, 0.9, "America/New_York", "en", "+14155550101"),
    "second": ("p1", 3, 0.5, "America/New_York", "en", "+14155550102"),
    "third": ("p2", 1, 0.99, "America/New_York", None, "+14155550103"),
    "night": ("p1", 3, 0.99, "Asia/Tokyo", "en", "+81312345678"),
    "finnish": ("p1", 3, 0.98, "America/New_York", "fi", "+14155550104"),
    "paused": ("p3", 5, 0.99, "America/New_York", "en", "+14155550105"),
    "opted_out": ("p1", 3, 0.97, "America/New_York", "en", "+14155550106"),
    "erased": ("p1", 3, 0.96, "America/New_York", "en", "+14155550107"),
    "bad_phone": ("p1", 3, 0.95, "America/New_York", "en", "+14155550108"),
}
PROJECTS = {"p1": ("ACTIVE", 3), "p2": ("ACTIVE", 1), "p3": ("PAUSED", 5)}


async def _seed(connection: asyncpg.Connection) -> None:
    for name, (status, priority) in PROJECTS.items():
        await connection.execute(
            "INSERT INTO projects (id, name, target_threshold, geography_iso_codes, priority,"
            " status) VALUES ($1, $2, 30, ARRAY['US'], $3, $4)",
            _id(name),
            name,
            priority,
            status,
        )
    for number, (name, (project, priority, score, zone, language, phone)) in enumerate(
        TASKS.items()
    ):
        await connection.execute(
            "INSERT INTO experts (id, full_name, linkedin_url_normalized, country_iso, timezone,"
            " language_codes) VALUES ($1, $2, $3, 'US', $4, ARRAY['en'])",
            _id(f"expert-{name}"),
            name,
            f"https://www.linkedin.com/in/equal-{name}",
            zone,
        )
        await connection.execute(
            "INSERT INTO call_tasks (id, project_id, expert_id, priority, ranking_score,"
            " region_iso, language_code, phone_number, created_at)"
            " VALUES ($1, $2, $3, $4, $5, 'US', $6, $7, $8)",
            _id(f"task-{name}"),
            _id(project),
            _id(f"expert-{name}"),
            priority,
            score,
            language,
            phone,
            NOW - timedelta(days=1, minutes=number),
        )
    await connection.execute(
        "INSERT INTO expert_suppressions (expert_id, reason) VALUES ($1, 'OPT_OUT')",
        _id("expert-opted_out"),
    )
    await connection.execute(
        "INSERT INTO contact_suppressions (kind, value_hash, reason) VALUES"
        " ('LINKEDIN_URL', $1, 'ERASED'), ('PHONE', $2, 'MANUAL')",
        _hash("https://www.linkedin.com/in/equal-erased"),
        _hash(TASKS["bad_phone"][5]),
    )
    for name, (status, regions) in CALLERS.items():
        await connection.execute(
            "INSERT INTO callers (id, email, name, timezone, language_codes, region_iso_codes,"
            " allocation_status) VALUES ($1, $2, $2, 'America/New_York', ARRAY['en'], $3, $4)",
            _id(f"caller-{name}"),
            f"{name}@example.com",
            regions,
            status,
        )


# The journey: (seconds after NOW, action, caller or task name).
STEPS = [
    (0, "ask", "ada"),  # the best task
    (1, "requeue", "ada"),
    (2, "ask", "ada"),  # the best again (requeued)
    (3, "ask", "bo"),  # the second; IDLE → ACTIVE
    (4, "ask", "cy"),  # nothing for GB: ACTIVE → IDLE
    (5, "ask", "di"),  # paused: refused, nothing written
    (6, "ask", "bo"),  # bo's active task again
    (310, "ask", "cy"),  # the sweep: ada's and bo's tasks expire; still nothing for cy
    (311, "ask", "ada"),  # a fresh assignment
    (312, "requeue", "ada"),
    (320, "ask", "bo"),
]


async def _snapshot(connection: asyncpg.Connection) -> dict[str, Any]:
    """What the allocation work leaves: the rows of each table it writes, meaningful columns
    only, and which tables hold rows at all."""
    tables = [table.name for table in Base.metadata.sorted_tables]
    filled = {
        name
        for name in tables
        if await connection.fetchval(f'SELECT EXISTS (SELECT FROM "{name}")')  # noqa: S608
    }
    tasks = await connection.fetch(
        "SELECT id, status, status_reason, status_changed_at, caller_id, assigned_at,"
        " expires_at, requeue_count FROM call_tasks ORDER BY id"
    )
    callers = await connection.fetch(
        "SELECT id, allocation_status, status_reason, status_changed_at, shift_started_at,"
        " last_task_requested_at, last_seen_at FROM callers ORDER BY id"
    )
    events = await connection.fetch(
        "SELECT type, entity_type, entity_id, actor, correlation_id, data FROM system_events"
    )
    history = await connection.fetch(
        "SELECT caller_id, from_status, to_status, reason, actor, correlation_id"
        " FROM caller_status_history"
    )
    return {
        "tables with rows": sorted(filled),
        "call_tasks": [tuple(row) for row in tasks],
        "callers": [tuple(row) for row in callers],
        "system_events": sorted(
            (*row[:5], json.dumps(json.loads(row["data"]), sort_keys=True)) for row in events
        ),
        "caller_status_history": sorted(tuple(row) for row in history),
    }


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


@pytest.fixture
async def baseline_database(infra: Any) -> AsyncIterator[str]:
    """A second database, migrated, for the baseline's run."""
    url = await create_empty_database(infra.database_url)
    try:
        await asyncio.to_thread(upgrade, url)
        yield url
    finally:
        await drop_database(url, server_url=infra.database_url)


async def _platform(settings: Any, auth_headers: Callable[..., dict[str, str]]) -> None:
    app = create_app(settings)
    clock = {"now": NOW}
    transport = httpx.ASGITransport(app=app, client=("203.0.113.7", 40000))
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://gateway.test") as client,
    ):
        app.state.clock = lambda: clock["now"].timestamp()
        held: dict[str, str] = {}
        for number, (seconds, action, name) in enumerate(STEPS):
            clock["now"] = NOW + timedelta(seconds=seconds)
            headers = {"x-correlation-id": f"equal-{number}"}
            if action == "ask":
                caller = auth_headers("caller", str(_id(f"caller-{name}")))
                response = await client.get("/api/v1/call-tasks/current", headers=caller | headers)
                assert response.status_code in (200, 409), response.text
                if response.status_code == 200 and response.json()["task"]:
                    held[name] = response.json()["task"]["id"]
            else:
                response = await client.post(
                    f"/api/v1/call-tasks/operator/tasks/{held[name]}/requeue",
                    json={"reason": "equal work"},
                    headers=auth_headers("ops", OPS) | headers,
                )
                assert response.status_code == 200, response.text


async def _baseline(connection: asyncpg.Connection, settings: Any) -> None:
    sweep = ExpirySweep(timedelta(seconds=settings.ALLOCATION_EXPIRY_SWEEP_SECONDS))
    held: dict[str, uuid.UUID] = {}
    for number, (seconds, action, name) in enumerate(STEPS):
        now = NOW + timedelta(seconds=seconds)
        if action == "ask":
            row = await baseline.allocate(
                connection,
                _id(f"caller-{name}"),
                now=now,
                settings=settings,
                sweep=sweep.due(now),
                correlation_id=f"equal-{number}",
            )
            if row["id"] is not None:
                held[name] = row["id"]
        else:
            await baseline.requeue(
                connection,
                held[name],
                reason="equal work",
                actor=f"ops:{OPS}",
                now=now,
                correlation_id=f"equal-{number}",
            )


async def test_the_baseline_allocates_with_the_platforms_writes(
    api_settings_factory: Callable[..., Any],
    migrated_database_url: str,
    baseline_database: str,
    clean_database: None,
    auth_headers: Callable[..., dict[str, str]],
) -> None:
    settings = api_settings_factory(RATE_LIMIT_MAX_REQUESTS=10_000)
    platform_db = await asyncpg.connect(_dsn(migrated_database_url))
    baseline_db = await asyncpg.connect(_dsn(baseline_database))
    try:
        await _seed(platform_db)
        await _seed(baseline_db)
        await _platform(settings, auth_headers)
        await _baseline(baseline_db, settings)
        platform, bare = await _snapshot(platform_db), await _snapshot(baseline_db)
    finally:
        await platform_db.close()
        await baseline_db.close()

    # The journey did what it says (so the comparison below compares real work).
    events = {row[0] for row in platform["system_events"]}
    assert events == {
        "call_task.assigned",
        "call_task.requeued",
        "call_task.expired",
        "caller.allocation_status_changed",
    }
    assert {row[2] for row in platform["caller_status_history"]} == {
        "ACTIVE",
        "IDLE_NO_AVAILABLE_TASKS",
    }
    for table, rows in platform.items():
        assert bare[table] == rows, table
