"""The ingestion context's HTTP endpoints, mounted by the gateway: projects with their
companies, Sales Nav searches and screening questions (§4.3); the read side of the sourcing
pipeline for operators (what a project sourced, everything known about one expert, without a
database client) with an operator's phone and sign-up for an expert; an admin's erasure of a
person (GDPR / CCPA); and the job-title discovery trigger (§4.6), which records a run and
queues it through the outbox.

Three routers, so the gateway keeps its route order: :data:`projects_router`,
:data:`experts_router` and :data:`job_title_discovery_router`.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status

from sourcing.common.models import Project, ScreeningQuestion
from sourcing.common.statemachines import LeadStatus, ProjectStatus
from sourcing.common.web import (
    AdminPrincipal,
    CursorQuery,
    LimitQuery,
    NowDep,
    SessionDep,
    StaffPrincipal,
    decode_cursor,
    decode_score_cursor,
    error_responses,
    next_cursor,
    next_score_cursor,
    settings_of,
)
from sourcing.ingestion import repository, service
from sourcing.ingestion.schemas import (
    AttemptSummary,
    CompaniesUpsert,
    CompaniesUpserted,
    ContactCreate,
    ContactOut,
    ErasureOut,
    ExpertDetail,
    ExpertLead,
    JobTitleDiscoveryAccepted,
    JobTitleDiscoveryTrigger,
    ProjectCreate,
    ProjectExpertItem,
    ProjectExpertLead,
    ProjectExpertPage,
    ProjectOut,
    ProjectPage,
    ProjectUpdate,
    SalesNavSearchesCreate,
    SalesNavSearchesCreated,
    ScreeningQuestionCreate,
    ScreeningQuestionList,
    ScreeningQuestionOut,
    ScreeningQuestionUpdate,
)
from sourcing.ingestion.settings import (
    IngestionSettings as IngestionSettings,  # the gateway's settings build on it
)

projects_router = APIRouter(prefix="/api/v1/projects", tags=["projects"])
experts_router = APIRouter(prefix="/api/v1", tags=["experts"])
job_title_discovery_router = APIRouter(
    prefix="/api/v1/job-title-discovery", tags=["job-title discovery"]
)

_READ_ERRORS = error_responses(400, 401, 403, 404)
_EXPERT_READ_ERRORS = error_responses(400, 401, 403, 404, 410)
_WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413)
_EXPERT_WRITE_ERRORS = error_responses(400, 401, 403, 404, 410, 413)

IngestionSettingsDep = Annotated[IngestionSettings, Depends(settings_of(IngestionSettings))]


# --- projects -----------------------------------------------------------------------------------


@projects_router.post(
    "",
    response_model=ProjectOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 413),
    summary="Create a sourcing project",
)
async def create_project(body: ProjectCreate, session: SessionDep, _: StaffPrincipal) -> Project:
    return await service.create_project(session, body.model_dump())


@projects_router.get(
    "",
    response_model=ProjectPage,
    responses=error_responses(400, 401, 403),
    summary="List projects (oldest first)",
    description=(
        "Filter: `status`; `limit` 1-100 (default 50). Ordered by `(createdAt, id)` "
        "ascending: pass `nextCursor` back as `cursor` for the next page."
    ),
)
async def list_projects(
    session: SessionDep,
    _: StaffPrincipal,
    project_status: Annotated[ProjectStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> ProjectPage:
    projects = await repository.list_projects(
        session,
        status=project_status.value if project_status else None,
        limit=limit,
        after=decode_cursor(cursor),
    )
    return ProjectPage(
        items=[ProjectOut.model_validate(project) for project in projects],
        next_cursor=next_cursor(projects, limit),
    )


@projects_router.get(
    "/{project_id}", response_model=ProjectOut, responses=_READ_ERRORS, summary="Get one project"
)
async def get_project(project_id: uuid.UUID, session: SessionDep, _: StaffPrincipal) -> Project:
    return await service.find_project(session, project_id)


@projects_router.patch(
    "/{project_id}",
    response_model=ProjectOut,
    responses=_WRITE_ERRORS,
    summary="Update a project's name, description, threshold, geographies or priority",
)
async def update_project(
    project_id: uuid.UUID,
    body: ProjectUpdate,
    session: SessionDep,
    principal: StaffPrincipal,
    now: NowDep,
) -> Project:
    """Also moves the project's call tasks, through ``project.changed.v1`` to the allocation
    service (published in the same transaction): a new priority re-orders its PENDING tasks;
    COMPLETED or ARCHIVED cancels its open tasks (audited); a PAUSED project's tasks stay in the
    pool but are not handed out until it is ACTIVE again."""
    return await service.update_project(
        session,
        project_id,
        body.model_dump(exclude_unset=True),
        actor=f"{principal.role.value}:{principal.user_id}",
        now=now,
    )


@projects_router.post(
    "/{project_id}/companies",
    response_model=CompaniesUpserted,
    responses=_WRITE_ERRORS,
    summary="Add or update a project's target companies",
)
async def upsert_companies(
    project_id: uuid.UUID, body: CompaniesUpsert, session: SessionDep, _: StaffPrincipal
) -> CompaniesUpserted:
    companies = [company.model_dump() for company in body.companies]
    count = await service.upsert_companies(session, project_id, companies)
    return CompaniesUpserted(created_or_updated=count)


@projects_router.post(
    "/{project_id}/sales-nav-searches",
    response_model=SalesNavSearchesCreated,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
    summary="Add Sales Navigator searches to a project",
)
async def add_sales_nav_searches(
    project_id: uuid.UUID, body: SalesNavSearchesCreate, session: SessionDep, _: StaffPrincipal
) -> SalesNavSearchesCreated:
    searches = [(search.source_url, search.normalized_url) for search in body.searches]
    created = await service.add_sales_nav_searches(session, project_id, searches)
    return SalesNavSearchesCreated(created=created)


@projects_router.get(
    "/{project_id}/screening-questions",
    response_model=ScreeningQuestionList,
    responses=_READ_ERRORS,
    summary="List a project's screening questions (display order)",
)
async def list_screening_questions(
    project_id: uuid.UUID, session: SessionDep, _: StaffPrincipal
) -> ScreeningQuestionList:
    questions = await service.list_screening_questions(session, project_id)
    return ScreeningQuestionList(items=[ScreeningQuestionOut.model_validate(q) for q in questions])


@projects_router.post(
    "/{project_id}/screening-questions",
    response_model=ScreeningQuestionOut,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
    summary="Add a screening question to a project",
)
async def create_screening_question(
    project_id: uuid.UUID, body: ScreeningQuestionCreate, session: SessionDep, _: StaffPrincipal
) -> ScreeningQuestion:
    return await service.create_screening_question(session, project_id, body.model_dump())


@projects_router.patch(
    "/{project_id}/screening-questions/{question_id}",
    response_model=ScreeningQuestionOut,
    responses=_WRITE_ERRORS,
    summary="Update a screening question",
)
async def update_screening_question(
    project_id: uuid.UUID,
    question_id: uuid.UUID,
    body: ScreeningQuestionUpdate,
    session: SessionDep,
    _: StaffPrincipal,
) -> ScreeningQuestion:
    return await service.update_screening_question(
        session, project_id, question_id, body.model_dump(exclude_unset=True, exclude_none=True)
    )


# --- experts ------------------------------------------------------------------------------------


@experts_router.get(
    "/projects/{project_id}/experts",
    response_model=ProjectExpertPage,
    responses=_READ_ERRORS,
    summary="A project's sourced experts, best ranked first",
    description="One item per expert, however many of the project's leads brought them "
    "(`leadCount`, and the leads best status first), with the expert's contacts and the "
    "furthest of their leads' statuses (`bestLeadStatus`). Sorted by the latest ranking score, "
    "unscored last, then by expert id. Filter with `status` (a lead status: experts whose best "
    "lead is in it); `limit` 1-100 (default 50): pass `nextCursor` back as `cursor` for the "
    "next page.",
)
async def list_project_experts(
    project_id: uuid.UUID,
    session: SessionDep,
    _: StaffPrincipal,
    status: Annotated[
        LeadStatus | None, Query(description="Only experts whose best lead is in this status")
    ] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> ProjectExpertPage:
    experts = await service.project_experts(
        session, project_id, best_status=status, limit=limit, after=decode_score_cursor(cursor)
    )
    contacts = await repository.contacts_of(session, [row.id for row in experts])
    items = [
        ProjectExpertItem(
            expert_id=row.id,
            full_name=row.expert.full_name,
            title=row.expert.title or row.leads[0].raw_title,
            company_name=row.expert.company_name or row.leads[0].raw_company,
            country_iso=row.expert.country_iso or row.leads[0].country_iso,
            ranking_score=row.score,
            lead_count=row.lead_count,
            best_lead_status=row.best_lead_status,
            leads=[
                ProjectExpertLead(
                    lead_id=lead.id,
                    sales_nav_search_id=lead.sales_nav_search_id,
                    status=lead.status,
                    status_reason=lead.status_reason,
                    enriched_at=lead.enriched_at,
                )
                for lead in row.leads
            ],
            contacts=[ContactOut.model_validate(c) for c in contacts.get(row.id, [])],
        )
        for row in experts
    ]
    return ProjectExpertPage(items=items, next_cursor=next_score_cursor(experts, limit))


@experts_router.get(
    "/experts/{expert_id}",
    response_model=ExpertDetail,
    responses=_EXPERT_READ_ERRORS,
    summary="One expert: contacts with provenance, enrichment attempts, leads per project",
    description="An erased expert answers 410 `gone`.",
)
async def get_expert(expert_id: uuid.UUID, session: SessionDep, _: StaffPrincipal) -> ExpertDetail:
    expert = await service.find_expert(session, expert_id)
    contacts = await repository.contacts_of(session, [expert.id])
    summary = await repository.attempt_summary(session, expert.id)
    leads = await repository.leads_of_expert(session, expert.id)
    return ExpertDetail(
        id=expert.id,
        full_name=expert.full_name,
        title=expert.title,
        company_name=expert.company_name,
        company_domain=expert.company_domain,
        country_iso=expert.country_iso,
        linkedin_url=expert.linkedin_url_normalized,
        primary_email=expert.primary_email,
        suppressed=expert.suppressed_at is not None,
        signed_up_at=expert.signed_up_at,
        contacts=[ContactOut.model_validate(c) for c in contacts.get(expert.id, [])],
        enrichment=[AttemptSummary.model_validate(s) for s in summary],
        leads=[
            ExpertLead(
                lead_id=lead.id,
                project_id=lead.project_id,
                sales_nav_search_id=lead.sales_nav_search_id,
                status=lead.status,
                status_reason=lead.status_reason,
                ranking_score=lead.ranking_score,
                created_at=lead.created_at,
            )
            for lead in leads
        ],
    )


@experts_router.post(
    "/experts/{expert_id}/contacts",
    response_model=ContactOut,
    status_code=status.HTTP_201_CREATED,
    responses=_EXPERT_WRITE_ERRORS,
    summary="Add a phone to an expert (call tasks follow)",
    description="The number is stored in E.164, a national format read in the expert's "
    "country; one that cannot be read is kept as given with `isDialable: false` and never "
    "called. Adding a number the expert already has returns that contact. A dialable number "
    "asks the allocation service for the expert's call task in each project they are a lead "
    "of (created when the expert may be called and has none there yet).",
)
async def add_expert_contact(
    expert_id: uuid.UUID, body: ContactCreate, session: SessionDep, _: StaffPrincipal
) -> ContactOut:
    contact = await service.add_phone(session, expert_id, body.value, is_primary=body.is_primary)
    return ContactOut.model_validate(contact)


@experts_router.post(
    "/experts/{expert_id}/erasure",
    response_model=ErasureOut,
    responses=error_responses(400, 401, 403, 404),
    summary="Erase a person's data (GDPR Art. 17, CCPA deletion); admin only",
    description="Deletes or clears everything the platform holds of the person, in every "
    "table, in one transaction: contacts, leads' raw data, outreach threads and messages, "
    "screening answers, call tasks' numbers and notes, call logs' numbers and recordings, raw "
    "Yay payloads, enrichment payloads, sheet exports, dead letters and outbox messages "
    "mentioning them; audit events are redacted. Their LinkedIn URL, emails and phones are "
    "kept as hashes only (contact suppressions `ERASED`), so a new lead bringing them back is "
    "DISQUALIFIED and stores nothing. The expert row stays as a suppressed tombstone (ids of "
    "call tasks and callers' statistics unchanged; `GET /experts/{id}` answers 410) and each "
    "Google Sheet row of theirs is queued for blanking. The answer comes once the data is "
    "gone; the audit event `expert.erased` names counts, never the person. Repeating the call "
    "answers the same summary and changes nothing.",
)
async def erase_expert(
    expert_id: uuid.UUID, session: SessionDep, principal: AdminPrincipal, now: NowDep
) -> ErasureOut:
    erasure = await service.erase_expert(
        session, expert_id, actor=f"{principal.role.value}:{principal.user_id}", now=now
    )
    return ErasureOut(
        expert_id=erasure.expert_id,
        erased_at=erasure.erased_at,
        tables=erasure.tables,
        suppressions=erasure.suppressions,
        sheet_rows_cleared=erasure.sheet_rows_cleared,
    )


# --- job-title discovery ------------------------------------------------------------------------


@job_title_discovery_router.post(
    "/trigger",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobTitleDiscoveryAccepted,
    responses=error_responses(400, 401, 403, 404, 413),
    description="Discover a project's job titles: Apollo people search per company and "
    "geography, then OpenAI expands, normalises and scores them (JobTitle rows per company). "
    "Runs asynchronously in the `job-title-discovery` lane; `jobId` is the run's id.",
    summary="Start job title discovery for a project",
)
async def trigger_job_title_discovery(
    body: JobTitleDiscoveryTrigger,
    session: SessionDep,
    settings: IngestionSettingsDep,
    principal: StaffPrincipal,
) -> JobTitleDiscoveryAccepted:
    run = await service.request_job_title_discovery(
        session,
        project_id=body.project_id,
        companies=[(company.company_name, company.company_id) for company in body.companies],
        geography_iso_codes=body.geography_iso_codes,
        requested_by=principal.user_id,
        max_companies=settings.JOB_TITLE_MAX_COMPANIES,
    )
    return JobTitleDiscoveryAccepted(accepted=True, job_id=run.id)
