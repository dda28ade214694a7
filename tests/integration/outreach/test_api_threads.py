"""GET /api/v1/outreach/threads and /threads/{threadId}: the read side of outreach, one cursor
style (limit, cursor, nextCursor)."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import OutreachThread
from sourcing.common.models.enums import Channel, DeliveryStatus, MessagePurpose
from sourcing.common.statemachines import OutreachThreadStatus
from tests.factories import (
    create_expert,
    create_outreach_message,
    create_outreach_thread,
    create_project,
)

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]

THREADS = "/api/v1/outreach/threads"
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


@dataclass
class Threads:
    project_a: uuid.UUID
    project_b: uuid.UUID
    expert_x: uuid.UUID
    expert_y: uuid.UUID
    # Oldest first, by (created_at, id).
    ordered: list[OutreachThread]


async def _threads(session: AsyncSession) -> Threads:
    """Five threads over two projects, two experts, four channels and three statuses, inserted
    out of time order; two share a created_at so the id breaks the tie."""
    project_a, project_b = await create_project(session), await create_project(session)
    expert_x, expert_y = await create_expert(session), await create_expert(session)
    specs = [
        (project_b, expert_y, Channel.WHATSAPP, OutreachThreadStatus.OPEN, 4),
        (project_a, expert_x, Channel.EMAIL, OutreachThreadStatus.OPEN, 1),
        (project_b, expert_x, Channel.LINKEDIN, OutreachThreadStatus.ARCHIVED, 3),
        (project_a, expert_y, Channel.EMAIL, OutreachThreadStatus.OPEN, 2),
        (project_a, expert_x, Channel.SMS, OutreachThreadStatus.CLOSED, 2),
    ]
    created = [
        await create_outreach_thread(
            session,
            project=project,
            expert=expert,
            channel=channel.value,
            status=status.value,
            created_at=T0 + timedelta(minutes=minutes),
        )
        for project, expert, channel, status, minutes in specs
    ]
    return Threads(
        project_a=project_a.id,
        project_b=project_b.id,
        expert_x=expert_x.id,
        expert_y=expert_y.id,
        ordered=sorted(created, key=lambda thread: (thread.created_at, thread.id)),
    )


async def _all_pages(
    api: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.get(
            THREADS, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        assert page.status_code == 200, page.text
        assert len(page.json()["items"]) <= params.get("limit", 50)
        items.extend(page.json()["items"])
        cursor = page.json()["nextCursor"]
        if cursor is None:
            return items


def _ids(threads: list[OutreachThread]) -> list[str]:
    return [str(thread.id) for thread in threads]


async def test_pages_of_two_return_every_thread_once_oldest_first(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    threads = await _threads(session)
    headers = auth_headers("ops")

    listed = await _all_pages(api, headers, limit=2)

    assert [item["id"] for item in listed] == _ids(threads.ordered)
    first = listed[0]
    assert first["projectId"] == str(threads.project_a)
    assert first["expertId"] == str(threads.expert_x)
    assert first["channel"] == "EMAIL" and first["status"] == "OPEN"
    assert first["createdAt"].startswith("2026-12-01T09:01:00")
    assert "messages" not in first


async def test_each_filter_returns_only_its_threads(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    threads = await _threads(session)
    headers = auth_headers("admin")

    def matching(**wanted: Any) -> list[str]:
        return _ids(
            [t for t in threads.ordered if all(getattr(t, k) == v for k, v in wanted.items())]
        )

    async def listed(**params: Any) -> list[str]:
        return [item["id"] for item in await _all_pages(api, headers, limit=2, **params)]

    assert await listed(expertId=threads.expert_x) == matching(expert_id=threads.expert_x)
    assert len(await listed(expertId=threads.expert_x)) == 3
    assert await listed(projectId=threads.project_b) == matching(project_id=threads.project_b)
    assert await listed(channel="EMAIL") == matching(channel="email")
    # Any spelling POST /outreach/send accepts.
    assert await listed(channel="text") == matching(channel="sms")
    assert await listed(status="ARCHIVED") == matching(status="ARCHIVED")
    assert await listed(expertId=threads.expert_y, projectId=threads.project_a) == matching(
        expert_id=threads.expert_y, project_id=threads.project_a
    )
    assert await listed(expertId=threads.expert_x, status="OPEN", channel="EMAIL") == matching(
        expert_id=threads.expert_x, status="OPEN", channel="email"
    )
    assert await listed(expertId=uuid.uuid4()) == []


async def test_thread_detail_carries_its_messages_oldest_first(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    thread = await create_outreach_thread(
        session, recipient="dana@example.com", external_thread_id="ext-1"
    )
    other = await create_outreach_thread(session)
    await create_outreach_message(session, thread=other)
    reminder = await create_outreach_message(
        session,
        thread=thread,
        purpose=MessagePurpose.SCREENING_REMINDER.value,
        body="A reminder",
        delivery_status=DeliveryStatus.FAILED.value,
        attempts=3,
        error="ProviderError: mailbox full",
        failed_at=T0 + timedelta(hours=2),
        created_at=T0 + timedelta(hours=2),
    )
    outreach = await create_outreach_message(
        session,
        thread=thread,
        body="Hi Dana",
        delivery_status=DeliveryStatus.DELIVERED.value,
        provider="sendgrid",
        provider_message_id="sg-1",
        attempts=1,
        correlation_id="corr-1",
        sent_at=T0 + timedelta(seconds=2),
        delivered_at=T0 + timedelta(seconds=40),
        created_at=T0,
    )
    screening = await create_outreach_message(
        session,
        thread=thread,
        purpose=MessagePurpose.SCREENING.value,
        body="Question 1?",
        created_at=T0 + timedelta(hours=1),
    )

    response = await api.get(f"{THREADS}/{thread.id}", headers=auth_headers("ops"))

    assert response.status_code == 200, response.text
    detail = response.json()
    assert detail["id"] == str(thread.id)
    assert detail["channel"] == "EMAIL" and detail["status"] == "OPEN"
    assert detail["recipient"] == "dana@example.com"
    assert detail["externalThreadId"] == "ext-1"
    messages = detail["messages"]
    assert [m["id"] for m in messages] == [str(outreach.id), str(screening.id), str(reminder.id)]
    assert [m["purpose"] for m in messages] == ["OUTREACH", "SCREENING", "SCREENING_REMINDER"]
    assert [m["deliveryStatus"] for m in messages] == ["DELIVERED", "QUEUED", "FAILED"]
    sent = messages[0]
    assert sent["direction"] == "OUTBOUND"
    assert sent["body"] == "Hi Dana" and sent["recipient"] == "dana@example.com"
    assert (sent["provider"], sent["providerMessageId"]) == ("sendgrid", "sg-1")
    assert sent["correlationId"] == "corr-1" and sent["cooldownOverridden"] is False
    assert sent["sentAt"].startswith("2026-12-01T09:00:02")
    assert sent["deliveredAt"].startswith("2026-12-01T09:00:40")
    assert sent["error"] is None and sent["failedAt"] is None
    failed = messages[2]
    assert failed["error"] == "ProviderError: mailbox full" and failed["attempts"] == 3
    assert failed["failedAt"].startswith("2026-12-01T11:00:00")


async def test_unknown_thread_is_404_in_the_envelope(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    missing = uuid.uuid4()
    response = await api.get(f"{THREADS}/{missing}", headers=auth_headers("admin"))
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert error["details"] == {"threadId": str(missing)}


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"limit": "many"},
        {"cursor": "nope"},
        {"status": "DONE"},
        {"channel": "pigeon"},
        {"expertId": "not-a-uuid"},
        {"projectId": "42"},
        {"expert": str(uuid.uuid4())},
    ],
)
async def test_bad_thread_list_parameters_are_400(
    api: httpx.AsyncClient, auth_headers: Headers, params: dict[str, Any]
) -> None:
    response = await api.get(THREADS, params=params, headers=auth_headers("ops"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_a_malformed_thread_id_is_400(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    response = await api.get(f"{THREADS}/not-a-uuid", headers=auth_headers("ops"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_callers_may_not_read_threads(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    thread = await create_outreach_thread(session)
    for url in (THREADS, f"{THREADS}/{thread.id}"):
        assert (await api.get(url)).status_code == 401
        forbidden = await api.get(url, headers=auth_headers("caller"))
        assert forbidden.status_code == 403
        assert forbidden.json()["error"]["code"] == "forbidden"
