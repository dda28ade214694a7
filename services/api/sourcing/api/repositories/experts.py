"""Queries of the experts side: a project's leads with experts and contacts, one expert, and an
operator's contacts."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import EnrichmentAttempt, Expert, ExpertContact, Lead, Project


async def project_exists(session: AsyncSession, project_id: uuid.UUID) -> bool:
    found = await session.execute(select(Project.id).where(Project.id == project_id))
    return found.scalar_one_or_none() is not None


async def project_leads(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    status: str | None,
    limit: int,
    offset: int,
) -> tuple[list[tuple[Lead, Expert]], int]:
    """A page of the project's leads with their experts, best latest score first (unscored
    last), lead id breaking ties; and the total matching the filter."""
    conditions: list[Any] = [Lead.project_id == project_id]
    if status is not None:
        conditions.append(Lead.status == status)
    total = (
        await session.execute(select(func.count()).select_from(Lead).where(*conditions))
    ).scalar_one()
    rows = await session.execute(
        select(Lead, Expert)
        .join(Expert, Expert.id == Lead.expert_id)
        .where(*conditions)
        .order_by(Lead.ranking_score.desc().nulls_last(), Lead.id)
        .limit(limit)
        .offset(offset)
    )
    return [(lead, expert) for lead, expert in rows], int(total)


async def contacts_of(
    session: AsyncSession, expert_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[ExpertContact]]:
    """Contacts per expert, most confident first."""
    by_expert: dict[uuid.UUID, list[ExpertContact]] = defaultdict(list)
    if not expert_ids:
        return by_expert
    rows = await session.execute(
        select(ExpertContact)
        .where(ExpertContact.expert_id.in_(list(set(expert_ids))))
        .order_by(
            ExpertContact.expert_id,
            ExpertContact.confidence.desc().nulls_last(),
            ExpertContact.type,
            ExpertContact.value_normalized,
        )
    )
    for contact in rows.scalars():
        by_expert[contact.expert_id].append(contact)
    return by_expert


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


async def add_contact(session: AsyncSession, values: dict[str, Any]) -> ExpertContact:
    """Insert the contact, or return the expert's existing one with the same normalised value
    (marked primary when asked); a new primary contact demotes the expert's others of its
    type."""
    if values.get("is_primary"):
        await session.execute(
            update(ExpertContact)
            .where(
                ExpertContact.expert_id == values["expert_id"],
                ExpertContact.type == values["type"],
                ExpertContact.value_normalized != values["value_normalized"],
            )
            .values(is_primary=False)
            .execution_options(synchronize_session=False)
        )
    insert = pg_insert(ExpertContact).values(**values)
    statement = insert.on_conflict_do_update(
        index_elements=[
            ExpertContact.expert_id,
            ExpertContact.type,
            ExpertContact.value_normalized,
        ],
        set_={
            "is_primary": ExpertContact.is_primary | insert.excluded.is_primary,
            "updated_at": func.now(),
        },
    ).returning(ExpertContact.id)
    contact_id = (await session.execute(statement)).scalar_one()
    contact = await session.get(ExpertContact, contact_id, populate_existing=True)
    assert contact is not None  # noqa: S101 - narrows the type: the row was just upserted
    return contact


async def project_ids_of_expert(session: AsyncSession, expert_id: uuid.UUID) -> list[uuid.UUID]:
    rows = await session.scalars(
        select(Lead.project_id)
        .where(Lead.expert_id == expert_id)
        .distinct()
        .order_by(Lead.project_id)
    )
    return list(rows)


async def leads_of_expert(session: AsyncSession, expert_id: uuid.UUID) -> list[Lead]:
    rows = await session.execute(
        select(Lead).where(Lead.expert_id == expert_id).order_by(Lead.created_at, Lead.id)
    )
    return list(rows.scalars().all())


@dataclass(frozen=True, slots=True)
class ProviderSummary:
    provider: str
    attempts: int
    successes: int
    best_confidence: float | None
    last_status: str
    last_attempt_at: datetime
    average_latency_ms: float | None


async def attempt_summary(session: AsyncSession, expert_id: uuid.UUID) -> list[ProviderSummary]:
    """Per provider: attempts, successes, best confidence, average latency, latest status."""
    latest = (
        select(
            EnrichmentAttempt.provider,
            EnrichmentAttempt.status,
            EnrichmentAttempt.created_at,
            func.row_number()
            .over(
                partition_by=EnrichmentAttempt.provider,
                order_by=(EnrichmentAttempt.created_at.desc(), EnrichmentAttempt.id.desc()),
            )
            .label("position"),
        )
        .where(EnrichmentAttempt.expert_id == expert_id)
        .subquery()
    )
    totals = (
        select(
            EnrichmentAttempt.provider,
            func.count().label("attempts"),
            func.count().filter(EnrichmentAttempt.status == "SUCCESS").label("successes"),
            func.max(EnrichmentAttempt.confidence).label("best"),
            func.avg(EnrichmentAttempt.latency_ms).label("latency"),
        )
        .where(EnrichmentAttempt.expert_id == expert_id)
        .group_by(EnrichmentAttempt.provider)
        .subquery()
    )
    rows = await session.execute(
        select(
            totals.c.provider,
            totals.c.attempts,
            totals.c.successes,
            totals.c.best,
            totals.c.latency,
            latest.c.status,
            latest.c.created_at,
        )
        .join(latest, (latest.c.provider == totals.c.provider) & (latest.c.position == 1))
        .order_by(totals.c.provider)
    )
    return [
        ProviderSummary(
            provider=provider,
            attempts=int(attempts),
            successes=int(successes),
            best_confidence=float(best) if best is not None else None,
            last_status=status,
            last_attempt_at=created_at,
            average_latency_ms=round(float(latency), 1) if latency is not None else None,
        )
        for provider, attempts, successes, best, latency, status, created_at in rows
    ]
