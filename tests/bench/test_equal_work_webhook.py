"""The webhook baseline (``bench.baseline`` ``http``, ``POST /webhooks/yay``) does the
gateway's observable work, no less: for the same signed deliveries, the same answers (status,
body, correlation id) and the same messages on ``yay-call-events`` (key, headers, envelope).
Generated values aside (the envelope's id and the clock's times), a baseline producing less,
or something else, fails it.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest

from bench.baseline import create_http_app
from tests.fixtures.infra import CreateLaneTopics
from tests.fixtures.kafka import ReadRecord, read_topic
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
ServeApi = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]
SECRET = "equal-work-yay-secret"
# Written by each program's clock or generator: compared for presence, not value.
GENERATED = {"id", "occurred_at"}
GENERATED_PAYLOAD = {"receivedAt"}


def deliveries() -> list[tuple[bytes, dict[str, str]]]:
    """Three events of one call (one with an unknown extra field), and one signed with a
    ``sha256=`` prefix and no agent (keyed by the call id)."""
    signed_at = str(int(time.time()) - 5)
    events: list[dict[str, Any]] = [
        {
            "event": kind,
            "callId": "call-1",
            "occurredAt": "2026-12-06T10:12:00Z",
            "agentEmail": "Ada@Example.com",
            "from": "+442071234567",
            "to": "+14155550100",
            "direction": "outbound",
            "durationSeconds": 42,
            "talkSeconds": 38,
            "recordingUrl": None,
            "metadata": {},
        }
        for kind in ("call.started", "call.answered", "call.ended")
    ]
    events[1]["customField"] = {"kept": True}
    events.append({"event": "call.failed", "callId": "call-2", "occurredAt": "2026-12-06T10:13Z"})
    out = []
    for number, event in enumerate(events):
        body = json.dumps(event).encode()
        digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
        out.append(
            (
                body,
                {
                    "content-type": "application/json",
                    "x-yay-signature": ("sha256=" if number == 3 else "") + digest,
                    "x-yay-timestamp": signed_at,
                    "x-yay-event-id": f"evt-{number}",
                    "x-correlation-id": f"corr-{number}",
                },
            )
        )
    return out


def comparable(record: ReadRecord) -> dict[str, Any]:
    envelope = record.json()
    assert envelope.keys() >= GENERATED
    assert envelope["payload"].keys() >= GENERATED_PAYLOAD
    headers = dict(record.headers)
    assert headers.pop("message-id").decode() == envelope["id"]
    return {
        "key": record.key,
        "headers": headers,
        "envelope": {k: v for k, v in envelope.items() if k not in GENERATED}
        | {"payload": {k: v for k, v in envelope["payload"].items() if k not in GENERATED_PAYLOAD}},
    }


async def post_all(
    client: httpx.AsyncClient, signed: list[tuple[bytes, dict[str, str]]]
) -> list[tuple[int, Any, str | None]]:
    answers = []
    for body, headers in signed:
        response = await client.post("/webhooks/yay", content=body, headers=headers)
        correlation = response.headers.get("x-correlation-id")
        answers.append((response.status_code, response.json(), correlation))
    return answers


async def test_the_webhook_baseline_produces_what_the_gateway_produces(
    serve_api: ServeApi,
    api_settings_factory: Callable[..., Settings],
    create_lane_topics: CreateLaneTopics,
    topic_prefix: str,
    migrated_database_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Signed once for both: each signing reads the clock, and the signature's timestamp is in
    # the message (two signings a second apart made different messages).
    signed = deliveries()
    platform_prefix = await create_lane_topics(f"{topic_prefix}p-")
    baseline_prefix = await create_lane_topics(f"{topic_prefix}b-")
    platform_settings = api_settings_factory(
        KAFKA_TOPIC_PREFIX=platform_prefix, YAY_WEBHOOK_SECRET=SECRET
    )
    async with serve_api(platform_settings) as gateway:
        platform_answers = await post_all(gateway, signed)

    baseline_settings = api_settings_factory(KAFKA_TOPIC_PREFIX=baseline_prefix)
    for name, value in {
        "YAY_WEBHOOK_SECRET": SECRET,
        "SALES_NAV_WEBHOOK_SECRET": "unused",
        "JWT_SECRET": "equal-work-jwt-secret-0123456789abcdef0123",
        "KAFKA_BROKER_URL": baseline_settings.KAFKA_BROKER_URL,
        "KAFKA_TOPIC_PREFIX": baseline_prefix,
        "KAFKA_IDEMPOTENT_PRODUCER": "0",
        "DATABASE_URL": migrated_database_url,
    }.items():
        monkeypatch.setenv(name, value)
    app = create_http_app()
    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://baseline.test") as baseline,
    ):
        baseline_answers = await post_all(baseline, signed)

    assert [status for status, _, _ in platform_answers] == [202] * 4
    assert baseline_answers == platform_answers

    produced = {}
    for name, settings in (("platform", platform_settings), ("baseline", baseline_settings)):
        records = await read_topic(settings, "yay-call-events", min_count=4, settle=0.3)
        produced[name] = sorted(
            (comparable(record) for record in records), key=lambda r: json.dumps(r, default=str)
        )
    assert len(produced["platform"]) == 4
    assert produced["baseline"] == produced["platform"]
