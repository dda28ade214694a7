"""An agent service's health endpoint on the real broker and PostgreSQL: liveness and
readiness answer over HTTP; readiness fails (and says why) when the database is unreachable
or the consumer has not joined its group yet; liveness is unaffected by a database outage."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.allocation.app import LANE as ALLOCATION_LANE
from sourcing.allocation.app import build_app
from sourcing.common.db import create_engine, create_sessionmaker
from sourcing.common.events import Envelope, MessagePayload
from sourcing.common.health import HealthServer
from sourcing.common.kafka.app import SourcingApp, reliable_agent
from sourcing.common.topics import LANES_BY_NAME
from tests.fixtures.kafka import AppFactory, running_app
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration


async def _noop(session: AsyncSession, envelope: Envelope, payload: MessagePayload) -> None:
    return None


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port  # nothing listens here any more


async def _serve_health(app: SourcingApp) -> AsyncIterator[httpx.AsyncClient]:
    server = HealthServer(app, port=0, host="127.0.0.1")
    await server.start()
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{server.port}") as client:
            yield client
    finally:
        await server.stop()


async def _get(client: httpx.AsyncClient, path: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(path, timeout=10)
    return response.status_code, response.json()


async def test_allocation_service_health_over_http(
    kafka_settings: Settings,
    kafka_sessionmaker: async_sessionmaker[AsyncSession],
    tmp_path: Path,
) -> None:
    app = build_app(
        kafka_settings,
        web_enabled=False,
        relay_outbox=False,
        sessionmaker=kafka_sessionmaker,
        datadir=tmp_path / "allocation",
    )
    topic = kafka_settings.topic(ALLOCATION_LANE)
    async for client in _serve_health(app):
        # Before the worker joined its group: alive, not ready, and it says why.
        status, body = await _get(client, "/health/ready")
        assert status == 503
        assert body["checks"]["consumer"] == "not yet assigned by the consumer group"
        assert body["checks"]["database"] == "ok" and body["checks"]["broker"] == "ok"
        assert (await _get(client, "/health/live"))[0] == 200

        async with running_app(app):
            status, body = await _get(client, "/health/ready")
            assert status == 200, body
            assert body == {
                "status": "ready",
                "checks": {"database": "ok", "broker": "ok", "consumer": "ok"},
                "partitions": {topic: LANES_BY_NAME[ALLOCATION_LANE].partitions},
            }
            status, body = await _get(client, "/health/live")
            assert status == 200 and body["status"] == "ok" and body["lag"] == 0
            assert [agent["consumer"] for agent in body["agents"]] == ["call-allocation"]

            unknown = await client.get("/health/nope")
            assert unknown.status_code == 404
            assert (await client.post("/health/ready")).status_code == 405


async def test_readiness_fails_when_the_database_is_unreachable(
    kafka_settings: Settings, kafka_app_factory: AppFactory
) -> None:
    dead_engine = create_engine(
        kafka_settings, database_url=f"postgresql://postgres@127.0.0.1:{_closed_port()}/nowhere"
    )
    try:
        app = kafka_app_factory("health-dead-db", sessionmaker=create_sessionmaker(dead_engine))
        reliable_agent(app, "documentation", _noop, consumer_name="health-dead-db")
        async for client in _serve_health(app):
            async with running_app(app):
                status, body = await _get(client, "/health/ready")
                assert status == 503
                assert body["status"] == "not_ready"
                assert body["checks"]["database"] != "ok"
                assert "connect" in body["checks"]["database"].lower() or "refused" in (
                    body["checks"]["database"].lower()
                )
                # Only the database is down: the broker and the group are fine...
                assert body["checks"]["broker"] == "ok" and body["checks"]["consumer"] == "ok"
                # ...and restarting would not help, so liveness stays green.
                assert (await _get(client, "/health/live"))[0] == 200
    finally:
        await dead_engine.dispose()
