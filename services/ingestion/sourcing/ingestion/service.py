"""The rules of the ingestion context, as plain async functions over a session: projects (their
status and priority, companies, Sales Nav searches, screening questions), what a project's
status does to its new leads (:func:`lead_intake`, :func:`release_held_leads`), a project's
distinct experts for the read side (an expert's best lead: :data:`LEAD_PROGRESS`), an
operator's phone for an expert, job-title discovery requests, and the call-task request a
dialable phone makes (shared by lead ingestion and the operator's phone), and the erasure
of a person.

Used by the context's endpoints (:mod:`sourcing.ingestion.endpoints`) and agents
(:mod:`sourcing.ingestion.handlers`). Nothing here commits.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Final

from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.errors import Gone, InvalidPayload, NotFound
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.allocation import (
    CallTaskRequested,
    CallTaskTrigger,
    ExpertSuppressionRequested,
    ProjectChanged,
)
from sourcing.common.messages.enrichment import EnrichmentRequested
from sourcing.common.messages.outreach import ProjectClosed, SheetSyncRequested
from sourcing.common.messages.sourcing import JobTitleDiscoveryRequested
from sourcing.common.models import (
    CallLog,
    DeadLetterJob,
    Expert,
    ExpertContact,
    JobTitleDiscoveryRun,
    Lead,
    Project,
    ScreeningQuestion,
    SystemEvent,
)
from sourcing.common.models.enums import (
    Channel,
    ContactSource,
    ContactType,
    SuppressedContactKind,
    SuppressionReason,
)
from sourcing.common.statemachines import PROJECT, LeadStatus, ProjectStatus
from sourcing.common.transitions import move
from sourcing.ingestion import repository
from sourcing.people.identity import CANONICAL_ORIGIN, normalize_linkedin_url
from sourcing.people.phones import PhoneNumber, normalize_phone
from sourcing.people.suppression import normalize_suppressed_value, suppress_contact

# The paging types only: the web kernel (FastAPI) stays out of the agent processes.
if TYPE_CHECKING:
    from sourcing.common.web import ScoreKeyset

# --- projects -----------------------------------------------------------------------------------


async def find_project(
    session: AsyncSession, project_id: uuid.UUID, *, lock: bool = False
) -> Project:
    """The project (row-locked when ``lock``); NotFound when there is none."""
    find = repository.get_project_for_update if lock else repository.get_project
    project = await find(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found", details={"projectId": str(project_id)})
    return project


async def create_project(session: AsyncSession, values: dict[str, Any]) -> Project:
    """A new project, in the project state machine's initial status."""
    project = Project(**values, status=PROJECT.initial)
    session.add(project)
    await session.flush()
    await session.refresh(project)
    return project


# Project fields a PATCH with null clears (the others are required: null leaves them as they are).
CLEARABLE_PROJECT_FIELDS = frozenset(
    {"description", "auto_outreach_channel", "auto_outreach_template", "enrichment_budget_credits"}
)


async def update_project(
    session: AsyncSession,
    project_id: uuid.UUID,
    changes: dict[str, Any],
    *,
    actor: str,
    now: datetime,
) -> Project:
    """Apply ``changes``: a new ``status`` through the state machine; ``None`` leaves a field
    as it is, except the optional ones (:data:`CLEARABLE_PROJECT_FIELDS`), which it clears. A
    new status or priority is published as ``project.changed.v1`` in the same transaction: the
    allocation service re-orders the project's PENDING tasks, cancels its open ones (audited)
    when it is COMPLETED or ARCHIVED, and gives a resumed project's experts the call tasks the
    pause held back. Back to ACTIVE, the leads the pause held are released
    (:func:`release_held_leads`); COMPLETED or ARCHIVED, ``project.closed.v1`` asks the outreach
    service to cancel the project's queued messages. A raised (or removed) enrichment budget of
    an ACTIVE project releases the leads a spent budget held the same way."""
    project = await find_project(session, project_id, lock=True)
    new_status = changes.pop("status", None)
    previous_priority = project.priority
    previous_budget = project.enrichment_budget_credits
    status_changed = new_status is not None and new_status != project.status
    if status_changed:
        move(session, project, new_status, actor=actor, reason=None, now=now)
        if project.status == ProjectStatus.ACTIVE:
            await release_held_leads(session, project.id, actor=actor, now=now)
        elif project.status in PROJECT.terminal:
            closed = ProjectClosed(project_id=project.id, status=project.status, actor=actor)
            await publish(session, closed, occurred_at=now)
    for field, value in changes.items():
        if value is None and field not in CLEARABLE_PROJECT_FIELDS:
            continue
        setattr(project, field, value)
    if (
        not status_changed
        and project.status == ProjectStatus.ACTIVE
        and budget_raised(previous_budget, project.enrichment_budget_credits)
    ):
        await release_held_leads(
            session, project.id, actor=actor, now=now, reason=BUDGET_RELEASED_REASON
        )
    if status_changed or project.priority != previous_priority:
        change = ProjectChanged(
            project_id=project.id,
            status=project.status,
            priority=project.priority,
            status_changed=status_changed,
            actor=actor,
        )
        await publish(session, change, occurred_at=now)
    await session.flush()
    await session.refresh(project)
    return project


# --- a project's status and its new leads ------------------------------------------------------

HELD_REASON: Final = "held: the project is PAUSED; processed when it is ACTIVE again"
RELEASED_REASON: Final = "released: the project is ACTIVE again"
BUDGET_RELEASED_REASON: Final = "released: the project's enrichment budget was raised"


def budget_raised(previous: float | None, current: float | None) -> bool:
    """Whether a project's enrichment budget grew (None is unlimited)."""
    if previous is None:
        return False
    return current is None or current > previous


class LeadIntake(StrEnum):
    """What a new lead becomes, by its project's status."""

    ACCEPT = "accept"  # ACTIVE: enrichment, and a call task for a dialable phone, now
    HOLD = "hold"  # PAUSED: kept NEW with its contacts; nothing downstream until ACTIVE again
    REFUSE = "refuse"  # COMPLETED, ARCHIVED: no lead; a ``lead.refused`` event says why


def lead_intake(project_status: str) -> LeadIntake:
    """Only an ACTIVE project takes new leads on; a PAUSED one holds them; a closed one (the
    project machine's terminal states, COMPLETED and ARCHIVED) refuses them."""
    if project_status == ProjectStatus.ACTIVE:
        return LeadIntake.ACCEPT
    if project_status in PROJECT.terminal:
        return LeadIntake.REFUSE
    return LeadIntake.HOLD


def refuse_lead(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    project_status: str,
    search_id: uuid.UUID,
    name: str,
    linkedin_url: str | None,
    email: str | None,
    actor: str,
    correlation_id: str | None,
) -> str:
    """Record a lead refused by its closed project (``lead.refused`` on the project, with the
    person's identity): no expert, lead or contact is written. Returns the reason."""
    reason = f"project is {project_status}: new leads are refused"
    session.add(
        SystemEvent(
            type="lead.refused",
            entity_type="project",
            entity_id=project_id,
            actor=actor,
            correlation_id=correlation_id,
            data={
                "reason": reason,
                "projectStatus": project_status,
                "searchId": str(search_id),
                "name": name,
                "linkedinUrl": linkedin_url,
                "email": email,
            },
        )
    )
    return reason


async def release_held_leads(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    actor: str,
    now: datetime,
    reason: str = RELEASED_REASON,
) -> int:
    """A PAUSED project is ACTIVE again (or its spent enrichment budget was raised): its held
    leads (NEW) move to ENRICHING, audited, and every lead of it still waiting for enrichment
    (those, and the ENRICHING ones the enrichment agent left alone while the project was
    paused or its budget spent) asks for it again; enrichment skips a lead it finished
    meanwhile. Returns how many leads asked."""
    leads = await repository.leads_awaiting_enrichment(session, project_id)
    for lead in leads:
        if lead.status == LeadStatus.NEW:
            move(session, lead, LeadStatus.ENRICHING, actor=actor, reason=reason, now=now)
        await publish(
            session,
            EnrichmentRequested(lead_id=lead.id, expert_id=lead.expert_id, project_id=project_id),
        )
    return len(leads)


async def upsert_companies(
    session: AsyncSession, project_id: uuid.UUID, companies: Sequence[dict[str, Any]]
) -> int:
    """Insert or update the project's companies by case-insensitive name; how many rows."""
    await find_project(session, project_id)
    rows = []
    for company in companies:
        values = dict(company)
        metadata = values.pop("metadata", None)
        rows.append({**values, "metadata_": metadata or {}})  # the ORM attribute's name
    return await repository.upsert_companies(session, project_id, rows)


async def add_sales_nav_searches(
    session: AsyncSession, project_id: uuid.UUID, searches: Sequence[tuple[str, str | None]]
) -> int:
    """Register (source URL, normalised URL) searches, the source URL standing for a missing
    normalised one (as a webhook delivery registers an unknown search); how many are new."""
    await find_project(session, project_id)
    rows = [
        {"source_url": source_url, "normalized_url": normalized_url or source_url}
        for source_url, normalized_url in searches
    ]
    return await repository.add_sales_nav_searches(session, project_id, rows)


async def list_screening_questions(
    session: AsyncSession, project_id: uuid.UUID
) -> Sequence[ScreeningQuestion]:
    await find_project(session, project_id)
    return await repository.list_screening_questions(session, project_id)


async def create_screening_question(
    session: AsyncSession, project_id: uuid.UUID, values: dict[str, Any]
) -> ScreeningQuestion:
    await find_project(session, project_id)
    question = ScreeningQuestion(project_id=project_id, **values)
    session.add(question)
    await session.flush()
    await session.refresh(question)
    return question


async def update_screening_question(
    session: AsyncSession,
    project_id: uuid.UUID,
    question_id: uuid.UUID,
    changes: dict[str, Any],
) -> ScreeningQuestion:
    """Set the given fields of the project's question; NotFound for another project's."""
    await find_project(session, project_id)
    question = await repository.get_screening_question(session, project_id, question_id)
    if question is None:
        raise NotFound(
            f"screening question {question_id} not found in project {project_id}",
            details={"projectId": str(project_id), "questionId": str(question_id)},
        )
    for field, value in changes.items():
        setattr(question, field, value)
    await session.flush()
    await session.refresh(question)
    return question


# --- experts ------------------------------------------------------------------------------------


async def find_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert:
    """The expert; NotFound when there is none, Gone when their data was erased."""
    expert = await repository.get_expert(session, expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    if expert.erased_at is not None:
        raise Gone(
            f"expert {expert_id} was erased",
            details={"expertId": str(expert_id), "erasedAt": expert.erased_at.isoformat()},
        )
    return expert


# How far a lead has got, worst to best: the lead machine's chain from NEW to CONVERTED, with a
# failed enrichment behind a lead still waiting for one and a disqualified lead out of the
# running. An expert's best lead in a project is the furthest of theirs.
LEAD_PROGRESS: Final = (
    LeadStatus.DISQUALIFIED.value,
    LeadStatus.ENRICHMENT_FAILED.value,
    LeadStatus.NEW.value,
    LeadStatus.ENRICHING.value,
    LeadStatus.ENRICHED.value,
    LeadStatus.OUTREACH_PENDING.value,
    LeadStatus.CONTACTED.value,
    LeadStatus.REPLIED.value,
    LeadStatus.CONVERTED.value,
)


@dataclass(frozen=True, slots=True)
class ProjectExpert:
    """One expert of a project on the read side: their score there, how many of the project's
    leads are theirs, and those leads, best first (by :data:`LEAD_PROGRESS`)."""

    expert: Expert
    score: float | None
    lead_count: int
    best_lead_status: str
    leads: list[Lead]

    @property
    def id(self) -> uuid.UUID:
        return self.expert.id


def _lead_progress(lead: Lead) -> int:
    return LEAD_PROGRESS.index(lead.status)


async def project_experts(
    session: AsyncSession,
    project_id: uuid.UUID,
    *,
    best_status: LeadStatus | None,
    limit: int,
    after: ScoreKeyset | None,
) -> list[ProjectExpert]:
    """A page of the project's distinct experts, best ranked first (unscored last, then by
    expert id): one per expert however many of the project's leads brought them."""
    await find_project(session, project_id)
    rows = await repository.project_experts(
        session,
        project_id,
        progress=LEAD_PROGRESS,
        best_status=best_status.value if best_status is not None else None,
        limit=limit,
        after=after,
    )
    leads = await repository.project_leads_of(session, project_id, [row.expert.id for row in rows])
    return [
        ProjectExpert(
            expert=row.expert,
            score=row.score,
            lead_count=row.lead_count,
            best_lead_status=LEAD_PROGRESS[row.best_rank],
            leads=sorted(leads[row.expert.id], key=_lead_progress, reverse=True),
        )
        for row in rows
    ]


def phone_contact(
    expert_id: uuid.UUID, phone: PhoneNumber, source: ContactSource
) -> dict[str, Any]:
    """The contact row of a phone: in E.164 when readable, else kept as given, not dialable."""
    return {
        "expert_id": expert_id,
        "type": ContactType.PHONE.value,
        "channel": Channel.PHONE.value,
        "value": phone.given,
        "value_normalized": phone.normalized,
        "is_dialable": phone.dialable,
        "source": source.value,
    }


async def request_call_tasks(
    session: AsyncSession,
    *,
    expert_id: uuid.UUID,
    project_ids: Iterable[uuid.UUID],
    trigger: CallTaskTrigger,
    lead_id: uuid.UUID | None = None,
) -> None:
    """A dialable phone of the expert became known: ask the allocation service for their call
    task in each of these projects (it decides whether one is due)."""
    for request in call_task_requests(
        expert_id=expert_id, project_ids=project_ids, trigger=trigger, lead_id=lead_id
    ):
        await publish(session, request)


def call_task_requests(
    *,
    expert_id: uuid.UUID,
    project_ids: Iterable[uuid.UUID],
    trigger: CallTaskTrigger,
    lead_id: uuid.UUID | None = None,
) -> list[CallTaskRequested]:
    """The messages of :func:`request_call_tasks` (for callers that publish a batch at once)."""
    return [
        CallTaskRequested(
            project_id=project_id, expert_id=expert_id, lead_id=lead_id, trigger=trigger
        )
        for project_id in project_ids
    ]


async def add_phone(
    session: AsyncSession, expert_id: uuid.UUID, value: str, *, is_primary: bool
) -> ExpertContact:
    """An operator's phone for the expert (read in the expert's country); a dialable one asks
    for the expert's call task in every project they are a lead of."""
    expert = await find_expert(session, expert_id)
    phone = normalize_phone(value, expert.country_iso)
    contact = await repository.add_contact(
        session, {**phone_contact(expert.id, phone, ContactSource.MANUAL), "is_primary": is_primary}
    )
    if phone.dialable:
        await request_call_tasks(
            session,
            expert_id=expert.id,
            project_ids=await repository.project_ids_of_expert(session, expert.id),
            trigger=CallTaskTrigger.OPERATOR_CONTACT,
        )
    return contact


# --- job-title discovery ------------------------------------------------------------------------


async def request_job_title_discovery(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    companies: Sequence[tuple[str | None, uuid.UUID | None]],
    geography_iso_codes: Sequence[str] | None,
    requested_by: str | None,
    max_companies: int,
) -> JobTitleDiscoveryRun:
    """Record a discovery run for (company name, company id) pairs, in the project's
    geographies unless given, and queue it (``job-title-discovery`` lane). At most
    ``max_companies``; a given company id must be one of the project's companies."""
    project = await find_project(session, project_id)
    if len(companies) > max_companies:
        raise InvalidPayload(
            f"at most {max_companies} companies per request",
            details={"field": "companies", "max": max_companies},
        )
    given_ids = [company_id for _, company_id in companies if company_id is not None]
    known = await repository.company_ids_of_project(session, project.id, given_ids)
    unknown = sorted({str(company_id) for company_id in given_ids if company_id not in known})
    if unknown:
        raise InvalidPayload(
            "companyId is not a company of this project",
            details={
                "errors": [{"field": "companies.companyId", "value": value} for value in unknown]
            },
        )
    run = await repository.create_discovery_run(
        session,
        project_id=project.id,
        companies=[
            {"companyName": name, "companyId": str(company_id) if company_id else None}
            for name, company_id in companies
        ],
        geography_iso_codes=geography_iso_codes or project.geography_iso_codes,
        requested_by=requested_by,
        correlation_id=correlation_id_var.get(),
    )
    await publish(session, JobTitleDiscoveryRequested(run_id=run.id, project_id=project.id))
    return run


# --- erasure (GDPR Art. 17, CCPA deletion) ------------------------------------------------------

ERASURE_EVENT: Final = "expert.erased"
# JSON kept for its structure (audit trail, fraud flags, a dead letter naming the person only
# by name), its mentions of the person redacted.
_REDACTED_JSON: Final = (SystemEvent.data, CallLog.fraud_flags, DeadLetterJob.payload)
_SUPPRESSED_KINDS: Final = (
    (SuppressedContactKind.LINKEDIN_URL, "linkedin_urls"),
    (SuppressedContactKind.EMAIL, "emails"),
    (SuppressedContactKind.PHONE, "phones"),
)


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure did: rows changed per table, identities kept hashed, sheet rows queued
    for blanking. A repeated erasure answers the first one's summary."""

    expert_id: uuid.UUID
    erased_at: datetime
    tables: dict[str, int]
    suppressions: int
    sheet_rows_cleared: int


def redact(value: Any, needles: Iterable[str]) -> Any:
    """``value`` (JSON) with every string that mentions one of ``needles`` replaced."""
    lowered = [needle.lower() for needle in needles]
    if isinstance(value, str):
        text = value.lower()
        return repository.ERASED_TEXT if any(needle in text for needle in lowered) else value
    if isinstance(value, dict):
        return {key: redact(item, lowered) for key, item in value.items()}
    if isinstance(value, list):
        return [redact(item, lowered) for item in value]
    return value


def _identifiers(traces: repository.PersonTraces) -> set[str]:
    """What names this person alone in free text: addresses, numbers, handles, profiles (a
    LinkedIn URL also without its scheme and host, so any spelling of the host matches)."""
    found = {*traces.emails, *traces.phones, *traces.handles}
    for url in traces.linkedin_urls:
        found.add(url)
        canonical = normalize_linkedin_url(url)
        if canonical is not None:
            found.add(canonical.removeprefix(CANONICAL_ORIGIN).lstrip("/"))
    return _searchable(found)


def _searchable(values: Iterable[str]) -> set[str]:
    return {value.strip() for value in values if len(value.strip()) >= 3}


def _erasure_of(expert: Expert, data: dict[str, Any]) -> Erasure:
    assert expert.erased_at is not None  # noqa: S101 - narrows the type: the expert is erased
    return Erasure(
        expert_id=expert.id,
        erased_at=expert.erased_at,
        tables={str(table): int(count) for table, count in data.get("tables", {}).items()},
        suppressions=int(data.get("suppressions", 0)),
        sheet_rows_cleared=int(data.get("sheetRowsCleared", 0)),
    )


def _tombstone(expert: Expert, *, now: datetime) -> None:
    """Every personal field cleared; the id, sign-up and creation time stay (callers' tasks,
    statistics and a project's conversions keep pointing at it)."""
    expert.full_name = repository.ERASED_TEXT
    for field in (
        "first_name",
        "last_name",
        "linkedin_url_normalized",
        "primary_email",
        "primary_phone",
        "title",
        "company_name",
        "company_domain",
        "seniority",
        "country_iso",
        "timezone",
        "preferred_channel",
    ):
        setattr(expert, field, None)
    expert.language_codes = []
    expert.metadata_ = {}
    expert.erased_at = now
    expert.suppressed_at = expert.suppressed_at or now


async def erase_expert(
    session: AsyncSession, expert_id: uuid.UUID, *, actor: str, now: datetime
) -> Erasure:
    """Erase a person (GDPR Art. 17 / CCPA deletion) in one transaction, across every table
    that holds something of them, whichever context owns it.

    First their LinkedIn URL, emails and phones become ERASED contact suppressions (hash
    only: a new lead bringing them back is DISQUALIFIED and stores nothing of them). Then each
    table drops (contacts, dead letters, outbox messages mentioning them) or clears (leads,
    threads and messages, call tasks and logs, raw Yay payloads, enrichment payloads,
    screening answers, sheet exports, suppressions' plain values) what it holds of them, audit
    events are redacted, the expert row becomes a suppressed tombstone and each Google Sheet
    row of theirs is queued for blanking. The audit event names counts, never the person.
    Idempotent: an erased expert answers the first erasure's summary.
    """
    expert = await repository.lock_expert(session, expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    if expert.erased_at is not None:
        event = await repository.audit_event(session, ERASURE_EVENT, expert.id)
        return _erasure_of(expert, event.data if event is not None else {})
    correlation_id = correlation_id_var.get()
    traces = await repository.person_traces(session, expert)
    hashes: list[str] = []
    for kind, attribute in _SUPPRESSED_KINDS:
        values: set[str] = getattr(traces, attribute)
        normalized = {normalize_suppressed_value(kind, value) for value in values} - {None}
        for value in sorted(v for v in normalized if v is not None):
            row, _ = await suppress_contact(
                session,
                kind,
                value,
                reason=SuppressionReason.ERASED,
                actor=actor,
                expert_id=expert.id,
                correlation_id=correlation_id,
            )
            hashes.append(row.value_hash)
    identifiers = _identifiers(traces)
    needles = identifiers | _searchable(traces.names)
    patterns = repository.like_patterns(needles)
    tables = await repository.erase_person_rows(
        session,
        expert.id,
        traces,
        patterns=patterns,
        identifier_patterns=repository.like_patterns(identifiers),
        suppression_hashes=hashes,
    )
    for column in _REDACTED_JSON:
        rows = await repository.rows_mentioning(session, column, patterns)
        for row in rows:
            setattr(row, column.key, redact(getattr(row, column.key), needles))
        if rows:
            table = column.class_.__tablename__
            tables[table] = max(tables.get(table, 0), len(rows))
    _tombstone(expert, now=now)
    tables["experts"] = 1
    for project_id in traces.sheet_project_ids:
        await publish(
            session, SheetSyncRequested.for_expert(project_id=project_id, expert_id=expert.id)
        )
    # Allocation owns call tasks and the person's suppression: it cancels the open tasks and
    # disqualifies the leads, as for any never-contact-again.
    await publish(
        session,
        ExpertSuppressionRequested(
            expert_id=expert.id, reason=SuppressionReason.ERASED, actor=actor, note="erasure"
        ),
    )
    erasure = Erasure(
        expert_id=expert.id,
        erased_at=now,
        tables=dict(sorted(tables.items())),
        suppressions=len(hashes),
        sheet_rows_cleared=len(traces.sheet_project_ids),
    )
    session.add(
        SystemEvent(
            type=ERASURE_EVENT,
            entity_type="expert",
            entity_id=expert.id,
            actor=actor,
            correlation_id=correlation_id,
            data={
                "erasedAt": now.isoformat(),
                "tables": erasure.tables,
                "suppressions": erasure.suppressions,
                "sheetRowsCleared": erasure.sheet_rows_cleared,
            },
        )
    )
    await session.flush()
    return erasure
