"""Transactional outbox: a state change and the message announcing it never diverge.

Handlers and API requests call :func:`publish` inside their own transaction (it never
commits): it writes the message to the lane, with the key, its type declares
(:func:`sourcing.common.events.route`). :class:`OutboxRelay` publishes committed rows with
acks=all and marks them published.
A rolled-back transaction leaves no row, so its messages are never sent; a publish failure
leaves the rows unpublished for the next round (at-least-once: consumers dedup on envelope id).

Ordering: rows are relayed in ``seq`` order (an identity column: insert order, also within one
transaction) through one producer, and only one relay works at a time (a transaction-scoped
advisory lock), so messages with the same key reach their partition in the order written.

The ``topic`` column holds the lane name (``add_to_outbox``, the row writer under ``publish``,
accepts lanes only); the relay adds its environment's topic prefix.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Table, Text, bindparam, delete, func, insert, select, update
from sqlalchemy import cast as sql_cast
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import Insert

from sourcing.common.config import Settings
from sourcing.common.db import session_scope
from sourcing.common.events import Envelope, MessagePayload, route
from sourcing.common.kafka import metrics
from sourcing.common.kafka.producer import (
    BrokerUnavailable,
    EnvelopeProducer,
    encode_key,
    envelope_headers,
)
from sourcing.common.models import OutboxMessage as Outbox
from sourcing.common.topics import LANES_BY_NAME
from sourcing.common.topics import lane as lane_named

logger = logging.getLogger(__name__)

# pg_try_advisory_xact_lock key: "outbox relay" (any constant unique among our advisory locks).
RELAY_LOCK_KEY = 0x0B0C_5E1A
PRUNE_BATCH = 5_000
# session.info flag: this unit of work staged outbox rows (see ReliableConsumer's on_commit).
OUTBOX_STAGED = "outbox_staged"


def _insert_statement() -> Insert:
    # Core, compiled once: the envelope and headers arrive as JSON text (pydantic encodes the
    # envelope once; no dict round trip through the JSON column type).
    table = cast(Table, Outbox.__table__)
    return insert(table).values(
        id=bindparam("id"),
        topic=bindparam("topic"),
        key=bindparam("key"),
        envelope=sql_cast(bindparam("envelope", type_=Text()), JSONB),
        headers=sql_cast(bindparam("headers", type_=Text()), JSONB),
    )


_INSERT = _insert_statement()


async def stage(
    session: AsyncSession, rows: Sequence[tuple[str, Envelope, str | None]]
) -> list[uuid.UUID]:
    """Stage ``(lane, envelope, key)`` rows in the caller's transaction with one statement
    (no flush of other work, no commit); returns their row ids, in order. The relay publishes
    them, in that order, once the transaction commits.

    The rows store the lane name; the relay adds its environment's topic prefix.
    """
    if not rows:
        return []
    ids = [uuid.uuid4() for _ in rows]
    params: list[dict[str, Any]] = []
    for row_id, (lane, envelope, key) in zip(ids, rows, strict=True):
        lane_named(lane)  # unknown lanes fail here, in the caller's transaction
        headers = {name: value.decode() for name, value in envelope_headers(envelope)}
        params.append(
            {
                "id": row_id,
                "topic": lane,
                "key": key,
                "envelope": envelope.model_dump_json(),
                "headers": json.dumps(headers),
            }
        )
    await session.execute(_INSERT, params)
    session.info[OUTBOX_STAGED] = True
    return ids


async def add_to_outbox(
    session: AsyncSession,
    lane: str,
    envelope: Envelope,
    key: str | None = None,
) -> uuid.UUID:
    """Stage ``envelope`` for ``lane`` in the caller's transaction (:func:`stage`, one row);
    returns the row id."""
    (row_id,) = await stage(session, [(lane, envelope, key)])
    return row_id


async def publish(
    session: AsyncSession,
    message: MessagePayload,
    *,
    correlation_id: str | None = None,
    envelope_id: str | None = None,
    occurred_at: datetime | None = None,
) -> Envelope:
    """Stage ``message`` in the caller's transaction, on the lane and with the key its type
    declares; returns its envelope. ``envelope_id``/``occurred_at`` replace the fresh ones
    when the producer derives them (the scheduler's per-interval ids, for dedup)."""
    envelope = Envelope.of(
        message, correlation_id=correlation_id, id=envelope_id, occurred_at=occurred_at
    )
    target = route(message)
    await stage(session, [(target.lane, envelope, target.key)])
    return envelope


async def publish_many(
    session: AsyncSession,
    messages: Iterable[MessagePayload],
    *,
    correlation_id: str | None = None,
) -> list[Envelope]:
    """:func:`publish` for several messages in one statement (a fan-out), in order."""
    return await publish_correlated(session, ((message, correlation_id) for message in messages))


async def publish_correlated(
    session: AsyncSession, messages: Iterable[tuple[MessagePayload, str | None]]
) -> list[Envelope]:
    """:func:`publish_many` for the follow-ups of several messages handled together (a batch),
    each ``(message, correlation id)`` keeping the correlation of what it follows."""
    envelopes: list[Envelope] = []
    rows: list[tuple[str, Envelope, str | None]] = []
    for message, correlation_id in messages:
        envelope = Envelope.of(message, correlation_id=correlation_id)
        target = route(message)
        envelopes.append(envelope)
        rows.append((target.lane, envelope, target.key))
    await stage(session, rows)
    return envelopes


def _row_headers(headers: Any) -> list[tuple[str, bytes]]:
    if not isinstance(headers, dict):
        return []
    return [(str(name), str(value).encode()) for name, value in headers.items()]


class OutboxRelay:
    """Publishes committed outbox rows in creation order, then marks them published.

    ``run()`` loops until cancelled and never raises otherwise: a failed round is logged,
    counted and retried after the interval. Safe to run in several processes at once.
    """

    def __init__(
        self,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        producer: EnvelopeProducer,
        *,
        batch_size: int | None = None,
        interval: float | None = None,
        retention: float | None = None,
        prune_every: float = 60.0,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.producer = producer
        self.batch_size = batch_size or settings.OUTBOX_RELAY_BATCH_SIZE
        self.interval = interval or settings.OUTBOX_RELAY_INTERVAL_SECONDS
        self.lock_retry = settings.OUTBOX_RELAY_LOCK_RETRY_MS / 1000
        self.retention = settings.OUTBOX_RETENTION_SECONDS if retention is None else retention
        self.prune_every = prune_every
        self._task: asyncio.Task[None] | None = None
        self._woken = asyncio.Event()
        # Woken since this relay last held the lock: rows of its process may be waiting.
        self._owed = False

    def topic_for(self, stored: str) -> str:
        return self.settings.topic(stored) if stored in LANES_BY_NAME else stored

    async def relay_once(self) -> int:
        """One round: publish up to ``batch_size`` rows; returns how many were published.

        Returns 0 when another relay holds the lock. Raises ``BrokerUnavailable`` when the
        broker does not confirm: the transaction rolls back, the rows stay unpublished (their
        ``attempts``/``last_error`` are updated) and the next round sends them again.
        """
        sending: list[uuid.UUID] = []
        try:
            async with session_scope(self.sessionmaker) as session:
                locked = await session.scalar(
                    select(func.pg_try_advisory_xact_lock(RELAY_LOCK_KEY))
                )
                if not locked:
                    return 0
                self._owed = False  # rows committed from now on come with another wake()
                rows = (
                    await session.execute(
                        select(
                            Outbox.id,
                            Outbox.topic,
                            Outbox.key,
                            # As stored: sent as it is, never decoded and encoded again.
                            sql_cast(Outbox.envelope, Text).label("envelope"),
                            Outbox.headers,
                            Outbox.created_at,
                        )
                        .where(Outbox.published_at.is_(None))
                        .order_by(Outbox.seq)
                        .limit(self.batch_size)
                        .with_for_update(skip_locked=True)
                    )
                ).all()
                metrics.OUTBOX_PENDING.set(len(rows))
                if not rows:
                    metrics.OUTBOX_LAG.set(0)
                    return 0
                oldest: datetime = rows[0].created_at
                metrics.OUTBOX_LAG.set(max((datetime.now(UTC) - oldest).total_seconds(), 0.0))
                sending = [row.id for row in rows]
                await self.producer.send_many(
                    [
                        (
                            self.topic_for(row.topic),
                            row.envelope.encode(),
                            encode_key(row.key),
                            _row_headers(row.headers),
                        )
                        for row in rows
                    ]
                )
                await session.execute(
                    update(Outbox).where(Outbox.id.in_(sending)).values(published_at=func.now())
                )
        except BrokerUnavailable as exc:
            await self._record_failure(sending, exc)
            raise
        metrics.OUTBOX_PUBLISHED.inc(len(sending))
        return len(sending)

    async def _record_failure(self, ids: list[uuid.UUID], exc: BaseException) -> None:
        """Best effort, after the round's transaction released the rows."""
        if not ids:
            return
        try:
            async with session_scope(self.sessionmaker) as session:
                await session.execute(
                    update(Outbox)
                    .where(Outbox.id.in_(ids), Outbox.published_at.is_(None))
                    .values(attempts=Outbox.attempts + 1, last_error=str(exc)[:2000])
                )
        except Exception:
            logger.warning("could not record the outbox publish failure", exc_info=True)

    async def prune_once(self) -> int:
        """Delete published rows older than the retention; returns how many were deleted."""
        cutoff = datetime.now(UTC) - timedelta(seconds=self.retention)
        deleted = 0
        while True:
            async with session_scope(self.sessionmaker) as session:
                batch = (
                    select(Outbox.id)
                    .where(Outbox.published_at.is_not(None), Outbox.published_at < cutoff)
                    .limit(PRUNE_BATCH)
                    .with_for_update(skip_locked=True)
                    .scalar_subquery()
                )
                result = await session.execute(delete(Outbox).where(Outbox.id.in_(batch)))
                count = int(getattr(result, "rowcount", 0) or 0)
            deleted += count
            if count < PRUNE_BATCH:
                return deleted

    async def run(self) -> None:
        """Relay until cancelled: loops immediately while there is a backlog."""
        loop = asyncio.get_running_loop()
        next_prune = loop.time() + self.prune_every
        while True:
            published = 0
            failed = False
            try:
                published = await self.relay_once()
            except Exception:
                failed = True
                metrics.OUTBOX_RELAY_ERRORS.inc()
                logger.exception("outbox relay round failed; rows stay for the next round")
            if loop.time() >= next_prune:
                next_prune = loop.time() + self.prune_every
                try:
                    pruned = await self.prune_once()
                    if pruned:
                        logger.info("pruned published outbox rows", extra={"rows": pruned})
                except Exception:
                    logger.exception("outbox prune failed")
            if published < self.batch_size:
                # Woken but another relay held the lock: it may have read its round before our
                # rows were committed, so try again soon rather than at the next poll.
                soon = self._owed and not failed
                await self._idle(self.lock_retry if soon else self.interval)

    def wake(self) -> None:
        """Relay now rather than at the next poll (an agent just committed staged messages).

        Each hop of a lane-to-lane flow otherwise waited up to ``interval`` for the poll.
        """
        self._owed = True
        self._woken.set()

    async def _idle(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._woken.wait()
        self._woken.clear()

    def start(self) -> asyncio.Task[None]:
        """Run :meth:`run` as a background task of the current loop."""
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self.run(), name="outbox-relay")
        return self._task

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
