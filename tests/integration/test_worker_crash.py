"""A worker killed mid-stream loses nothing and applies nothing twice.

A real worker process (``tests.integration.workers.crash_worker``, built with the common
factory) consumes 2,000 messages, inserting one row per message into a table without a unique
key. It is stopped mid-stream (SIGKILL, or SIGTERM for the graceful path) and restarted:
afterwards every message has exactly one row. At the moment of the stop, the offsets the group
had committed never exceed the rows committed in PostgreSQL (offsets follow the DB commit).
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.db import session_scope
from sourcing.common.events import Envelope, PerformanceRecalculate
from sourcing.common.kafka.app import app_id_for
from sourcing.common.kafka.producer import EnvelopeProducer, bootstrap_servers, envelope_headers
from sourcing.common.topics import lane
from tests.fixtures.kafka import settings_env, wait_until
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration

REPO_ROOT = Path(__file__).resolve().parents[2]
MESSAGES = 2_000
# Must match tests/integration/workers/crash_worker.py (not imported: it builds an app).
SERVICE = "crash-test"


class Worker:
    """``python -m tests.integration.workers.crash_worker`` with the test's environment."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None

    def start(self) -> None:
        self._log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.workers.crash_worker"],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )

    def signal(self, signum: int) -> None:
        assert self.process is not None
        self.process.send_signal(signum)

    async def wait(self, timeout: float) -> int:  # noqa: ASYNC109 - bounds the polling loop
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while (code := self.process.poll()) is None:
            if time.monotonic() > deadline:
                raise TimeoutError(f"worker did not exit in {timeout}s; log:\n{self.tail()}")
            await asyncio.sleep(0.05)
        if self._log is not None:
            self._log.close()
        return code

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def kill(self) -> None:
        if self.alive():
            assert self.process is not None
            self.process.kill()
            self.process.wait()
        if self._log is not None:
            self._log.close()


@pytest.fixture
def crash_env(kafka_settings: Settings, topic_prefix: str, tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "AGENT_"))}
    env.update(settings_env(kafka_settings))
    env["CRASH_WORKER_RUN"] = topic_prefix
    env["CRASH_WORKER_DATADIR"] = str(tmp_path / "faust-data")
    env["CRASH_WORKER_SLOW_EVERY"] = "200"
    env["CRASH_WORKER_SLOW_SECONDS"] = "0.25"
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


@pytest.fixture
def workers(tmp_path: Path, crash_env: dict[str, str]) -> Iterator[list[Worker]]:
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.kill()


async def _counts(sessionmaker: async_sessionmaker[AsyncSession], run: str) -> tuple[int, int]:
    async with session_scope(sessionmaker) as session:
        row = (
            await session.execute(
                text("SELECT count(*), count(DISTINCT event_id) FROM crash_rows WHERE run = :r"),
                {"r": run},
            )
        ).one()
    return int(row[0]), int(row[1])


async def _committed_offsets(settings: Settings) -> dict[int, int]:
    """Offset committed by the worker's consumer group per partition of the lane (read with
    OffsetFetch from a consumer that never joins the group); 0 when none."""
    topic = settings.topic("performance")
    reader = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        group_id=app_id_for(SERVICE, settings),
        enable_auto_commit=False,
    )
    await reader.start()
    try:
        committed: dict[int, int] = {}
        for partition in range(lane("performance").partitions):
            offset = await reader.committed(TopicPartition(topic, partition))
            committed[partition] = max(offset or 0, 0)
        return committed
    finally:
        await reader.stop()


Placement = dict[str, tuple[int, int]]  # envelope id -> (partition, offset)


async def _produce(settings: Settings, producer: EnvelopeProducer, count: int) -> Placement:
    topic = settings.topic("performance")
    placement: Placement = {}
    chunk: list[tuple[str, bytes, bytes | None, list[tuple[str, bytes]]]] = []
    chunk_ids: list[str] = []
    for index in range(count):
        envelope = Envelope.new(
            "performance.recalculate.v1", PerformanceRecalculate(caller_id=uuid.uuid4())
        )
        key = f"caller-{index % 50}".encode()
        chunk.append((topic, envelope.to_bytes(), key, envelope_headers(envelope)))
        chunk_ids.append(envelope.id)
        if len(chunk) == 500 or index == count - 1:
            for envelope_id, sent in zip(chunk_ids, await producer.send_many(chunk), strict=True):
                placement[envelope_id] = (sent.partition, sent.offset)
            chunk, chunk_ids = [], []
    return placement


async def _assert_offsets_follow_rows(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    run: str,
    placement: Placement,
) -> tuple[int, int]:
    """The at-least-once invariant, checked exactly: every message below its partition's
    committed offset has its row. Returns (rows, committed messages)."""
    committed = await _committed_offsets(settings)
    applied = await _applied(sessionmaker, run)
    covered = {i for i, (part, offset) in placement.items() if offset < committed[part]}
    missing = covered - applied
    assert not missing, f"{len(missing)} committed offsets without their row: {committed}"
    return len(applied), len(covered)


@pytest.mark.parametrize(
    ("batch", "stop_signal"),
    [(False, signal.SIGKILL), (True, signal.SIGKILL), (True, signal.SIGTERM)],
    ids=["single-sigkill", "batch-sigkill", "batch-sigterm"],
)
async def test_worker_stopped_mid_stream_loses_nothing_and_duplicates_nothing(
    batch: bool,
    stop_signal: signal.Signals,
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    crash_env: dict[str, str],
    workers: list[Worker],
    tmp_path: Path,
    topic_prefix: str,
) -> None:
    await _create_table(kafka_sessionmaker)
    env = {
        **crash_env,
        "CRASH_WORKER_BATCH": "1" if batch else "0",
        # Slow enough that the stop lands mid-stream, fast enough to finish quickly.
        "CRASH_WORKER_DELAY_SECONDS": "0.002" if batch else "0.001",
    }
    placement = await _produce(kafka_settings, kafka_producer, MESSAGES)
    assert len(placement) == MESSAGES

    first = Worker(env, tmp_path / "worker-1.log")
    workers.append(first)
    first.start()
    await wait_until(
        lambda: _at_least(kafka_sessionmaker, topic_prefix, MESSAGES // 5),
        timeout=120,
        message="first worker to process a fifth of the stream",
    )
    first.signal(stop_signal)
    code = await first.wait(timeout=60)
    if stop_signal == signal.SIGTERM:
        assert code == 0, first.tail()
    rows_at_stop, distinct_at_stop = await _counts(kafka_sessionmaker, topic_prefix)
    assert rows_at_stop == distinct_at_stop
    assert rows_at_stop < MESSAGES, "the stop did not land mid-stream: slow the worker down"
    applied, committed = await _assert_offsets_follow_rows(
        kafka_settings, kafka_sessionmaker, topic_prefix, placement
    )
    if stop_signal == signal.SIGTERM:
        # Graceful: the in-flight batch finished and every processed message was committed.
        assert committed == applied

    second = Worker(env, tmp_path / "worker-2.log")
    workers.append(second)
    second.start()
    await wait_until(
        lambda: _at_least(kafka_sessionmaker, topic_prefix, MESSAGES),
        timeout=180,
        message=f"all {MESSAGES} rows after the restart",
    )
    # Let the redelivered tail (after the last commit) be consumed and committed.
    await wait_until(
        lambda: _committed_all(kafka_settings),
        timeout=60,
        message="the restarted worker to commit every offset",
    )
    second.signal(signal.SIGTERM)
    assert await second.wait(timeout=60) == 0, second.tail()

    await _assert_each_applied_once(kafka_sessionmaker, topic_prefix, set(placement))


async def _create_table(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with session_scope(sessionmaker) as session:
        await session.execute(
            text(
                "CREATE TABLE IF NOT EXISTS crash_rows ("
                " run text NOT NULL, event_id text NOT NULL, caller_id text NOT NULL)"
            )
        )


async def _assert_each_applied_once(
    sessionmaker: async_sessionmaker[AsyncSession], run: str, ids: set[str]
) -> None:
    total, distinct = await _counts(sessionmaker, run)
    assert (total, distinct) == (len(ids), len(ids))
    applied = await _applied(sessionmaker, run)
    async with session_scope(sessionmaker) as session:
        recorded = await session.scalar(
            text("SELECT count(*) FROM processed_events WHERE consumer = :c"),
            {"c": f"{run}crash-test-rows"},
        )
    assert applied == ids
    assert recorded == len(ids)


async def _applied(sessionmaker: async_sessionmaker[AsyncSession], run: str) -> set[str]:
    async with session_scope(sessionmaker) as session:
        result = await session.execute(
            text("SELECT event_id FROM crash_rows WHERE run = :r"), {"r": run}
        )
        return set(result.scalars())


async def _at_least(sessionmaker: async_sessionmaker[AsyncSession], run: str, n: int) -> bool:
    return (await _counts(sessionmaker, run))[1] >= n


async def _committed_all(settings: Settings) -> bool:
    return sum((await _committed_offsets(settings)).values()) >= MESSAGES


async def test_rebalance_to_a_second_worker_then_crash_of_the_first_loses_nothing(
    kafka_settings: Settings,
    kafka_producer: EnvelopeProducer,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    crash_env: dict[str, str],
    workers: list[Worker],
    tmp_path: Path,
    topic_prefix: str,
) -> None:
    """Scale out mid-stream (partitions move while messages are in flight), then SIGKILL the
    first worker: the second one ends up with every partition, every message once."""
    await _create_table(kafka_sessionmaker)
    env = {**crash_env, "CRASH_WORKER_BATCH": "1", "CRASH_WORKER_DELAY_SECONDS": "0.004"}
    placement = await _produce(kafka_settings, kafka_producer, MESSAGES)
    first = Worker(env, tmp_path / "worker-1.log")
    second = Worker(env, tmp_path / "worker-2.log")
    workers.extend([first, second])

    first.start()
    await wait_until(
        lambda: _at_least(kafka_sessionmaker, topic_prefix, MESSAGES // 10),
        timeout=120,
        message="first worker under way",
    )
    second.start()  # joins the group: partitions are revoked from the first mid-batch
    await wait_until(
        lambda: _at_least(kafka_sessionmaker, topic_prefix, MESSAGES // 2),
        timeout=120,
        message="half the stream with two workers",
    )
    first.signal(signal.SIGKILL)
    await first.wait(timeout=30)
    assert (await _counts(kafka_sessionmaker, topic_prefix))[1] < MESSAGES, "stream too short"
    await _assert_offsets_follow_rows(kafka_settings, kafka_sessionmaker, topic_prefix, placement)

    await wait_until(
        lambda: _at_least(kafka_sessionmaker, topic_prefix, MESSAGES),
        timeout=180,
        message=f"all {MESSAGES} rows on the surviving worker",
    )
    await wait_until(lambda: _committed_all(kafka_settings), timeout=60, message="commits")
    second.signal(signal.SIGTERM)
    assert await second.wait(timeout=60) == 0, second.tail()
    await _assert_each_applied_once(kafka_sessionmaker, topic_prefix, set(placement))
