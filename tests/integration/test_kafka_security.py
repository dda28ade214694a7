"""Kafka security: every client (producer, topic-init, Faust agents) talks SASL_SSL to an
Apache Kafka broker that only accepts a SCRAM user over TLS on that listener; a wrong password
stops start-up at once with a clear error instead of hanging."""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.kafka import BrokerUnavailable, EnvelopeProducer
from sourcing.common.kafka.app import reliable_agent
from sourcing.common.kafka.security import (
    KafkaAuthenticationError,
    check_broker_credentials,
    client_security,
)
from sourcing.common.topics import LANES_BY_NAME
from sourcing.common.topics_init import create_topics
from sourcing.devstack import java_and_maven_available
from sourcing.devstack.kafka import ApacheKafka, SaslSslListener
from tests.fixtures.kafka import (
    AppFactory,
    make_kafka_settings,
    read_topic,
    running_app,
    wait_until,
)
from tests.fixtures.settings import Settings
from tests.fixtures.tls import make_broker_certificates
from tests.integration.test_kafka_reliability import (
    PERFORMANCE,
    Scenario,
    caller_of,
    recalc,
    rows,
    scratch,  # noqa: F401 - the fixture creating the scratch table
)

pytestmark = pytest.mark.integration

USERNAME = "sourcing-svc"
PASSWORD = "kafka-test-password-7f3a9c"


@pytest.fixture(scope="module")
def secure_broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ApacheKafka, Path]]:
    """A second Apache Kafka with a SASL_SSL listener (SCRAM-SHA-512); yields it and the CA."""
    if not java_and_maven_available():
        if os.environ.get("REQUIRE_APACHE_KAFKA"):
            pytest.fail("REQUIRE_APACHE_KAFKA=1 but java/mvn are missing")
        pytest.skip("SASL_SSL needs Apache Kafka (java + mvn)")
    certificates = make_broker_certificates(tmp_path_factory.mktemp("tls"))
    listener = SaslSslListener(keystore=certificates.keystore, username=USERNAME, password=PASSWORD)
    broker = ApacheKafka(sasl_ssl=listener, heap="256m")
    broker.start()
    try:
        yield broker, certificates.cafile
    finally:
        broker.close()


def secure_settings(
    kafka_settings: Settings, broker: tuple[ApacheKafka, Path], **overrides: Any
) -> Settings:
    kafka, cafile = broker
    values: dict[str, Any] = {
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": USERNAME,
        "KAFKA_SASL_PASSWORD": PASSWORD,
        "KAFKA_SSL_CAFILE": str(cafile),
        **overrides,
    }
    return make_kafka_settings(
        database_url=kafka_settings.DATABASE_URL,
        bootstrap=kafka.sasl_ssl_bootstrap_servers,
        topic_prefix=kafka_settings.KAFKA_TOPIC_PREFIX,
        broker_kind="kafka",
        **values,
    )


@pytest.mark.usefixtures("scratch")
async def test_produce_agent_database_round_trip_over_sasl_ssl(
    secure_broker: tuple[ApacheKafka, Path],
    kafka_settings: Settings,
    kafka_app_factory: AppFactory,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    topic_prefix: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    settings = secure_settings(kafka_settings, secure_broker)
    kafka, _ = secure_broker
    # Topic-init over SASL_SSL (the plaintext listener is not used by any client here).
    await create_topics(
        kafka.sasl_ssl_bootstrap_servers,
        prefix=topic_prefix,
        lanes=[LANES_BY_NAME[PERFORMANCE]],
        security=client_security(settings),
    )
    scenario = Scenario(topic_prefix)
    app = kafka_app_factory("secure-perf", settings=settings)
    reliable_agent(app, PERFORMANCE, scenario.handle, consumer_name=f"{topic_prefix}perf")
    envelope = recalc(correlation_id="corr-sasl-ssl")
    async with EnvelopeProducer(settings, client_id="tests") as producer:
        sent = await producer.send_envelope(PERFORMANCE, envelope, key=caller_of(envelope))
    assert sent.topic == settings.topic(PERFORMANCE)

    async with running_app(app):
        await wait_until(
            lambda: _row_count_at_least(kafka_sessionmaker, topic_prefix, 1),
            message="row written by the agent over SASL_SSL",
        )
    assert await rows(kafka_sessionmaker, topic_prefix) == [
        (envelope.id, caller_of(envelope), "corr-sasl-ssl")
    ]
    [record] = await read_topic(settings, PERFORMANCE, min_count=1)
    assert record.envelope() == envelope
    assert f"Authenticated as {USERNAME}" in caplog.text  # really over SASL
    assert PASSWORD not in caplog.text and PASSWORD not in repr(settings)


async def test_plaintext_client_gets_nothing_from_the_sasl_ssl_listener(
    secure_broker: tuple[ApacheKafka, Path], kafka_settings: Settings
) -> None:
    settings = secure_settings(kafka_settings, secure_broker, KAFKA_SECURITY_PROTOCOL="PLAINTEXT")
    producer = EnvelopeProducer(settings, client_id="tests", send_timeout=3.0)
    with pytest.raises(BrokerUnavailable):
        await producer.start()


async def test_wrong_password_is_refused_fast_and_named(
    secure_broker: tuple[ApacheKafka, Path], kafka_settings: Settings
) -> None:
    wrong = "not-the-password"
    settings = secure_settings(kafka_settings, secure_broker, KAFKA_SASL_PASSWORD=wrong)
    started = time.monotonic()
    with pytest.raises(KafkaAuthenticationError) as refused:
        await check_broker_credentials(
            settings, [settings.KAFKA_BROKER_URL], timeout=settings.BROKER_SEND_TIMEOUT_SECONDS
        )
    assert time.monotonic() - started < 5
    message = str(refused.value)
    assert USERNAME in message and "SaslAuthenticationFailed" in message
    assert wrong not in message


async def test_service_with_a_wrong_password_exits_at_start_up(
    secure_broker: tuple[ApacheKafka, Path], kafka_settings: Settings
) -> None:
    settings = secure_settings(kafka_settings, secure_broker, KAFKA_SASL_PASSWORD="wrong-one")
    kafka, cafile = secure_broker
    env = {
        **os.environ,
        "APP_ENV": "test",
        "DATABASE_URL": settings.DATABASE_URL,
        "KAFKA_BROKER_URL": kafka.sasl_ssl_bootstrap_servers,
        "KAFKA_TOPIC_PREFIX": settings.KAFKA_TOPIC_PREFIX,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_USERNAME": USERNAME,
        "KAFKA_SASL_PASSWORD": "wrong-one",
        "KAFKA_SSL_CAFILE": str(cafile),
        "METRICS_PORT": "0",
        "AGENT_WEB_PORT": "0",
    }
    started = time.monotonic()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "sourcing.scheduler",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    try:
        async with asyncio.timeout(60):
            output, _ = await process.communicate()
    finally:
        if process.returncode is None:
            process.kill()
    text = output.decode(errors="replace")
    assert process.returncode != 0, text
    assert "refusing to start" in text and "refused user 'sourcing-svc'" in text, text
    assert "wrong-one" not in text
    assert time.monotonic() - started < 60


async def _row_count_at_least(
    sessionmaker: async_sessionmaker[AsyncSession], run: str, count: int
) -> bool:
    return len(await rows(sessionmaker, run)) >= count
