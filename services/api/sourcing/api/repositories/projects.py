"""Queries of the projects area: projects, companies, Sales Nav searches, screening questions."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Company, Project, SalesNavSearch, ScreeningQuestion


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def get_project_for_update(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id, with_for_update=True)


async def upsert_companies(
    session: AsyncSession, project_id: uuid.UUID, companies: Sequence[dict[str, Any]]
) -> int:
    """Insert or update companies by case-insensitive name within the project."""
    # One row per name: PostgreSQL refuses to update the same row twice in one statement.
    by_name = {company["name"].lower(): company for company in companies}
    rows = [{"project_id": project_id, **company} for company in by_name.values()]
    statement = insert(Company).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[Company.project_id, func.lower(Company.name)],
        set_={
            "name": statement.excluded.name,
            "domain": func.coalesce(statement.excluded.domain, Company.domain),
            "country_iso": func.coalesce(statement.excluded.country_iso, Company.country_iso),
            "metadata": Company.metadata_.op("||")(statement.excluded.metadata),
            "updated_at": func.now(),
        },
    )
    result = await session.execute(statement.returning(Company.id))
    return len(result.all())


async def add_sales_nav_searches(
    session: AsyncSession, project_id: uuid.UUID, searches: Sequence[dict[str, str]]
) -> int:
    """Register searches; ones the project already has are left as they are. Returns new ones."""
    by_url = {search["normalized_url"]: search for search in searches}
    statement = (
        insert(SalesNavSearch)
        .values([{"project_id": project_id, **search} for search in by_url.values()])
        .on_conflict_do_nothing(index_elements=["project_id", "normalized_url"])
        .returning(SalesNavSearch.id)
    )
    result = await session.execute(statement)
    return len(result.all())


async def list_screening_questions(
    session: AsyncSession, project_id: uuid.UUID
) -> Sequence[ScreeningQuestion]:
    result = await session.scalars(
        select(ScreeningQuestion)
        .where(ScreeningQuestion.project_id == project_id)
        .order_by(ScreeningQuestion.display_order, ScreeningQuestion.created_at)
    )
    return result.all()


async def get_screening_question(
    session: AsyncSession, project_id: uuid.UUID, question_id: uuid.UUID
) -> ScreeningQuestion | None:
    question = await session.get(ScreeningQuestion, question_id)
    if question is None or question.project_id != project_id:
        return None
    return question
