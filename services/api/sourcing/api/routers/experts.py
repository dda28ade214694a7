"""Read side of the sourcing pipeline for operators (admin/ops): what a project sourced, and
everything known about one expert, without a database client."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Query, status

from sourcing.api.repositories import experts as repository
from sourcing.api.schemas_experts import (
    AttemptSummary,
    ContactCreate,
    ContactOut,
    ExpertDetail,
    ExpertLead,
    ProjectExpertItem,
    ProjectExpertPage,
    SignupRecord,
    SignupRecorded,
)
from sourcing.common import allocation
from sourcing.common.errors import NotFound
from sourcing.common.kafka.outbox import publish
from sourcing.common.messages.allocation import CallTaskRequested, CallTaskTrigger
from sourcing.common.models.enums import Channel, ContactSource, ContactType
from sourcing.common.statemachines import LeadStatus
from sourcing.common.web import NowDep, SessionDep, StaffPrincipal, error_responses
from sourcing.people.phones import normalize_phone

router = APIRouter(prefix="/api/v1", tags=["experts"])

_READ_ERRORS = error_responses(400, 401, 403, 404)
_WRITE_ERRORS = error_responses(400, 401, 403, 404, 413)


@router.get(
    "/projects/{project_id}/experts",
    response_model=ProjectExpertPage,
    responses=_READ_ERRORS,
    summary="A project's sourced experts, best ranked first",
    description="One item per lead of the project, sorted by the latest ranking score "
    "(unscored last, then by lead id), with the expert's contacts, the lead status and its "
    "reason. Filter with `status` (a lead status); page with `limit` (1-100) and `offset`.",
)
async def list_project_experts(
    project_id: uuid.UUID,
    session: SessionDep,
    _: StaffPrincipal,
    status: Annotated[LeadStatus | None, Query(description="Only leads in this status")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> ProjectExpertPage:
    if not await repository.project_exists(session, project_id):
        raise NotFound(f"project {project_id} not found", details={"projectId": str(project_id)})
    rows, total = await repository.project_leads(
        session,
        project_id,
        status=status.value if status is not None else None,
        limit=limit,
        offset=offset,
    )
    contacts = await repository.contacts_of(session, [expert.id for _, expert in rows])
    items = [
        ProjectExpertItem(
            lead_id=lead.id,
            expert_id=expert.id,
            full_name=expert.full_name,
            title=expert.title or lead.raw_title,
            company_name=expert.company_name or lead.raw_company,
            country_iso=expert.country_iso or lead.country_iso,
            lead_status=lead.status,
            status_reason=lead.status_reason,
            ranking_score=lead.ranking_score,
            sales_nav_search_id=lead.sales_nav_search_id,
            enriched_at=lead.enriched_at,
            contacts=[ContactOut.model_validate(c) for c in contacts.get(expert.id, [])],
        )
        for lead, expert in rows
    ]
    return ProjectExpertPage(items=items, total=total, limit=limit, offset=offset)


@router.get(
    "/experts/{expert_id}",
    response_model=ExpertDetail,
    responses=_READ_ERRORS,
    summary="One expert: contacts with provenance, enrichment attempts, leads per project",
)
async def get_expert(expert_id: uuid.UUID, session: SessionDep, _: StaffPrincipal) -> ExpertDetail:
    expert = await repository.get_expert(session, expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
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


@router.post(
    "/experts/{expert_id}/signup",
    response_model=SignupRecorded,
    responses=error_responses(400, 401, 403, 404, 413),
    summary="Record that the expert signed up (when the sign-up site's webhook did not)",
    description="Writes the expert's `signedUpAt` (the first sign-up wins), moves their leads "
    "to CONVERTED (from ENRICHED, OUTREACH_PENDING, CONTACTED or REPLIED; leads still being "
    "enriched, or DISQUALIFIED, keep their status), cancels their open signup-chase tasks and "
    "stops new ones. Idempotent: a repeat answers 200 with `alreadySignedUp: true` and changes "
    "nothing. Audited as an `expert.signed_up` system event with the operator.",
)
async def record_signup(
    expert_id: uuid.UUID,
    session: SessionDep,
    principal: StaffPrincipal,
    now: NowDep,
    body: Annotated[SignupRecord | None, Body()] = None,
) -> SignupRecorded:
    expert = await allocation.find_expert_for_signup(session, expert_id=expert_id, email=None)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    record = body or SignupRecord()
    result = await allocation.record_signup(
        session,
        expert,
        signed_up_at=record.signed_up_at or now,
        actor=f"{principal.role.value}:{principal.user_id}",
        now=now,
        source="ops",
        note=record.note,
    )
    return SignupRecorded(
        expert_id=result.expert_id,
        signed_up_at=result.signed_up_at,
        already_signed_up=not result.changed,
        converted_leads=result.converted_leads,
        cancelled_task_ids=result.cancelled_task_ids,
    )


@router.post(
    "/experts/{expert_id}/contacts",
    response_model=ContactOut,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
    summary="Add a phone to an expert (call tasks follow)",
    description="The number is stored in E.164, a national format read in the expert's "
    "country; one that cannot be read is kept as given with `isDialable: false` and never "
    "called. Adding a number the expert already has returns that contact. A dialable number "
    "asks the allocation service for the expert's call task in each project they are a lead "
    "of (created when the expert may be called and has none there yet).",
)
async def add_contact(
    expert_id: uuid.UUID, body: ContactCreate, session: SessionDep, _: StaffPrincipal
) -> ContactOut:
    expert = await repository.get_expert(session, expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    phone = normalize_phone(body.value, expert.country_iso)
    contact = await repository.add_contact(
        session,
        {
            "expert_id": expert.id,
            "type": ContactType.PHONE.value,
            "channel": Channel.PHONE.value,
            "value": phone.given,
            "value_normalized": phone.normalized,
            "is_primary": body.is_primary,
            "is_dialable": phone.dialable,
            "source": ContactSource.MANUAL.value,
        },
    )
    if phone.dialable:
        for project_id in await repository.project_ids_of_expert(session, expert.id):
            await publish(
                session,
                CallTaskRequested(
                    project_id=project_id,
                    expert_id=expert.id,
                    trigger=CallTaskTrigger.OPERATOR_CONTACT,
                ),
            )
    return ContactOut.model_validate(contact)
