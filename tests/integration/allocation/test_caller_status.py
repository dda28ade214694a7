"""POST /api/v1/callers/{callerId}/status: review, pause/resume, suspend, (re|de)activate."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Caller, CallerStatusHistory, CallTask, SystemEvent
from tests.factories import create_call_task, create_caller
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

Headers = Callable[..., dict[str, str]]


def url(caller_id: object) -> str:
    return f"/api/v1/callers/{caller_id}/status"


async def _post(
    gateway: Gateway, headers: dict[str, str], caller: Caller, action: str, reason: str = "why"
) -> Any:
    return await gateway.client.post(
        url(caller.id), json={"action": action, "reason": reason}, headers=headers
    )


@pytest.mark.parametrize(
    ("status", "active", "action", "role", "expected", "expected_active", "moves"),
    [
        ("ACTIVE", True, "pause", "ops", "PAUSED_LOW_DIAL_RATE", True, 2),  # via AT_RISK
        ("WARMUP_GRACE", True, "pause", "admin", "PAUSED_LOW_DIAL_RATE", True, 3),
        ("PAUSED_LOW_DIAL_RATE", True, "resume", "ops", "ACTIVE", True, 1),
        ("RESTRICTED_FRAUD", True, "clear_fraud", "admin", "ACTIVE", True, 1),
        ("RESTRICTED_FRAUD", True, "suspend", "admin", "SUSPENDED", True, 1),
        ("AT_RISK", True, "suspend", "admin", "SUSPENDED", True, 1),
        ("SUSPENDED", True, "reactivate", "admin", "ACTIVE", True, 1),
        ("SUSPENDED", False, "reactivate", "admin", "ACTIVE", True, 1),
        (
            "IDLE_NO_AVAILABLE_TASKS",
            False,
            "reactivate",
            "admin",
            "IDLE_NO_AVAILABLE_TASKS",
            True,
            0,
        ),
        ("ACTIVE", True, "deactivate", "admin", "ACTIVE", False, 0),
    ],
)
async def test_allowed_moves(
    gateway: Gateway,
    session: AsyncSession,
    auth_headers: Headers,
    status: str,
    active: bool,
    action: str,
    role: str,
    expected: str,
    expected_active: bool,
    moves: int,
) -> None:
    caller = await create_caller(session, allocation_status=status, is_active=active)
    task = await create_call_task(session, status="ASSIGNED", caller=caller)
    response = await _post(gateway, auth_headers(role, f"{role}-1"), caller, action, "reviewed")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["caller"]["allocationStatus"] == expected
    assert body["caller"]["isActive"] is expected_active
    assert body["fromStatus"] == status and body["action"] == action
    assert body["releasedTaskIds"] == [str(task.id)]
    await session.refresh(task)
    assert (task.status, task.caller_id) == ("PENDING", None)

    history = (
        await session.scalars(
            select(CallerStatusHistory).where(CallerStatusHistory.caller_id == caller.id)
        )
    ).all()
    assert len(history) == moves
    assert {(row.actor, row.reason) for row in history} <= {(f"{role}:{role}-1", "reviewed")}
    audit = (
        await session.scalars(
            select(SystemEvent).where(
                SystemEvent.entity_id == caller.id, SystemEvent.type == "caller.status_action"
            )
        )
    ).one()
    assert audit.actor == f"{role}:{role}-1"
    assert audit.data["action"] == action and audit.data["reason"] == "reviewed"
    assert audit.data["releasedTaskIds"] == [str(task.id)]


@pytest.mark.parametrize(
    ("status", "active", "action"),
    [
        ("ACTIVE", True, "resume"),
        ("ACTIVE", True, "clear_fraud"),
        ("ACTIVE", True, "reactivate"),
        ("RESTRICTED_FRAUD", True, "pause"),
        ("RESTRICTED_FRAUD", True, "resume"),  # fraud needs clear_fraud, by an admin
        ("SUSPENDED", True, "suspend"),
        ("SUSPENDED", True, "clear_fraud"),
        ("PAUSED_LOW_DIAL_RATE", True, "pause"),
        ("ACTIVE", False, "deactivate"),
        ("ACTIVE", False, "pause"),
    ],
)
async def test_refused_moves_are_409_and_change_nothing(
    gateway: Gateway,
    session: AsyncSession,
    auth_headers: Headers,
    status: str,
    active: bool,
    action: str,
) -> None:
    caller = await create_caller(session, allocation_status=status, is_active=active)
    task = await create_call_task(session, status="ASSIGNED", caller=caller)
    response = await _post(gateway, auth_headers("admin"), caller, action)
    assert response.status_code == 409, response.text
    assert response.json()["error"]["code"] == "invalid_transition"
    await session.refresh(caller)
    await session.refresh(task)
    assert (caller.allocation_status, caller.is_active) == (status, active)
    assert task.caller_id == caller.id


@pytest.mark.parametrize("action", ["clear_fraud", "suspend", "reactivate", "deactivate"])
async def test_ops_may_not_take_admin_actions(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers, action: str
) -> None:
    caller = await create_caller(session, allocation_status="RESTRICTED_FRAUD")
    response = await _post(gateway, auth_headers("ops"), caller, action)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    await session.refresh(caller)
    assert caller.allocation_status == "RESTRICTED_FRAUD"


async def test_a_reviewed_caller_gets_work_again(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers
) -> None:
    caller = await create_caller(session, allocation_status="RESTRICTED_FRAUD")
    headers = auth_headers("caller", str(caller.id))
    assert (
        await gateway.client.get("/api/v1/call-tasks/current", headers=headers)
    ).status_code == 403
    response = await _post(gateway, auth_headers("admin"), caller, "clear_fraud")
    assert response.status_code == 200
    again = await gateway.client.get("/api/v1/call-tasks/current", headers=headers)
    assert again.status_code == 200, again.text


@pytest.mark.parametrize(
    "body",
    [{}, {"action": "pause"}, {"action": "pause", "reason": " "}, {"action": "fly", "reason": "x"}],
)
async def test_bad_bodies_are_400(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers, body: dict[str, str]
) -> None:
    caller = await create_caller(session)
    response = await gateway.client.post(url(caller.id), json=body, headers=auth_headers("ops"))
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_unknown_caller_is_404(gateway: Gateway, auth_headers: Headers) -> None:
    response = await gateway.client.post(
        url(uuid.uuid4()), json={"action": "pause", "reason": "x"}, headers=auth_headers("admin")
    )
    assert response.status_code == 404


async def test_a_dialling_task_stays_with_its_call(
    gateway: Gateway, session: AsyncSession, auth_headers: Headers
) -> None:
    caller = await create_caller(session)
    task = await create_call_task(session, status="DIALING", caller=caller)
    response = await _post(gateway, auth_headers("admin"), caller, "suspend")
    assert response.status_code == 200
    assert response.json()["releasedTaskIds"] == []
    refreshed = await session.get(CallTask, task.id, populate_existing=True)
    assert refreshed is not None and refreshed.status == "DIALING"
