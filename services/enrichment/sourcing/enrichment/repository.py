"""Every query of the enrichment service (enrichment waterfall and ranking)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import Any, cast

from sqlalchemy import (
    Exists,
    Select,
    Table,
    Uuid,
    any_,
    bindparam,
    case,
    func,
    insert,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.postgresql.dml import Insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import (
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    JobTitle,
    Lead,
    Project,
    ProviderCircuit,
    RankingSnapshot,
)
from sourcing.common.models.enums import ContactSource, ContactType, EnrichmentAttemptStatus
from sourcing.enrichment.guard import CircuitSnapshot
from sourcing.enrichment.waterfall import ProviderStats
from sourcing.people.suppression import suppressed_expert


@dataclass(frozen=True, slots=True)
class LeadContext:
    lead: Lead
    expert: Expert
    project: Project
    # The person rule (never contact again) for the expert, read in the same statement.
    suppressed: bool


_LEAD_IDS = bindparam("lead_ids", type_=ARRAY(Uuid()))


@cache
def _contexts_statement() -> Select[Lead, Expert, Project, bool]:
    """The leads ``:lead_ids`` with their experts, projects and the person rule: built once
    (the suppression rule is a tree of subqueries), for any number of leads."""
    return (
        select(Lead, Expert, Project, suppressed_expert().label("suppressed"))
        .join(Expert, Expert.id == Lead.expert_id)
        .join(Project, Project.id == Lead.project_id)
        .where(Lead.id == any_(_LEAD_IDS))
    )


async def get_lead_context(session: AsyncSession, lead_id: uuid.UUID) -> LeadContext | None:
    """The lead with its expert and project, read without locks (lookups follow)."""
    row = (await session.execute(_contexts_statement(), {"lead_ids": [lead_id]})).first()
    if row is None:
        return None
    return LeadContext(*row)


@dataclass(frozen=True, slots=True)
class PlanningContext:
    """What planning a lead's enrichment reads, in one statement."""

    context: LeadContext
    # One of the lead's attempts still waits for a callback.
    pending: bool
    # The best confidence among the expert's contacts found by enrichment, if any.
    best_confidence: float | None


@cache
def _planning_statement() -> Select[Any]:
    return _contexts_statement().add_columns(
        _pending_attempt(Lead.id).label("pending"),
        _best_enriched_confidence(Expert.id).scalar_subquery().label("best"),
    )


async def get_planning_contexts(
    session: AsyncSession, lead_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, PlanningContext]:
    """The leads (those that exist) with their experts and projects, whether each waits for a
    callback and the best confidence its expert's enriched contacts have, read without locks
    in one statement."""
    rows = await session.execute(_planning_statement(), {"lead_ids": list(lead_ids)})
    return {
        lead.id: PlanningContext(
            context=LeadContext(lead, expert, project, suppressed),
            pending=bool(pending),
            best_confidence=float(best) if best is not None else None,
        )
        for lead, expert, project, suppressed, pending, best in rows
    }


@cache
def _locking_statement() -> Select[Lead, Expert, Project, bool]:
    return (
        _contexts_statement()
        .order_by(Lead.id)
        .with_for_update(of=Lead)
        .execution_options(populate_existing=True)
    )


async def lock_lead_contexts(
    session: AsyncSession, lead_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, LeadContext]:
    """The leads, row-locked (in id order) for the status write (taken only after the provider
    calls), each with its expert and project read fresh (not locked) in the same statement."""
    if not lead_ids:
        return {}
    rows = await session.execute(_locking_statement(), {"lead_ids": list(lead_ids)})
    return {row[0].id: LeadContext(*row) for row in rows}


async def provider_stats_by_country(
    session: AsyncSession, *, since: datetime
) -> dict[str | None, dict[str, ProviderStats]]:
    """Attempts and successes per person's country (the lead's, else the expert's; None when
    unknown) and provider since ``since`` (unconfigured providers excluded)."""
    successes = func.count(case((EnrichmentAttempt.status == EnrichmentAttemptStatus.SUCCESS, 1)))
    country = func.upper(func.coalesce(Lead.country_iso, Expert.country_iso))
    rows = await session.execute(
        select(country, EnrichmentAttempt.provider, func.count(), successes)
        .join(Expert, Expert.id == EnrichmentAttempt.expert_id)
        .outerjoin(Lead, Lead.id == EnrichmentAttempt.lead_id)
        .where(
            EnrichmentAttempt.created_at >= since,
            EnrichmentAttempt.status != EnrichmentAttemptStatus.UNAVAILABLE,
        )
        .group_by(country, EnrichmentAttempt.provider)
    )
    stats: dict[str | None, dict[str, ProviderStats]] = {}
    for iso, provider, total, ok in rows:
        stats.setdefault(iso, {})[provider] = ProviderStats(attempts=int(total), successes=int(ok))
    return stats


async def project_credits_spent(session: AsyncSession, project_id: uuid.UUID) -> float:
    """Credits the enrichment attempts of the project's leads cost."""
    spent = await session.scalar(
        select(func.coalesce(func.sum(EnrichmentAttempt.credits), 0.0))
        .join(Lead, Lead.id == EnrichmentAttempt.lead_id)
        .where(Lead.project_id == project_id)
    )
    return float(spent or 0.0)


async def save_circuits(
    session: AsyncSession, circuits: Sequence[CircuitSnapshot], *, instance: str, now: datetime
) -> None:
    """Upsert this process's breakers as they are now (``provider_circuits``)."""
    table = cast(Table, ProviderCircuit.__table__)
    rows = [
        {
            "provider": circuit.provider,
            "instance": instance,
            "state": circuit.state.value,
            "failures": circuit.failures,
            "open_until": now + timedelta(seconds=circuit.open_for)
            if circuit.open_for is not None
            else None,
            "updated_at": now,
        }
        for circuit in circuits
    ]
    statement = pg_insert(table).values(rows)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.provider, table.c.instance],
        set_={
            name: statement.excluded[name]
            for name in ("state", "failures", "open_until", "updated_at")
        },
    )
    await session.execute(statement)


def _best_enriched_confidence(expert_id: Any) -> Select[float | None]:
    return select(func.max(ExpertContact.confidence)).where(
        ExpertContact.expert_id == expert_id,
        ExpertContact.source == ContactSource.ENRICHMENT,
    )


async def best_enriched_confidence(session: AsyncSession, expert_id: uuid.UUID) -> float | None:
    """The best confidence among the expert's contacts found by enrichment, if any."""
    value = (await session.execute(_best_enriched_confidence(expert_id))).scalar_one_or_none()
    return float(value) if value is not None else None


async def add_attempts(session: AsyncSession, attempts: Sequence[EnrichmentAttempt]) -> None:
    """Insert a run's attempts in one multi-row statement (Core: no unit of work to flush).

    The rows are not in the session; a later read of them (callbacks, the timeout sweep)
    loads them from the database. A column with a server default that no attempt sets keeps
    it; the others are written as the unit of work writes them (None as JSON ``null`` in a
    JSON column).
    """
    if not attempts:
        return
    table = cast(Table, EnrichmentAttempt.__table__)
    names = [
        column.key
        for column in table.columns
        if column.server_default is None
        or any(getattr(attempt, column.key) is not None for attempt in attempts)
    ]
    rows = [{name: getattr(attempt, name) for name in names} for attempt in attempts]
    await session.execute(insert(table), rows)


def _pending_attempt(lead_id: Any) -> Exists:
    return (
        select(EnrichmentAttempt.id)
        .where(
            EnrichmentAttempt.lead_id == lead_id,
            EnrichmentAttempt.status == EnrichmentAttemptStatus.PENDING,
        )
        .exists()
    )


async def run_attempts(session: AsyncSession, run_id: uuid.UUID) -> list[EnrichmentAttempt]:
    """One waterfall run's attempts, in the order they were written."""
    rows = await session.execute(
        select(EnrichmentAttempt)
        .where(EnrichmentAttempt.run_id == run_id)
        .order_by(EnrichmentAttempt.created_at, EnrichmentAttempt.id)
    )
    return list(rows.scalars().all())


async def lock_callback_attempt(
    session: AsyncSession, request_id: uuid.UUID
) -> EnrichmentAttempt | None:
    """The attempt of a callback request id, row-locked (its two callbacks never interleave)."""
    attempt: EnrichmentAttempt | None = (
        await session.execute(
            select(EnrichmentAttempt)
            .where(EnrichmentAttempt.callback_request_id == request_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
    ).scalar_one_or_none()
    return attempt


async def lock_pending_attempts(
    session: AsyncSession, *, created_before: datetime, limit: int
) -> list[EnrichmentAttempt]:
    """PENDING attempts placed before ``created_before``, oldest first, row-locked (a callback
    being recorded right now keeps its row: skipped, it settles by itself)."""
    rows = await session.execute(
        select(EnrichmentAttempt)
        .where(
            EnrichmentAttempt.status == EnrichmentAttemptStatus.PENDING,
            EnrichmentAttempt.created_at < created_before,
        )
        .order_by(EnrichmentAttempt.created_at, EnrichmentAttempt.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )
    return list(rows.scalars().all())


def _upsert_contacts_statement() -> Insert:
    # Compiled once whatever the number of rows (executed with a list of parameter sets).
    table = cast(Table, ExpertContact.__table__)
    statement = pg_insert(table)
    excluded = statement.excluded
    better = excluded.confidence > func.coalesce(table.c.confidence, -1.0)
    return statement.on_conflict_do_update(
        index_elements=[table.c.expert_id, table.c.type, table.c.value_normalized],
        set_={
            "confidence": case((better, excluded.confidence), else_=table.c.confidence),
            "provider": case((better, excluded.provider), else_=table.c.provider),
            "enrichment_attempt_id": case(
                (better, excluded.enrichment_attempt_id), else_=table.c.enrichment_attempt_id
            ),
            "is_professional": func.coalesce(excluded.is_professional, table.c.is_professional),
            "updated_at": func.now(),
        },
    )


_UPSERT_CONTACTS = _upsert_contacts_statement()


async def upsert_contacts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert contacts (rows with the same keys); an existing (expert, type, value) keeps the
    more confident provenance."""
    if rows:
        await session.execute(_UPSERT_CONTACTS, list(rows))


# --- ranking ------------------------------------------------------------------------------------


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


_IDS = bindparam("ids", type_=ARRAY(Uuid()))
# The ranking batch's reads and writes: module-level, so each compiles (and asyncpg prepares
# each) once whatever the number of rankings in the batch.
_PROJECTS = select(Project).where(Project.id == any_(_IDS))
_EXPERTS = select(Expert).where(Expert.id == any_(_IDS))
_LATEST_LEADS = (
    select(Lead.project_id, Lead.expert_id, Lead.id, Lead.raw_title, Lead.country_iso)
    .where(
        Lead.project_id == any_(bindparam("project_ids", type_=ARRAY(Uuid()))),
        Lead.expert_id == any_(bindparam("expert_ids", type_=ARRAY(Uuid()))),
    )
    .order_by(Lead.project_id, Lead.expert_id, Lead.created_at.desc(), Lead.id)
)
_CONTACT_SIGNALS = select(
    ExpertContact.expert_id,
    ExpertContact.type,
    ExpertContact.confidence,
    ExpertContact.is_professional,
).where(
    ExpertContact.expert_id == any_(_IDS),
    ExpertContact.type.in_([ContactType.EMAIL, ContactType.PHONE]),
)
_JOB_TITLES = select(
    JobTitle.project_id, JobTitle.normalized_title, JobTitle.relevance_score
).where(JobTitle.project_id == any_(_IDS))
_INSERT_SNAPSHOT = insert(cast(Table, RankingSnapshot.__table__))
_LEAD_SCORES = (
    update(cast(Table, Lead.__table__))
    .where(
        Lead.project_id == bindparam("p_project_id"),
        Lead.expert_id == bindparam("p_expert_id"),
    )
    .values(ranking_score=bindparam("p_score"))
)


@dataclass(frozen=True, slots=True)
class LatestLead:
    """What ranking reads of an expert's newest lead in a project."""

    id: uuid.UUID
    raw_title: str | None
    country_iso: str | None


async def projects_by_id(
    session: AsyncSession, ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, Project]:
    rows = await session.execute(_PROJECTS, {"ids": list(ids)})
    return {project.id: project for project in rows.scalars()}


async def experts_by_id(session: AsyncSession, ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Expert]:
    rows = await session.execute(_EXPERTS, {"ids": list(ids)})
    return {expert.id: expert for expert in rows.scalars()}


async def latest_leads(
    session: AsyncSession, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]]
) -> dict[tuple[uuid.UUID, uuid.UUID], LatestLead]:
    """The newest lead of each (project, expert) pair that has one."""
    pairs_wanted = set(pairs)
    rows = await session.execute(
        _LATEST_LEADS,
        {
            "project_ids": list({project for project, _ in pairs}),
            "expert_ids": list({expert for _, expert in pairs}),
        },
    )
    latest: dict[tuple[uuid.UUID, uuid.UUID], LatestLead] = {}
    for project, expert, lead_id, title, country in rows:  # newest first within a pair
        if (project, expert) in pairs_wanted:
            latest.setdefault(
                (project, expert), LatestLead(id=lead_id, raw_title=title, country_iso=country)
            )
    return latest


async def contact_signals(
    session: AsyncSession, expert_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, float, bool | None]]]:
    """(type, confidence, is_professional) of each expert's email and phone contacts."""
    signals: dict[uuid.UUID, list[tuple[str, float, bool | None]]] = {}
    for expert_id, kind, conf, prof in await session.execute(
        _CONTACT_SIGNALS, {"ids": list(expert_ids)}
    ):
        signals.setdefault(expert_id, []).append((kind, float(conf or 0.0), prof))
    return signals


async def project_job_titles(
    session: AsyncSession, project_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, float]]]:
    titles: dict[uuid.UUID, list[tuple[str, float]]] = {}
    for project_id, title, score in await session.execute(_JOB_TITLES, {"ids": list(project_ids)}):
        titles.setdefault(project_id, []).append((title, float(score)))
    return titles


async def save_rankings(session: AsyncSession, snapshots: Sequence[dict[str, Any]]) -> None:
    """Store the snapshots (rows of ``ranking_snapshots``, in order) and denormalise each score
    onto the expert's leads in the project (a later snapshot of the same pair wins)."""
    if not snapshots:
        return
    await session.execute(_INSERT_SNAPSHOT, list(snapshots))
    await session.execute(
        _LEAD_SCORES,
        [
            {
                "p_project_id": row["project_id"],
                "p_expert_id": row["expert_id"],
                "p_score": row["score"],
            }
            for row in snapshots
        ],
    )


# --- costs and providers ------------------------------------------------------------------------


async def project_costs(
    session: AsyncSession, project_id: uuid.UUID
) -> list[tuple[str, int, int, float]]:
    """(provider, attempts, successes, credits) of the project's leads' attempts."""
    successes = func.count(case((EnrichmentAttempt.status == EnrichmentAttemptStatus.SUCCESS, 1)))
    rows = await session.execute(
        select(
            EnrichmentAttempt.provider,
            func.count(),
            successes,
            func.coalesce(func.sum(EnrichmentAttempt.credits), 0.0),
        )
        .join(Lead, Lead.id == EnrichmentAttempt.lead_id)
        .where(Lead.project_id == project_id)
        .group_by(EnrichmentAttempt.provider)
        .order_by(EnrichmentAttempt.provider)
    )
    return [(provider, int(n), int(ok), float(credits)) for provider, n, ok, credits in rows]


async def verified_contacts(session: AsyncSession, project_id: uuid.UUID, threshold: float) -> int:
    """Contacts the project's leads' attempts found at or above ``threshold``."""
    count = await session.scalar(
        select(func.count(ExpertContact.id))
        .join(EnrichmentAttempt, EnrichmentAttempt.id == ExpertContact.enrichment_attempt_id)
        .join(Lead, Lead.id == EnrichmentAttempt.lead_id)
        .where(Lead.project_id == project_id, ExpertContact.confidence >= threshold)
    )
    return int(count or 0)


async def provider_circuits(session: AsyncSession) -> list[ProviderCircuit]:
    """Every enrichment process's breakers as they last changed."""
    rows = await session.scalars(
        select(ProviderCircuit).order_by(ProviderCircuit.provider, ProviderCircuit.instance)
    )
    return list(rows.all())
