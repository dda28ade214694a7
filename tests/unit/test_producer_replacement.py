"""A producer whose sender stopped for good is replaced on the next send, not kept forever.

aiokafka's sender task dies on some errors (an idempotent producer's OutOfOrderSequenceNumber
after a broker restart under load, ProducerFenced); every later send then fails at once with
ProducerClosed. The broker-outage fault test shows the whole effect on a real broker; this pins
the decision itself with a stand-in for the client (nothing is sent).
"""

from __future__ import annotations

from typing import Any, cast

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
    ProducerClosed,
    ProducerFenced,
)

from sourcing.common.kafka.producer import EnvelopeProducer
from tests.fixtures.settings import load_settings


class StoppableClient:
    def __init__(self) -> None:
        self.stopped = False

    async def stop(self) -> None:
        self.stopped = True


def _producer_with(client: StoppableClient) -> EnvelopeProducer:
    producer = EnvelopeProducer(load_settings(APP_ENV="development"))
    producer._producer = cast(AIOKafkaProducer, client)
    return producer


@pytest.mark.parametrize("error", [ProducerClosed(), OutOfOrderSequenceNumber(), ProducerFenced()])
async def test_a_fatal_error_discards_and_stops_the_client(error: Exception) -> None:
    client = StoppableClient()
    producer = _producer_with(client)
    await producer._discard_if_fatal(cast(Any, client), error)
    assert producer._producer is None  # the next send starts a new client
    assert client.stopped


@pytest.mark.parametrize(
    "error", [KafkaTimeoutError(), OSError("connection refused"), TimeoutError()]
)
async def test_a_passing_error_keeps_the_client(error: Exception) -> None:
    client = StoppableClient()
    producer = _producer_with(client)
    await producer._discard_if_fatal(cast(Any, client), error)
    assert producer._producer is cast(Any, client)
    assert not client.stopped


async def test_a_client_already_replaced_is_left_to_its_successor() -> None:
    old, current = StoppableClient(), StoppableClient()
    producer = _producer_with(current)
    await producer._discard_if_fatal(cast(Any, old), ProducerClosed())
    assert producer._producer is cast(Any, current)
    assert not current.stopped
