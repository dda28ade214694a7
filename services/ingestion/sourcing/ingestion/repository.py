"""Every query of the ingestion context (projects, searches, experts, leads, contacts, job titles),
for its agents and its endpoints.

Identity-sensitive writes are single statements guarded by the unique indexes
(``INSERT ... ON CONFLICT``), so two transactions racing on one person end with one row.
Nothing here commits.
"""

from __future__ import annotations

import typing
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy import (
    ColumnElement,
    Table,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    delete,
    false,
    func,
    literal,
    or_,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import ARRAY, insert
from sqlalchemy.dialects.postgresql.dml import Insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstrumentedAttribute
from sqlalchemy.sql.dml import ReturningInsert, Update

from sourcing.common.models import (
    Base,
    CallLog,
    CallLogRaw,
    CallTask,
    Company,
    ContactSuppression,
    CooldownLog,
    DeadLetterJob,
    EnrichmentAttempt,
    Expert,
    ExpertContact,
    ExpertSuppression,
    GoogleSheetExport,
    GoogleSheetRowMap,
    IdempotencyKey,
    JobTitle,
    JobTitleDiscoveryRun,
    Lead,
    OutboxMessage,
    OutreachMessage,
    OutreachThread,
    Project,
    SalesNavSearch,
    ScreeningQuestion,
    ScreeningResponse,
    SystemEvent,
)
from sourcing.common.models.enums import ContactType
from sourcing.common.statemachines import LeadStatus

# The paging types only: the web kernel (FastAPI) stays out of the agent processes.
if TYPE_CHECKING:
    from sourcing.common.web import Keyset, ScoreKeyset

# --- projects, companies, searches, screening questions -----------------------------------------


def _table(model: type[Base]) -> Table:
    """A model's table: the hot inserts run as Core statements, not through the ORM's bulk
    insert path (which maps every value through the entity first)."""
    return typing.cast(Table, model.__table__)


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def list_projects(
    session: AsyncSession, *, status: str | None, limit: int, after: Keyset | None
) -> list[Project]:
    """Projects ordered by ``(created_at, id)`` ascending (oldest first), after the cursor."""
    query = select(Project)
    if status is not None:
        query = query.where(Project.status == status)
    if after is not None:
        query = query.where(tuple_(Project.created_at, Project.id) > tuple_(*after))
    query = query.order_by(Project.created_at, Project.id).limit(limit)
    return list((await session.scalars(query)).all())


async def get_project_for_update(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id, with_for_update=True)


_PROJECT_STATUSES_FOR_SHARE = (
    select(Project.id, Project.status)
    .where(Project.id == any_(bindparam("ids", type_=ARRAY(Uuid()))))
    .order_by(Project.id)
    .with_for_update(read=True)
)


async def project_statuses_for_share(
    session: AsyncSession, project_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The projects' statuses, their rows share-locked (in id order) until the transaction
    ends: a status change (which locks the row for update) waits for this transaction, and
    this one for it. Unknown projects are missing from the answer."""
    rows = await session.execute(_PROJECT_STATUSES_FOR_SHARE, {"ids": list(set(project_ids))})
    return {project_id: status for project_id, status in rows}


async def project_status_for_share(session: AsyncSession, project_id: uuid.UUID) -> str | None:
    """One project's status, share-locked (:func:`project_statuses_for_share`)."""
    return (await project_statuses_for_share(session, [project_id])).get(project_id)


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
    is registered with the URL as its normalised URL (as
    :func:`sourcing.ingestion.service.add_sales_nav_searches` does when none is given).
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


_EXISTING_SEARCHES = select(SalesNavSearch.id).where(
    SalesNavSearch.id == any_(bindparam("ids", type_=ARRAY(Uuid())))
)


async def existing_searches(
    session: AsyncSession, search_ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of the given searches that exist."""
    return set((await session.scalars(_EXISTING_SEARCHES, {"ids": list(set(search_ids))})).all())


async def search_exists(session: AsyncSession, search_id: uuid.UUID) -> bool:
    return search_id in await existing_searches(session, [search_id])


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


@dataclass(frozen=True, slots=True)
class KnownExpert:
    """An expert row found by one of a lead's identities."""

    id: uuid.UUID
    linkedin_url: str | None
    email: str | None
    erased: bool


_EXPERTS_OF_IDENTITIES = select(
    Expert.id, Expert.linkedin_url_normalized, Expert.primary_email, Expert.erased_at.is_not(None)
).where(
    or_(
        Expert.linkedin_url_normalized == any_(bindparam("linkedin_urls", type_=ARRAY(Text()))),
        Expert.primary_email == any_(bindparam("emails", type_=ARRAY(Text()))),
    )
)


async def experts_of_identities(
    session: AsyncSession, *, linkedin_urls: Iterable[str], emails: Iterable[str]
) -> list[KnownExpert]:
    """The experts holding any of these normalised LinkedIn URLs or primary emails."""
    rows = await session.execute(
        _EXPERTS_OF_IDENTITIES, {"linkedin_urls": list(linkedin_urls), "emails": list(emails)}
    )
    return [KnownExpert(*row) for row in rows]


def _insert_experts_statement() -> ReturningInsert[Any]:
    table = _table(Expert)
    return (
        insert(table)
        .on_conflict_do_nothing()
        .returning(table.c.id, table.c.linkedin_url_normalized, table.c.primary_email)
    )


_INSERT_EXPERTS = _insert_experts_statement()


async def insert_experts(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> list[tuple[uuid.UUID, str | None, str | None]]:
    """Insert experts (rows with the same keys) in one statement; returns ``(id, LinkedIn URL,
    email)`` of those inserted. A row whose unique identity exists already (or is being
    inserted by a transaction still in flight, which this waits for) is left out: its lead
    looks the person up again. Callers sort the rows by identity, so two transactions take
    the identities' index entries in one order and cannot deadlock."""
    if not rows:
        return []
    result = await session.execute(_INSERT_EXPERTS, list(rows))
    return [(row[0], row[1], row[2]) for row in result]


async def insert_expert(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert an expert; None when a unique identity (LinkedIn URL or email) already exists.

    ``ON CONFLICT DO NOTHING`` without a target covers both partial unique indexes; a
    conflicting row of a transaction still in flight makes this wait for its outcome.
    """
    statement = (
        insert(_table(Expert)).values(**values).on_conflict_do_nothing().returning(Expert.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


async def attach_linkedin(session: AsyncSession, expert_id: uuid.UUID, linkedin_url: str) -> None:
    """Give an email-only expert the LinkedIn identity a later lead revealed."""
    await session.execute(
        update(Expert)
        .where(
            Expert.id == expert_id,
            Expert.linkedin_url_normalized.is_(None),
            Expert.erased_at.is_(None),
        )
        .values(linkedin_url_normalized=linkedin_url, updated_at=func.now())
    )


async def attach_email(session: AsyncSession, expert_id: uuid.UUID, email: str) -> None:
    """Give an expert without a primary email this one, unless another expert has it."""
    other = select(Expert.id).where(Expert.primary_email == email).exists()
    await session.execute(
        update(Expert)
        .where(
            Expert.id == expert_id,
            Expert.primary_email.is_(None),
            Expert.erased_at.is_(None),
            ~other,
        )
        .values(primary_email=email, updated_at=func.now())
    )


# The attributes a lead's delivery fills on its expert where they are blank.
EXPERT_FIELDS: Final = (
    "full_name",
    "first_name",
    "last_name",
    "title",
    "company_name",
    "company_domain",
    "country_iso",
    "timezone",
)


def _fill_blanks_statement() -> Update:
    table = _table(Expert)
    return (
        update(table)
        .where(table.c.id == bindparam("expert_id"), table.c.erased_at.is_(None))
        .values(
            {
                table.c[name]: func.coalesce(
                    table.c[name], bindparam(f"given_{name}", type_=table.c[name].type)
                )
                for name in EXPERT_FIELDS
            }
        )
    )


_FILL_BLANKS = _fill_blanks_statement()


async def fill_blanks_of_experts(
    session: AsyncSession, changes: Sequence[tuple[uuid.UUID, dict[str, Any]]]
) -> None:
    """Set the given attributes (of :data:`EXPERT_FIELDS`) where each expert has none yet
    (first delivery wins, so a redelivery changes nothing); never on an erased expert (a lead
    racing the erasure waits for its lock, then finds the tombstone). One statement, the rows
    locked in expert id order."""
    if not changes:
        return
    params = [
        {"expert_id": expert_id, **{f"given_{name}": values.get(name) for name in EXPERT_FIELDS}}
        for expert_id, values in sorted(changes, key=lambda change: change[0])
    ]
    await session.execute(_FILL_BLANKS, params)


async def fill_expert_blanks(
    session: AsyncSession, expert_id: uuid.UUID, values: dict[str, Any]
) -> None:
    """:func:`fill_blanks_of_experts` for one expert."""
    await fill_blanks_of_experts(session, [(expert_id, values)])


def _add_contacts_statement() -> Insert:
    table = _table(ExpertContact)
    return insert(table).on_conflict_do_nothing(
        index_elements=[table.c.expert_id, table.c.type, table.c.value_normalized]
    )


_ADD_CONTACTS = _add_contacts_statement()


async def add_contacts(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Insert contacts (rows with the same keys) in one statement; known ones are kept."""
    if rows:
        await session.execute(_ADD_CONTACTS, list(rows))


# --- leads --------------------------------------------------------------------------------------


async def insert_lead(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """Insert a lead; None when this person already came from this search (a redelivery)."""
    statement = (
        insert(_table(Lead))
        .values(**values)
        .on_conflict_do_nothing(index_elements=[Lead.expert_id, Lead.sales_nav_search_id])
        .returning(Lead.id)
    )
    return (await session.execute(statement)).scalar_one_or_none()


def _insert_leads_statement() -> ReturningInsert[Any]:
    table = _table(Lead)
    return (
        insert(table)
        .on_conflict_do_nothing(index_elements=[table.c.expert_id, table.c.sales_nav_search_id])
        .returning(table.c.id, table.c.expert_id, table.c.sales_nav_search_id)
    )


_INSERT_LEADS = _insert_leads_statement()


async def insert_leads(
    session: AsyncSession, rows: Sequence[dict[str, Any]]
) -> dict[tuple[uuid.UUID, uuid.UUID], uuid.UUID]:
    """Insert leads (rows with the same keys) in one statement; returns the new leads' ids by
    ``(expert_id, search_id)``. A person who already came from that search is left out."""
    if not rows:
        return {}
    result = await session.execute(_INSERT_LEADS, list(rows))
    return {(expert_id, search_id): lead_id for lead_id, expert_id, search_id in result}


async def leads_awaiting_enrichment(session: AsyncSession, project_id: uuid.UUID) -> list[Lead]:
    """The project's leads still NEW or ENRICHING, row-locked, oldest first."""
    statement = (
        select(Lead)
        .where(
            Lead.project_id == project_id,
            Lead.status.in_([LeadStatus.NEW.value, LeadStatus.ENRICHING.value]),
        )
        .order_by(Lead.created_at, Lead.id)
        .with_for_update()
    )
    return list((await session.scalars(statement)).all())


# --- job-title discovery ------------------------------------------------------------------------


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


# --- the read side: a project's experts, one expert in full, an operator's contacts -------------


@dataclass(frozen=True, slots=True)
class ProjectExpertRow:
    """One expert of a project: their best score there and how many of its leads are theirs."""

    expert: Expert
    score: float | None
    lead_count: int
    best_rank: int


async def project_experts(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    progress: Sequence[str],
    best_status: str | None,
    limit: int,
    after: ScoreKeyset | None,
) -> list[ProjectExpertRow]:
    """A page of the project's distinct experts, best latest score first (unscored last),
    expert id breaking ties, after the cursor. ``progress`` ranks lead statuses worst to best;
    ``best_rank`` is the index of the expert's best lead status in it, and ``best_status``
    keeps only the experts whose best lead is in that status."""
    rank = case({status: index for index, status in enumerate(progress)}, value=Lead.status)
    per_expert = (
        select(
            Lead.expert_id.label("expert_id"),
            func.max(Lead.ranking_score).label("score"),
            func.count().label("lead_count"),
            func.max(rank).label("best_rank"),
        )
        .where(Lead.project_id == project_id)
        .group_by(Lead.expert_id)
        .subquery()
    )
    score, expert_id = per_expert.c.score, per_expert.c.expert_id
    query = select(Expert, score, per_expert.c.lead_count, per_expert.c.best_rank).join(
        per_expert, Expert.id == expert_id
    )
    if best_status is not None:
        query = query.where(per_expert.c.best_rank == progress.index(best_status))
    if after is not None:
        after_score, after_id = after
        if after_score is None:  # among the unscored, which come last
            query = query.where(score.is_(None), expert_id > after_id)
        else:
            query = query.where(
                or_(
                    score < after_score,
                    and_(score == after_score, expert_id > after_id),
                    score.is_(None),
                )
            )
    query = query.order_by(score.desc().nulls_last(), expert_id).limit(limit)
    rows = await session.execute(query)
    return [
        ProjectExpertRow(expert=expert, score=row_score, lead_count=count, best_rank=best)
        for expert, row_score, count, best in rows
    ]


async def project_leads_of(
    session: AsyncSession, project_id: uuid.UUID, expert_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, list[Lead]]:
    """The project's leads of these experts, per expert, oldest first."""
    by_expert: dict[uuid.UUID, list[Lead]] = defaultdict(list)
    if not expert_ids:
        return by_expert
    rows = await session.scalars(
        select(Lead)
        .where(Lead.project_id == project_id, Lead.expert_id.in_(list(set(expert_ids))))
        .order_by(Lead.created_at, Lead.id)
    )
    for lead in rows:
        by_expert[lead.expert_id].append(lead)
    return by_expert


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
    values_statement = insert(ExpertContact).values(**values)
    statement = values_statement.on_conflict_do_update(
        index_elements=[
            ExpertContact.expert_id,
            ExpertContact.type,
            ExpertContact.value_normalized,
        ],
        set_={
            "is_primary": ExpertContact.is_primary | values_statement.excluded.is_primary,
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


# --- erasure ------------------------------------------------------------------------------------
# An erasure spans the tables of every context that holds something of the person: it is one
# transaction, so the answer "erased" is true when it commits (docs/architecture.md).

ERASED_TEXT = "[erased]"


def like_patterns(needles: Iterable[str]) -> list[str]:
    """``ILIKE`` patterns finding any of ``needles`` inside a text (wildcards escaped)."""
    escaped = (n.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") for n in needles)
    return [f"%{needle}%" for needle in escaped]


def mentions(column: Any, patterns: Sequence[str]) -> ColumnElement[bool]:
    """The column's text (JSON included) contains one of the patterns, case-insensitively."""
    text_of = cast(column, Text)
    return or_(false(), *(text_of.ilike(pattern, escape="\\") for pattern in patterns))


def scrubbed(column: Any, patterns: Sequence[str]) -> Any:
    """A kept free-text column: replaced by ``[erased]`` when it mentions the person."""
    return case((mentions(column, patterns), literal(ERASED_TEXT)), else_=column)


async def lock_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id, with_for_update=True, populate_existing=True)


@dataclass(frozen=True, slots=True)
class PersonTraces:
    """Every identity of the person the database holds: what is suppressed, then erased."""

    names: set[str]
    linkedin_urls: set[str]
    emails: set[str]
    phones: set[str]
    handles: set[str]
    lead_ids: list[uuid.UUID]
    call_task_ids: list[uuid.UUID]
    call_log_ids: list[uuid.UUID]
    yay_call_ids: list[str]
    sheet_project_ids: list[uuid.UUID]


def _present(values: Iterable[str | None]) -> set[str]:
    return {value for value in values if value and value.strip()}


async def person_traces(session: AsyncSession, expert: Expert) -> PersonTraces:
    names: set[str | None] = {expert.full_name}
    linkedin_urls: set[str | None] = {expert.linkedin_url_normalized}
    emails: set[str | None] = {expert.primary_email}
    phones: set[str | None] = {expert.primary_phone}
    handles: set[str | None] = set()
    contacts = await session.execute(
        select(ExpertContact.type, ExpertContact.value, ExpertContact.value_normalized).where(
            ExpertContact.expert_id == expert.id
        )
    )
    by_type = {
        ContactType.LINKEDIN.value: linkedin_urls,
        ContactType.EMAIL.value: emails,
        ContactType.PHONE.value: phones,
    }
    for kind, value, normalized in contacts:
        by_type.get(kind, handles).update((value, normalized))
    leads = (await session.scalars(select(Lead).where(Lead.expert_id == expert.id))).all()
    for lead in leads:
        names.add(lead.raw_name)
        linkedin_urls.add(lead.linkedin_url)
        emails.add(lead.email)
        phones.add(lead.phone)
    tasks = (
        await session.execute(
            select(CallTask.id, CallTask.phone_number).where(CallTask.expert_id == expert.id)
        )
    ).all()
    phones.update(phone for _, phone in tasks)
    recipients = await session.scalars(
        select(OutreachThread.recipient).where(OutreachThread.expert_id == expert.id)
    )
    for recipient in recipients:
        (emails if recipient and "@" in recipient else phones).add(recipient)
    task_ids = [task_id for task_id, _ in tasks]
    logs = (
        await session.execute(
            select(CallLog.id, CallLog.yay_call_id).where(
                or_(CallLog.expert_id == expert.id, CallLog.call_task_id.in_(task_ids))
            )
        )
    ).all()
    sheet_projects = await session.scalars(
        select(GoogleSheetRowMap.project_id)
        .where(GoogleSheetRowMap.entity_id == expert.id)
        .order_by(GoogleSheetRowMap.project_id)
    )
    return PersonTraces(
        names=_present(names),
        linkedin_urls=_present(linkedin_urls),
        emails=_present(emails),
        phones=_present(phones),
        handles=_present(handles),
        lead_ids=[lead.id for lead in leads],
        call_task_ids=task_ids,
        call_log_ids=[log_id for log_id, _ in logs],
        yay_call_ids=[yay_call_id for _, yay_call_id in logs],
        sheet_project_ids=list(sheet_projects),
    )


async def _count(session: AsyncSession, statement: Any) -> int:
    result = await session.execute(statement.execution_options(synchronize_session=False))
    return int(getattr(result, "rowcount", 0) or 0)


async def erase_person_rows(
    session: AsyncSession,
    expert_id: uuid.UUID,
    traces: PersonTraces,
    *,
    patterns: Sequence[str],
    identifier_patterns: Sequence[str],
    suppression_hashes: Sequence[str],
) -> dict[str, int]:
    """Delete or blank what each table holds of the person; rows changed per table.

    Rows that carry other people's history (leads, call tasks and logs, threads, attempts) are
    kept with their personal columns cleared; the person's own contacts go; dead letters and
    outbox messages that mention them go; JSON kept for its structure is redacted by the
    service. ``patterns`` find any mention (names included), ``identifier_patterns`` only
    what names this person alone.
    """
    counts: dict[str, int] = {}

    async def run(table: str, statement: Any) -> None:
        counts[table] = counts.get(table, 0) + await _count(session, statement)

    await run("expert_contacts", delete(ExpertContact).where(ExpertContact.expert_id == expert_id))
    await run(
        "leads",
        update(Lead)
        .where(Lead.expert_id == expert_id)
        .values(
            raw_name=ERASED_TEXT,
            raw_company=ERASED_TEXT,
            raw_title=None,
            linkedin_url=None,
            email=None,
            phone=None,
            company_domain=None,
            country_iso=None,
            payload={},
            status_reason=scrubbed(Lead.status_reason, patterns),
        ),
    )
    await run(
        "enrichment_attempts",
        update(EnrichmentAttempt)
        .where(EnrichmentAttempt.expert_id == expert_id)
        .values(response_payload=None, error=scrubbed(EnrichmentAttempt.error, patterns)),
    )
    await run(
        "outreach_threads",
        update(OutreachThread)
        .where(OutreachThread.expert_id == expert_id)
        .values(
            recipient=None,
            external_thread_id=None,
            last_error=scrubbed(OutreachThread.last_error, patterns),
        ),
    )
    await run(
        "outreach_messages",
        update(OutreachMessage)
        .where(OutreachMessage.expert_id == expert_id)
        .values(
            recipient=None,
            body=ERASED_TEXT,
            provider_message_id=None,
            error=scrubbed(OutreachMessage.error, patterns),
        ),
    )
    await run(
        "screening_responses",
        update(ScreeningResponse)
        .where(ScreeningResponse.expert_id == expert_id)
        .values(response_text=None),
    )
    await run(
        "cooldown_logs",
        update(CooldownLog)
        .where(CooldownLog.expert_id == expert_id, mentions(CooldownLog.reason, patterns))
        .values(reason=ERASED_TEXT),
    )
    await run(
        "call_tasks",
        update(CallTask)
        .where(CallTask.expert_id == expert_id)
        .values(
            phone_number=None,
            outcome_notes=None,
            status_reason=scrubbed(CallTask.status_reason, patterns),
        ),
    )
    await run(
        "call_logs",
        update(CallLog)
        .where(CallLog.id.in_(traces.call_log_ids))
        .values(
            from_number=None,
            to_number=None,
            recording_url=None,
            metadata_={},
            failure_reason=scrubbed(CallLog.failure_reason, patterns),
        ),
    )
    await run(
        "call_logs_raw",
        update(CallLogRaw)
        .where(
            or_(
                CallLogRaw.call_log_id.in_(traces.call_log_ids),
                CallLogRaw.yay_call_id.in_(traces.yay_call_ids),
                mentions(CallLogRaw.payload, patterns),
            )
        )
        .values(payload={}),
    )
    await run(
        "google_sheet_row_maps",
        update(GoogleSheetRowMap)
        .where(GoogleSheetRowMap.entity_id == expert_id)
        .values(row_hash=None),
    )
    await run(
        "google_sheet_exports",
        update(GoogleSheetExport)
        .where(GoogleSheetExport.entity_id == expert_id)
        .values(row_values={}, error=scrubbed(GoogleSheetExport.error, patterns)),
    )
    await run(
        "expert_suppressions",
        update(ExpertSuppression)
        .where(ExpertSuppression.expert_id == expert_id)
        .values(
            linkedin_url_normalized=None,
            email=None,
            note=scrubbed(ExpertSuppression.note, patterns),
        ),
    )
    await run(
        "contact_suppressions",
        update(ContactSuppression)
        .where(
            or_(
                ContactSuppression.expert_id == expert_id,
                ContactSuppression.value_hash.in_(suppression_hashes),
            )
        )
        .values(
            value=None,
            note=scrubbed(ContactSuppression.note, patterns),
            expert_id=func.coalesce(ContactSuppression.expert_id, expert_id),
        ),
    )
    # Deleting goes by what names only this person (an address, a number, a profile, their
    # expert id), never by a name another person may share: mentions of a name are redacted.
    referenced = [*identifier_patterns, *like_patterns([str(expert_id)])]
    dead_letter_text = (DeadLetterJob.raw_value, DeadLetterJob.error, DeadLetterJob.stack)
    await run(
        "dead_letter_jobs",
        delete(DeadLetterJob).where(
            or_(
                *(
                    mentions(column, referenced)
                    for column in (
                        DeadLetterJob.payload,
                        DeadLetterJob.message_key,
                        DeadLetterJob.headers,
                        *dead_letter_text,
                    )
                )
            )
        ),
    )
    await run(
        "dead_letter_jobs",
        update(DeadLetterJob)
        .where(or_(*(mentions(column, patterns) for column in dead_letter_text)))
        .values({column: scrubbed(column, patterns) for column in dead_letter_text}),
    )
    await run(
        "outbox",
        delete(OutboxMessage).where(
            or_(
                *(
                    and_(OutboxMessage.published_at.is_(None), mentions(column, referenced))
                    for column in (OutboxMessage.envelope, OutboxMessage.key)
                ),
                *(
                    and_(OutboxMessage.published_at.is_not(None), mentions(column, patterns))
                    for column in (
                        OutboxMessage.envelope,
                        OutboxMessage.key,
                        OutboxMessage.last_error,
                    )
                ),
            )
        ),
    )
    # A kept answer to a retried POST (an expert's contacts, say) is only a convenience: gone.
    await run(
        "idempotency_keys",
        delete(IdempotencyKey).where(mentions(IdempotencyKey.response_body, patterns)),
    )
    return {table: count for table, count in counts.items() if count}


async def rows_mentioning(
    session: AsyncSession, column: InstrumentedAttribute[Any], patterns: Sequence[str]
) -> list[Any]:
    """The rows whose ``column`` (JSON) mentions the person, to be redacted in place."""
    model = column.class_
    return list((await session.scalars(select(model).where(mentions(column, patterns)))).all())


async def audit_event(
    session: AsyncSession, event_type: str, expert_id: uuid.UUID
) -> SystemEvent | None:
    """The expert's first audit event of this type."""
    return await session.scalar(
        select(SystemEvent)
        .where(
            SystemEvent.type == event_type,
            SystemEvent.entity_type == "expert",
            SystemEvent.entity_id == expert_id,
        )
        .order_by(SystemEvent.created_at)
        .limit(1)
    )


async def erased_lead(session: AsyncSession, values: dict[str, Any]) -> uuid.UUID | None:
    """A lead of an erased person: its search and status only, nothing of the person."""
    return await insert_lead(
        session, {**values, "raw_name": ERASED_TEXT, "raw_company": ERASED_TEXT, "payload": {}}
    )
