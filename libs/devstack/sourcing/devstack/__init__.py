"""Embedded PostgreSQL and Kafka-protocol brokers for development and tests.

`start_dev_stack()` / `start_test_stack()` return a `Stack` (URLs plus handles to stop and
start each server); `create_topics()` creates the lane topics; `python -m sourcing.devstack up`
runs the development stack in the foreground.
"""

from sourcing.devstack._process import DevstackError, EmbeddedServer
from sourcing.devstack.kafka import ApacheKafka, ensure_kafka_libs, java_and_maven_available
from sourcing.devstack.postgres import EmbeddedPostgres
from sourcing.devstack.stack import (
    Stack,
    broker_from_env,
    choose_test_broker,
    start_dev_stack,
    start_stack,
    start_test_stack,
)
from sourcing.devstack.tansu import TansuBroker
from sourcing.devstack.topics import (
    BrokerUnavailable,
    broker_is_ready,
    create_topics,
    delete_topics,
    wait_for_broker,
)

__all__ = [
    "ApacheKafka",
    "BrokerUnavailable",
    "DevstackError",
    "EmbeddedPostgres",
    "EmbeddedServer",
    "Stack",
    "TansuBroker",
    "broker_from_env",
    "broker_is_ready",
    "choose_test_broker",
    "create_topics",
    "delete_topics",
    "ensure_kafka_libs",
    "java_and_maven_available",
    "start_dev_stack",
    "start_stack",
    "start_test_stack",
    "wait_for_broker",
]
