"""Projects, companies, Sales Nav searches, screening questions (§4.3) through the gateway."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Company, SalesNavSearch
from tests.factories import create_project, create_screening_question

pytestmark = pytest.mark.integration
Headers = Callable[..., dict[str, str]]

MANUAL_PROJECT = {
    "name": "APAC Fintech Experts Q1",
    "description": "Source senior fintech experts in APAC region",
    "targetThreshold": 50,
    "geographyIsoCodes": ["SG", "JP", "AU"],
    "priority": 1,
    "overrideCooldown": False,
}


async def _create(api: httpx.AsyncClient, headers: dict[str, str], **changes: Any) -> Any:
    response = await api.post("/api/v1/projects", json=MANUAL_PROJECT | changes, headers=headers)
    assert response.status_code == 201, response.text
    return response.json()


@pytest.mark.parametrize("role", ["admin", "ops"])
async def test_manual_project_lifecycle(
    api: httpx.AsyncClient, auth_headers: Headers, role: str
) -> None:
    headers = auth_headers(role)
    project = await _create(api, headers)
    assert project["name"] == MANUAL_PROJECT["name"]
    assert project["geographyIsoCodes"] == ["SG", "JP", "AU"]
    assert project["status"] == "ACTIVE"
    assert project["regionConfig"] == {}
    uuid.UUID(project["id"])

    fetched = await api.get(f"/api/v1/projects/{project['id']}", headers=headers)
    assert fetched.status_code == 200
    assert fetched.json() == project

    patched = await api.patch(
        f"/api/v1/projects/{project['id']}",
        json={"priority": 2, "description": "Updated description"},
        headers=headers,
    )
    assert patched.status_code == 200
    assert patched.json()["priority"] == 2
    assert patched.json()["description"] == "Updated description"
    assert patched.json()["name"] == MANUAL_PROJECT["name"]


async def test_project_defaults(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    response = await api.post(
        "/api/v1/projects",
        json={
            "name": "US Healthcare AI Experts",
            "targetThreshold": 30,
            "geographyIsoCodes": ["us"],
        },
        headers=auth_headers("ops"),
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["priority"], body["overrideCooldown"], body["geographyIsoCodes"]) == (
        0,
        False,
        ["US"],
    )


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"name": ""}, "name"),
        ({"targetThreshold": 0}, "targetThreshold"),
        ({"targetThreshold": "many"}, "targetThreshold"),
        ({"geographyIsoCodes": []}, "geographyIsoCodes"),
        ({"geographyIsoCodes": ["USA"]}, "geographyIsoCodes.0"),
        ({"priority": -1}, "priority"),
        ({"regionConfig": []}, "regionConfig"),
        ({"targetTreshold": 5}, "targetTreshold"),
    ],
)
async def test_project_validation_names_the_field(
    api: httpx.AsyncClient, auth_headers: Headers, changes: dict[str, Any], field: str
) -> None:
    response = await api.post(
        "/api/v1/projects", json=MANUAL_PROJECT | changes, headers=auth_headers("admin")
    )
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_payload"
    assert field in [e["field"] for e in error["details"]["errors"]]


async def test_project_status_moves_through_its_state_machine(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = auth_headers("admin")
    project = await _create(api, headers)
    url = f"/api/v1/projects/{project['id']}"
    assert (await api.patch(url, json={"status": "PAUSED"}, headers=headers)).status_code == 200
    assert (await api.patch(url, json={"status": "ARCHIVED"}, headers=headers)).status_code == 200
    refused = await api.patch(url, json={"status": "ACTIVE"}, headers=headers)
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "invalid_transition"
    assert error["details"] == {"entity": "project", "from": "ARCHIVED", "to": "ACTIVE"}
    unknown = await api.patch(url, json={"status": "DELETED"}, headers=headers)
    assert unknown.status_code == 409


async def test_unknown_project_is_404(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    missing = uuid.uuid4()
    headers = auth_headers("ops")
    for method, path, body in [
        ("GET", f"/api/v1/projects/{missing}", None),
        ("PATCH", f"/api/v1/projects/{missing}", {"priority": 1}),
        ("POST", f"/api/v1/projects/{missing}/companies", {"companies": [{"name": "Stripe"}]}),
        ("GET", f"/api/v1/projects/{missing}/screening-questions", None),
    ]:
        response = await api.request(method, path, json=body, headers=headers)
        assert response.status_code == 404, (method, path)
        assert response.json()["error"]["code"] == "not_found"


async def test_malformed_project_id_is_400(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    response = await api.get("/api/v1/projects/not-a-uuid", headers=auth_headers("ops"))
    assert response.status_code == 400
    assert response.json()["error"]["details"]["errors"][0]["in"] == "path"


@pytest.mark.parametrize("role", ["caller"])
async def test_callers_may_not_touch_projects(
    api: httpx.AsyncClient, auth_headers: Headers, role: str
) -> None:
    response = await api.post("/api/v1/projects", json=MANUAL_PROJECT, headers=auth_headers(role))
    assert response.status_code == 403
    assert (await api.post("/api/v1/projects", json=MANUAL_PROJECT)).status_code == 401


async def test_companies_are_upserted_by_case_insensitive_name(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project = await create_project(session)
    url = f"/api/v1/projects/{project.id}/companies"
    headers = auth_headers("ops")
    first = await api.post(
        url,
        json={
            "companies": [
                {"name": "Stripe", "domain": "stripe.com", "countryIso": "US"},
                {"name": "Wise", "domain": "wise.com", "countryIso": "GB"},
            ]
        },
        headers=headers,
    )
    assert first.status_code == 200
    assert first.json() == {"createdOrUpdated": 2}
    second = await api.post(
        url,
        json={"companies": [{"name": "STRIPE", "metadata": {"tier": 1}}, {"name": "Adyen"}]},
        headers=headers,
    )
    assert second.json() == {"createdOrUpdated": 2}
    rows = (
        await session.scalars(
            select(Company).where(Company.project_id == project.id).order_by(Company.name)
        )
    ).all()
    assert [(c.name, c.domain, c.country_iso) for c in rows] == [
        ("Adyen", None, None),
        ("STRIPE", "stripe.com", "US"),
        ("Wise", "wise.com", "GB"),
    ]
    assert rows[1].metadata_ == {"tier": 1}


async def test_sales_nav_searches_need_six_and_ignore_known_ones(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project = await create_project(session)
    url = f"/api/v1/projects/{project.id}/sales-nav-searches"
    headers = auth_headers("admin")
    searches = [
        {
            "sourceUrl": f"https://linkedin.com/sales/search/{i}",
            "normalizedUrl": f"https://linkedin.com/sales/search/{i}",
        }
        for i in range(1, 7)
    ]
    too_few = await api.post(url, json={"searches": searches[:5]}, headers=headers)
    assert too_few.status_code == 400
    assert too_few.json()["error"]["details"]["errors"][0]["field"] == "searches"

    created = await api.post(url, json={"searches": searches}, headers=headers)
    assert created.status_code == 201
    assert created.json() == {"created": 6}
    again = await api.post(
        url,
        json={"searches": [*searches[1:], {"sourceUrl": "https://linkedin.com/sales/search/7"}]},
        headers=headers,
    )
    assert again.json() == {"created": 1}
    count = await session.scalar(
        select(func.count())
        .select_from(SalesNavSearch)
        .where(SalesNavSearch.project_id == project.id)
    )
    assert count == 7


async def test_screening_questions_list_create_patch(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project = await create_project(session)
    other = await create_project(session)
    foreign = await create_screening_question(session, project_id=other.id)
    base = f"/api/v1/projects/{project.id}/screening-questions"
    headers = auth_headers("ops")

    second = await api.post(
        base,
        json={"prompt": "Which markets?", "displayOrder": 2, "required": False},
        headers=headers,
    )
    first = await api.post(
        base,
        json={
            "prompt": "How many years of experience do you have in fintech?",
            "displayOrder": 1,
            "required": True,
        },
        headers=headers,
    )
    assert first.status_code == second.status_code == 201
    listed = await api.get(base, headers=headers)
    assert [q["displayOrder"] for q in listed.json()["items"]] == [1, 2]

    patched = await api.patch(
        f"{base}/{first.json()['id']}", json={"prompt": "Updated question text"}, headers=headers
    )
    assert patched.status_code == 200
    assert patched.json()["prompt"] == "Updated question text"
    assert patched.json()["displayOrder"] == 1

    cross_project = await api.patch(f"{base}/{foreign.id}", json={"prompt": "x"}, headers=headers)
    assert cross_project.status_code == 404
    missing_prompt = await api.post(base, json={"displayOrder": 3}, headers=headers)
    assert missing_prompt.status_code == 400


async def _all_pages(
    api: httpx.AsyncClient, url: str, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await api.get(
            url, params={**params, **({"cursor": cursor} if cursor else {})}, headers=headers
        )
        assert page.status_code == 200, page.text
        items.extend(page.json()["items"])
        cursor = page.json()["nextCursor"]
        if cursor is None:
            return items


async def test_projects_list_in_pages_oldest_first_with_a_status_filter(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = auth_headers("ops")
    created = [await _create(api, headers, name=f"Project {n}") for n in range(5)]
    paused = created[1]["id"]
    patched = await api.patch(
        f"/api/v1/projects/{paused}", json={"status": "PAUSED"}, headers=headers
    )
    assert patched.status_code == 200, patched.text

    listed = await _all_pages(api, "/api/v1/projects", headers, limit=2)
    order = sorted(created, key=lambda p: (p["createdAt"], p["id"]))
    assert [p["id"] for p in listed] == [p["id"] for p in order]
    assert {p["name"] for p in listed} == {f"Project {n}" for n in range(5)}
    assert [
        p["id"] for p in await _all_pages(api, "/api/v1/projects", headers, status="PAUSED")
    ] == [paused]
    active = await _all_pages(api, "/api/v1/projects", headers, status="ACTIVE", limit=3)
    assert len(active) == 4 and paused not in {p["id"] for p in active}


@pytest.mark.parametrize(
    "params",
    [{"limit": 0}, {"limit": 101}, {"status": "DONE"}, {"cursor": "nope"}, {"stauts": "ACTIVE"}],
)
async def test_bad_project_list_parameters_are_400(
    api: httpx.AsyncClient, auth_headers: Headers, params: dict[str, Any]
) -> None:
    response = await api.get("/api/v1/projects", params=params, headers=auth_headers("admin"))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_payload"


async def test_auto_outreach_is_set_changed_and_cleared_through_the_api(
    api: httpx.AsyncClient, auth_headers: Headers
) -> None:
    headers = auth_headers("ops")
    template = "Hi {first_name}, a paid call about {project_name}?"
    project = await _create(
        api, headers, autoOutreachChannel="email", autoOutreachTemplate=template
    )
    assert (project["autoOutreachChannel"], project["autoOutreachTemplate"]) == ("EMAIL", template)
    url = f"/api/v1/projects/{project['id']}"

    changed = await api.patch(url, json={"autoOutreachChannel": "SMS"}, headers=headers)
    assert changed.status_code == 200, changed.text
    assert changed.json()["autoOutreachChannel"] == "SMS"
    assert changed.json()["autoOutreachTemplate"] == template  # untouched when not sent
    renamed = await api.patch(url, json={"name": "Renamed", "targetThreshold": 7}, headers=headers)
    assert renamed.json()["autoOutreachChannel"] == "SMS" and renamed.json()["targetThreshold"] == 7

    cleared = await api.patch(
        url, json={"autoOutreachChannel": None, "autoOutreachTemplate": None}, headers=headers
    )
    assert cleared.status_code == 200, cleared.text
    assert (cleared.json()["autoOutreachChannel"], cleared.json()["autoOutreachTemplate"]) == (
        None,
        None,
    )
    assert (await api.get(url, headers=headers)).json()["autoOutreachChannel"] is None

    for bad in ({"autoOutreachChannel": "PIGEON"}, {"autoOutreachTemplate": ""}):
        refused = await api.patch(url, json=bad, headers=headers)
        assert refused.status_code == 400, refused.text
        assert refused.json()["error"]["details"]["errors"][0]["field"] == next(iter(bad))
