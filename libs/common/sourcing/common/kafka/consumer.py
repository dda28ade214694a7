"""The per-message reliability work every agent shares, independent of Faust.

:class:`ReliableConsumer` takes raw Kafka records and, for each: decodes the envelope,
validates the payload against its registered model, records ``(consumer, event id)`` in
``processed_events`` and runs the handler in ONE transaction, retries transient errors with
backoff, and dead-letters what cannot be processed, awaiting the broker's confirmation. When a
transient failure comes with a database that does not answer at all, the message is held
until the database is back, without using up its attempts (:func:`~.retry.next_step`). Its
``process_*`` methods never raise (except on cancellation), so the Faust loop that drives
them never lets an exception escape (see :mod:`sourcing.common.kafka.app`).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import traceback
import zlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

from sqlalchemy import Table, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.sql.dml import ReturningInsert

import sourcing.common.messages  # noqa: F401  (importing it registers every message type)
from sourcing.common import tracing
from sourcing.common.config import Settings
from sourcing.common.db import database_answers, session_scope
from sourcing.common.events import (
    DEAD_LETTER_MESSAGE_TYPE,
    DeadLetter,
    Envelope,
    MessagePayload,
    UnknownMessageType,
    route,
)
from sourcing.common.kafka import metrics
from sourcing.common.kafka.outbox import OUTBOX_STAGED
from sourcing.common.kafka.producer import HEADER_CORRELATION_ID, EnvelopeProducer
from sourcing.common.kafka.retry import (
    NextStep,
    backoff_delay,
    database_poll_delay,
    is_transient,
    next_step,
)
from sourcing.common.logging import correlation_id_var
from sourcing.common.models import ProcessedEvent
from sourcing.common.topics import DEAD_LETTER

logger = logging.getLogger(__name__)

# Below Kafka's default max.message.bytes (1 MiB) with room for headers and batch overhead.
DEAD_LETTER_MAX_BYTES = 900_000

Handler = Callable[[AsyncSession, Envelope, Any], Awaitable[None]]
"""``async def handle(session, envelope, payload) -> None``; never commits."""

BatchHandler = Callable[[AsyncSession, Sequence[tuple[Envelope, Any]]], Awaitable[None]]
BatchLock = Callable[[AsyncSession, Sequence[Any]], Awaitable[None]]
"""``async def lock(session, payloads) -> None``: takes, in one global order, the row locks a
batch's handlers will need, before any of them runs."""
"""``async def handle_batch(session, [(envelope, payload), ...]) -> None``: optional set-based
version of a handler for hot lanes (one statement for a whole batch); never commits. Must
have the same effect as calling the per-message handler for each item in order."""


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One Kafka record as the consumer received it."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: Sequence[tuple[str, bytes]] = ()

    def header(self, name: str) -> str | None:
        for key, value in self.headers:
            if key == name:
                return value.decode("utf-8", errors="replace")
        return None


@dataclass
class AgentProgress:
    """Liveness/progress of one consumer: what finished last, and what is in flight."""

    consumer: str
    topic: str
    processed: int = 0
    duplicates: int = 0
    dead_lettered: int = 0
    last_processed_at: datetime | None = None
    in_flight_since: float | None = None  # monotonic seconds
    in_flight_messages: int = 0
    waiting_for_database_since: float | None = None  # monotonic seconds
    database_waiters: int = 0  # shards of one batch wait side by side
    started_at: float = field(default_factory=time.monotonic)

    def finished(self, *, dead_lettered: bool = False, duplicate: bool = False) -> None:
        if dead_lettered:
            self.dead_lettered += 1
        else:
            self.processed += 1
            if duplicate:
                self.duplicates += 1
        self.last_processed_at = datetime.now(UTC)
        metrics.LAST_PROCESSED.labels(self.consumer).set(self.last_processed_at.timestamp())

    def in_flight_seconds(self) -> float:
        """How long the in-flight batch/message has been worked on, waits for the database
        excluded."""
        if self.in_flight_since is None:
            return 0.0
        return time.monotonic() - self.in_flight_since - self.waiting_for_database_seconds()

    def waiting_for_database_seconds(self) -> float:
        if self.waiting_for_database_since is None:
            return 0.0
        return time.monotonic() - self.waiting_for_database_since

    def database_wait_started(self) -> None:
        self.database_waiters += 1
        if self.waiting_for_database_since is None:
            self.waiting_for_database_since = time.monotonic()

    def database_wait_ended(self) -> None:
        """The database answers again: the in-flight clock resumes where the wait began."""
        self.database_waiters = max(self.database_waiters - 1, 0)
        if self.database_waiters:
            return
        waited = self.waiting_for_database_seconds()
        self.waiting_for_database_since = None
        if self.in_flight_since is not None:
            self.in_flight_since += waited

    def stalled(self, stall_seconds: float) -> bool:
        """True when one batch/message has been in flight for longer than ``stall_seconds``.

        Never while waiting for the database: that is not a stuck handler, and restarting
        the process would not bring the database back (readiness reports the outage).
        """
        if self.waiting_for_database_since is not None:
            return False
        return self.in_flight_seconds() > stall_seconds

    def snapshot(self) -> dict[str, Any]:
        return {
            "consumer": self.consumer,
            "topic": self.topic,
            "processed": self.processed,
            "duplicates": self.duplicates,
            "deadLettered": self.dead_lettered,
            "lastProcessedAt": self.last_processed_at.isoformat()
            if self.last_processed_at
            else None,
            "inFlightMessages": self.in_flight_messages,
            "inFlightSeconds": round(self.in_flight_seconds(), 3),
            "waitingForDatabaseSeconds": round(self.waiting_for_database_seconds(), 3),
        }


@dataclass(frozen=True, slots=True)
class _Decoded:
    message: RawMessage
    envelope: Envelope
    payload: MessagePayload
    handler: Handler


class _Rejected(Exception):
    """Decode/validation failure: dead-letter at once, no retries."""

    def __init__(self, reason: str, error: BaseException, envelope: Envelope | None) -> None:
        super().__init__(str(error))
        self.reason = reason
        self.error = error
        self.envelope = envelope


async def mark_processed(
    session: AsyncSession, consumer: str, event_ids: Sequence[str]
) -> set[str]:
    """Insert dedup rows; returns the ids that were NOT processed before by ``consumer``.

    Same transaction as the business writes: if it rolls back, so does the dedup row. A
    concurrent duplicate blocks on the first one's row lock and then finds it recorded.
    """
    unique_ids = list(dict.fromkeys(event_ids))
    if not unique_ids:
        return set()
    result = await session.execute(_MARK_PROCESSED, {"consumer": consumer, "event_ids": unique_ids})
    return set(result.scalars().all())


def _mark_processed_statement() -> ReturningInsert[Any]:
    # One statement whatever the batch size (unnest of an array parameter), so SQLAlchemy
    # compiles it once and asyncpg prepares it once.
    table = cast(Table, ProcessedEvent.__table__)
    ids = func.unnest(bindparam("event_ids", type_=ARRAY(Text())))
    return (
        pg_insert(table)
        .from_select(
            ["consumer", "event_id"],
            select(bindparam("consumer", type_=Text()), ids),
        )
        .on_conflict_do_nothing()
        .returning(table.c.event_id)
    )


_MARK_PROCESSED = _mark_processed_statement()


@contextmanager
def correlation_scope(correlation_id: str | None) -> Iterator[None]:
    token = correlation_id_var.set(correlation_id)
    try:
        yield
    finally:
        correlation_id_var.reset(token)


def _error_type(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__name__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


class ReliableConsumer:
    """Decode → validate → dedup + handle (retried) → dead-letter, for one consumer/topic."""

    def __init__(
        self,
        *,
        consumer_name: str,
        topic: str,
        lane: str,
        handler: Handler | Mapping[str, Handler],
        batch_handler: BatchHandler | None = None,
        lock_batch: BatchLock | None = None,
        on_commit: Callable[[], None] | None = None,
        settings: Settings,
        sessionmaker: async_sessionmaker[AsyncSession],
        producer: EnvelopeProducer,
        batch_concurrency: int | None = None,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.consumer_name = consumer_name
        self.topic = topic
        self.lane = lane
        self.handler = handler
        self.batch_handler = batch_handler
        # Batches of lanes locking the same rows (e.g. callers) commit concurrently: locking in
        # handler order could deadlock them, locking everything first in one order cannot.
        self.lock_batch = lock_batch
        # Told after a commit that staged outbox rows (the app wakes its outbox relay: they go
        # out now, not at the relay's next poll).
        self.committed: Callable[[], None] = on_commit or (lambda: None)
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.producer = producer
        self.sleep = sleep
        self.max_attempts = settings.AGENT_MAX_ATTEMPTS
        self.attempt_timeout = settings.AGENT_ATTEMPT_TIMEOUT_SECONDS
        self.retry_base = settings.AGENT_RETRY_BASE_SECONDS
        self.retry_cap = settings.AGENT_RETRY_MAX_SECONDS
        self.probe_timeout = settings.READINESS_TIMEOUT_SECONDS
        self.batch_concurrency = batch_concurrency or settings.AGENT_BATCH_CONCURRENCY
        self.progress = AgentProgress(consumer=consumer_name, topic=topic)
        metrics.WAITING_FOR_DATABASE.labels(consumer_name).set(0)
        # The dead-letter sink has nowhere further to send what it cannot store: it retries.
        self.never_give_up = lane == DEAD_LETTER

    # --- entry points (never raise, except CancelledError) -----------------------------------

    async def process_one(self, message: RawMessage) -> None:
        await self.process_batch([message], batch=False)

    async def process_batch(self, messages: Sequence[RawMessage], *, batch: bool = True) -> None:
        """Process ``messages`` so each ends processed exactly once or dead-lettered.

        With ``batch`` the valid messages are split by key into up to ``batch_concurrency``
        (the lane's own, or ``AGENT_BATCH_CONCURRENCY``) shards handled side by side, each in
        ONE transaction; if a shard fails for any reason, each of its messages is retried alone
        so a poison message fails only itself. All of them end before this returns (and the
        offsets may move on).
        """
        if not messages:
            return
        self.progress.in_flight_since = time.monotonic()
        self.progress.in_flight_messages = len(messages)
        try:
            metrics.MESSAGES_CONSUMED.labels(self.topic).inc(len(messages))
            if batch:
                metrics.BATCH_SIZE.labels(self.topic).observe(len(messages))
            decoded: list[_Decoded] = []
            for message in messages:
                item = await self._decode_or_dead_letter(message)
                if item is not None:
                    decoded.append(item)
            if batch and len(decoded) > 1:
                async with asyncio.TaskGroup() as shards:
                    for shard in self._shards(decoded):
                        shards.create_task(self._handle_shard(shard))
            else:
                for item in decoded:
                    await self._handle_with_retries(item)
        except Exception:
            # Unreachable by design (every step above handles its own errors). If it happens,
            # the caller retries the whole batch (idempotent) instead of moving past it.
            logger.critical("reliable consumer bug: unexpected error", exc_info=True)
            raise
        finally:
            self.progress.in_flight_since = None
            self.progress.in_flight_messages = 0

    # --- decode / validate ---------------------------------------------------------------------

    def _resolve_handler(self, message_type: str) -> Handler:
        if isinstance(self.handler, Mapping):
            try:
                return self.handler[message_type]
            except KeyError:
                raise UnknownMessageType(
                    f"consumer {self.consumer_name!r} handles "
                    f"{', '.join(sorted(self.handler))}, not {message_type!r}"
                ) from None
        return self.handler

    def decode(self, message: RawMessage) -> _Decoded:
        """Envelope + validated payload + handler, or :class:`_Rejected`."""
        try:
            envelope = Envelope.from_bytes(message.value)
        except Exception as exc:  # MessageDecodeError, or anything a bad payload provokes
            raise _Rejected("decode", exc, None) from exc
        try:
            handler = self._resolve_handler(envelope.type)
            payload = envelope.payload_model()
        except Exception as exc:  # UnknownMessageType, ValidationError, a model's own error
            raise _Rejected("validation", exc, envelope) from exc
        return _Decoded(message=message, envelope=envelope, payload=payload, handler=handler)

    async def _decode_or_dead_letter(self, message: RawMessage) -> _Decoded | None:
        try:
            return self.decode(message)
        except _Rejected as rejected:
            metrics.MESSAGES_FAILED.labels(self.topic, "permanent").inc()
            logger.error(
                "message rejected (%s): %s",
                rejected.reason,
                rejected.error,
                extra={"topic": message.topic, "partition": message.partition},
            )
            await self.dead_letter(
                message,
                envelope=rejected.envelope,
                error=rejected.error,
                attempts=1,
                reason=rejected.reason,
            )
            return None

    # --- handling ------------------------------------------------------------------------------

    async def _run_handlers(
        self, session: AsyncSession, items: Sequence[_Decoded], *, as_batch: bool = False
    ) -> int:
        """Dedup then handle ``items`` in ``session``; returns how many were duplicates."""
        fresh = await mark_processed(
            session, self.consumer_name, [item.envelope.id for item in items]
        )
        todo: list[_Decoded] = []
        for item in items:
            if item.envelope.id in fresh:
                fresh.discard(item.envelope.id)  # the same envelope twice in one batch: once
                todo.append(item)
        if as_batch and self.batch_handler is not None:
            if todo:
                with tracing.batch_span(
                    self.lane, [item.message for item in todo], consumer=self.consumer_name
                ):
                    await self.batch_handler(session, [(i.envelope, i.payload) for i in todo])
        else:
            if as_batch and self.lock_batch is not None and len(todo) > 1:
                await self.lock_batch(session, [item.payload for item in todo])
            for item in todo:
                # A message handled alone runs inside its attempt's span already.
                with (
                    correlation_scope(item.envelope.correlation_id),
                    self._span(item) if as_batch else tracing.NOTHING,
                ):
                    await item.handler(session, item.envelope, item.payload)
        return len(items) - len(todo)

    def _span(self, item: _Decoded) -> AbstractContextManager[object]:
        """The message's consumer span: a child of the span that published it."""
        return tracing.consumer_span(
            self.lane,
            item.message.headers,
            consumer=self.consumer_name,
            message_id=item.envelope.id,
            message_type=item.envelope.type,
        )

    def _shards(self, items: Sequence[_Decoded]) -> list[list[_Decoded]]:
        """``items`` split by message key into at most ``batch_concurrency`` shards.

        One key's messages share a shard and keep their order; shards share no key, so (with
        keys naming the entity a handler locks) their transactions do not wait on each other.
        The handlers' round trips to the database, not the CPU, bound a batch lane: shards
        overlap them.
        """
        count = min(self.batch_concurrency, len(items))
        shards: list[list[_Decoded]] = [[] for _ in range(count)]
        for item in items:
            key = item.message.key if item.message.key is not None else item.envelope.id.encode()
            shards[zlib.crc32(key) % count].append(item)
        return [shard for shard in shards if shard]

    async def _handle_shard(self, items: Sequence[_Decoded]) -> None:
        if len(items) > 1:
            if await self._handle_batch(items):
                return
            metrics.BATCH_FALLBACKS.labels(self.topic).inc()
        for item in items:
            await self._handle_with_retries(item)

    async def _handle_batch(self, items: Sequence[_Decoded]) -> bool:
        """Handle ``items`` in one transaction, trying again after any database outage;
        False when the batch failed otherwise (each message is then retried alone)."""
        while True:
            error = await self._handle_batch_once(items)
            if error is None:
                return True
            if not is_transient(error) or await self.database_reachable():
                logger.warning(
                    "batch of %d failed (%s: %s); retrying message by message",
                    len(items),
                    _error_type(error),
                    error,
                    extra={"topic": self.topic},
                )
                return False
            await self._wait_for_database(error)

    async def _handle_batch_once(self, items: Sequence[_Decoded]) -> Exception | None:
        """One attempt at the whole batch: None when it committed, else the error."""
        started = time.perf_counter()
        try:
            async with asyncio.timeout(self.attempt_timeout):
                async with session_scope(self.sessionmaker) as session:
                    duplicates = await self._run_handlers(session, items, as_batch=True)
                    staged = OUTBOX_STAGED in session.info
        except Exception as exc:
            return exc
        metrics.HANDLER_DURATION.labels(self.topic, "batch").observe(time.perf_counter() - started)
        if staged:
            self.committed()
        metrics.MESSAGES_PROCESSED.labels(self.topic).inc(len(items))
        if duplicates:
            metrics.MESSAGES_DUPLICATE.labels(self.topic).inc(duplicates)
        for index in range(len(items)):
            self.progress.finished(duplicate=index < duplicates)
        return None

    async def _handle_with_retries(self, item: _Decoded) -> None:
        attempt = 0  # attempts charged to the message (a database outage charges none)
        while True:
            started = time.perf_counter()
            try:
                with self._span(item):
                    async with asyncio.timeout(self.attempt_timeout):
                        async with session_scope(self.sessionmaker) as session:
                            duplicates = await self._run_handlers(session, [item])
                            staged = OUTBOX_STAGED in session.info
            except Exception as exc:
                transient = is_transient(exc)
                metrics.MESSAGES_FAILED.labels(
                    self.topic, "transient" if transient else "permanent"
                ).inc()
                reachable = not transient or await self.database_reachable()
                step = next_step(
                    transient=transient,
                    database_reachable=reachable,
                    attempts=attempt + 1,
                    max_attempts=self.max_attempts,
                    never_give_up=self.never_give_up,
                )
                if step is NextStep.WAIT_FOR_DATABASE:
                    metrics.MESSAGES_RETRIED.labels(self.topic).inc()
                    with correlation_scope(item.envelope.correlation_id):
                        await self._wait_for_database(exc)
                    continue
                attempt += 1
                if step is NextStep.RETRY:
                    metrics.MESSAGES_RETRIED.labels(self.topic).inc()
                    with correlation_scope(item.envelope.correlation_id):
                        logger.warning(
                            "attempt %d/%d failed (%s: %s); retrying",
                            attempt,
                            self.max_attempts,
                            _error_type(exc),
                            exc,
                            extra={"topic": self.topic, "eventId": item.envelope.id},
                        )
                    await self.sleep(
                        backoff_delay(
                            min(attempt, self.max_attempts),
                            base=self.retry_base,
                            cap=self.retry_cap,
                        )
                    )
                    continue
                with correlation_scope(item.envelope.correlation_id):
                    logger.error(
                        "giving up after attempt %d (%s: %s)",
                        attempt,
                        _error_type(exc),
                        exc,
                        extra={"topic": self.topic, "eventId": item.envelope.id},
                    )
                await self.dead_letter(
                    item.message,
                    envelope=item.envelope,
                    error=exc,
                    attempts=attempt,
                    reason="handler",
                )
                return
            if staged:
                self.committed()
            metrics.HANDLER_DURATION.labels(self.topic, "single").observe(
                time.perf_counter() - started
            )
            metrics.MESSAGES_PROCESSED.labels(self.topic).inc()
            if duplicates:
                metrics.MESSAGES_DUPLICATE.labels(self.topic).inc()
            self.progress.finished(duplicate=bool(duplicates))
            return

    # --- database outage ----------------------------------------------------------------------

    async def database_reachable(self) -> bool:
        """True when the database answers ``SELECT 1`` within ``READINESS_TIMEOUT_SECONDS``."""
        bind = self.sessionmaker.kw["bind"]
        return await database_answers(bind, within=self.probe_timeout)

    async def _wait_for_database(self, error: BaseException) -> None:
        """Hold the in-flight messages until the database answers again (polled with capped
        backoff). Logs when the wait starts and when it ends, nothing in between."""
        logger.error(
            "database unreachable after %s: %s; holding %d message(s) until it answers",
            _error_type(error),
            error,
            self.progress.in_flight_messages,
            extra={"topic": self.topic},
        )
        self.progress.database_wait_started()
        metrics.WAITING_FOR_DATABASE.labels(self.consumer_name).set(1)
        polls = 0
        try:
            while True:
                polls += 1
                await self.sleep(
                    database_poll_delay(polls, base=self.retry_base, cap=self.retry_cap)
                )
                if await self.database_reachable():
                    break
        finally:
            waited = self.progress.waiting_for_database_seconds()
            self.progress.database_wait_ended()
            # Other shards of the batch may still be waiting.
            metrics.WAITING_FOR_DATABASE.labels(self.consumer_name).set(
                1 if self.progress.database_waiters else 0
            )
        logger.warning(
            "database answers again after %.1f s; retrying", waited, extra={"topic": self.topic}
        )

    # --- dead letter ---------------------------------------------------------------------------

    def dead_letter_envelope(
        self,
        message: RawMessage,
        *,
        envelope: Envelope | None,
        error: BaseException,
        attempts: int,
    ) -> Envelope:
        correlation_id = (
            envelope.correlation_id if envelope else message.header(HEADER_CORRELATION_ID)
        )
        payload = DeadLetter(
            consumer=self.consumer_name,
            origin_topic=message.topic,
            origin_partition=message.partition,
            origin_offset=message.offset,
            origin_key=message.key.decode("utf-8", errors="backslashreplace")
            if message.key is not None
            else None,
            origin_headers={
                name: value.decode("utf-8", errors="backslashreplace")
                for name, value in message.headers
            },
            original_envelope=envelope.model_dump(mode="json") if envelope else None,
            original_value_base64=None
            if envelope is not None or message.value is None
            else base64.b64encode(message.value).decode("ascii"),
            original_type=envelope.type if envelope else None,
            original_id=envelope.id if envelope else None,
            error=str(error) or repr(error),
            error_type=_error_type(error),
            stack="".join(traceback.format_exception(error)),
            attempts=attempts,
            failed_at=datetime.now(UTC),
            correlation_id=correlation_id,
        )
        dead = Envelope.new(DEAD_LETTER_MESSAGE_TYPE, payload, correlation_id=correlation_id)
        size = len(dead.to_bytes())
        if size > DEAD_LETTER_MAX_BYTES:
            # Past the broker's message size the send could never succeed (and we would retry
            # it forever): keep the diagnosis, point at the original still in its topic.
            payload = payload.model_copy(
                update={
                    "original_envelope": None,
                    "original_value_base64": None,
                    "stack": payload.stack[:20_000],
                    "error": f"{payload.error[:20_000]} [dead letter of {size} bytes: original "
                    "omitted, read it at origin topic/partition/offset]",
                }
            )
            dead = Envelope.new(DEAD_LETTER_MESSAGE_TYPE, payload, correlation_id=correlation_id)
        return dead

    async def dead_letter(
        self,
        message: RawMessage,
        *,
        envelope: Envelope | None,
        error: BaseException,
        attempts: int,
        reason: str,
    ) -> None:
        """Send to the dead-letter lane and wait for the broker's confirmation; retries the
        send until it is confirmed (the message must never be acked without it)."""
        dead = self.dead_letter_envelope(message, envelope=envelope, error=error, attempts=attempts)
        # Built before it is routed: its size decides what it carries (dead_letter_envelope).
        target = route(dead.payload_model())
        send_attempt = 0
        while True:
            send_attempt += 1
            try:
                await self.producer.send_envelope(target.lane, dead, key=target.key)
                break
            except Exception as exc:
                logger.error(
                    "dead-letter send %d failed (%s); retrying",
                    send_attempt,
                    exc,
                    extra={"topic": message.topic, "offset": message.offset},
                )
                await self.sleep(
                    backoff_delay(
                        min(send_attempt, 10), base=max(self.retry_base, 0.1), cap=self.retry_cap
                    )
                )
        metrics.MESSAGES_DEAD_LETTERED.labels(self.topic, reason).inc()
        self.progress.finished(dead_lettered=True)
