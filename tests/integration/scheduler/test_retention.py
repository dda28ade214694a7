"""Retention (the cycle's sixth step) against the real PostgreSQL, with an injected clock."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.config import ConfigurationError, load_settings
from sourcing.common.db import session_scope
from sourcing.common.models import (
    CallerPerformanceMetric,
    CallLogRaw,
    IdempotencyKey,
    ProcessedEvent,
    ProcessedWebhookEvent,
    SystemEvent,
)
from sourcing.scheduler.cycle import Scheduler, slot_start
from sourcing.scheduler.handlers import STEPS, CycleContext, prune_expired_rows
from sourcing.scheduler.settings import SchedulerSettings
from tests.factories import create_caller
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

NOW = datetime(2031, 6, 1, 12, 0, 30, tzinfo=UTC)


def days_ago(days: float) -> datetime:
    return NOW - timedelta(days=days)


def context(settings: Settings, now: datetime = NOW, **overrides: Any) -> CycleContext:
    return CycleContext(
        now=now,
        slot_started_at=slot_start(now, 60),
        settings=settings.model_copy(update=overrides),
        correlation_id="retention-test",
    )


async def seed(session: AsyncSession) -> dict[str, Any]:
    """Rows on both sides of every retention setting's default."""
    caller = await create_caller(session)
    other = await create_caller(session)
    snapshot = {
        "rolling_60_minute_dials": 1,
        "rolling_60_minute_connections": 0,
        "short_calls_last_hour": 0,
        "timezone_mismatches_last_hour": 0,
        "allocation_status": "ACTIVE",
        "performance_score": 50.0,
    }
    snapshots = {
        name: (caller_id, days_ago(age))
        for name, caller_id, age in (
            ("old", caller.id, 40),
            ("older", caller.id, 45),
            ("recent", caller.id, 1),
            ("only_one_of_other", other.id, 400),  # old, but that caller's latest
        )
    }
    ids = {name: uuid.uuid4() for name in snapshots}
    await session.execute(
        insert(CallerPerformanceMetric),
        [
            {"id": ids[name], "caller_id": caller_id, "computed_at": at, **snapshot}
            for name, (caller_id, at) in snapshots.items()
        ],
    )
    await session.execute(
        insert(ProcessedEvent),
        [
            {"consumer": "enrichment", "event_id": "old", "processed_at": days_ago(36)},
            {"consumer": "enrichment", "event_id": "kept", "processed_at": days_ago(34)},
        ],
    )
    await session.execute(
        insert(ProcessedWebhookEvent),
        [
            {"id": uuid.uuid4(), "source": "yay", "event_id": "old", "received_at": days_ago(36)},
            {"id": uuid.uuid4(), "source": "yay", "event_id": "kept", "received_at": days_ago(2)},
        ],
    )
    await session.execute(
        insert(SystemEvent),
        [
            {"id": uuid.uuid4(), "type": "old", "created_at": days_ago(366), "data": {}},
            {"id": uuid.uuid4(), "type": "kept", "created_at": days_ago(364), "data": {}},
        ],
    )
    raw = {"callId": "c-1", "from": "+15550001111"}
    await session.execute(
        insert(CallLogRaw),
        [
            {
                "id": uuid.uuid4(),
                "event_id": event_id,
                "event_type": "call.ended",
                "payload": raw,
                "signature_valid": True,
                "received_at": at,
            }
            for event_id, at in (("old", days_ago(91)), ("kept", days_ago(89)))
        ],
    )
    await session.execute(
        insert(IdempotencyKey),
        [
            {"owner": "ops-1", "key": key, "fingerprint": "f", "created_at": NOW - age}
            for key, age in (("old", timedelta(hours=25)), ("kept", timedelta(hours=23)))
        ],
    )
    await session.flush()
    return {"snapshots": ids, "raw": raw}


async def names(session: AsyncSession, column: Any) -> set[str]:
    return set((await session.scalars(select(column))).all())


async def test_each_table_keeps_what_its_setting_keeps(
    session: AsyncSession, database_settings: Settings
) -> None:
    seeded = await seed(session)
    snapshots = seeded["snapshots"]

    pruned = await prune_expired_rows(session, context(database_settings))

    # processed_events 1, webhooks 1, snapshots 2, audit 1, raw payloads 1, idempotency keys 1
    assert pruned == 7
    assert await names(session, ProcessedEvent.event_id) == {"kept"}
    assert await names(session, ProcessedWebhookEvent.event_id) == {"kept"}
    assert await names(session, SystemEvent.type) == {"kept"}
    left = set((await session.scalars(select(CallerPerformanceMetric.id))).all())
    assert left == {snapshots["recent"], snapshots["only_one_of_other"]}
    rows = await session.execute(select(CallLogRaw.event_id, CallLogRaw.payload))
    payloads = {event_id: payload for event_id, payload in rows}
    # The old event's row and id stay (it still deduplicates); only its payload is gone.
    assert payloads == {"old": {}, "kept": seeded["raw"]}
    assert await names(session, IdempotencyKey.key) == {"kept"}
    # A second run finds nothing more.
    assert await prune_expired_rows(session, context(database_settings)) == 0


async def test_a_cycle_prunes_at_most_a_batch_per_table_oldest_first(
    session: AsyncSession, database_settings: Settings
) -> None:
    await session.execute(
        insert(SystemEvent),
        [
            {"id": uuid.uuid4(), "type": f"age-{age}", "created_at": days_ago(age), "data": {}}
            for age in (400, 401, 402, 403, 404)
        ],
    )
    small = context(database_settings, RETENTION_BATCH_SIZE=2)
    assert await prune_expired_rows(session, small) == 2
    assert await names(session, SystemEvent.type) == {"age-400", "age-401", "age-402"}
    assert await prune_expired_rows(session, small) == 2
    assert await prune_expired_rows(session, small) == 1
    assert await session.scalar(select(func.count()).select_from(SystemEvent)) == 0


async def test_the_clock_decides_what_is_old(
    session: AsyncSession, database_settings: Settings
) -> None:
    await seed(session)
    # A year earlier nothing had reached its retention yet.
    assert await prune_expired_rows(session, context(database_settings, days_ago(365))) == 0
    # Shorter settings prune more of the same rows.
    shorter = context(database_settings, SYSTEM_EVENT_RETENTION_DAYS=30)
    assert await prune_expired_rows(session, shorter) == 8
    assert await names(session, SystemEvent.type) == set()


def test_retention_is_the_cycles_last_step() -> None:
    assert STEPS[-1] == ("retention_pruning", prune_expired_rows)


def test_the_dedup_window_outlives_every_redelivery() -> None:
    settings = load_settings(SchedulerSettings, APP_ENV="test")
    # The dead-letter lane keeps messages 30 days: the default window covers it.
    assert settings.longest_redelivery_seconds() == 30 * 86_400
    with pytest.raises(ConfigurationError, match="DEDUP_RETENTION_DAYS"):
        load_settings(SchedulerSettings, APP_ENV="test", DEDUP_RETENTION_DAYS=29)
    with pytest.raises(ConfigurationError, match="DEDUP_RETENTION_DAYS"):
        load_settings(
            SchedulerSettings,
            APP_ENV="test",
            DEDUP_RETENTION_DAYS=35,
            OUTBOX_RETENTION_SECONDS=40 * 86_400,
        )


async def test_the_scheduler_prunes_on_its_own_clock(
    database_settings: Settings, sessionmaker_committing: async_sessionmaker[AsyncSession]
) -> None:
    sm = sessionmaker_committing
    written = NOW
    async with session_scope(sm) as session:
        await session.execute(
            insert(SystemEvent),
            [{"id": uuid.uuid4(), "type": "audit", "created_at": written, "data": {}}],
        )
    clock_now = [written + timedelta(days=364)]
    scheduler = Scheduler(database_settings, sm, clock=lambda: clock_now[0])

    async def audit_rows() -> int:
        async with session_scope(sm) as session:
            return int(await session.scalar(select(func.count()).select_from(SystemEvent)) or 0)

    assert (await scheduler.run_cycle()).steps[-1]["affected"] == 0
    assert await audit_rows() == 1
    clock_now[0] = written + timedelta(days=366)
    assert (await scheduler.run_cycle()).steps[-1]["affected"] == 1
    assert await audit_rows() == 0
