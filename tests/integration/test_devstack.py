"""The embedded stack itself: PostgreSQL, the session broker, topic creation, Tansu."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from sourcing.common.topics import LANES, LANES_BY_NAME
from sourcing.devstack import (
    BrokerUnavailable,
    DevstackError,
    Stack,
    TansuBroker,
    choose_test_broker,
    create_topics,
    start_test_stack,
    wait_for_broker,
)
from sourcing.devstack._process import free_port
from sourcing.devstack.tansu import tansu_binary

pytestmark = pytest.mark.integration

DAY_MS = 86_400_000


@pytest.fixture
async def admin(infra: Stack) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap_servers)
    await client.start()
    yield client
    await client.close()


async def _partition_counts(admin: AIOKafkaAdminClient, names: list[str]) -> dict[str, int]:
    described = await admin.describe_topics(names)
    return {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}


async def _round_trip(bootstrap: str, topic: str, *, group: str) -> None:
    """Produce one keyed message and read it back through a consumer group."""
    value = uuid.uuid4().bytes
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
    await producer.start()
    try:
        async with asyncio.timeout(30):
            sent = await producer.send_and_wait(topic, value, key=b"expert-42")
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=bootstrap,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=500,
        rebalance_timeout_ms=2000,  # Tansu holds JoinGroup for half of it
    )
    await consumer.start()
    try:
        async with asyncio.timeout(60):
            message = await consumer.getone()
        await consumer.commit()
    finally:
        await consumer.stop()
    assert (message.value, message.key) == (value, b"expert-42")
    assert (message.partition, message.offset) == (sent.partition, sent.offset)


async def _select_one(url: str) -> int:
    connection = await asyncpg.connect(url, timeout=5)
    try:
        value: int = await connection.fetchval("select 1")
        return value
    finally:
        await connection.close()


async def test_postgres_answers(infra: Stack) -> None:
    assert infra.database_url.startswith("postgresql://")
    assert await _select_one(infra.database_url) == 1


async def test_broker_creates_every_lane_with_its_partitions(
    infra: Stack, admin: AIOKafkaAdminClient, topic_prefix: str
) -> None:
    await create_topics(infra.bootstrap_servers, prefix=topic_prefix)
    await create_topics(infra.bootstrap_servers, prefix=topic_prefix)  # idempotent

    names = [f"{topic_prefix}{lane.name}" for lane in LANES]
    counts = await _partition_counts(admin, names)
    assert len(LANES) == 14
    assert counts == {f"{topic_prefix}{lane.name}": lane.partitions for lane in LANES}


async def test_lane_retention_is_set_on_apache_kafka(
    infra: Stack, admin: AIOKafkaAdminClient, lane_topics: str
) -> None:
    if infra.broker_kind != "kafka":
        pytest.skip("topic configs are checked on Apache Kafka only")
    resources = [
        ConfigResource(ConfigResourceType.TOPIC, f"{lane_topics}{name}")
        for name in ("dead-letter", "outreach")
    ]
    [response] = await admin.describe_configs(resources)
    retention = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}["retention.ms"]
        for resource in response.resources
    }
    assert retention == {
        f"{lane_topics}dead-letter": str(LANES_BY_NAME["dead-letter"].retention_days * DAY_MS),
        f"{lane_topics}outreach": str(LANES_BY_NAME["outreach"].retention_days * DAY_MS),
    }


async def test_message_round_trip(infra: Stack, lane_topics: str) -> None:
    await _round_trip(
        infra.bootstrap_servers, f"{lane_topics}outreach", group=f"{lane_topics}group"
    )


async def test_auto_create_is_off(infra: Stack, topic_prefix: str) -> None:
    if infra.broker_kind != "kafka":
        pytest.skip("auto-create is configured on the embedded Apache Kafka only")
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, request_timeout_ms=1000)
    await producer.start()
    try:
        with pytest.raises(Exception):  # noqa: B017 - aiokafka raises a timeout or unknown-topic
            async with asyncio.timeout(10):
                await producer.send_and_wait(f"{topic_prefix}not-a-lane", b"x")
    finally:
        await producer.stop()


async def test_postgres_stops_and_starts_on_the_same_port_with_its_data(infra: Stack) -> None:
    postgres = infra.postgres
    if postgres is None:
        pytest.skip("TEST_DATABASE_URL points at an external PostgreSQL")
    table = f"devstack_probe_{uuid.uuid4().hex[:8]}"
    connection = await asyncpg.connect(infra.database_url, timeout=5)
    await connection.execute(f"create table {table} (id int primary key)")
    await connection.execute(f"insert into {table} values (7)")  # noqa: S608 - generated name
    await connection.close()

    await postgres.astop()
    assert not postgres.running
    with pytest.raises((OSError, asyncpg.PostgresError, asyncio.TimeoutError)):
        await _select_one(infra.database_url)

    assert await postgres.astart() == infra.database_url
    connection = await asyncpg.connect(infra.database_url, timeout=5)
    try:
        assert await connection.fetchval(f"select id from {table}") == 7  # noqa: S608 - as above
        await connection.execute(f"drop table {table}")
    finally:
        await connection.close()


async def test_apache_kafka_restarts_with_its_data(infra: Stack, lane_topics: str) -> None:
    if infra.broker_kind != "kafka" or infra.broker is None:
        pytest.skip("restart with data is an embedded Apache Kafka feature")
    topic = f"{lane_topics}ranking"
    producer = AIOKafkaProducer(bootstrap_servers=infra.bootstrap_servers, acks="all")
    await producer.start()
    try:
        sent = await producer.send_and_wait(topic, b"kept", key=b"project-1")
    finally:
        await producer.stop()

    await infra.broker.arestart()

    consumer = AIOKafkaConsumer(bootstrap_servers=infra.bootstrap_servers)
    await consumer.start()
    try:
        from aiokafka import TopicPartition

        partition = TopicPartition(topic, sent.partition)
        consumer.assign([partition])
        consumer.seek(partition, sent.offset)
        async with asyncio.timeout(30):
            message = await consumer.getone()
    finally:
        await consumer.stop()
    assert message.value == b"kept"


async def test_wait_for_broker_gives_up_on_a_dead_port() -> None:
    with pytest.raises(BrokerUnavailable):
        await wait_for_broker(f"127.0.0.1:{free_port()}", timeout=1.0)


def test_environment_urls_replace_the_embedded_servers(
    infra: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TEST_DATABASE_URL", infra.database_url)
    monkeypatch.setenv("TEST_KAFKA_BROKER_URL", infra.bootstrap_servers)
    with start_test_stack() as stack:
        assert (stack.database_url, stack.bootstrap_servers) == (
            infra.database_url,
            infra.bootstrap_servers,
        )
        assert (stack.broker_kind, stack.postgres, stack.broker) == ("external", None, None)


def test_tansu_fallback_is_refused_when_apache_kafka_is_required(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no java, no mvn
    monkeypatch.setenv("REQUIRE_APACHE_KAFKA", "1")
    with pytest.raises(DevstackError, match="REQUIRE_APACHE_KAFKA"):
        choose_test_broker()
    monkeypatch.delenv("REQUIRE_APACHE_KAFKA")
    assert choose_test_broker() == "tansu"


@pytest.mark.skipif(tansu_binary() is None, reason="no Tansu binary installed")
async def test_tansu_starts_and_round_trips(topic_prefix: str) -> None:
    broker = TansuBroker()
    try:
        bootstrap = await broker.astart()
        await create_topics(bootstrap, prefix=topic_prefix)
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            names = [f"{topic_prefix}{lane.name}" for lane in LANES]
            counts = await _partition_counts(admin, names)
        finally:
            await admin.close()
        assert counts == {f"{topic_prefix}{lane.name}": lane.partitions for lane in LANES}
        await _round_trip(bootstrap, f"{topic_prefix}enrichment", group=f"{topic_prefix}g")
    finally:
        await broker.aclose()
    assert not broker.running
