"""The calls baseline (``python -m bench.baseline calls``) does the platform's work, no less.

The same Yay events (three calls of three events, one delivered twice, one event of a type
the platform ignores) go through the platform's calls service (its three lanes, the outbox
relays between them) into one database, and through the bare baseline consumer into
another. Every table must then hold the same rows: generated values (ids, sequence numbers,
timestamps, the envelope ids and times inside stored messages) aside, compared as sorted
tuples per table, and the same set of tables must have received rows. A baseline skipping a
write, or writing a different value, fails it.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from bench.baseline import calls_consumer
from sourcing.calls.app import build_app
from sourcing.common.db import create_engine, create_sessionmaker
from sourcing.common.events import Envelope
from sourcing.common.kafka import EnvelopeProducer
from sourcing.common.messages.calls import YayCallEventReceived
from sourcing.common.migrate import upgrade
from tests.fixtures.database import _run_in_thread, create_empty_database, drop_database
from tests.fixtures.kafka import running_app, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

CALLERS = ("ada@example.com", "grace@example.com")
CALLS = 3
UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
# Generated per run whatever the program: row ids and sequence numbers...
GENERATED_COLUMNS = {"id", "seq"}
# ...and the times the writer's clock gives (columns, and keys of stored JSON).
CLOCK_COLUMNS = {
    "created_at",
    "updated_at",
    "processed_at",
    "computed_at",
    "validated_at",
    "published_at",
    "status_changed_at",
}
CLOCK_KEYS = {"occurred_at"}  # an envelope's time of writing


def _plain(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


def _events() -> list[YayCallEventReceived]:
    received = datetime.now(UTC).replace(microsecond=0)
    events = []
    for call in range(CALLS):
        for offset, kind in enumerate(("call.started", "call.answered", "call.ended")):
            at = received - timedelta(seconds=40 - 10 * call - 3 * offset)
            body = {
                "event": kind,
                "callId": f"call-{call}",
                "occurredAt": at.isoformat().replace("+00:00", "Z"),
                "agentEmail": CALLERS[call % len(CALLERS)],
                "from": "+442071234567",
                "to": "+14155550100",
                "direction": "outbound",
                "durationSeconds": 3 if call == 1 else 42,  # call 1: a short call
                "talkSeconds": 2 if call == 1 else 38,
                "metadata": {},
            }
            events.append(
                YayCallEventReceived(
                    event_id=f"call-{call}-{kind}",
                    event_type=kind,
                    call_id=f"call-{call}",
                    agent_email=body["agentEmail"],
                    signature_timestamp=at,
                    received_at=received,
                    body=body,
                )
            )
    unknown = events[0].model_copy(
        update={"event_id": "call-0-note", "event_type": "call.note", "body": {"event": "x"}}
    )
    return [*events, events[1], unknown]  # events[1] is delivered twice


async def _seed(url: str, caller_ids: list[uuid.UUID]) -> None:
    connection = await asyncpg.connect(_plain(url))
    try:
        await connection.executemany(
            "INSERT INTO callers (id, email, name, timezone, language_codes, region_iso_codes)"
            " VALUES ($1, $2, $2, 'America/New_York', ARRAY['en'], ARRAY['US'])",
            list(zip(caller_ids, CALLERS, strict=True)),
        )
    finally:
        await connection.close()


def _meaningful(value: Any, key: str = "") -> Any:
    """A value with what each run generates masked: ids, and the clock's times (the times
    derived from the events, e.g. a call's start or a caller's shift, are compared)."""
    if isinstance(value, uuid.UUID) or (isinstance(value, str) and UUID.match(value)):
        return "<uuid>"
    if key in CLOCK_COLUMNS:
        return None if value is None else "<clock>"
    if isinstance(value, str) and value[:1] in "{[":
        try:
            return _meaningful(json.loads(value))
        except ValueError:
            return value
    if isinstance(value, dict):
        return tuple(
            sorted((k, "<clock>" if k in CLOCK_KEYS else _meaningful(v)) for k, v in value.items())
        )
    if isinstance(value, list | tuple):
        return tuple(_meaningful(v) for v in value)
    return value


async def _tables(url: str, caller_ids: list[uuid.UUID]) -> dict[str, list[tuple[Any, ...]]]:
    """Every non-empty table (alembic's aside): its rows' meaningful columns, sorted."""
    names = {str(caller): f"<caller {n}>" for n, caller in enumerate(caller_ids)}
    connection = await asyncpg.connect(_plain(url))
    try:
        tables = [
            row["tablename"]
            for row in await connection.fetch(
                "SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
                " AND tablename <> 'alembic_version'"
            )
        ]
        dump: dict[str, list[tuple[Any, ...]]] = {}
        for table in sorted(tables):
            rows = await connection.fetch(f'SELECT * FROM "{table}"')  # noqa: S608 - catalog names
            if not rows:
                continue
            dump[table] = sorted(
                (
                    tuple(
                        (column, names.get(str(value)) or _meaningful(value, column))
                        for column, value in row.items()
                        if column not in GENERATED_COLUMNS
                    )
                    for row in rows
                ),
                key=repr,
            )
        return dump
    finally:
        await connection.close()


async def _count(url: str, sql: str) -> int:
    connection = await asyncpg.connect(_plain(url))
    try:
        return int(await connection.fetchval(sql))
    finally:
        await connection.close()


@pytest.fixture
async def baseline_database(infra: Any) -> AsyncIterator[str]:
    url = await create_empty_database(infra.database_url)
    try:
        _run_in_thread(upgrade, url)
        yield url
    finally:
        await drop_database(url, server_url=infra.database_url)


async def _run_platform(settings: Settings) -> None:
    engine = create_engine(settings)
    app = build_app(
        settings, web_enabled=False, engine=engine, sessionmaker=create_sessionmaker(engine)
    )
    try:
        async with running_app(app):
            await wait_until(lambda: _settled(settings.DATABASE_URL), timeout=40)
    finally:
        await engine.dispose()


async def _run_baseline(database_url: str, settings: Settings, monkeypatch: Any) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("KAFKA_BROKER_URL", settings.KAFKA_BROKER_URL)
    monkeypatch.setenv("KAFKA_TOPIC_PREFIX", settings.KAFKA_TOPIC_PREFIX)
    consumer = asyncio.create_task(calls_consumer())
    try:
        await wait_until(lambda: _settled(database_url), timeout=40)
    finally:
        consumer.cancel()
        await asyncio.gather(consumer, return_exceptions=True)
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)


async def _settled(url: str) -> bool:
    """Every call's metric row written, and nothing left to relay."""
    metrics = await _count(url, "SELECT count(*) FROM caller_performance_metrics")
    pending = await _count(url, "SELECT count(*) FROM outbox WHERE published_at IS NULL")
    return metrics >= CALLS and pending == 0


async def test_the_baseline_writes_the_platforms_rows(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    baseline_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller_ids = [uuid.uuid4() for _ in CALLERS]
    await _seed(kafka_settings.DATABASE_URL, caller_ids)
    await _seed(baseline_database, caller_ids)
    for event in _events():
        envelope = Envelope.of(event, correlation_id=f"corr-{event.call_id}")
        await kafka_producer.send_envelope("yay-call-events", envelope, key=event.caller_key)

    await _run_platform(kafka_settings)
    await _run_baseline(baseline_database, kafka_settings, monkeypatch)

    platform = await _tables(kafka_settings.DATABASE_URL, caller_ids)
    baseline = await _tables(baseline_database, caller_ids)
    assert sorted(baseline) == sorted(platform), "not the same tables received rows"
    for table, rows in platform.items():
        assert baseline[table] == rows, f"{table}: not the same rows"
