"""Queries of the sourcing area's write side in the gateway: job-title discovery runs."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Company, JobTitleDiscoveryRun, Project


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def company_ids_of_project(
    session: AsyncSession, project_id: uuid.UUID, company_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """The subset of ``company_ids`` that are companies of the project."""
    wanted = list(set(company_ids))
    if not wanted:
        return set()
    found = await session.scalars(
        select(Company.id).where(Company.project_id == project_id, Company.id.in_(wanted))
    )
    return set(found.all())


async def create_discovery_run(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    companies: Sequence[dict[str, Any]],
    geography_iso_codes: Sequence[str],
    requested_by: str | None,
    correlation_id: str | None,
) -> JobTitleDiscoveryRun:
    run = JobTitleDiscoveryRun(
        id=uuid.uuid4(),
        project_id=project_id,
        requested_companies=list(companies),
        geography_iso_codes=list(geography_iso_codes),
        requested_by=requested_by,
        correlation_id=correlation_id,
    )
    session.add(run)
    await session.flush()
    return run
