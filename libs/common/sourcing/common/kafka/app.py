"""The Faust app factory and the reliable agent every service uses.

Ack/commit semantics (verified in faust-streaming 0.15.3 ``faust/streams.py`` and
``faust/transport/consumer.py``)
--------------------------------------------------------------------------------------------
* ``Stream._py_aiter`` acks an event in the ``finally`` around its ``yield``: when the agent
  body asks for the next value, or when the body raises and the generator is closed. An
  exception escaping the body therefore acks the failed message (the supervisor restarts the
  agent at the next offset): the failed message is skipped. Hence :class:`ReliableConsumer`
  never raises, and this loop retries even its own (impossible) bugs instead of moving on.
* ``Stream.take()`` / ``take_events()`` switch the stream's auto-ack off and ack every event
  of a batch in the ``finally`` around ``yield list(...)``: only when the loop body returns
  for the next batch (or the generator is closed). While the body runs, the next batch is
  held back (``add_to_buffer`` awaits ``buffer_consuming``). Batch lanes use
  :func:`~sourcing.common.kafka.batching.lingering_batches`, which keeps exactly these
  semantics and only changes when a batch is handed over.
* An ack only marks the offset committable (``Consumer.ack`` → ``_acked``); the commit task
  commits every ``broker_commit_interval`` the end of the first run of consecutive acked
  offsets (``Consumer._new_offset``). Its guard against a gap at the head of that run only
  applies once a non-zero offset was committed, so with ``concurrency>1`` (acks out of order)
  Faust can commit past a message still in flight. With ``concurrency=1`` a partition's
  events are acked in offset order, and only after the body returned, i.e. after the DB
  transaction committed or the dead-letter send was confirmed: a committed offset never
  covers unfinished work.
* Stop and rebalance: ``App._stop_consumer`` / ``_on_partitions_revoked`` stop the fetcher and
  wait (``stream_wait_empty``) until every delivered message is acked, then commit. The
  in-flight batch finishes first. If the agent task is cancelled anyway, the body shields its
  work and finishes it before the cancellation proceeds (the generator's ``finally`` would
  otherwise ack unfinished messages).
* A crash (SIGKILL) commits nothing: everything after the last committed offset is
  redelivered and ``processed_events`` makes the replay a no-op.
* Residual risk (Faust, not ours): an event fetched in an older consumer generation is skipped
  *and acked* by ``_py_aiter`` after a rebalance. The partition is re-read from its committed
  offset, but if that ack were committed first and the worker then crashed, the messages
  between would be skipped. Faust clears agent queues and drops stale fetches on rebalance,
  so this needs a narrow race; the rebalance test has not hit it.

``tests/integration/test_worker_crash.py`` checks the invariant on real workers: at the moment
a worker is killed, every message below its partition's committed offset has its row.
"""

from __future__ import annotations

import asyncio
import logging
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, cast

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from sourcing.common.config import Settings
from sourcing.common.db import create_engine, create_sessionmaker
from sourcing.common.kafka.batching import lingering_batches
from sourcing.common.kafka.consumer import (
    AgentProgress,
    BatchHandler,
    BatchLock,
    Handler,
    RawMessage,
    ReliableConsumer,
)
from sourcing.common.kafka.outbox import OutboxRelay
from sourcing.common.kafka.producer import EnvelopeProducer, bootstrap_servers
from sourcing.common.kafka.retry import backoff_delay
from sourcing.common.kafka.security import faust_credentials
from sourcing.common.topics import app_id_for
from sourcing.common.topics import lane as lane_named

logger = logging.getLogger(__name__)


class SourcingRuntime:
    """What agents of one app share: settings, DB sessions, the producer, the outbox relay."""

    def __init__(
        self,
        service_name: str,
        settings: Settings,
        *,
        engine: AsyncEngine | None = None,
        sessionmaker: async_sessionmaker[AsyncSession] | None = None,
        producer: EnvelopeProducer | None = None,
        relay_outbox: bool = True,
    ) -> None:
        self.service_name = service_name
        self.settings = settings
        self.engine = engine
        self._own_engine = False
        if sessionmaker is None:
            if self.engine is None:
                self.engine = create_engine(settings)
                self._own_engine = True
            sessionmaker = create_sessionmaker(self.engine)
        self.sessionmaker = sessionmaker
        self._own_producer = producer is None
        self.producer = producer or EnvelopeProducer(settings, client_id=f"{service_name}")
        self.relay: OutboxRelay | None = (
            OutboxRelay(settings, self.sessionmaker, self.producer) if relay_outbox else None
        )
        self.consumers: dict[str, ReliableConsumer] = {}
        self.app: faust.App | None = None
        self._progress_marker = 0
        self._progress_at = time.monotonic()

    @property
    def progress(self) -> dict[str, AgentProgress]:
        return {name: consumer.progress for name, consumer in self.consumers.items()}

    def lag(self) -> int:
        """Messages fetched for this app's agent topics and not yet read or committed, as
        last seen by Faust's monitor. Partitions this process has neither read from nor
        committed yet are left out (their starting point is unknown here)."""
        return sum(self.lag_by_topic().values())

    def lag_by_topic(self) -> dict[str, int]:
        """:meth:`lag` per agent topic (every agent topic present, 0 when nothing waits)."""
        topics = {consumer.topic for consumer in self.consumers.values()}
        lags = dict.fromkeys(topics, 0)
        if self.app is None:
            return lags
        monitor = self.app.monitor
        committed = monitor.tp_committed_offsets or {}
        read = monitor.tp_read_offsets or {}
        for tp, end in (monitor.tp_end_offsets or {}).items():
            if tp.topic not in topics:
                continue
            done = max(committed.get(tp, -1), read.get(tp, -2) + 1)
            if done >= 0:
                lags[tp.topic] += max(end - done, 0)
        return lags

    def liveness(self) -> dict[str, Any]:
        """``{"ok": bool, "lag": int, "secondsSinceProgress": float, "agents": [...]}``.

        Not ok when a batch/message has been in flight longer than ``AGENT_STALL_SECONDS``
        (a hung handler or dead-letter send), or when messages wait (lag) while neither a
        message finished nor an offset was committed for that long. A consumer holding its
        messages until the database answers again is neither: a restart would not bring the
        database back (readiness reports the outage). For liveness probes.
        """
        now = time.monotonic()
        stall = self.settings.AGENT_STALL_SECONDS
        lag = self.lag()
        marker = sum(p.processed + p.dead_lettered for p in self.progress.values())
        if self.app is not None:
            marker += sum((self.app.monitor.tp_committed_offsets or {}).values())
        waiting = any(p.waiting_for_database_since is not None for p in self.progress.values())
        if marker != self._progress_marker or lag == 0 or waiting:
            self._progress_marker = marker
            self._progress_at = now
        since_progress = now - self._progress_at
        agents = [progress.snapshot() for progress in self.progress.values()]
        hung = any(progress.stalled(stall) for progress in self.progress.values())
        return {
            "ok": not hung and not (lag > 0 and since_progress > stall),
            "lag": lag,
            "secondsSinceProgress": round(since_progress, 3),
            "agents": agents,
        }

    async def start(self) -> None:
        try:
            await self.producer.start()
        except Exception:
            # Not fatal: the producer starts lazily on the first send (dead-letter, relay).
            logger.warning("broker not reachable at start-up; will retry on first send")
        if self.relay is not None:
            self.relay.start()

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.stop()
        if self._own_producer:
            await self.producer.stop()
        if self._own_engine and self.engine is not None:
            await self.engine.dispose()


class _ConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer with ``KAFKA_FETCH_MAX_WAIT_MS`` (Faust passes aiokafka 1,500 ms).

    aiokafka keeps one fetch in flight per broker, without the partitions whose messages are
    still being handled: once handled, they are fetched again only when that fetch returns,
    i.e. when a message arrives on another partition or after the fetch wait. At 1.5 s that
    wait was the tail of every lane-to-lane hop.
    """

    def _create_worker_consumer(self, transport: Any) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        # Read by the consumer's fetcher when it starts (no public setter after construction).
        settings = cast(SourcingApp, self.app).runtime.settings
        consumer._fetch_max_wait_ms = settings.KAFKA_FETCH_MAX_WAIT_MS
        return consumer


class _Consumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)


class _Transport(faust_aiokafka.Transport):
    Consumer = _Consumer


class SourcingApp(faust.App):
    """A Faust app that also owns the :class:`SourcingRuntime` its agents use."""

    runtime: SourcingRuntime

    def _new_transport(self) -> TransportT:
        return _Transport(self.conf.broker_consumer, self)

    async def on_started(self) -> None:
        await super().on_started()
        await self.runtime.start()

    async def on_stop(self) -> None:
        # Faust first drains in-flight messages (stream_wait_empty) and commits...
        await super().on_stop()
        # ...and only then may the producer (dead-letter sends) and the DB go away.
        await self.runtime.close()


def create_app(
    service_name: str,
    settings: Settings,
    *,
    web_port: int | None = None,
    web_enabled: bool | None = None,
    engine: AsyncEngine | None = None,
    sessionmaker: async_sessionmaker[AsyncSession] | None = None,
    producer: EnvelopeProducer | None = None,
    relay_outbox: bool = True,
    datadir: str | Path | None = None,
    **faust_options: Any,
) -> SourcingApp:
    """The Faust app of a service: frozen id (= consumer group), explicit offsets policy,
    no leader topic, no topic creation (the topic-init step creates topics), memory store.

    ``web_port`` defaults to ``AGENT_WEB_PORT`` (0 disables the web server). The app runs an
    outbox relay unless ``relay_outbox=False``.
    """
    app_id = app_id_for(service_name, settings)
    port = settings.AGENT_WEB_PORT if web_port is None else web_port
    enabled = bool(port) if web_enabled is None else web_enabled
    session_timeout = settings.KAFKA_SESSION_TIMEOUT_SECONDS
    options: dict[str, Any] = {
        "broker": [f"kafka://{server}" for server in bootstrap_servers(settings)],
        "broker_credentials": faust_credentials(settings),
        "store": "memory://",
        "autodiscover": False,
        "topic_disable_leader": True,
        "topic_allow_declare": False,
        "consumer_auto_offset_reset": "earliest",
        "stream_wait_empty": True,
        "broker_session_timeout": session_timeout,
        "broker_rebalance_timeout": settings.KAFKA_REBALANCE_TIMEOUT_SECONDS,
        "broker_heartbeat_interval": min(
            settings.KAFKA_HEARTBEAT_INTERVAL_SECONDS, session_timeout / 3
        ),
        "broker_request_timeout": max(90.0, session_timeout + 5),
        "broker_commit_interval": settings.KAFKA_COMMIT_INTERVAL_SECONDS,
        "producer_acks": -1,
        "web_enabled": enabled,
        "web_port": port or 6066,
        "web_bind": "0.0.0.0",  # noqa: S104 - probes and scrapes come from the cluster
        "datadir": str(datadir or Path(tempfile.gettempdir()) / f"{app_id}-data"),
        "worker_redirect_stdouts": False,
    }
    options.update(faust_options)
    app = SourcingApp(app_id, **options)
    app.runtime = SourcingRuntime(
        service_name,
        settings,
        engine=engine,
        sessionmaker=sessionmaker,
        producer=producer,
        relay_outbox=relay_outbox,
    )
    app.runtime.app = app
    budget = settings.AGENT_MAX_ATTEMPTS * settings.AGENT_ATTEMPT_TIMEOUT_SECONDS
    if budget > settings.KAFKA_REBALANCE_TIMEOUT_SECONDS:
        logger.debug(
            "worst-case per-message budget (%.0fs) exceeds the rebalance timeout (%.0fs): "
            "a rebalance during it redelivers the batch elsewhere (deduplicated)",
            budget,
            settings.KAFKA_REBALANCE_TIMEOUT_SECONDS,
        )
    return app


def _raw_message(event: Any) -> RawMessage:
    message = event.message
    return RawMessage(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=message.value,
        headers=tuple(message.headers or ()),
    )


async def _finish_even_if_cancelled(work: asyncio.Future[None]) -> None:
    """Await ``work``; if we are cancelled meanwhile, let it finish first, then re-raise.

    The stream acks the batch as soon as this body is left, cancelled or not.
    """
    cancelled = False
    while not work.done():
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            cancelled = True
    if cancelled:
        raise asyncio.CancelledError
    work.result()


def reliable_agent(
    app: SourcingApp,
    lane: str,
    handler: Handler | Mapping[str, Handler],
    *,
    consumer_name: str,
    batch: bool = False,
    batch_handler: BatchHandler | None = None,
    lock_batch: BatchLock | None = None,
    batch_size: int | None = None,
    batch_concurrency: int | None = None,
) -> Any:
    """Declare the agent consuming ``lane`` through the reliability contract.

    ``handler`` is ``async def handle(session, envelope, payload) -> None`` (or a mapping
    message type → handler when the lane carries several types); it must not commit and
    sends messages only through :func:`~sourcing.common.kafka.outbox.publish`.
    ``consumer_name`` keys the ``processed_events`` dedup rows: keep it stable forever.
    Batch lanes take up to ``AGENT_BATCH_SIZE`` messages, handed over when full or
    ``AGENT_BATCH_LINGER_MS`` after the batch's first message
    (:func:`~sourcing.common.kafka.batching.lingering_batches`), and handle them in one
    transaction (with ``batch_handler`` in one call, if given), falling
    back to ``handler`` one message at a time when the batch fails. ``lock_batch`` (batch lanes
    without a ``batch_handler``) runs first in each batch transaction to take the rows the
    handlers will lock in one global order. ``batch_size`` and ``batch_concurrency`` (how many
    shards of a batch run side by side) replace ``AGENT_BATCH_SIZE`` and
    ``AGENT_BATCH_CONCURRENCY`` for a lane whose batches are worth sizing on their own.
    """
    settings = app.runtime.settings
    lane_named(lane)
    topic_name = settings.topic(lane)
    if consumer_name in app.runtime.consumers:
        raise ValueError(f"consumer {consumer_name!r} is already declared on this app")
    consumer = ReliableConsumer(
        consumer_name=consumer_name,
        topic=topic_name,
        lane=lane,
        handler=handler,
        batch_handler=batch_handler,
        lock_batch=lock_batch,
        on_commit=app.runtime.relay.wake if app.runtime.relay is not None else None,
        settings=settings,
        sessionmaker=app.runtime.sessionmaker,
        producer=app.runtime.producer,
        batch_concurrency=batch_concurrency,
    )
    app.runtime.consumers[consumer_name] = consumer
    size = batch_size or settings.AGENT_BATCH_SIZE
    linger = settings.AGENT_BATCH_LINGER_MS / 1000
    topic = app.topic(
        topic_name,
        key_serializer="raw",
        value_serializer="raw",
        allow_empty=True,  # tombstones reach the consumer (and dead-letter), never skipped
    )

    async def process(messages: Sequence[RawMessage], as_batch: bool) -> None:
        attempt = 0
        while True:  # only a bug in the reliability layer loops here; never skip the batch
            attempt += 1
            try:
                await consumer.process_batch(messages, batch=as_batch)
                return
            except Exception:
                logger.critical("retrying batch after unexpected error", exc_info=True)
                await asyncio.sleep(
                    backoff_delay(min(attempt, 8), base=1.0, cap=settings.AGENT_RETRY_MAX_SECONDS)
                )

    async def agent(stream: Any) -> None:
        if batch:
            async for events in lingering_batches(stream, size, linger):
                messages = [_raw_message(event) for event in events]
                await _finish_even_if_cancelled(asyncio.ensure_future(process(messages, True)))
        else:
            async for event in stream.events():
                await _finish_even_if_cancelled(
                    asyncio.ensure_future(process([_raw_message(event)], False))
                )

    agent.__name__ = agent.__qualname__ = consumer_name.replace("-", "_")
    return app.agent(topic, name=consumer_name, concurrency=1)(agent)


def reliable_consumer(app: SourcingApp, consumer_name: str) -> ReliableConsumer:
    return app.runtime.consumers[consumer_name]


def run_worker(app: SourcingApp) -> None:
    """``python -m sourcing.<service>``: uvloop, JSON logs, Faust worker with signals, and on
    ``METRICS_PORT`` ``/metrics``, ``/health/live`` and ``/health/ready`` (started before the
    app, so probes answer while it connects; stopped after it).

    SIGTERM/SIGINT stop the worker gracefully: the in-flight batch finishes and commits.
    """
    from sourcing.common.health import HealthServer
    from sourcing.common.logging import configure_logging
    from sourcing.common.process import freeze_startup_heap, refuse_unsafe_start, use_uvloop
    from sourcing.common.tracing import setup_tracing

    use_uvloop()
    settings = app.runtime.settings
    configure_logging(service=app.runtime.service_name, level=settings.log_level_number)
    refuse_unsafe_start(app.runtime.service_name, settings)
    setup_tracing(settings, app.runtime.service_name)
    services = [HealthServer(app)] if settings.METRICS_PORT else []
    worker = faust.Worker(
        app,
        *services,
        loglevel=settings.log_level_number,
        override_logging=False,
        redirect_stdouts=False,
    )
    freeze_startup_heap()
    worker.execute_from_commandline()
