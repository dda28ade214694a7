"""Consumer lag as the broker records it: each of this environment's consumer groups'
committed offsets on its lane topics against the partitions' end offsets.

Faust's monitor (``SourcingRuntime.lag``) sees one process's view; this asks the broker, so the
gateway can report every group at once, running agents or not.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from sourcing.common.config import Settings
from sourcing.common.kafka.producer import BrokerUnavailable, bootstrap_servers
from sourcing.common.kafka.security import client_security
from sourcing.common.topics import LANES, app_id_for


@dataclass(frozen=True, slots=True)
class PartitionLag:
    group: str
    topic: str
    partition: int
    committed_offset: int
    end_offset: int

    @property
    def lag(self) -> int:
        return max(self.end_offset - self.committed_offset, 0)


async def _partitions(admin: AIOKafkaAdminClient, topics: set[str]) -> list[TopicPartition]:
    """The partitions of the lane topics that exist on the broker."""
    described = await admin.describe_topics(sorted(topics))
    return sorted(
        TopicPartition(entry["topic"], part["partition"])
        for entry in described
        if entry.get("error_code", 0) == 0
        for part in entry.get("partitions", [])
    )


async def _committed(
    settings: Settings, group: str, partitions: list[TopicPartition], timeout_ms: int
) -> dict[tuple[str, TopicPartition], int]:
    """The group's committed offsets on ``topics``, asked as the group's own consumer does
    (OffsetFetch per partition): every Kafka-protocol broker answers that, where some do not
    implement the admin API's whole-group form."""
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        group_id=group,
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
        **client_security(settings),
    )
    await consumer.start()
    try:
        offsets = await asyncio.gather(*(consumer.committed(tp) for tp in partitions))
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()
    return {
        (group, tp): offset
        for tp, offset in zip(partitions, offsets, strict=True)
        if offset is not None and offset >= 0
    }


async def _end_offsets(
    settings: Settings, partitions: set[TopicPartition], timeout_ms: int
) -> dict[TopicPartition, int]:
    if not partitions:
        return {}
    consumer = AIOKafkaConsumer(
        bootstrap_servers=bootstrap_servers(settings),
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=timeout_ms,
        **client_security(settings),
    )
    await consumer.start()
    try:
        ends: dict[TopicPartition, int] = await consumer.end_offsets(list(partitions))
        return ends
    finally:
        with contextlib.suppress(Exception):
            await consumer.stop()


async def consumer_lag(
    settings: Settings,
    *,
    timeout: float,  # noqa: ASYNC109 - becomes the clients' request timeout too
) -> list[PartitionLag]:
    """Every committed partition of this environment's groups (``KAFKA_TOPIC_PREFIX`` +
    the app id prefix) on its lane topics, sorted by group, topic and partition.

    Raises :class:`BrokerUnavailable` when the broker does not answer within ``timeout``.
    """
    group_prefix = app_id_for("", settings)
    topics = {settings.topic(lane.name) for lane in LANES}
    timeout_ms = int(timeout * 1000)
    admin = AIOKafkaAdminClient(
        bootstrap_servers=bootstrap_servers(settings),
        request_timeout_ms=timeout_ms,
        **client_security(settings),
    )
    try:
        async with asyncio.timeout(timeout):
            await admin.start()
            listed = await admin.list_consumer_groups()
            names = {str(entry[0]) for entry in listed}
            groups = sorted(name for name in names if name.startswith(group_prefix))
            partitions = await _partitions(admin, topics)
            committed: dict[tuple[str, TopicPartition], int] = {}
            for group in groups:
                committed.update(await _committed(settings, group, partitions, timeout_ms))
            ends = await _end_offsets(settings, {tp for _, tp in committed}, timeout_ms)
    except (KafkaError, OSError, TimeoutError) as exc:
        raise BrokerUnavailable(f"consumer offsets unavailable: {exc!r}") from exc
    finally:
        with contextlib.suppress(Exception):
            await admin.close()
    return sorted(
        (
            PartitionLag(group_name, tp.topic, tp.partition, offset, ends.get(tp, offset))
            for (group_name, tp), offset in committed.items()
        ),
        key=lambda row: (row.group, row.topic, row.partition),
    )
