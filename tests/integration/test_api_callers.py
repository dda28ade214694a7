"""Callers and performance snapshots (§4.4) through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from tests.factories import create_caller, create_performance_metric

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]

MANUAL_CALLER = {
    "email": "john.smith@example.com",
    "name": "John Smith",
    "timezone": "America/New_York",
    "languageCodes": ["en", "es"],
    "regionIsoCodes": ["US", "MX"],
}


async def test_manual_caller_examples(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    headers = auth_headers("ops")
    created = await api.post("/api/v1/callers", json=MANUAL_CALLER, headers=headers)
    assert created.status_code == 201, created.text
    caller = created.json()
    assert caller["email"] == "john.smith@example.com"
    assert caller["allocationStatus"] == "ACTIVE"
    assert caller["metadata"] == {}

    fetched = await api.get(f"/api/v1/callers/{caller['id']}", headers=headers)
    assert fetched.json() == caller

    patched = await api.patch(
        f"/api/v1/callers/{caller['id']}", json={"timezone": "Europe/London"}, headers=headers
    )
    assert patched.status_code == 200
    assert patched.json()["timezone"] == "Europe/London"
    assert patched.json()["languageCodes"] == ["en", "es"]


async def test_caller_email_is_unique_case_insensitively(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = auth_headers("admin")
    assert (
        await api.post("/api/v1/callers", json=MANUAL_CALLER, headers=headers)
    ).status_code == 201
    duplicate = await api.post(
        "/api/v1/callers", json=MANUAL_CALLER | {"email": "John.Smith@Example.com"}, headers=headers
    )
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["code"] == "conflict"

    other = await api.post(
        "/api/v1/callers", json=MANUAL_CALLER | {"email": "jane@example.com"}, headers=headers
    )
    taken = await api.patch(
        f"/api/v1/callers/{other.json()['id']}",
        json={"email": "JOHN.smith@example.com"},
        headers=headers,
    )
    assert taken.status_code == 409


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"name": ""}, "name"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"languageCodes": []}, "languageCodes"),
        ({"languageCodes": ["e"]}, "languageCodes.0"),
        ({"regionIsoCodes": ["USA"]}, "regionIsoCodes.0"),
        ({"metadata": "x"}, "metadata"),
    ],
)
async def test_caller_validation(
    api: httpx.AsyncClient, auth_headers: Headers, changes: dict[str, Any], field: str
) -> None:
    response = await api.post(
        "/api/v1/callers", json=MANUAL_CALLER | changes, headers=auth_headers("ops")
    )
    assert response.status_code == 400
    assert field in [e["field"] for e in response.json()["error"]["details"]["errors"]]


async def test_latest_performance_snapshot(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    caller = await create_caller(session)
    headers = auth_headers("ops")
    url = f"/api/v1/callers/{caller.id}/performance/latest"
    none_yet = await api.get(url, headers=headers)
    assert none_yet.status_code == 404

    now = datetime.now(UTC)
    await create_performance_metric(
        session,
        caller_id=caller.id,
        computed_at=now - timedelta(minutes=2),
        rolling_60_minute_dials=3,
    )
    await create_performance_metric(
        session,
        caller_id=caller.id,
        computed_at=now,
        rolling_60_minute_dials=12,
        rolling_60_minute_connections=4,
        short_calls_last_hour=1,
        allocation_status="AT_RISK",
        performance_score=0.5,
    )
    latest = await api.get(url, headers=headers)
    assert latest.status_code == 200
    body = latest.json()
    assert body["rolling60MinuteDials"] == 12
    assert body["rolling60MinuteConnections"] == 4
    assert body["shortCallsLastHour"] == 1
    assert body["allocationStatus"] == "AT_RISK"
    assert body["performanceScore"] == 0.5


async def test_unknown_caller_is_404_and_callers_are_staff_only(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    missing = uuid.uuid4()
    assert (
        await api.get(f"/api/v1/callers/{missing}", headers=auth_headers("ops"))
    ).status_code == 404
    assert (
        await api.get(
            f"/api/v1/callers/{missing}/performance/latest", headers=auth_headers("admin")
        )
    ).status_code == 404
    assert (
        await api.post("/api/v1/callers", json=MANUAL_CALLER, headers=auth_headers("caller"))
    ).status_code == 403
    assert (await api.get(f"/api/v1/callers/{missing}")).status_code == 401


async def test_callers_list_in_pages_with_filters(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = auth_headers("admin")
    created = []
    for n in range(4):
        body = MANUAL_CALLER | {"email": f"caller{n}@example.com", "name": f"Caller {n}"}
        response = await api.post("/api/v1/callers", json=body, headers=headers)
        assert response.status_code == 201, response.text
        created.append(response.json())
    retired = created[2]["id"]
    deactivated = await api.post(
        f"/api/v1/callers/{retired}/status",
        json={"action": "deactivate", "reason": "left the team"},
        headers=headers,
    )
    assert deactivated.status_code == 200, deactivated.text

    async def ids(**params: Any) -> list[str]:
        found: list[str] = []
        cursor = None
        while True:
            query = {**params, **({"cursor": cursor} if cursor else {})}
            page = (await api.get("/api/v1/callers", params=query, headers=headers)).json()
            found.extend(caller["id"] for caller in page["items"])
            cursor = page["nextCursor"]
            if cursor is None:
                return found

    order = [c["id"] for c in sorted(created, key=lambda c: (c["createdAt"], c["id"]))]
    assert await ids(limit=3) == order
    assert await ids(isActive="false") == [retired]
    assert await ids(isActive="true", allocationStatus="ACTIVE") == [
        caller for caller in order if caller != retired
    ]
    assert await ids(allocationStatus="RESTRICTED_FRAUD") == []
    bad = await api.get("/api/v1/callers", params={"cursor": "x"}, headers=headers)
    assert bad.status_code == 400 and bad.json()["error"]["details"] == {"field": "cursor"}
