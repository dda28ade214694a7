"""The read side of call logs through the gateway: per call task and per caller, in pages."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_call_log, create_call_task, create_caller

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]

BASE = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def _all_pages(
    api: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[str]:
    """Every item id, following ``nextCursor``; fails on a repeated id."""
    found: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        response = await api.get(url, params=query, headers=headers)
        assert response.status_code == 200, response.text
        page = response.json()
        found.extend(item["id"] for item in page["items"])
        cursor = page["nextCursor"]
        if cursor is None:
            assert len(found) == len(set(found))
            return found


async def test_a_tasks_call_logs_in_pages_oldest_first(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    task = await create_call_task(session, caller=caller, status="COMPLETED")
    other_task = await create_call_task(session, caller=caller, status="COMPLETED")
    # Created out of order: the list follows created_at, not insertion.
    minutes = [3, 0, 4, 1, 2]
    logs = {
        m: await create_call_log(
            session, caller=caller, call_task=task, created_at=BASE + timedelta(minutes=m)
        )
        for m in minutes
    }
    await create_call_log(session, caller=caller, call_task=other_task, created_at=BASE)
    headers = auth_headers("ops")
    url = f"/api/v1/call-tasks/{task.id}/call-logs"

    expected = [str(logs[m].id) for m in sorted(minutes)]
    assert await _all_pages(api, url, headers, limit=2) == expected
    assert await _all_pages(api, url, headers) == expected

    first = (await api.get(url, params={"limit": 5}, headers=headers)).json()
    assert first["nextCursor"] is not None  # a full page may have a next one
    assert (
        await api.get(url, params={"limit": 5, "cursor": first["nextCursor"]}, headers=headers)
    ).json() == {"items": [], "nextCursor": None}

    item = first["items"][0]
    assert item["callTaskId"] == str(task.id)
    assert item["callerId"] == str(caller.id)
    assert item["expertId"] == str(task.expert_id)
    assert item["status"] == "ENDED" and item["direction"] == "OUTBOUND"
    assert item["talkSeconds"] == 38 and item["fraudFlags"] == []
    assert item["isShortCall"] is False and item["validatedAt"] is None


async def test_a_callers_call_logs_with_filters(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    other = await create_caller(session)
    early = await create_call_log(
        session, caller=caller, started_at=BASE, created_at=BASE, validated_at=BASE
    )
    flagged = await create_call_log(
        session,
        caller=caller,
        started_at=BASE + timedelta(hours=1),
        created_at=BASE + timedelta(hours=1),
        is_short_call=True,
        fraud_flags=[{"flag": "SHORT_CALL", "talkSeconds": 2, "thresholdSeconds": 5}],
        validated_at=BASE + timedelta(hours=1),
    )
    pending = await create_call_log(
        session,
        caller=caller,
        started_at=BASE + timedelta(hours=2),
        created_at=BASE + timedelta(hours=2),
    )
    await create_call_log(session, caller=other, started_at=BASE, created_at=BASE)
    headers = auth_headers("admin")
    url = f"/api/v1/callers/{caller.id}/call-logs"

    everything = [str(early.id), str(flagged.id), str(pending.id)]
    assert await _all_pages(api, url, headers, limit=2) == everything
    assert await _all_pages(api, url, headers, validated="true") == everything[:2]
    assert await _all_pages(api, url, headers, validated="false") == [str(pending.id)]
    assert await _all_pages(
        api, url, headers, **{"from": (BASE + timedelta(hours=1)).isoformat()}
    ) == [str(flagged.id), str(pending.id)]
    # `to` is exclusive; a time without an offset is UTC.
    assert await _all_pages(api, url, headers, to="2026-03-02T10:00:00") == [str(early.id)]

    page = (await api.get(url, params={"validated": "true"}, headers=headers)).json()
    assert page["items"][1]["isShortCall"] is True
    assert page["items"][1]["fraudFlags"] == [
        {"flag": "SHORT_CALL", "talkSeconds": 2, "thresholdSeconds": 5}
    ]


async def test_unknown_task_or_caller_is_404(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    missing = uuid.uuid4()
    headers = auth_headers("ops")
    for url, key in (
        (f"/api/v1/call-tasks/{missing}/call-logs", "taskId"),
        (f"/api/v1/callers/{missing}/call-logs", "callerId"),
    ):
        response = await api.get(url, headers=headers)
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "not_found" and error["details"] == {key: str(missing)}


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 0}, "limit"),
        ({"limit": 101}, "limit"),
        ({"cursor": "not-a-cursor"}, "cursor"),
        ({"from": "yesterday"}, "from"),
        ({"validated": "maybe"}, "validated"),
        ({"status": "ENDED"}, "status"),
    ],
)
async def test_bad_query_is_400(
    api: httpx.AsyncClient,
    auth_headers: Headers,
    session: AsyncSession,
    params: dict[str, Any],
    field: str,
) -> None:
    caller = await create_caller(session)
    response = await api.get(
        f"/api/v1/callers/{caller.id}/call-logs", params=params, headers=auth_headers("ops")
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_payload"
    assert field in str(error["details"])


async def test_from_must_be_before_to(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    moment = BASE.isoformat()
    response = await api.get(
        f"/api/v1/callers/{caller.id}/call-logs",
        params={"from": moment, "to": moment},
        headers=auth_headers("ops"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"fields": ["from", "to"]}


async def test_an_instant_utc_cannot_hold_is_400(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    response = await api.get(
        f"/api/v1/callers/{caller.id}/call-logs",
        params={"from": "0001-01-01T00:00:00+01:00"},
        headers=auth_headers("ops"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"]["field"] == "from"


async def test_task_call_logs_reject_a_bad_cursor(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    task = await create_call_task(session)
    response = await api.get(
        f"/api/v1/call-tasks/{task.id}/call-logs",
        params={"cursor": "x"},
        headers=auth_headers("admin"),
    )
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "cursor"}
