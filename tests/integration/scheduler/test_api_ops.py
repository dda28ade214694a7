"""The operators' endpoints: dead-letter list and replay, documentation generation."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    DeadLetterJob,
    DeadLetterReplay,
    DocumentationJob,
    OutboxMessage,
    SystemEvent,
)
from tests.factories import create_dead_letter_job
from tests.factories_ops import failed_envelope

pytestmark = pytest.mark.integration

Headers = Callable[..., dict[str, str]]
NOW = datetime.now(UTC).replace(microsecond=0)


async def seed(session: AsyncSession) -> dict[str, DeadLetterJob]:
    """Five dead letters on two lanes over three days, one archived."""
    rows = {
        "perf-today": await create_dead_letter_job(
            session, origin_topic="performance", failed_at=NOW - timedelta(hours=1)
        ),
        "perf-yesterday": await create_dead_letter_job(
            session, origin_topic="performance", failed_at=NOW - timedelta(days=1)
        ),
        "enrich-yesterday": await create_dead_letter_job(
            session, origin_topic="enrichment", failed_at=NOW - timedelta(days=1, hours=1)
        ),
        "enrich-old": await create_dead_letter_job(
            session, origin_topic="enrichment", failed_at=NOW - timedelta(days=3)
        ),
        "archived": await create_dead_letter_job(
            session,
            origin_topic="performance",
            failed_at=NOW - timedelta(days=40),
            archived_at=NOW - timedelta(days=10),
        ),
    }
    return rows


def ids(response: httpx.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [item["id"] for item in response.json()["items"]]


async def test_list_is_newest_first_and_filters_by_topic_dates_and_archival(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    rows = await seed(session)
    headers = auth_headers("ops")
    url = "/api/v1/dead-letters"
    live = ["perf-today", "perf-yesterday", "enrich-yesterday", "enrich-old"]
    response = await api.get(url, headers=headers)
    assert ids(response) == [str(rows[name].id) for name in live]
    body = response.json()
    assert body["total"] == 4 and body["limit"] == 50 and body["nextCursor"] is None
    item = body["items"][0]
    assert item["originTopic"] == "performance"
    assert item["payload"] == rows["perf-today"].payload
    assert item["stack"].startswith("Traceback") and item["attempts"] == 5
    assert {"jobId", "errorType", "correlationId", "failedAt", "archivedAt"} <= set(item)

    by_topic = await api.get(url, params={"topic": "enrichment"}, headers=headers)
    assert ids(by_topic) == [str(rows["enrich-yesterday"].id), str(rows["enrich-old"].id)]
    yesterday = (NOW - timedelta(days=1)).date().isoformat()
    in_day = await api.get(url, params={"from": yesterday, "to": yesterday}, headers=headers)
    expected_day = [
        str(rows[name].id) for name in live if rows[name].failed_at.date().isoformat() == yesterday
    ]
    assert ids(in_day) == expected_day
    since = (NOW - timedelta(hours=2)).isoformat()
    assert ids(await api.get(url, params={"from": since}, headers=headers)) == [
        str(rows["perf-today"].id)
    ]
    everything = await api.get(url, params={"includeArchived": "true"}, headers=headers)
    assert ids(everything)[-1] == str(rows["archived"].id) and len(ids(everything)) == 5


async def test_paging_by_offset_and_by_cursor(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    rows = await seed(session)
    headers = auth_headers("admin")
    url = "/api/v1/dead-letters"
    order = [str(rows[n].id) for n in ("perf-today", "perf-yesterday", "enrich-yesterday")]
    first = await api.get(url, params={"limit": 2}, headers=headers)
    assert ids(first) == order[:2]
    cursor = first.json()["nextCursor"]
    assert cursor
    second = await api.get(url, params={"limit": 2, "cursor": cursor}, headers=headers)
    assert ids(second)[0] == order[2] and len(ids(second)) == 2
    by_offset = await api.get(url, params={"limit": 2, "offset": 2}, headers=headers)
    assert ids(by_offset) == ids(second)


@pytest.mark.parametrize(
    "params",
    [
        {"limit": 0},
        {"limit": 101},
        {"offset": -1},
        {"from": "yesterday"},
        {"to": "2025-13-01"},
        {"cursor": "not-a-cursor"},
        {"cursor": base64.urlsafe_b64encode(b"x|y").decode(), "offset": 0},
        {"cursor": "abc", "offset": 3},
        {"includeArchived": "maybe"},
    ],
)
async def test_bad_list_parameters_are_400(
    api: httpx.AsyncClient, auth_headers: Headers, params: dict[str, str | int]
) -> None:
    response = await api.get("/api/v1/dead-letters", params=params, headers=auth_headers("ops"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_replay_stages_the_original_envelope_in_the_outbox(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    original = failed_envelope(correlation_id="corr-original")
    row = await create_dead_letter_job(
        session,
        origin_topic="performance",  # the gateway's settings have no topic prefix
        message_key="caller-key",
        job_id=original.id,
        payload=original.model_dump(mode="json"),
    )
    response = await api.post(
        f"/api/v1/dead-letters/{row.id}/replay",
        json={"reason": "fixed the store"},
        headers={**auth_headers("admin", "ada"), "x-correlation-id": "corr-op"},
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] is True and body["envelopeId"] == original.id
    assert body["deadLetterId"] == str(row.id) and body["topic"] == "performance"
    [staged] = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.envelope["id"].astext == original.id)
        )
    ).all()
    assert staged.topic == "performance" and staged.key == "caller-key"
    assert staged.envelope["attempt"] == original.attempt + 1
    assert staged.envelope["payload"] == original.payload
    assert staged.envelope["correlation_id"] == "corr-original"
    replay = await session.scalar(
        select(DeadLetterReplay).where(DeadLetterReplay.id == uuid.UUID(body["replayId"]))
    )
    assert replay is not None
    assert (replay.requested_by, replay.reason, replay.correlation_id, replay.status) == (
        "ada",
        "fixed the store",
        "corr-op",
        "REQUESTED",
    )
    event = await session.scalar(select(SystemEvent).where(SystemEvent.entity_id == row.id))
    assert event is not None and event.type == "dead_letter.replayed" and event.actor == "ada"
    await session.refresh(row)
    assert row.replay_count == 1 and row.last_replayed_at is not None


async def test_replay_refusals(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    admin = auth_headers("admin")
    missing = await api.post(f"/api/v1/dead-letters/{uuid.uuid4()}/replay", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"
    raw = await create_dead_letter_job(
        session, payload=None, raw_value=base64.b64encode(b"\xff not json").decode()
    )
    undecodable = await api.post(f"/api/v1/dead-letters/{raw.id}/replay", headers=admin)
    assert undecodable.status_code == 409, undecodable.text
    error = undecodable.json()["error"]
    assert error["code"] == "conflict" and "not a decodable envelope" in error["message"]
    assert error["details"]["reason"] == "undecodable_original"
    foreign = await create_dead_letter_job(
        session,
        origin_topic="staging.performance",
        payload=failed_envelope().model_dump(mode="json"),
    )
    refused = await api.post(f"/api/v1/dead-letters/{foreign.id}/replay", headers=admin)
    assert refused.status_code == 409 and refused.json()["error"]["details"]["reason"] == (
        "foreign_topic"
    )
    bad_body = await api.post(
        f"/api/v1/dead-letters/{raw.id}/replay", json={"unknown": 1}, headers=admin
    )
    assert bad_body.status_code == 400
    for role in ("ops", "caller"):
        forbidden = await api.post(
            f"/api/v1/dead-letters/{raw.id}/replay", headers=auth_headers(role)
        )
        assert forbidden.status_code == 403
    assert (
        await api.get("/api/v1/dead-letters", headers=auth_headers("caller"))
    ).status_code == 403
    assert (await api.get("/api/v1/dead-letters")).status_code == 401


async def test_documentation_generate_queues_a_job_and_its_message(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    response = await api.post(
        "/api/v1/documentation/generate", headers={**auth_headers("ops", "olga")}
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] is True
    job = await session.get(DocumentationJob, uuid.UUID(body["jobId"]))
    assert job is not None and (job.status, job.requested_by) == ("QUEUED", "olga")
    assert job.output_dir == "docs/generated"
    [message] = (
        await session.scalars(select(OutboxMessage).where(OutboxMessage.topic == "documentation"))
    ).all()
    assert message.envelope["type"] == "documentation.generate.v1"
    assert message.envelope["payload"] == {"jobId": body["jobId"]}
    assert message.key == body["jobId"]
    caller = await api.post("/api/v1/documentation/generate", headers=auth_headers("caller"))
    assert caller.status_code == 403


async def test_an_entitys_audit_history_in_pages(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    task_id, other_id = uuid.uuid4(), uuid.uuid4()
    rows = [
        SystemEvent(
            type=event_type,
            entity_type="call_task",
            entity_id=entity_id,
            actor="ops:ops-1",
            correlation_id=f"corr-{n}",
            data={"n": n},
            created_at=NOW - timedelta(minutes=10 - n),
        )
        for n, (event_type, entity_id) in enumerate(
            [
                ("call_task.assigned", task_id),
                ("call_task.requeued", task_id),
                ("call_task.assigned", other_id),
                ("call_task.completed", task_id),
            ]
        )
    ]
    session.add_all(rows)
    await session.flush()
    headers = auth_headers("ops")

    async def history(**params: str | int) -> list[dict[str, object]]:
        found: list[dict[str, object]] = []
        cursor: str | None = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            response = await api.get("/api/v1/system-events", params=query, headers=headers)
            assert response.status_code == 200, response.text
            found.extend(response.json()["items"])
            cursor = response.json()["nextCursor"]
            if cursor is None:
                return found

    timeline = await history(entityType="call_task", entityId=str(task_id), limit=2)
    assert [event["type"] for event in timeline] == [
        "call_task.assigned",
        "call_task.requeued",
        "call_task.completed",
    ]
    assert timeline[1] | {"id": None, "createdAt": None} == {
        "id": None,
        "type": "call_task.requeued",
        "entityType": "call_task",
        "entityId": str(task_id),
        "actor": "ops:ops-1",
        "correlationId": "corr-1",
        "data": {"n": 1},
        "createdAt": None,
    }
    assert [e["entityId"] for e in await history(type="call_task.assigned")] == [
        str(task_id),
        str(other_id),
    ]
    assert [e["data"] for e in await history(correlationId="corr-2")] == [{"n": 2}]
    for bad in ({"entityId": "x"}, {"limit": 0}, {"cursor": "nope"}, {"entity": "call_task"}):
        response = await api.get("/api/v1/system-events", params=bad, headers=headers)
        assert response.status_code == 400, response.text
        assert response.json()["error"]["code"] == "invalid_payload"
