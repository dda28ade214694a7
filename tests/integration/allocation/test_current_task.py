"""GET /api/v1/call-tasks/current: who gets which task, refusals, idle, expiry, shifts."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from contextlib import AsyncExitStack
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.allocation.endpoints import admission
from sourcing.common.models import Caller, CallerStatusHistory, CallTask, Expert
from tests.factories import create_caller, create_project, create_suppression
from tests.factories_calls import NOW, count_events, create_pool_task
from tests.integration.allocation.conftest import Gateway

pytestmark = pytest.mark.integration

URL = "/api/v1/call-tasks/current"
Headers = Callable[..., dict[str, str]]


async def _task(session: AsyncSession, task_id: object) -> CallTask:
    task = await session.get(CallTask, uuid.UUID(str(task_id)), populate_existing=True)
    assert task is not None
    return task


async def _caller(session: AsyncSession, caller: Caller) -> Caller:
    fresh = await session.get(Caller, caller.id, populate_existing=True)
    assert fresh is not None
    return fresh


async def test_assigns_the_best_task_then_returns_it_again(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    low = await create_project(session, priority=1, name="Low priority")
    high = await create_project(session, priority=5, name="High priority")
    await create_pool_task(session, project=low, ranking_score=0.99)
    await create_pool_task(session, project=high, ranking_score=0.2)
    best = await create_pool_task(
        session,
        project=high,
        ranking_score=0.9,
        phone_number="+12125550123",
        expert_overrides={"full_name": "Ada Lovelace", "title": "CTO", "company_name": "Acme"},
    )
    caller = await create_caller(session)

    response = await gateway.client.get(URL, headers=caller_headers(caller))

    assert response.status_code == 200, response.text
    body = response.json()
    assert body["newlyAssigned"] is True and body["reason"] is None
    task = body["task"]
    assert task["id"] == str(best.id)
    assert task["status"] == "ASSIGNED"
    assert task["callerId"] == str(caller.id)
    assert task["projectName"] == "High priority"
    assert task["expert"] == {
        "id": str(best.expert_id),
        "name": "Ada Lovelace",
        "title": "CTO",
        "company": "Acme",
        "phone": "+12125550123",
        "timezone": "America/New_York",
        "countryIso": "US",
        "languageCodes": ["en"],
    }
    stored = await _task(session, best.id)
    assert stored.assigned_at == NOW
    assert stored.expires_at == NOW + timedelta(seconds=300)

    again = await gateway.client.get(URL, headers=caller_headers(caller))
    assert again.json()["task"]["id"] == str(best.id)
    assert again.json()["newlyAssigned"] is False
    fresh = await _caller(session, caller)
    assert fresh.last_task_requested_at == NOW
    assert fresh.shift_started_at == NOW


async def test_ties_go_to_the_oldest_task(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    project = await create_project(session)
    older = await create_pool_task(session, project=project)
    older.created_at = NOW - timedelta(hours=2)
    newer = await create_pool_task(session, project=project)
    newer.created_at = NOW - timedelta(hours=1)
    await session.flush()
    response = await gateway.client.get(URL, headers=caller_headers(await create_caller(session)))
    assert response.json()["task"]["id"] == str(older.id)


async def test_a_token_may_name_the_caller_by_email_in_any_case(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, auth_headers: Headers
) -> None:
    await create_pool_task(session)
    caller = await create_caller(session, email="Jane.Dialer@Example.com")
    response = await gateway.client.get(
        URL, headers=auth_headers("caller", "JANE.DIALER@example.COM")
    )
    assert response.status_code == 200, response.text
    assert response.json()["task"]["callerId"] == str(caller.id)


async def test_a_token_matching_no_caller_is_refused(
    gateway: Gateway, auth_headers: Headers
) -> None:
    for user_id in ("nobody@example.com", str(uuid.uuid4())):
        response = await gateway.client.get(URL, headers=auth_headers("caller", user_id))
        assert response.status_code == 403
        error = response.json()["error"]
        assert error["code"] == "caller_not_registered"
        assert "matches no registered caller" in error["message"]
        assert error["details"] == {"userId": user_id}


@pytest.mark.parametrize(
    ("task_fields", "caller_fields", "expert_fields", "allocated"),
    [
        ({}, {}, {}, True),
        ({"region_iso": "GB"}, {}, {}, False),  # region not the caller's
        ({"region_iso": "GB"}, {"region_iso_codes": ["US", "GB"]}, {}, True),
        ({"region_iso": None}, {}, {}, True),  # no region on the task: anyone
        ({"language_code": "de"}, {}, {}, False),
        ({"language_code": "DE"}, {"language_codes": ["en", "de"]}, {}, True),
        ({"language_code": None}, {}, {}, True),
        ({}, {}, {"timezone": "Asia/Tokyo"}, False),  # midnight in Tokyo
        ({}, {}, {"timezone": "Europe/London"}, True),  # 15:00 in London
        ({}, {}, {"timezone": None, "country_iso": "JP"}, False),  # country's zone: Tokyo
        ({}, {}, {"timezone": None, "country_iso": "GB"}, True),
        ({}, {}, {"timezone": None, "country_iso": None}, True),  # nothing known: callable
        ({}, {}, {"timezone": "Not/AZone"}, False),  # unusable zone: never guessed
        ({"available_after": NOW + timedelta(minutes=1)}, {}, {}, False),
        ({"available_after": NOW}, {}, {}, True),
    ],
)
async def test_matching_rules(
    gateway: Gateway,
    session: AsyncSession,
    caller_headers: Headers,
    task_fields: dict[str, object],
    caller_fields: dict[str, object],
    expert_fields: dict[str, object],
    allocated: bool,
) -> None:
    task = await create_pool_task(session, expert_overrides=expert_fields, **task_fields)  # type: ignore[arg-type]
    caller = await create_caller(session, **caller_fields)
    body = (await gateway.client.get(URL, headers=caller_headers(caller))).json()
    if allocated:
        assert body["task"]["id"] == str(task.id)
    else:
        assert body["task"] is None
        assert (await _task(session, task.id)).status == "PENDING"


async def test_the_calling_window_follows_the_clock(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    task = await create_pool_task(session)  # New York
    caller = await create_caller(session)
    gateway.clock.set(NOW.replace(hour=1))  # 21:00 the evening before in New York
    assert (await gateway.client.get(URL, headers=caller_headers(caller))).json()["task"] is None
    gateway.clock.set(NOW.replace(hour=13))  # 09:00 in New York
    body = (await gateway.client.get(URL, headers=caller_headers(caller))).json()
    assert body["task"]["id"] == str(task.id)


async def test_suppressed_experts_and_inactive_projects_are_never_allocated(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    suppressed = await create_pool_task(session)
    expert = await session.get(Expert, suppressed.expert_id)
    await create_suppression(session, expert=expert)
    paused_project = await create_project(session, status="PAUSED")
    await create_pool_task(session, project=paused_project)
    body = (
        await gateway.client.get(URL, headers=caller_headers(await create_caller(session)))
    ).json()
    assert body["task"] is None
    assert body["reason"] == "NO_AVAILABLE_TASKS"


async def test_nothing_available_makes_the_caller_idle_until_a_task_appears(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    caller = await create_caller(session)
    response = await gateway.client.get(URL, headers=caller_headers(caller))
    assert response.status_code == 200
    assert response.json() == {
        "task": None,
        "newlyAssigned": False,
        "reason": "NO_AVAILABLE_TASKS",
        "message": "No call task is available for you right now; ask again shortly.",
        "allocationStatus": "IDLE_NO_AVAILABLE_TASKS",
    }
    assert (await _caller(session, caller)).allocation_status == "IDLE_NO_AVAILABLE_TASKS"
    # Asking again while idle changes nothing more.
    await gateway.client.get(URL, headers=caller_headers(caller))
    history = (
        await session.scalars(
            select(CallerStatusHistory)
            .where(CallerStatusHistory.caller_id == caller.id)
            .order_by(CallerStatusHistory.created_at)
        )
    ).all()
    assert [(h.from_status, h.to_status) for h in history] == [
        ("ACTIVE", "IDLE_NO_AVAILABLE_TASKS")
    ]

    task = await create_pool_task(session)
    body = (await gateway.client.get(URL, headers=caller_headers(caller))).json()
    assert body["task"]["id"] == str(task.id)
    assert body["allocationStatus"] == "ACTIVE"
    assert await count_events(session, "caller.allocation_status_changed", entity_id=caller.id) == 2


@pytest.mark.parametrize(
    ("status", "http", "code"),
    [
        ("PAUSED_LOW_DIAL_RATE", 409, "caller_paused"),
        ("RESTRICTED_FRAUD", 403, "caller_restricted"),
        ("SUSPENDED", 403, "caller_restricted"),
    ],
)
async def test_paused_and_restricted_callers_get_a_reason_instead_of_a_task(
    gateway: Gateway,
    session: AsyncSession,
    caller_headers: Headers,
    status: str,
    http: int,
    code: str,
) -> None:
    task = await create_pool_task(session)
    caller = await create_caller(
        session, allocation_status=status, status_reason="3 short calls in the last hour"
    )
    response = await gateway.client.get(URL, headers=caller_headers(caller))
    assert response.status_code == http, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert status in error["message"]
    assert error["details"]["allocationStatus"] == status
    assert error["details"]["statusReason"] == "3 short calls in the last hour"
    assert error["details"]["howToResume"]
    assert (await _task(session, task.id)).status == "PENDING"


async def test_warmup_at_risk_callers_get_tasks_and_deactivated_ones_do_not(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    for status in ("WARMUP_GRACE", "AT_RISK", "ACTIVE"):
        await create_pool_task(session)
        caller = await create_caller(session, allocation_status=status)
        body = (await gateway.client.get(URL, headers=caller_headers(caller))).json()
        assert body["task"]["status"] == "ASSIGNED", status
        assert body["allocationStatus"] == status
    inactive = await create_caller(session, is_active=False)
    response = await gateway.client.get(URL, headers=caller_headers(inactive))
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "caller_inactive"


async def test_an_undialled_task_expires_and_returns_to_the_pool(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    task = await create_pool_task(session)
    first, second = await create_caller(session), await create_caller(session)
    body = (await gateway.client.get(URL, headers=caller_headers(first))).json()
    assert body["task"]["id"] == str(task.id)

    gateway.clock.advance(seconds=299)  # still inside the dial deadline
    assert (await gateway.client.get(URL, headers=caller_headers(second))).json()["task"] is None

    gateway.clock.advance(seconds=1)  # deadline reached, but the last sweep was 1 s ago
    assert (await gateway.client.get(URL, headers=caller_headers(second))).json()["task"] is None

    sweep = gateway.app.state.expiry_sweep.interval.total_seconds()
    gateway.clock.advance(seconds=sweep)  # the sweep: ASSIGNED → EXPIRED → PENDING → second
    body = (await gateway.client.get(URL, headers=caller_headers(second))).json()
    assert body["task"]["id"] == str(task.id)
    assert body["task"]["callerId"] == str(second.id)
    assert body["task"]["requeueCount"] == 1
    assert await count_events(session, "call_task.expired", entity_id=task.id) == 1
    # The first caller's task is gone; nothing else is left for them.
    body = (await gateway.client.get(URL, headers=caller_headers(first))).json()
    assert body["task"] is None


async def test_a_callers_own_overdue_task_is_expired_before_they_get_the_next(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    task = await create_pool_task(session)
    caller = await create_caller(session)
    await gateway.client.get(URL, headers=caller_headers(caller))
    gateway.clock.advance(seconds=300)  # deadline reached, no sweep due for anyone else yet
    gateway.app.state.expiry_sweep.last = gateway.clock.now
    body = (await gateway.client.get(URL, headers=caller_headers(caller))).json()
    # Expired and back in the pool, then (the only task) assigned afresh: not handed back stale.
    assert body["newlyAssigned"] is True
    assert body["task"]["id"] == str(task.id)
    assert body["task"]["requeueCount"] == 1
    assert body["task"]["expiresAt"] is not None
    assert await count_events(session, "call_task.expired", entity_id=task.id) == 1


async def test_a_new_shift_starts_after_the_gap(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    caller = await create_caller(session)
    await gateway.client.get(URL, headers=caller_headers(caller))
    gateway.clock.advance(hours=1)
    await gateway.client.get(URL, headers=caller_headers(caller))
    fresh = await _caller(session, caller)
    assert fresh.shift_started_at == NOW
    assert fresh.last_task_requested_at == NOW + timedelta(hours=1)
    gateway.clock.advance(hours=4)
    await gateway.client.get(URL, headers=caller_headers(caller))
    fresh = await _caller(session, caller)
    assert fresh.shift_started_at == NOW + timedelta(hours=5)


async def test_a_dial_keeps_the_shift_going(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    caller = await create_caller(session)
    await gateway.client.get(URL, headers=caller_headers(caller))
    fresh = await _caller(session, caller)
    fresh.last_dial_at = NOW + timedelta(hours=3)
    await session.flush()
    gateway.clock.advance(hours=5)  # 5 h after the last request, 2 h after the dial
    await gateway.client.get(URL, headers=caller_headers(caller))
    assert (await _caller(session, caller)).shift_started_at == NOW
    gateway.clock.advance(hours=4)  # the gap since the last activity (this request)
    await gateway.client.get(URL, headers=caller_headers(caller))
    assert (await _caller(session, caller)).shift_started_at == NOW + timedelta(hours=9)


@pytest.mark.parametrize(
    ("status", "after"),
    [
        ("AT_RISK", "IDLE_NO_AVAILABLE_TASKS"),
        # WARMUP_GRACE → IDLE is not a move of the machine: the status stays, the answer still
        # says there is nothing.
        ("WARMUP_GRACE", "WARMUP_GRACE"),
    ],
)
async def test_idle_only_where_the_machine_allows(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers, status: str, after: str
) -> None:
    caller = await create_caller(session, allocation_status=status)
    body = (await gateway.client.get(URL, headers=caller_headers(caller))).json()
    assert body["reason"] == "NO_AVAILABLE_TASKS"
    assert (await _caller(session, caller)).allocation_status == after


async def test_past_capacity_the_answer_is_503_with_retry_after(
    gateway: Gateway, session: AsyncSession, caller_headers: Headers
) -> None:
    task = await create_pool_task(session)
    caller = await create_caller(session)
    gate = admission(gateway.app, gateway.app.state.settings)
    async with AsyncExitStack() as busy:
        for _ in range(gate.limit):  # every turn taken by requests still at work
            await busy.enter_async_context(gate.slot())
        response = await gateway.client.get(URL, headers=caller_headers(caller))
    assert response.status_code == 503, response.text
    assert response.headers["retry-after"] == "1"
    assert response.json()["error"]["code"] == "service_unavailable"
    assert (await _task(session, task.id)).status == "PENDING"  # nothing was done
    assert (await _caller(session, caller)).last_task_requested_at is None

    again = await gateway.client.get(URL, headers=caller_headers(caller))
    assert again.json()["task"]["id"] == str(task.id)
