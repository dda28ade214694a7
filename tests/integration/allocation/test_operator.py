"""Operator endpoints: list call tasks with filters and a stable order; requeue with a reason."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import CallTask, SystemEvent
from tests.factories import create_call_task, create_caller, create_project
from tests.factories_calls import NOW, create_pool_task
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

LIST = "/api/v1/call-tasks/operator/tasks"
Headers = Callable[..., dict[str, str]]


def requeue_url(task_id: object) -> str:
    return f"{LIST}/{task_id}/requeue"


async def test_list_filters_orders_and_pages(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers
) -> None:
    first, second = await create_project(session), await create_project(session)
    tasks = []
    for index, (project, status) in enumerate(
        [
            (first, "PENDING"),
            (first, "ASSIGNED"),
            (second, "PENDING"),
            (first, "PENDING"),
            (second, "COMPLETED"),
            (first, "PENDING"),
        ]
    ):
        task = await create_call_task(session, project=project, status=status)
        task.created_at = NOW - timedelta(minutes=60 - index)
        tasks.append(task)
    await session.flush()
    headers = auth_headers("ops")

    everything = (await gateway.client.get(LIST, headers=headers)).json()
    assert [t["id"] for t in everything["items"]] == [str(t.id) for t in tasks]
    assert everything["nextCursor"] is None

    pending_first = await gateway.client.get(
        LIST, params={"status": "PENDING", "projectId": str(first.id)}, headers=headers
    )
    assert [t["id"] for t in pending_first.json()["items"]] == [
        str(tasks[0].id),
        str(tasks[3].id),
        str(tasks[5].id),
    ]
    assigned = await gateway.client.get(LIST, params={"status": "ASSIGNED"}, headers=headers)
    assert [t["id"] for t in assigned.json()["items"]] == [str(tasks[1].id)]
    assert assigned.json()["items"][0]["projectName"] == first.name

    pages: list[str] = []
    cursor = None
    while True:
        params = {"limit": 4, **({"cursor": cursor} if cursor else {})}
        page = (await gateway.client.get(LIST, params=params, headers=headers)).json()
        pages.extend(t["id"] for t in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == [str(t.id) for t in tasks]


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"status": "LOST"}, {"projectId": "x"}, {"cursor": "nope"}],
)
async def test_bad_list_parameters_are_400(
    gateway: Gateway, auth_headers: Headers, params: dict[str, str | int]
) -> None:
    response = await gateway.client.get(LIST, params=params, headers=auth_headers("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"


@pytest.mark.parametrize("status", ["ASSIGNED", "DIALING", "EXPIRED"])
async def test_requeue_puts_a_task_back_in_the_pool_with_an_audit_record(
    gateway: Gateway,
    session: AsyncSession,
    auth_headers: Headers,
    caller_headers: Headers,
    status: str,
) -> None:
    holder = await create_caller(session)
    task = await create_pool_task(
        session,
        status=status,
        caller_id=holder.id if status != "EXPIRED" else None,
        expires_at=NOW + timedelta(minutes=5),
    )

    response = await gateway.client.post(
        requeue_url(task.id),
        json={"reason": "Caller unresponsive, reassigning"},
        headers=auth_headers("ops", "ops-7"),
    )

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "PENDING"
    assert body["callerId"] is None and body["expiresAt"] is None
    assert body["requeueCount"] == 1
    event = await session.scalar(
        select(SystemEvent).where(
            SystemEvent.type == "call_task.requeued", SystemEvent.entity_id == task.id
        )
    )
    assert event is not None
    assert event.actor == "ops:ops-7"
    assert event.data["reason"] == "Caller unresponsive, reassigning"
    assert event.data["from"] == status
    # Back in the pool: the next caller gets it.
    other = await create_caller(session)
    current = await gateway.client.get("/api/v1/call-tasks/current", headers=caller_headers(other))
    assert current.json()["task"]["id"] == str(task.id)


@pytest.mark.parametrize("status", ["PENDING", "COMPLETED", "CANCELLED", "RESTRICTED"])
async def test_requeue_from_other_statuses_is_an_invalid_transition(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers, status: str
) -> None:
    task = await create_call_task(session, status=status, caller=await create_caller(session))
    response = await gateway.client.post(
        requeue_url(task.id), json={"reason": "stuck"}, headers=auth_headers("admin")
    )
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "invalid_transition"
    refreshed = await session.get(CallTask, task.id, populate_existing=True)
    assert refreshed is not None and refreshed.status == status


@pytest.mark.parametrize("body", [{}, {"reason": ""}, {"reason": "   "}, {"reason": 3}])
async def test_requeue_needs_a_reason(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers, body: dict[str, object]
) -> None:
    task = await create_call_task(session, status="ASSIGNED")
    response = await gateway.client.post(
        requeue_url(task.id), json=body, headers=auth_headers("ops")
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_requeue_answers_bad_input_as_fastapi_would(
    gateway: Gateway, auth_headers: Headers
) -> None:
    """The lean route parses its path, body and query itself, with the same 400 envelope."""
    headers = auth_headers("ops")
    bad_id = await gateway.client.post(
        "/api/v1/call-tasks/operator/tasks/not-a-uuid/requeue",
        json={"reason": "stuck"},
        headers=headers,
    )
    assert bad_id.status_code == 400
    [error] = bad_id.json()["error"]["details"]["errors"]
    assert (error["field"], error["in"]) == ("task_id", "path")
    not_json = await gateway.client.post(
        requeue_url(uuid.uuid4()), content=b"reason=stuck", headers=headers
    )
    assert not_json.status_code == 400
    assert not_json.json()["error"]["details"]["errors"][0]["in"] == "body"
    unknown = await gateway.client.post(
        f"{requeue_url(uuid.uuid4())}?force=1", json={"reason": "stuck"}, headers=headers
    )
    assert unknown.status_code == 400
    assert unknown.json()["error"]["details"]["errors"][0]["field"] == "force"


async def test_requeue_of_an_unknown_task_is_404(gateway: Gateway, auth_headers: Headers) -> None:
    response = await gateway.client.post(
        requeue_url(uuid.uuid4()), json={"reason": "stuck"}, headers=auth_headers("ops")
    )
    assert response.status_code == 404
