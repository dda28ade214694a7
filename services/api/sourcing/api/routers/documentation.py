"""Documentation generator (manual §4.9): queue a job (the scheduler's agent writes the files
and keeps their content in the job row); read the latest of each document."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Path, status
from fastapi.responses import Response

from sourcing.api.repositories import ops as repository
from sourcing.api.schemas_ops import DocumentationAccepted
from sourcing.common.errors import NotFound
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


@router.get(
    "/{name}",
    response_class=Response,
    responses={
        200: {
            "content": {"text/markdown": {"example": "# Environment checklist\n\n..."}},
            "description": "The document, as the latest successful generation wrote it",
        },
        **error_responses(400, 401, 403, 404),
    },
    summary="Read a generated document (e.g. environment.md)",
    description=(
        "The latest successful `POST /documentation/generate` of this document, from the "
        "database (whichever container wrote the files). `README.md` lists them all. **404** "
        "before the first generation or for an unknown name."
    ),
)
async def get_document(
    name: Annotated[str, Path(pattern=r"^[A-Za-z0-9][A-Za-z0-9-]{0,60}\.md$")],
    session: SessionDep,
    _: StaffPrincipal,
) -> Response:
    content = await repository.latest_document(session, name)
    if content is None:
        raise NotFound(
            f"no generated document named {name}; POST /api/v1/documentation/generate first, "
            "or read README.md for the names",
            details={"name": name},
        )
    return Response(content, media_type="text/markdown; charset=utf-8")
