"""Idempotency-Key on POST: a retry gets the first answer, a reused key on another request is
refused, a failed first answer is not kept, and the scheduler prunes old keys."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.clock import utc_now
from sourcing.common.models import IdempotencyKey, Project

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]


def _project(name: str) -> dict[str, object]:
    return {"name": name, "priority": 5, "targetThreshold": 10, "geographyIsoCodes": ["US"]}


async def _projects_named(session: AsyncSession, name: str) -> int:
    return int(
        await session.scalar(select(func.count()).select_from(Project).where(Project.name == name))
        or 0
    )


async def test_a_retry_with_the_same_key_gets_the_first_answer_and_creates_nothing(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    name = f"Idempotent {uuid.uuid4().hex[:8]}"
    headers = {**auth_headers("ops"), "Idempotency-Key": f"create-{uuid.uuid4()}"}
    first = await api.post("/api/v1/projects", headers=headers, json=_project(name))
    assert first.status_code == 201, first.text
    assert "idempotent-replayed" not in first.headers
    again = await api.post("/api/v1/projects", headers=headers, json=_project(name))
    assert again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true"
    assert again.json() == first.json()
    assert again.headers["content-type"] == first.headers["content-type"]
    assert await _projects_named(session, name) == 1

    without = await api.post("/api/v1/projects", headers=auth_headers("ops"), json=_project(name))
    assert without.status_code == 201 and without.json()["id"] != first.json()["id"]


async def test_the_same_key_on_another_request_is_422(
    api: httpx.AsyncClient, session: AsyncSession, auth_headers: Headers
) -> None:
    headers = {**auth_headers("ops"), "Idempotency-Key": f"k-{uuid.uuid4()}"}
    first = await api.post("/api/v1/projects", headers=headers, json=_project("First"))
    assert first.status_code == 201
    other = await api.post("/api/v1/projects", headers=headers, json=_project("Second"))
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert other.json()["error"]["details"] == {"field": "Idempotency-Key"}


async def test_keys_belong_to_their_client(
    api: httpx.AsyncClient, token_for: Callable[..., str]
) -> None:
    key = f"shared-{uuid.uuid4()}"
    answers = []
    for user in ("ops-a", "ops-b"):
        headers = {"Authorization": f"Bearer {token_for('ops', user)}", "Idempotency-Key": key}
        answers.append(await api.post("/api/v1/projects", headers=headers, json=_project(user)))
    assert [a.status_code for a in answers] == [201, 201]
    assert answers[0].json()["id"] != answers[1].json()["id"]


async def test_an_error_answer_below_500_is_replayed_too(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    """A 400 is the answer to that request: the retry gets the same 400, not a second try."""
    headers = {**auth_headers("ops"), "Idempotency-Key": f"bad-{uuid.uuid4()}"}
    body = {"name": "", "priority": 99}
    first = await api.post("/api/v1/projects", headers=headers, json=body)
    again = await api.post("/api/v1/projects", headers=headers, json=body)
    assert first.status_code == again.status_code == 400
    assert again.json() == first.json() and again.headers["idempotent-replayed"] == "true"


@pytest.mark.parametrize("key", ["has space", "x" * 256, "tab\there"])
async def test_a_malformed_key_is_400(
    api: httpx.AsyncClient, auth_headers: Headers, key: str
) -> None:
    headers = {**auth_headers("ops"), "Idempotency-Key": key}
    response = await api.post("/api/v1/projects", headers=headers, json=_project("Malformed"))
    assert response.status_code == 400
    assert response.json()["error"]["details"] == {"field": "Idempotency-Key"}


async def test_a_key_still_running_is_409_then_taken_over_once_abandoned(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    """A claim without an answer is a request still running (409, Retry-After); one older than
    IDEMPOTENCY_ABANDONED_AFTER_SECONDS belonged to a process that died, and a retry runs."""
    key = f"running-{uuid.uuid4()}"
    session.add(IdempotencyKey(owner="user-1", key=key, fingerprint="in-flight"))
    await session.flush()
    headers = {**auth_headers("ops", user_id="user-1"), "Idempotency-Key": key}
    busy = await api.post("/api/v1/projects", headers=headers, json=_project("Busy"))
    assert busy.status_code == 409, busy.text
    assert busy.json()["error"]["code"] == "idempotency_request_in_progress"
    assert busy.headers["retry-after"] == "1"

    row = await session.get(IdempotencyKey, ("user-1", key))
    assert row is not None
    row.created_at = utc_now() - timedelta(minutes=5)
    await session.flush()
    taken = await api.post("/api/v1/projects", headers=headers, json=_project("Busy"))
    assert taken.status_code == 201, taken.text
    row = await session.get(IdempotencyKey, ("user-1", key), populate_existing=True)
    assert row is not None and row.status_code == 201 and row.completed_at is not None
