"""Documentation generator (manual §4.9): queue a job; the scheduler's agent writes the files."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, status

from sourcing.api.schemas_ops import DocumentationAccepted
from sourcing.common.events import DocumentationGenerate
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import current_correlation_id
from sourcing.common.models import DocumentationJob
from sourcing.common.models.enums import JobStatus
from sourcing.common.web import SessionDep, SettingsDep, StaffPrincipal, error_responses

router = APIRouter(prefix="/api/v1/documentation", tags=["documentation"])


@router.post(
    "/generate",
    response_model=DocumentationAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(401, 403),
    summary="Generate architecture, runbooks, state machine and environment docs",
)
async def generate_documentation(
    session: SessionDep, settings: SettingsDep, principal: StaffPrincipal
) -> DocumentationAccepted:
    job = DocumentationJob(
        id=uuid.uuid4(),
        status=JobStatus.QUEUED.value,
        requested_by=principal.user_id,
        output_dir=settings.DOCS_OUTPUT_DIR,
        correlation_id=current_correlation_id(),
    )
    session.add(job)
    await session.flush()
    # Same transaction as the job row: the message exists if and only if the job does.
    await publish(session, DocumentationGenerate(job_id=job.id))
    return DocumentationAccepted(job_id=job.id)
