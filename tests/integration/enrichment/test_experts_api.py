"""The experts read side through the real gateway: roles, 404, 400, one row per expert with
their lead count and best lead status, cursor paging, filter, ordering, contacts with
provenance and the enrichment summary."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

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
    "query",
    ["status=BOGUS", "limit=0", "limit=101", "limit=abc", "cursor=not-a-cursor", "offset=0"],
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


async def _all_pages(
    api: httpx.AsyncClient, headers: dict[str, str], path: str, limit: int
) -> list[list[dict[str, Any]]]:
    """Every page of ``path``, following ``nextCursor`` until it is null."""
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, Any] = {"limit": limit}
    while True:
        response = await api.get(path, params=params, headers=headers)
        assert response.status_code == 200, response.text
        body = response.json()
        assert set(body) == {"items", "nextCursor"}
        pages.append(body["items"])
        if body["nextCursor"] is None:
            return pages
        assert len(pages) < 10, "the cursor never ends"
        params["cursor"] = body["nextCursor"]


async def test_sorted_by_score_then_id_and_paged_by_cursor(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project, experts = await _sourced(session)
    path = f"/api/v1/projects/{project.id}/experts"
    pages = await _all_pages(api, auth_headers("ops"), path, limit=2)
    assert [len(page) for page in pages] == [2, 2, 1]
    items = [item for page in pages for item in page]
    assert [item["rankingScore"] for item in items[:3]] == [90.0, 70.0, 50.0]
    assert [item["expertId"] for item in items[:3]] == [str(e.id) for e in experts[:3]]
    unscored = [item["expertId"] for item in items[3:]]
    assert unscored == sorted(unscored)  # stable: expert id breaks the tie
    assert {item["expertId"] for item in items} == {str(e.id) for e in experts}


async def test_one_row_per_expert_with_lead_count_and_best_status(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    """3 experts through 5 leads (from 3 searches): 3 rows, paged by 2 without loss or repeat,
    even with two experts on the same score."""
    project = await create_project(session)
    searches = [await create_sales_nav_search(session, project=project) for _ in range(3)]
    other = await create_project(session)  # another project's lead is not counted
    ana, bo, cy = [await create_expert(session, full_name=name) for name in ("Ana", "Bo", "Cy")]
    leads = {
        ana: [("ENRICHED", 80.0), ("CONTACTED", 80.0), ("ENRICHMENT_FAILED", 80.0)],
        bo: [("NEW", 80.0)],
        cy: [("DISQUALIFIED", None), ("ENRICHING", None)],
    }
    for expert, statuses in leads.items():
        for search, (status, score) in zip(searches, statuses, strict=False):
            await create_lead(
                session,
                project=project,
                expert=expert,
                search=search,
                status=status,
                ranking_score=score,
            )
    await create_lead(session, project=other, expert=bo, status="REPLIED")

    pages = await _all_pages(
        api, auth_headers("ops"), f"/api/v1/projects/{project.id}/experts", limit=2
    )
    assert [len(page) for page in pages] == [2, 1]
    items = [item for page in pages for item in page]
    rows = {item["expertId"]: item for item in items}
    assert len(items) == len(rows) == 3  # each expert exactly once
    tied = sorted([str(ana.id), str(bo.id)])
    assert [item["expertId"] for item in items] == [*tied, str(cy.id)]
    summary = {
        expert.full_name: (
            rows[str(expert.id)]["leadCount"],
            rows[str(expert.id)]["bestLeadStatus"],
            [lead["status"] for lead in rows[str(expert.id)]["leads"]],
        )
        for expert in (ana, bo, cy)
    }
    assert summary == {
        "Ana": (3, "CONTACTED", ["CONTACTED", "ENRICHED", "ENRICHMENT_FAILED"]),
        "Bo": (1, "NEW", ["NEW"]),
        "Cy": (2, "ENRICHING", ["ENRICHING", "DISQUALIFIED"]),
    }

    contacted = await api.get(
        f"/api/v1/projects/{project.id}/experts?status=CONTACTED", headers=auth_headers("ops")
    )
    assert [item["expertId"] for item in contacted.json()["items"]] == [str(ana.id)]


async def test_filter_by_best_status(
    api: httpx.AsyncClient, auth_headers: Headers, session: AsyncSession
) -> None:
    project, _ = await _sourced(session)
    response = await api.get(
        f"/api/v1/projects/{project.id}/experts?status=ENRICHMENT_FAILED",
        headers=auth_headers("admin"),
    )
    items = response.json()["items"]
    assert len(items) == 2
    assert {item["bestLeadStatus"] for item in items} == {"ENRICHMENT_FAILED"}
    assert all(item["leads"][0]["statusReason"] == "no provider found a contact" for item in items)


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
    assert item["bestLeadStatus"] == "ENRICHED" and item["leadCount"] == 1
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
