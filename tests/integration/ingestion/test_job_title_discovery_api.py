"""``POST /api/v1/job-title-discovery/trigger`` (§4.6) through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import JobTitleDiscoveryRun, OutboxMessage
from tests.factories import create_company, create_project

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]
TRIGGER = "/api/v1/job-title-discovery/trigger"


@pytest.mark.parametrize("role", ["admin", "ops"])
async def test_trigger_records_a_run_and_queues_it_in_the_same_transaction(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession, role: str
) -> None:
    project = await create_project(session, geography_iso_codes=["US"])
    wise = await create_company(session, project=project, name="Wise")
    response = await api.post(
        TRIGGER,
        json={
            "projectId": str(project.id),
            "companies": [
                {"companyName": "Stripe"},
                {"companyName": "Wise", "companyId": str(wise.id)},
            ],
            "geographyIsoCodes": ["us", "GB"],
        },
        headers=auth_headers(role, "staff-7"),
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] is True
    run = await session.get(JobTitleDiscoveryRun, uuid.UUID(body["jobId"]))
    assert run is not None
    assert run.status == "QUEUED"
    assert run.geography_iso_codes == ["US", "GB"]
    assert run.requested_by == "staff-7"
    assert run.requested_companies == [
        {"companyName": "Stripe", "companyId": None},
        {"companyName": "Wise", "companyId": str(wise.id)},
    ]
    [queued] = (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "job-title-discovery")
        )
    ).all()
    assert queued.key == str(project.id)
    assert queued.envelope["type"] == "job-title-discovery.requested.v1"
    assert queued.envelope["payload"] == {"runId": str(run.id), "projectId": str(project.id)}
    assert queued.envelope["correlation_id"] == response.headers["x-correlation-id"]


async def test_geographies_default_to_the_projects(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project = await create_project(session, geography_iso_codes=["SG", "JP"])
    response = await api.post(
        TRIGGER,
        json={"projectId": str(project.id), "companies": [{"companyName": "Grab"}]},
        headers=auth_headers("admin"),
    )
    assert response.status_code == 202, response.text
    run = await session.get(JobTitleDiscoveryRun, uuid.UUID(response.json()["jobId"]))
    assert run is not None and run.geography_iso_codes == ["SG", "JP"]


async def test_unknown_project_is_404(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    response = await api.post(
        TRIGGER,
        json={"projectId": str(uuid.uuid4()), "companies": [{"companyName": "Stripe"}]},
        headers=auth_headers("admin"),
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


async def test_company_of_another_project_is_400_and_nothing_is_queued(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project = await create_project(session)
    foreign = await create_company(session, project=await create_project(session))
    response = await api.post(
        TRIGGER,
        json={
            "projectId": str(project.id),
            "companies": [{"companyName": "X", "companyId": str(foreign.id)}],
        },
        headers=auth_headers("ops"),
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["details"]["errors"][0]["value"] == str(foreign.id)
    assert (await session.scalars(select(JobTitleDiscoveryRun))).all() == []
    assert (
        await session.scalars(
            select(OutboxMessage).where(OutboxMessage.topic == "job-title-discovery")
        )
    ).all() == []


@pytest.mark.parametrize(
    "body",
    [
        {"companies": [{"companyName": "Stripe"}]},
        {"companies": []},
        {"companies": [{}]},
        {"companies": [{"companyName": "  "}]},
        {"companies": [{"companyName": "Stripe"}], "geographyIsoCodes": ["USA"]},
        {"companies": [{"companyName": "Stripe"}], "geographyIsoCodes": []},
        {"companies": [{"companyName": "Stripe", "companyId": "nope"}]},
        {"companies": [{"companyName": "Stripe"}], "unknown": 1},
    ],
)
async def test_invalid_bodies_are_400(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession, body: dict[str, object]
) -> None:
    project = await create_project(session)
    payload = {"projectId": str(project.id), **body} if "companies" in body else body
    if body == {"companies": [{"companyName": "Stripe"}]}:
        payload = body  # projectId missing
    response = await api.post(TRIGGER, json=payload, headers=auth_headers("admin"))
    assert response.status_code == 400, response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}


async def test_callers_and_anonymous_are_refused(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project = await create_project(session)
    body = {"projectId": str(project.id), "companies": [{"companyName": "Stripe"}]}
    assert (await api.post(TRIGGER, json=body, headers=auth_headers("caller"))).status_code == 403
    assert (await api.post(TRIGGER, json=body)).status_code == 401
    assert (await session.scalars(select(JobTitleDiscoveryRun))).all() == []
