"""Job-title discovery (§4.6): the trigger records a run and queues it through the outbox."""

from __future__ import annotations

from fastapi import APIRouter, status

from sourcing.api.repositories import sourcing as repository
from sourcing.api.schemas_sourcing import JobTitleDiscoveryAccepted, JobTitleDiscoveryTrigger
from sourcing.common.errors import InvalidPayload, NotFound
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.sourcing import JobTitleDiscoveryRequested
from sourcing.common.web import SessionDep, SettingsDep, StaffPrincipal, error_responses

router = APIRouter(prefix="/api/v1/job-title-discovery", tags=["job-title discovery"])


@router.post(
    "/trigger",
    status_code=status.HTTP_202_ACCEPTED,
    response_model=JobTitleDiscoveryAccepted,
    responses=error_responses(400, 401, 403, 404, 413),
    description="Discover a project's job titles: Apollo people search per company and "
    "geography, then OpenAI expands, normalises and scores them (JobTitle rows per company). "
    "Runs asynchronously in the `job-title-discovery` lane; `jobId` is the run's id.",
)
async def trigger_job_title_discovery(
    body: JobTitleDiscoveryTrigger,
    session: SessionDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
) -> JobTitleDiscoveryAccepted:
    project = await repository.get_project(session, body.project_id)
    if project is None:
        raise NotFound(
            f"project {body.project_id} not found", details={"projectId": str(body.project_id)}
        )
    if len(body.companies) > settings.JOB_TITLE_MAX_COMPANIES:
        raise InvalidPayload(
            f"at most {settings.JOB_TITLE_MAX_COMPANIES} companies per request",
            details={"field": "companies", "max": settings.JOB_TITLE_MAX_COMPANIES},
        )
    given_ids = [c.company_id for c in body.companies if c.company_id is not None]
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
            {
                "companyName": company.company_name,
                "companyId": str(company.company_id) if company.company_id else None,
            }
            for company in body.companies
        ],
        geography_iso_codes=body.geography_iso_codes or project.geography_iso_codes,
        requested_by=principal.user_id,
        correlation_id=correlation_id_var.get(),
    )
    await publish(session, JobTitleDiscoveryRequested(run_id=run.id, project_id=project.id))
    return JobTitleDiscoveryAccepted(accepted=True, job_id=run.id)
