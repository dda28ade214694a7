"""The one Kafka producer wrapper: every send waits for the broker's acks=all confirmation.

Used by the gateway (webhooks: produce, then answer 202; broker down -> 503), by the outbox
relay and by the agents' dead-letter path. Failures surface as :class:`BrokerUnavailable`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError, OutOfOrderSequenceNumber, ProducerClosed, ProducerFenced
from aiokafka.partitioner import DefaultPartitioner, murmur2

from sourcing.common import tracing
from sourcing.common.config import Settings
from sourcing.common.events import Envelope, MessagePayload, route
from sourcing.common.kafka import metrics
from sourcing.common.kafka.security import client_security
from sourcing.common.topics import lane as lane_named

logger = logging.getLogger(__name__)

HEADER_CORRELATION_ID = "correlation-id"
HEADER_MESSAGE_TYPE = "message-type"
HEADER_MESSAGE_ID = "message-id"

Headers = Sequence[tuple[str, bytes]]

# aiokafka's sender task stops for good on these, and every later send then fails at once with
# ProducerClosed: an idempotent producer gets OutOfOrderSequenceNumber when the broker restarts
# under load. The producer is replaced (new producer id, fresh sequence numbers).
_FATAL_PRODUCER_ERRORS = (ProducerClosed, OutOfOrderSequenceNumber, ProducerFenced)


class BrokerUnavailable(RuntimeError):
    """The broker could not be reached or did not confirm a send in time (HTTP 503)."""


@dataclass(frozen=True, slots=True)
class SendResult:
    topic: str
    partition: int
    offset: int


def bootstrap_servers(settings: Settings) -> list[str]:
    """``KAFKA_BROKER_URL`` as host:port strings (``kafka://`` and ``,``/``;`` lists accepted)."""
    servers: list[str] = []
    for part in settings.KAFKA_BROKER_URL.replace(";", ",").split(","):
        host = part.strip()
        for scheme in ("kafka://", "tcp://", "plaintext://"):
            if host.lower().startswith(scheme):
                host = host[len(scheme) :]
        host = host.rstrip("/")
        if host:
            servers.append(host)
    if not servers:
        raise ValueError("KAFKA_BROKER_URL names no broker")
    return servers


def envelope_headers(envelope: Envelope) -> list[tuple[str, bytes]]:
    """The headers an envelope travels with; with tracing on, the current span's
    ``traceparent`` too (the outbox stores them with the row, so the relay sends the
    context of the span that wrote it)."""
    return [
        (HEADER_MESSAGE_ID, envelope.id.encode()),
        (HEADER_MESSAGE_TYPE, envelope.type.encode()),
        (HEADER_CORRELATION_ID, envelope.correlation_id.encode()),
        *tracing.trace_headers(),
    ]


def encode_key(key: str | bytes | None) -> bytes | None:
    if key is None or isinstance(key, bytes):
        return key
    return key.encode("utf-8")


@lru_cache(maxsize=4096)
def _key_hash(key: bytes) -> int:
    return int(murmur2(key)) & 0x7FFFFFFF


def partition_for_key(key: bytes | None, all_partitions: list[int], available: list[int]) -> int:
    """aiokafka's default partitioner (the Java client's murmur2 of the key, so every client
    puts a key on the same partition), with the hash of recent keys remembered: a lane's keys
    (callers, experts) recur, and the pure-Python murmur2 was 2 % of the gateway's CPU."""
    if key is None:
        return int(DefaultPartitioner()(key, all_partitions, available))
    return all_partitions[_key_hash(key) % len(all_partitions)]


class EnvelopeProducer:
    """An aiokafka producer with ``acks="all"`` whose sends are awaited under a timeout.

    Starting is lazy and retried on the next send, so a process that boots while the
    broker is down still starts (and reports not-ready) instead of crashing.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        client_id: str = "expert-sourcing",
        send_timeout: float | None = None,
    ) -> None:
        self.settings = settings
        self.client_id = client_id
        self.send_timeout = send_timeout or settings.BROKER_SEND_TIMEOUT_SECONDS
        self._producer: AIOKafkaProducer | None = None
        self._lock = asyncio.Lock()

    async def __aenter__(self) -> EnvelopeProducer:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    @property
    def started(self) -> bool:
        return self._producer is not None

    def _new_producer(self) -> AIOKafkaProducer:
        timeout_ms = int(self.send_timeout * 1000)
        return AIOKafkaProducer(
            bootstrap_servers=bootstrap_servers(self.settings),
            client_id=self.client_id,
            acks="all",
            enable_idempotence=self.settings.KAFKA_IDEMPOTENT_PRODUCER,
            request_timeout_ms=max(timeout_ms, 1000),
            # One batch in flight per partition (aiokafka's default): per-key order holds.
            linger_ms=0,
            partitioner=partition_for_key,
            **client_security(self.settings),
        )

    async def start(self) -> None:
        """Connect and fetch metadata; raises :class:`BrokerUnavailable` on failure."""
        await self._ensure_started()

    async def _ensure_started(self) -> AIOKafkaProducer:
        if self._producer is not None:
            return self._producer
        async with self._lock:
            if self._producer is not None:
                return self._producer
            producer = self._new_producer()
            try:
                async with asyncio.timeout(self.send_timeout):
                    await producer.start()
            except (KafkaError, OSError, TimeoutError) as exc:
                await _quiet_stop(producer)
                raise BrokerUnavailable(f"cannot connect to the broker: {exc!r}") from exc
            except BaseException:
                await _quiet_stop(producer)
                raise
            self._producer = producer
            return producer

    async def stop(self) -> None:
        """Flush pending sends and disconnect."""
        async with self._lock:
            producer, self._producer = self._producer, None
        if producer is not None:
            await producer.stop()

    async def send_envelope(
        self,
        lane: str,
        envelope: Envelope,
        *,
        key: str | bytes | None = None,
    ) -> SendResult:
        """Send an envelope to a lane's (prefixed) topic and wait until the broker confirms it."""
        return await self.send_raw(
            self.settings.topic(lane_named(lane).name),
            envelope.to_bytes(),
            key=key,
            headers=envelope_headers(envelope),
        )

    async def send_message(
        self,
        message: MessagePayload,
        *,
        envelope_id: str | None = None,
    ) -> Envelope:
        """Send ``message`` to the lane, with the key, its type declares and wait until the
        broker confirms it; returns the envelope sent. ``envelope_id`` replaces the fresh id
        when the producer derives it (from a webhook's delivery id, for dedup)."""
        envelope = Envelope.of(message, id=envelope_id)
        target = route(message)
        await self.send_envelope(target.lane, envelope, key=target.key)
        return envelope

    async def send_raw(
        self,
        topic: str,
        value: bytes,
        *,
        key: str | bytes | None = None,
        headers: Headers | None = None,
        budget_seconds: float | None = None,
    ) -> SendResult:
        """Send encoded bytes to a full topic name and wait for the acks=all confirmation."""
        budget = budget_seconds or self.send_timeout
        producer: AIOKafkaProducer | None = None
        try:
            async with asyncio.timeout(budget):
                producer = await self._ensure_started()
                future: asyncio.Future[Any] = await producer.send(
                    topic, value=value, key=encode_key(key), headers=list(headers or [])
                )
                # Shielded: a timeout here must not cancel aiokafka's own batch future.
                record = await asyncio.shield(future)
        except BrokerUnavailable:
            metrics.PRODUCE_ERRORS.labels(topic).inc()
            raise
        except (KafkaError, OSError, TimeoutError) as exc:
            metrics.PRODUCE_ERRORS.labels(topic).inc()
            await self._discard_if_fatal(producer, exc)
            raise BrokerUnavailable(f"send to {topic!r} not confirmed: {exc!r}") from exc
        metrics.MESSAGES_PRODUCED.labels(topic).inc()
        return SendResult(topic=record.topic, partition=record.partition, offset=record.offset)

    async def send_many(
        self,
        messages: Sequence[tuple[str, bytes, bytes | None, Headers]],
        *,
        budget_seconds: float | None = None,
    ) -> list[SendResult]:
        """Send (topic, value, key, headers) in order and wait for all confirmations.

        Enqueued in order on one producer, so messages with the same key keep their order.
        If any send fails the whole call raises :class:`BrokerUnavailable` (some may have
        been delivered: callers treat that as at-least-once).
        """
        if not messages:
            return []
        budget = budget_seconds or self.send_timeout
        futures: list[asyncio.Future[Any]] = []
        producer: AIOKafkaProducer | None = None
        try:
            async with asyncio.timeout(budget):
                producer = await self._ensure_started()
                for topic, value, key, headers in messages:
                    futures.append(
                        await producer.send(topic, value=value, key=key, headers=list(headers))
                    )
                records = await asyncio.shield(asyncio.gather(*futures))
        except BrokerUnavailable:
            metrics.PRODUCE_ERRORS.labels(messages[0][0]).inc()
            raise
        except (KafkaError, OSError, TimeoutError) as exc:
            metrics.PRODUCE_ERRORS.labels(messages[0][0]).inc()
            await self._discard_if_fatal(producer, exc)
            raise BrokerUnavailable(f"batch send not confirmed: {exc!r}") from exc
        results = []
        for record in records:
            metrics.MESSAGES_PRODUCED.labels(record.topic).inc()
            results.append(
                SendResult(topic=record.topic, partition=record.partition, offset=record.offset)
            )
        return results

    async def _discard_if_fatal(
        self, producer: AIOKafkaProducer | None, error: BaseException
    ) -> None:
        """Forget ``producer`` after an error its sender never recovers from, so that the next
        send starts a new one instead of failing forever."""
        if producer is None or not isinstance(error, _FATAL_PRODUCER_ERRORS):
            return
        async with self._lock:
            if self._producer is not producer:
                return  # another send replaced it already
            self._producer = None
        logger.warning("kafka producer stopped for good (%r); starting a new one", error)
        try:
            async with asyncio.timeout(self.send_timeout):
                await _quiet_stop(producer)
        except TimeoutError:
            logger.warning("a failed kafka producer did not stop in time; abandoned")

    async def ping(self, *, budget_seconds: float | None = None) -> None:
        """Readiness: fetch cluster metadata under a timeout; raises :class:`BrokerUnavailable`."""
        budget = budget_seconds or self.settings.READINESS_TIMEOUT_SECONDS
        try:
            async with asyncio.timeout(budget):
                producer = await self._ensure_started()
                await producer.client.fetch_all_metadata()
        except BrokerUnavailable:
            raise
        except (KafkaError, OSError, TimeoutError) as exc:
            raise BrokerUnavailable(f"broker metadata unavailable: {exc!r}") from exc


async def _quiet_stop(producer: AIOKafkaProducer) -> None:
    try:
        await producer.stop()
    except Exception:  # a half-started producer may fail to stop; nothing to flush
        logger.debug("ignoring error stopping a producer that failed to start", exc_info=True)
