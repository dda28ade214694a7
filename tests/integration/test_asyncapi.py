"""The served event contract, and its channels against the topics a real broker holds."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from sourcing.common.asyncapi import asyncapi_document
from sourcing.common.topics_init import create_topics, delete_topics
from sourcing.devstack import Stack
from tests.fixtures.api import ApiSettingsFactory
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


@pytest.fixture
async def platform_topics(infra: Stack, topic_prefix: str) -> AsyncIterator[str]:
    """Every lane topic under a fresh prefix, created by topic-init's own function."""
    await create_topics(infra.bootstrap_servers, prefix=topic_prefix)
    yield topic_prefix
    await delete_topics(infra.bootstrap_servers, prefix=topic_prefix)


@pytest.fixture
async def admin(infra: Stack) -> AsyncIterator[AIOKafkaAdminClient]:
    client = AIOKafkaAdminClient(bootstrap_servers=infra.bootstrap_servers)
    await client.start()
    yield client
    await client.close()


async def test_the_contract_is_public_and_names_this_deployments_topics(
    api_settings_factory: ApiSettingsFactory,
    serve_api: Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]],
) -> None:
    settings = api_settings_factory(KAFKA_TOPIC_PREFIX="staging.", KAFKA_REPLICATION_FACTOR=3)
    async with serve_api(settings) as api:
        response = await api.get("/api/v1/asyncapi.json")  # no token
        again = await api.get("/asyncapi.json")  # the root path AsyncAPI tools look at
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    document = response.json()
    assert document == asyncapi_document("staging.", 3)
    assert document["asyncapi"] == "3.0.0"
    assert document["channels"]["outreach"]["address"] == "staging.outreach"
    assert again.content == response.content


async def test_the_channels_match_the_topics_on_the_broker(
    infra: Stack, admin: AIOKafkaAdminClient, platform_topics: str
) -> None:
    document = asyncapi_document(platform_topics, 1)
    channels: dict[str, Any] = document["channels"]
    documented = {
        channel["address"]: channel["bindings"]["kafka"]["partitions"]
        for channel in channels.values()
    }
    on_broker = {topic for topic in await admin.list_topics() if topic.startswith(platform_topics)}
    assert on_broker == set(documented)
    described = await admin.describe_topics(sorted(documented))
    actual = {t["topic"]: len(t["partitions"]) for t in described if t["error_code"] == 0}
    assert actual == documented

    if infra.broker_kind != "kafka":
        return  # Tansu takes no topic configs; CI runs Apache Kafka
    resources = [ConfigResource(ConfigResourceType.TOPIC, topic) for topic in documented]
    [response] = await admin.describe_configs(resources)
    configs = {
        resource[3]: {entry[0]: entry[1] for entry in resource[4]}
        for resource in response.resources
    }
    for channel in channels.values():
        wanted = channel["bindings"]["kafka"]["topicConfiguration"]
        broker = configs[channel["address"]]
        assert {name: int(broker[name]) for name in wanted} == wanted, channel["address"]
