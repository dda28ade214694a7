"""Webhooks (§4.10): verification, validation, publication with acks=all, 503 on broker outage.

Messages are read back from the real broker: a 202 means the event is on its lane; a refused
delivery leaves the lane empty.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_project
from tests.fixtures.kafka import read_topic
from tests.fixtures.settings import Settings

pytestmark = pytest.mark.integration
ServeApi = Callable[[Settings], AbstractAsyncContextManager[httpx.AsyncClient]]


@pytest.fixture
def lane_settings(api_settings_factory: Callable[..., Settings], lane_topics: str) -> Settings:
    return api_settings_factory(KAFKA_TOPIC_PREFIX=lane_topics)


@pytest.fixture
async def gateway(serve_api: ServeApi, lane_settings: Settings) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_api(lane_settings) as client:
        yield client


def yay_event(**changes: Any) -> dict[str, Any]:
    event = {
        "event": "call.ended",
        "callId": "yay-call-8812",
        "occurredAt": "2026-11-28T10:15:02Z",
        "agentEmail": "Caller@Example.com",
        "from": "+442071234567",
        "to": "+14155550100",
        "direction": "outbound",
        "durationSeconds": 42,
        "talkSeconds": 38,
        "recordingUrl": None,
        "metadata": {"taskId": str(uuid.uuid4())},
    }
    event.update(changes)
    return event


def signed(
    settings: Settings,
    body: bytes,
    *,
    event_id: str | None = None,
    timestamp: float | None = None,
    prefix: str = "",
    secret: str | None = None,
) -> dict[str, str]:
    """Yay's headers for ``body``, signed with ``secret`` (default: YAY_WEBHOOK_SECRET)."""
    assert settings.YAY_WEBHOOK_SECRET is not None
    key = (secret or settings.YAY_WEBHOOK_SECRET.get_secret_value()).encode()
    return {
        "content-type": "application/json",
        "x-yay-signature": prefix + hmac.new(key, body, hashlib.sha256).hexdigest(),
        "x-yay-timestamp": str(int(timestamp if timestamp is not None else time.time())),
        "x-yay-event-id": event_id or f"evt-{uuid.uuid4()}",
    }


async def test_verified_yay_event_is_on_its_lane_before_202(
    gateway: httpx.AsyncClient, lane_settings: Settings
) -> None:
    body = json.dumps(yay_event(customField={"kept": True})).encode()
    headers = signed(lane_settings, body, event_id="evt-1")
    response = await gateway.post("/webhooks/yay", content=body, headers=headers)
    assert response.status_code == 202, response.text
    assert response.json() == {"accepted": True, "eventId": "evt-1", "leads": None}

    records = await read_topic(lane_settings, "yay-call-events", min_count=1, settle=0.3)
    assert len(records) == 1
    assert records[0].key == b"caller@example.com"  # keyed by caller: one caller, one partition
    envelope = records[0].envelope()
    assert envelope.type == "yay.call-event.received.v1"
    assert envelope.payload["eventId"] == "evt-1"
    assert envelope.payload["eventType"] == "call.ended"
    assert envelope.payload["body"]["customField"] == {"kept": True}
    assert envelope.payload["body"]["from"] == "+442071234567"


async def test_signature_prefix_and_unknown_event_types_are_accepted(
    gateway: httpx.AsyncClient, lane_settings: Settings
) -> None:
    body = json.dumps(yay_event(event="call.transferred")).encode()
    response = await gateway.post(
        "/webhooks/yay", content=body, headers=signed(lane_settings, body, prefix="sha256=")
    )
    assert response.status_code == 202
    records = await read_topic(lane_settings, "yay-call-events", min_count=1)
    assert records[0].envelope().payload["eventType"] == "call.transferred"


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        (lambda h, b: h | {"x-yay-signature": "0" * 64}, 401),
        (lambda h, b: h | {"x-yay-signature": h["x-yay-signature"][:40]}, 401),
        (lambda h, b: {k: v for k, v in h.items() if k != "x-yay-signature"}, 401),
        (lambda h, b: h | {"x-yay-signature": h["x-yay-signature"].upper() + "00"}, 401),
        (lambda h, b: h | {"x-yay-timestamp": str(int(time.time()) - 301)}, 400),
        (lambda h, b: h | {"x-yay-timestamp": str(int(time.time()) + 120)}, 400),
        (lambda h, b: h | {"x-yay-timestamp": "yesterday"}, 400),
        (lambda h, b: {k: v for k, v in h.items() if k != "x-yay-timestamp"}, 400),
        (lambda h, b: {k: v for k, v in h.items() if k != "x-yay-event-id"}, 400),
    ],
    ids=[
        "wrong-signature",
        "truncated-signature",
        "missing-signature",
        "signature-of-other-body",
        "stale-timestamp",
        "future-timestamp",
        "garbage-timestamp",
        "missing-timestamp",
        "missing-event-id",
    ],
)
async def test_rejected_yay_deliveries_store_nothing(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    tamper: Callable[[dict[str, str], bytes], dict[str, str]],
    status: int,
) -> None:
    body = json.dumps(yay_event()).encode()
    response = await gateway.post(
        "/webhooks/yay", content=body, headers=tamper(signed(lane_settings, body), body)
    )
    assert response.status_code == status, response.text
    assert response.json()["error"]["code"] in ("unauthorized", "invalid_payload")
    assert await read_topic(lane_settings, "yay-call-events", settle=0.3) == []


@pytest.mark.parametrize(
    "event",
    [
        {"event": "call.ended"},
        yay_event(occurredAt="not-a-date"),
        yay_event(agentEmail="not-an-email"),
        yay_event(durationSeconds=-1),
        [1, 2, 3],
    ],
    ids=["missing-fields", "bad-date", "bad-email", "negative-duration", "not-an-object"],
)
async def test_signed_but_invalid_events_are_400(
    gateway: httpx.AsyncClient, lane_settings: Settings, event: Any
) -> None:
    body = json.dumps(event).encode()
    response = await gateway.post(
        "/webhooks/yay", content=body, headers=signed(lane_settings, body)
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"]


async def test_yay_event_is_503_when_the_broker_is_down(
    serve_api: ServeApi, api_settings_factory: Callable[..., Settings]
) -> None:
    settings = api_settings_factory(KAFKA_BROKER_URL="127.0.0.1:1", BROKER_SEND_TIMEOUT_SECONDS=1.0)
    body = json.dumps(yay_event()).encode()
    async with serve_api(settings) as client:
        response = await client.post("/webhooks/yay", content=body, headers=signed(settings, body))
    assert response.status_code == 503
    assert response.json()["error"]["code"] == "service_unavailable"
    assert response.headers["retry-after"]


def sales_nav_body(project_id: uuid.UUID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "projectId": str(project_id),
        "searchUrl": "https://linkedin.com/sales/search/1",
        "leads": [
            {
                "name": "Jane Doe",
                "company": "Stripe",
                "title": "VP Payments",
                "linkedinUrl": "https://www.linkedin.com/in/janedoe",
                "companyDomain": "stripe.com",
                "countryIso": "US",
                "email": None,
                "phone": None,
                "seniority": "VP",
            }
        ],
    }
    body.update(changes)
    return body


def sales_nav_headers(settings: Settings) -> dict[str, str]:
    assert settings.SALES_NAV_WEBHOOK_SECRET is not None
    return {"x-sales-nav-secret": settings.SALES_NAV_WEBHOOK_SECRET.get_secret_value()}


async def test_sales_nav_delivery_is_published_with_extra_fields_kept(
    gateway: httpx.AsyncClient, lane_settings: Settings, session: AsyncSession
) -> None:
    project = await create_project(session)
    response = await gateway.post(
        "/webhooks/sales-nav",
        json=sales_nav_body(project.id, batchId="b-7"),
        headers=sales_nav_headers(lane_settings),
    )
    assert response.status_code == 202, response.text
    assert response.json()["leads"] == 1
    records = await read_topic(lane_settings, "sales-nav-ingestion", min_count=1)
    assert records[0].key == str(project.id).encode()
    payload = records[0].envelope().payload
    assert payload["searchUrl"] == "https://linkedin.com/sales/search/1"
    assert payload["leads"][0]["seniority"] == "VP"
    assert payload["leads"][0]["linkedinUrl"] == "https://www.linkedin.com/in/janedoe"


@pytest.mark.parametrize("secret", [None, "wrong", ""])
async def test_sales_nav_secret_is_checked_before_anything_else(
    gateway: httpx.AsyncClient, lane_settings: Settings, secret: str | None
) -> None:
    headers = {} if secret is None else {"x-sales-nav-secret": secret}
    response = await gateway.post("/webhooks/sales-nav", json={"garbage": True}, headers=headers)
    assert response.status_code == 401
    assert await read_topic(lane_settings, "sales-nav-ingestion", settle=0.2) == []


@pytest.mark.parametrize(
    ("lead", "field"),
    [
        ({"name": "", "company": "X", "email": "a@b.co"}, "leads.0.name"),
        ({"name": "A", "email": "a@b.co"}, "leads.0.company"),
        ({"name": "A", "company": "X"}, "leads.0"),
        (
            {"name": "A", "company": "X", "linkedinUrl": "https://evil.example/in/a"},
            "leads.0.linkedinUrl",
        ),
        ({"name": "A", "company": "X", "email": "nope"}, "leads.0.email"),
    ],
)
async def test_sales_nav_invalid_leads_name_the_field(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    session: AsyncSession,
    lead: dict[str, Any],
    field: str,
) -> None:
    project = await create_project(session)
    response = await gateway.post(
        "/webhooks/sales-nav",
        json=sales_nav_body(project.id, leads=[lead]),
        headers=sales_nav_headers(lane_settings),
    )
    assert response.status_code == 400
    fields = [e["field"] for e in response.json()["error"]["details"]["errors"]]
    assert any(f.startswith(field) for f in fields), fields


async def test_sales_nav_unknown_project_is_404(
    gateway: httpx.AsyncClient, lane_settings: Settings
) -> None:
    response = await gateway.post(
        "/webhooks/sales-nav",
        json=sales_nav_body(uuid.uuid4()),
        headers=sales_nav_headers(lane_settings),
    )
    assert response.status_code == 404
    assert await read_topic(lane_settings, "sales-nav-ingestion", settle=0.2) == []


def signup_signed(
    settings: Settings,
    body: bytes,
    *,
    event_id: str | None = None,
    timestamp: float | None = None,
    prefix: str = "",
    secret: str | None = None,
) -> dict[str, str]:
    if secret is None:
        assert settings.SIGNUP_WEBHOOK_SECRET is not None
        secret = settings.SIGNUP_WEBHOOK_SECRET.get_secret_value()
    key = secret.encode()
    return {
        "content-type": "application/json",
        "x-signup-signature": prefix + hmac.new(key, body, hashlib.sha256).hexdigest(),
        "x-signup-timestamp": str(int(timestamp if timestamp is not None else time.time())),
        "x-signup-event-id": event_id or f"signup-{uuid.uuid4()}",
    }


async def test_signup_is_on_the_allocation_lane_before_202_and_replays_keep_one_id(
    gateway: httpx.AsyncClient, lane_settings: Settings
) -> None:
    expert_id = uuid.uuid4()
    body = json.dumps(
        {
            "event": "expert.signed_up",
            "expertId": str(expert_id),
            "signedUpAt": "2026-11-28T10:30:00Z",
        }
    ).encode()
    for prefix in ("", "sha256="):
        headers = signup_signed(lane_settings, body, event_id="signup-1", prefix=prefix)
        response = await gateway.post("/webhooks/signup", content=body, headers=headers)
        assert response.status_code == 202, response.text
        assert response.json() == {"accepted": True, "eventId": "signup-1", "leads": None}

    records = await read_topic(lane_settings, "call-allocation", min_count=2, settle=0.3)
    assert len(records) == 2
    envelopes = [record.envelope() for record in records]
    assert {record.key for record in records} == {str(expert_id).encode()}
    # One envelope id per delivery id: the consumer's dedup drops the replay.
    assert envelopes[0].id == envelopes[1].id
    assert envelopes[0].type == "expert.signed-up.v1"
    assert envelopes[0].payload["expertId"] == str(expert_id)
    assert envelopes[0].payload["signedUpAt"].startswith("2026-11-28T10:30:00")


async def test_signup_by_email_defaults_the_time_to_now(
    gateway: httpx.AsyncClient, lane_settings: Settings
) -> None:
    body = json.dumps({"event": "expert.signed_up", "email": "Jane@Example.com"}).encode()
    response = await gateway.post(
        "/webhooks/signup", content=body, headers=signup_signed(lane_settings, body)
    )
    assert response.status_code == 202, response.text
    records = await read_topic(lane_settings, "call-allocation", min_count=1)
    assert records[0].key == b"jane@example.com"
    payload = records[0].envelope().payload
    assert payload["email"] == "jane@example.com" and payload["expertId"] is None
    assert payload["signedUpAt"] == payload["receivedAt"]


@pytest.mark.parametrize(
    ("tamper", "status"),
    [
        (lambda h: h | {"x-signup-signature": "0" * 64}, 401),
        (lambda h: {k: v for k, v in h.items() if k != "x-signup-signature"}, 401),
        (lambda h: h | {"x-yay-signature": h.pop("x-signup-signature")}, 401),
        (lambda h: h | {"x-signup-timestamp": str(int(time.time()) - 301)}, 400),
        (lambda h: h | {"x-signup-timestamp": str(int(time.time()) + 120)}, 400),
        (lambda h: {k: v for k, v in h.items() if k != "x-signup-event-id"}, 400),
    ],
    ids=[
        "wrong-signature",
        "missing-signature",
        "yay-header",
        "stale-timestamp",
        "future-timestamp",
        "missing-event-id",
    ],
)
async def test_rejected_signup_deliveries_publish_nothing(
    gateway: httpx.AsyncClient,
    lane_settings: Settings,
    tamper: Callable[[dict[str, str]], dict[str, str]],
    status: int,
) -> None:
    body = json.dumps({"event": "expert.signed_up", "expertId": str(uuid.uuid4())}).encode()
    response = await gateway.post(
        "/webhooks/signup", content=body, headers=tamper(signup_signed(lane_settings, body))
    )
    assert response.status_code == status, response.text
    assert await read_topic(lane_settings, "call-allocation", settle=0.3) == []


@pytest.mark.parametrize(
    "event",
    [
        {"event": "expert.signed_up"},
        {"event": "expert.signed_up", "expertId": None, "email": None},
        {"event": "expert.left", "expertId": str(uuid.uuid4())},
        {"event": "expert.signed_up", "expertId": "not-a-uuid"},
        {"event": "expert.signed_up", "email": "nope"},
        {"event": "expert.signed_up", "email": "a@b.co", "signedUpAt": "soon"},
    ],
    ids=["no-ids", "null-ids", "other-event", "bad-uuid", "bad-email", "bad-time"],
)
async def test_signed_but_invalid_signups_are_400(
    gateway: httpx.AsyncClient, lane_settings: Settings, event: dict[str, Any]
) -> None:
    body = json.dumps(event).encode()
    response = await gateway.post(
        "/webhooks/signup", content=body, headers=signup_signed(lane_settings, body)
    )
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"
    assert await read_topic(lane_settings, "call-allocation", settle=0.2) == []


async def test_signup_is_503_when_the_broker_is_down(
    serve_api: ServeApi, api_settings_factory: Callable[..., Settings]
) -> None:
    settings = api_settings_factory(KAFKA_BROKER_URL="127.0.0.1:1", BROKER_SEND_TIMEOUT_SECONDS=1.0)
    body = json.dumps({"event": "expert.signed_up", "email": "a@b.co"}).encode()
    async with serve_api(settings) as client:
        response = await client.post(
            "/webhooks/signup", content=body, headers=signup_signed(settings, body)
        )
    assert response.status_code == 503
    assert response.headers["retry-after"]


async def test_rotated_webhook_secrets_accept_current_and_previous_only(
    serve_api: ServeApi,
    api_settings_factory: Callable[..., Settings],
    lane_topics: str,
    session: AsyncSession,
) -> None:
    settings = api_settings_factory(
        KAFKA_TOPIC_PREFIX=lane_topics,
        YAY_WEBHOOK_SECRET="yay-new-secret-after-rotation",
        YAY_WEBHOOK_PREVIOUS_SECRET="yay-old-secret-before-rotation",
        SALES_NAV_WEBHOOK_SECRET="sales-nav-new-secret",
        SALES_NAV_WEBHOOK_PREVIOUS_SECRET="sales-nav-old-secret",
        SIGNUP_WEBHOOK_SECRET="signup-new-secret",
        SIGNUP_WEBHOOK_PREVIOUS_SECRET="signup-old-secret",
    )
    project = await create_project(session)
    body = json.dumps(yay_event()).encode()
    async with serve_api(settings) as client:

        async def yay(secret: str) -> int:
            headers = signed(settings, body, secret=secret)
            return (await client.post("/webhooks/yay", content=body, headers=headers)).status_code

        async def sales_nav(secret: str) -> int:
            response = await client.post(
                "/webhooks/sales-nav",
                json=sales_nav_body(project.id),
                headers={"x-sales-nav-secret": secret},
            )
            return response.status_code

        async def signup(secret: str) -> int:
            signup_body = json.dumps({"event": "expert.signed_up", "email": "a@b.co"}).encode()
            headers = signup_signed(settings, signup_body, secret=secret)
            response = await client.post("/webhooks/signup", content=signup_body, headers=headers)
            return response.status_code

        assert await yay("yay-new-secret-after-rotation") == 202
        assert await yay("yay-old-secret-before-rotation") == 202
        assert await yay("yay-secret-retired-long-ago") == 401
        assert await sales_nav("sales-nav-new-secret") == 202
        assert await sales_nav("sales-nav-old-secret") == 202
        assert await sales_nav("sales-nav-retired-secret") == 401
        assert await signup("signup-new-secret") == 202
        assert await signup("signup-old-secret") == 202
        assert await signup("signup-retired-secret") == 401
    assert len(await read_topic(settings, "yay-call-events", min_count=2, settle=0.2)) == 2
    assert len(await read_topic(settings, "sales-nav-ingestion", min_count=2, settle=0.2)) == 2
    assert len(await read_topic(settings, "call-allocation", min_count=2, settle=0.2)) == 2
