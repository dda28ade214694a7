"""The experts read side through the real gateway: roles, 404, 400, paging, filter, ordering,
contacts with provenance and the enrichment summary."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Expert, Project
from tests.factories import (
    create_enrichment_attempt,
    create_expert,
    create_expert_contact,
    create_lead,
    create_project,
    create_sales_nav_search,
)

Headers = Callable[..., dict[str, str]]


async def _sourced(session: AsyncSession) -> tuple[Project, list[Expert]]:
    """A project with five leads: scores 90, 70, 50, none, none; the first two enriched."""
    project = await create_project(session)
    search = await create_sales_nav_search(session, project=project)
    experts: list[Expert] = []
    for index, (status, score) in enumerate(
        [
            ("ENRICHED", 90.0),
            ("ENRICHED", 70.0),
            ("ENRICHMENT_FAILED", 50.0),
            ("ENRICHING", None),
            ("ENRICHMENT_FAILED", None),
        ]
    ):
        expert = await create_expert(session, full_name=f"Person {index}")
        await create_lead(
            session,
            project=project,
            expert=expert,
            search=search,
            status=status,
            ranking_score=score,
            status_reason="no provider found a contact" if status.endswith("FAILED") else None,
        )
        experts.append(expert)
    return project, experts


async def test_roles(api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession) -> None:
    project, experts = await _sourced(session)
    for path in (f"/api/v1/projects/{project.id}/experts", f"/api/v1/experts/{experts[0].id}"):
        assert (await api.get(path)).status_code == 401
        assert (await api.get(path, headers=auth_headers("caller"))).status_code == 403
        assert (await api.get(path, headers=auth_headers("ops"))).status_code == 200
        assert (await api.get(path, headers=auth_headers("admin"))).status_code == 200


async def test_unknown_ids_are_404(api: httpx.AsyncClient, auth_headers: Headers) -> None:
    for path in (f"/api/v1/projects/{uuid.uuid4()}/experts", f"/api/v1/experts/{uuid.uuid4()}"):
        response = await api.get(path, headers=auth_headers("admin"))
        assert response.status_code == 404
        assert response.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize(
    "query", ["status=BOGUS", "limit=0", "limit=101", "offset=-1", "limit=abc"]
)
async def test_bad_filters_are_400(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession, query: str
) -> None:
    project, _ = await _sourced(session)
    response = await api.get(
        f"/api/v1/projects/{project.id}/experts?{query}", headers=auth_headers("ops")
    )
    assert response.status_code == 400
    assert set(response.json()["error"]) >= {"code", "message", "details"}


async def test_sorted_by_score_then_id_and_paged(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project, experts = await _sourced(session)
    path = f"/api/v1/projects/{project.id}/experts"
    pages = []
    for offset in (0, 2, 4):
        response = await api.get(f"{path}?limit=2&offset={offset}", headers=auth_headers("ops"))
        assert response.status_code == 200
        body = response.json()
        assert body["total"] == 5 and body["limit"] == 2 and body["offset"] == offset
        pages.append(body["items"])
    assert [len(page) for page in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    assert [item["rankingScore"] for item in items[:3]] == [90.0, 70.0, 50.0]
    assert [item["expertId"] for item in items[:3]] == [str(e.id) for e in experts[:3]]
    unscored = [item["leadId"] for item in items[3:]]
    assert unscored == sorted(unscored)  # stable: lead id breaks the tie
    assert len({item["leadId"] for item in items}) == 5


async def test_filter_by_status(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project, _ = await _sourced(session)
    response = await api.get(
        f"/api/v1/projects/{project.id}/experts?status=ENRICHMENT_FAILED",
        headers=auth_headers("admin"),
    )
    body = response.json()
    assert body["total"] == 2
    assert {item["leadStatus"] for item in body["items"]} == {"ENRICHMENT_FAILED"}
    assert all(item["statusReason"] == "no provider found a contact" for item in body["items"])


async def test_items_carry_contacts(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project, experts = await _sourced(session)
    await create_expert_contact(
        session, expert=experts[0], value="p0@acme.com", value_normalized="p0@acme.com",
        provider="leadmagic", confidence=0.95,
    )  # fmt: skip
    response = await api.get(
        f"/api/v1/projects/{project.id}/experts?limit=1", headers=auth_headers("ops")
    )
    [item] = response.json()["items"]
    assert item["leadStatus"] == "ENRICHED"
    assert [(c["value"], c["provider"], c["confidence"]) for c in item["contacts"]] == [
        ("p0@acme.com", "leadmagic", 0.95)
    ]


async def test_expert_detail(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project, experts = await _sourced(session)
    expert = experts[0]
    other = await create_project(session)
    await create_lead(session, project=other, expert=expert, status="NEW")
    await create_expert_contact(
        session, expert=expert, value="p0@acme.com", value_normalized="p0@acme.com",
        provider="prospeo", confidence=0.9,
    )  # fmt: skip
    for status, confidence in (("TIMEOUT", None), ("SUCCESS", 0.9)):
        await create_enrichment_attempt(
            session, expert=expert, provider="prospeo", status=status, confidence=confidence,
            latency_ms=100,
        )  # fmt: skip
    await create_enrichment_attempt(
        session, expert=expert, provider="exa", status="NO_MATCH", latency_ms=40
    )

    response = await api.get(f"/api/v1/experts/{expert.id}", headers=auth_headers("ops"))
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == str(expert.id) and body["suppressed"] is False
    assert [(c["value"], c["provider"], c["confidence"]) for c in body["contacts"]] == [
        ("p0@acme.com", "prospeo", 0.9)
    ]
    summary = {row["provider"]: row for row in body["enrichment"]}
    assert set(summary) == {"prospeo", "exa"}
    assert summary["prospeo"]["attempts"] == 2 and summary["prospeo"]["successes"] == 1
    assert summary["prospeo"]["bestConfidence"] == 0.9
    assert summary["prospeo"]["averageLatencyMs"] == 100.0
    assert summary["exa"]["lastStatus"] == "NO_MATCH" and summary["exa"]["successes"] == 0
    assert {lead["projectId"] for lead in body["leads"]} == {str(project.id), str(other.id)}
