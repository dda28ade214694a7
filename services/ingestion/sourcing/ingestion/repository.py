"""Every query of the ingestion service (searches, experts, leads, contacts, job titles).

Identity-sensitive writes are single statements guarded by the unique indexes
(``INSERT ... ON CONFLICT``), so two transactions racing on one person end with one row.
Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    Company,
    Expert,
    ExpertContact,
    JobTitle,
    JobTitleDiscoveryRun,
    Lead,
    Project,
    SalesNavSearch,
)

# --- projects and searches --------------------------------------------------------------------


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def record_search_delivery(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    search_url: str,
    leads: int,
    received_at: datetime,
) -> uuid.UUID:
    """The project's SalesNavSearch for ``search_url`` (registered when new), with its
    ``leads_received`` counter and ``last_webhook_at`` updated; returns its id.

    A search registered through the API matches on its normalised or its source URL; a new one
    is registered with the URL as its normalised URL (as the API does when none is given).
    """
    registered = await session.scalar(
        select(SalesNavSearch.id)
        .where(
            SalesNavSearch.project_id == project_id,
            or_(
                SalesNavSearch.normalized_url == search_url, SalesNavSearch.source_url == search_url
            ),
        )
        .order_by(SalesNavSearch.normalized_url != search_url)  # exact normalised match first
        .limit(1)
    )
    last_webhook_at = func.greatest(
        func.coalesce(SalesNavSearch.last_webhook_at, received_at), received_at
    )
    if registered is not None:
        await session.execute(
            update(SalesNavSearch)
            .where(SalesNavSearch.id == registered)
            .values(
                leads_received=SalesNavSearch.leads_received + leads,
                last_webhook_at=last_webhook_at,
                updated_at=func.now(),
            )
        )
        return registered
    statement = insert(SalesNavSearch).values(
        project_id=project_id,
        source_url=search_url,
        normalized_url=search_url,
        leads_received=leads,
        last_webhook_at=received_at,
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[SalesNavSearch.project_id, SalesNavSearch.normalized_url],
        set_={
            "leads_received": SalesNavSearch.leads_received + leads,
            "last_webhook_at": last_webhook_at,
            "updated_at": func.now(),
        },
    ).returning(SalesNavSearch.id)
    search_id: uuid.UUID = (await session.execute(upsert)).scalar_one()
    return search_id


async def search_exists(session: AsyncSession, search_id: uuid.UUID) -> bool:
    return bool(await session.scalar(select(exists().where(SalesNavSearch.id == search_id))))


# --- experts ------------------------------------------------------------------------------------


async def find_expert_id(
    session: AsyncSession, *, linkedin_url: str | None, email: str | None
) -> uuid.UUID | None:
    """The expert with this LinkedIn identity, else with this email."""
    if linkedin_url is not None:
        found = await session.scalar(
            select(Expert.id).where(Expert.linkedin_url_normalized == linkedin_url)
        )
        if found is not None:
            return found
    if email is not None:
        return await session.scalar(select(Expert.id).where(Expert.primary_email == email))
    return None


async def insert_expert(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert an expert; None when a unique identity (LinkedIn URL or email) already exists.

    ``ON CONFLICT DO NOTHING`` without a target covers both partial unique indexes; a
    conflicting row of a transaction still in flight makes this wait for its outcome.
    """
    statement = insert(Expert).values(**values).on_conflict_do_nothing().returning(Expert.id)
    return (await session.execute(statement)).scalar_one_or_none()


async def attach_linkedin(session: AsyncSession, expert_id: uuid.UUID, linkedin_url: str) -> None:
    """Give an email-only expert the LinkedIn identity a later lead revealed."""
    await session.execute(
        update(Expert)
        .where(Expert.id == expert_id, Expert.linkedin_url_normalized.is_(None))
        .values(linkedin_url_normalized=linkedin_url, updated_at=func.now())
    )


async def attach_email(session: AsyncSession, expert_id: uuid.UUID, email: str) -> None:
    """Give an expert without a primary email this one, unless another expert has it."""
    other = select(Expert.id).where(Expert.primary_email == email).exists()
    await session.execute(
        update(Expert)
        .where(Expert.id == expert_id, Expert.primary_email.is_(None), ~other)
        .values(primary_email=email, updated_at=func.now())
    )


async def fill_expert_blanks(
    session: AsyncSession, expert_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """Set the given attributes where the expert has none yet (first delivery wins, so a
    redelivery changes nothing)."""
    changes = {
        getattr(Expert, name): func.coalesce(getattr(Expert, name), value)
        for name, value in values.items()
        if value is not None
    }
    if changes:
        await session.execute(update(Expert).where(Expert.id == expert_id).values(changes))


async def add_contacts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    if not rows:
        return
    await session.execute(
        insert(ExpertContact)
        .values(list(rows))
        .on_conflict_do_nothing(
            index_elements=[
                ExpertContact.expert_id,
                ExpertContact.type,
                ExpertContact.value_normalized,
            ]
        )
    )


# --- leads --------------------------------------------------------------------------------------


async def insert_lead(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert a lead; None when this person already came from this search (a redelivery)."""
    statement = (
        insert(Lead)
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Lead.expert_id, Lead.sales_nav_search_id])
        .returning(Lead.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


# --- job-title discovery ------------------------------------------------------------------------


async def get_run_for_update(
    session: AsyncSession, run_id: uuid.UUID
) -> JobTitleDiscoveryRun | None:
    return await session.get(
        JobTitleDiscoveryRun, run_id, with_for_update=True, populate_existing=True
    )


async def get_company(session: AsyncSession, company_id: uuid.UUID) -> Company | None:
    return await session.get(Company, company_id)


async def upsert_company_by_name(
    session: AsyncSession, *, project_id: uuid.UUID, name: str
) -> uuid.UUID:
    """The project's company of that name (case-insensitive), created when missing."""
    statement = insert(Company).values(project_id=project_id, name=name)
    upsert = statement.on_conflict_do_update(
        index_elements=[Company.project_id, func.lower(Company.name)],
        set_={"updated_at": func.now()},
    ).returning(Company.id)
    company_id: uuid.UUID = (await session.execute(upsert)).scalar_one()
    return company_id


async def upsert_job_titles(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert or update titles by (company, normalised title); returns how many rows."""
    if not rows:
        return 0
    statement = insert(JobTitle).values(list(rows))
    excluded = statement.excluded
    upsert = statement.on_conflict_do_update(
        index_elements=[JobTitle.company_id, JobTitle.normalized_title],
        set_={
            "title": excluded.title,
            "relevance_score": excluded.relevance_score,
            "seniority": excluded.seniority,
            "source": excluded.source,
            "rationale": excluded.rationale,
            "discovery_run_id": excluded.discovery_run_id,
            "metadata": JobTitle.metadata_.op("||")(excluded.metadata),
            "updated_at": func.now(),
        },
    ).returning(JobTitle.id)
    return len((await session.execute(upsert)).all())
