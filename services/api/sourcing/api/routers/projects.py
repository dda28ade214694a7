"""Projects, their companies, Sales Nav searches and screening questions (§4.3)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from sourcing.api.repositories import projects as repository
from sourcing.api.schemas import (
    CompaniesUpsert,
    CompaniesUpserted,
    ProjectCreate,
    ProjectOut,
    ProjectUpdate,
    SalesNavSearchesCreate,
    SalesNavSearchesCreated,
    ScreeningQuestionCreate,
    ScreeningQuestionList,
    ScreeningQuestionOut,
    ScreeningQuestionUpdate,
)
from sourcing.common import allocation
from sourcing.common.errors import NotFound
from sourcing.common.models import Project, ScreeningQuestion
from sourcing.common.statemachines import PROJECT
from sourcing.common.transitions import move
from sourcing.common.web import NowDep, SessionDep, StaffPrincipal, error_responses

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])

_READ_ERRORS = error_responses(400, 401, 403, 404)
_WRITE_ERRORS = error_responses(400, 401, 403, 404, 409, 413)


async def _project(session: SessionDep, project_id: uuid.UUID, *, lock: bool = False) -> Project:
    find = repository.get_project_for_update if lock else repository.get_project
    project = await find(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found", details={"projectId": str(project_id)})
    return project


@router.post(
    "",
    response_model=ProjectOut,
    status_code=status.HTTP_201_CREATED,
    responses=error_responses(400, 401, 403, 413),
)
async def create_project(body: ProjectCreate, session: SessionDep, _: StaffPrincipal) -> Project:
    project = Project(**body.model_dump(), status=PROJECT.initial)
    session.add(project)
    await session.flush()
    await session.refresh(project)
    return project


@router.get("/{project_id}", response_model=ProjectOut, responses=_READ_ERRORS)
async def get_project(project_id: uuid.UUID, session: SessionDep, _: StaffPrincipal) -> Project:
    return await _project(session, project_id)


@router.patch("/{project_id}", response_model=ProjectOut, responses=_WRITE_ERRORS)
async def update_project(
    project_id: uuid.UUID,
    body: ProjectUpdate,
    session: SessionDep,
    principal: StaffPrincipal,
    now: NowDep,
) -> Project:
    """Also moves the project's call tasks, in the same transaction: a new priority re-orders
    its PENDING tasks; COMPLETED or ARCHIVED cancels its open tasks (audited); a PAUSED
    project's tasks stay in the pool but are not handed out until it is ACTIVE again."""
    project = await _project(session, project_id, lock=True)
    changes = body.model_dump(exclude_unset=True)
    new_status = changes.pop("status", None)
    previous_priority = project.priority
    if new_status is not None and new_status != project.status:
        actor = f"{principal.role.value}:{principal.user_id}"
        move(session, project, new_status, actor=actor, reason=None, now=now)
        if new_status in allocation.CLOSED_PROJECT_STATUSES:
            await allocation.cancel_project_tasks(
                session, project.id, project_status=new_status, now=now, actor=actor
            )
    for field, value in changes.items():
        if value is None and field != "description":
            continue
        setattr(project, field, value)
    if project.priority != previous_priority:
        await allocation.reprioritise_project_tasks(session, project.id, priority=project.priority)
    await session.flush()
    await session.refresh(project)
    return project


@router.post("/{project_id}/companies", response_model=CompaniesUpserted, responses=_WRITE_ERRORS)
async def upsert_companies(
    project_id: uuid.UUID, body: CompaniesUpsert, session: SessionDep, _: StaffPrincipal
) -> CompaniesUpserted:
    await _project(session, project_id)
    companies = [
        {**c.model_dump(exclude={"metadata"}), "metadata_": c.metadata or {}}
        for c in body.companies
    ]
    count = await repository.upsert_companies(session, project_id, companies)
    return CompaniesUpserted(created_or_updated=count)


@router.post(
    "/{project_id}/sales-nav-searches",
    response_model=SalesNavSearchesCreated,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def add_sales_nav_searches(
    project_id: uuid.UUID, body: SalesNavSearchesCreate, session: SessionDep, _: StaffPrincipal
) -> SalesNavSearchesCreated:
    await _project(session, project_id)
    searches = [
        {"source_url": s.source_url, "normalized_url": s.normalized_url or s.source_url}
        for s in body.searches
    ]
    created = await repository.add_sales_nav_searches(session, project_id, searches)
    return SalesNavSearchesCreated(created=created)


@router.get(
    "/{project_id}/screening-questions",
    response_model=ScreeningQuestionList,
    responses=_READ_ERRORS,
)
async def list_screening_questions(
    project_id: uuid.UUID, session: SessionDep, _: StaffPrincipal
) -> ScreeningQuestionList:
    await _project(session, project_id)
    questions = await repository.list_screening_questions(session, project_id)
    return ScreeningQuestionList(items=[ScreeningQuestionOut.model_validate(q) for q in questions])


@router.post(
    "/{project_id}/screening-questions",
    response_model=ScreeningQuestionOut,
    status_code=status.HTTP_201_CREATED,
    responses=_WRITE_ERRORS,
)
async def create_screening_question(
    project_id: uuid.UUID, body: ScreeningQuestionCreate, session: SessionDep, _: StaffPrincipal
) -> ScreeningQuestion:
    await _project(session, project_id)
    question = ScreeningQuestion(project_id=project_id, **body.model_dump())
    session.add(question)
    await session.flush()
    await session.refresh(question)
    return question


@router.patch(
    "/{project_id}/screening-questions/{question_id}",
    response_model=ScreeningQuestionOut,
    responses=_WRITE_ERRORS,
)
async def update_screening_question(
    project_id: uuid.UUID,
    question_id: uuid.UUID,
    body: ScreeningQuestionUpdate,
    session: SessionDep,
    _: StaffPrincipal,
) -> ScreeningQuestion:
    await _project(session, project_id)
    question = await repository.get_screening_question(session, project_id, question_id)
    if question is None:
        raise NotFound(
            f"screening question {question_id} not found in project {project_id}",
            details={"projectId": str(project_id), "questionId": str(question_id)},
        )
    for field, value in body.model_dump(exclude_unset=True, exclude_none=True).items():
        setattr(question, field, value)
    await session.flush()
    await session.refresh(question)
    return question
