"""Kafka client security and topic configs built from settings (no broker needed)."""

from __future__ import annotations

import ssl
from pathlib import Path

import faust
import pytest

from sourcing.common.config import ConfigurationError
from sourcing.common.kafka.producer import EnvelopeProducer
from sourcing.common.kafka.security import client_security, faust_credentials
from sourcing.common.topics import LANES_BY_NAME
from sourcing.common.topics_init import topic_configs
from tests.fixtures.settings import load_settings
from tests.fixtures.tls import make_broker_certificates

PASSWORD = "unit-test-kafka-password"


@pytest.fixture
def cafile(tmp_path: Path) -> str:
    return str(make_broker_certificates(tmp_path).cafile)


def test_plaintext_is_the_default_and_has_no_credentials() -> None:
    settings = load_settings(APP_ENV="test")
    assert client_security(settings) == {"security_protocol": "PLAINTEXT", "ssl_context": None}
    assert faust_credentials(settings) is None


def test_sasl_ssl_gives_every_client_the_same_credentials_and_a_verifying_context(
    cafile: str,
) -> None:
    settings = load_settings(
        APP_ENV="test",
        KAFKA_SECURITY_PROTOCOL="SASL_SSL",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME="svc",
        KAFKA_SASL_PASSWORD=PASSWORD,
        KAFKA_SSL_CAFILE=cafile,
    )
    kwargs = client_security(settings)
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == "SCRAM-SHA-256"
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("svc", PASSWORD)
    context = kwargs["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.check_hostname and context.verify_mode == ssl.CERT_REQUIRED
    credentials = faust_credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert credentials.protocol.value == "SASL_SSL"
    assert credentials.mechanism.value == "SCRAM-SHA-256"
    assert (credentials.username, credentials.password) == ("svc", PASSWORD)
    assert PASSWORD not in repr(settings) and PASSWORD not in repr(credentials)


def test_ssl_without_sasl_uses_ssl_credentials(cafile: str) -> None:
    settings = load_settings(APP_ENV="test", KAFKA_SECURITY_PROTOCOL="SSL", KAFKA_SSL_CAFILE=cafile)
    assert "sasl_mechanism" not in client_security(settings)
    assert isinstance(faust_credentials(settings), faust.SSLCredentials)


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "KAFKA_SASL_USERNAME"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "u"}, "PASSWORD"),
        ({"KAFKA_SSL_CERTFILE": "/c.pem"}, "KAFKA_SSL_KEYFILE"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL"}, "KAFKA_SECURITY_PROTOCOL"),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM"),
    ],
)
def test_incomplete_kafka_security_is_refused(overrides: dict[str, str], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        load_settings(APP_ENV="test", **overrides)


@pytest.mark.parametrize(("replicas", "min_insync"), [(1, None), (2, None), (3, "2"), (5, "2")])
def test_topic_configs_require_two_in_sync_replicas_from_three(
    replicas: int, min_insync: str | None
) -> None:
    lane = LANES_BY_NAME["yay-call-events"]
    configs = topic_configs(lane, replicas)
    assert configs["retention.ms"] == str(lane.retention_days * 86_400_000)
    assert configs.get("min.insync.replicas") == min_insync


@pytest.mark.parametrize("idempotent", [True, False])
async def test_the_producer_waits_for_all_replicas_and_is_idempotent_where_asked(
    idempotent: bool,
) -> None:
    # Apache Kafka deployments set KAFKA_IDEMPOTENT_PRODUCER (Tansu lacks InitProducerId).
    settings = load_settings(APP_ENV="test", KAFKA_IDEMPOTENT_PRODUCER=idempotent)
    producer = EnvelopeProducer(settings)._new_producer()
    assert producer._sender._acks == -1
    assert (producer._txn_manager is not None) is idempotent
