"""Screening endpoints (manual §4.8): dispatch a project's questions, record answers.

Status semantics (see :mod:`sourcing.common.screening`): one row per expert and question, all
rows of one expert's screening move together ``PENDING → IN_PROGRESS`` (first answer) ``→
COMPLETE`` (every required question answered). Dispatch is idempotent: questions that already
have a row keep it, and the questions are only sent when a new row was created. Screening
messages do not count toward, and are not blocked by, the outreach cooldown.

Errors: unknown project/expert/question → 404; question of another project → 400; suppressed
expert → 409 ``expert_suppressed``; project without questions → 409 ``no_screening_questions``;
expert with no reachable channel → 409 ``no_reachable_channel``; an answer before dispatch →
409 ``screening_not_dispatched``.
"""

from __future__ import annotations

from fastapi import APIRouter, status

from sourcing.api.repositories import outreach as repository
from sourcing.api.routers.outreach import (
    ThreadNotOpen,
    load_project_and_expert,
)
from sourcing.api.schemas_outreach import (
    ScreeningAnswerRecorded,
    ScreeningAnswerRequest,
    ScreeningDispatchAccepted,
    ScreeningDispatchRequest,
    ScreeningResponseOut,
)
from sourcing.common.errors import Conflict, InvalidPayload, NotFound
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.outreach import OutreachSendRequested, SheetSyncRequested
from sourcing.common.models.enums import MessagePurpose
from sourcing.common.policies.channels import api_name
from sourcing.common.policies.cooldown import ThreadClosed, open_thread, queue_outbound_message
from sourcing.common.screening import (
    OPEN_STATUSES,
    best_recipient,
    render_screening_questions,
)
from sourcing.common.statemachines import ScreeningResponseStatus
from sourcing.common.transitions import move
from sourcing.common.web import NowDep, SessionDep, StaffPrincipal, error_responses

router = APIRouter(prefix="/api/v1/screening", tags=["screening"])

_ERRORS = error_responses(400, 401, 403, 404, 409, 413)


class NoScreeningQuestions(Conflict):
    code = "no_screening_questions"


class NoReachableChannel(Conflict):
    code = "no_reachable_channel"


class ScreeningNotDispatched(Conflict):
    code = "screening_not_dispatched"


@router.post(
    "/dispatch",
    response_model=ScreeningDispatchAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
)
async def dispatch_screening(
    body: ScreeningDispatchRequest, session: SessionDep, _: StaffPrincipal, now: NowDep
) -> ScreeningDispatchAccepted:
    project, expert = await load_project_and_expert(session, body.project_id, body.expert_id)
    questions = await repository.list_questions(session, project.id)
    if not questions:
        raise NoScreeningQuestions(
            f"project {project.id} has no screening questions",
            details={"projectId": str(project.id)},
        )
    recipient = best_recipient(expert, await repository.list_contacts(session, expert.id))
    if recipient is None:
        raise NoReachableChannel(
            f"expert {expert.id} has no contact any channel can reach",
            details={"expertId": str(expert.id)},
        )
    correlation_id = correlation_id_var.get()
    created = await repository.create_pending_responses(
        session,
        project_id=project.id,
        expert_id=expert.id,
        question_ids=[question.id for question in questions],
        channel=recipient.channel.value,
        now=now,
        correlation_id=correlation_id,
    )
    job_id: str | None = None
    if created:
        try:
            thread = await open_thread(
                session,
                project_id=project.id,
                expert_id=expert.id,
                channel=recipient.channel,
                recipient=recipient.address,
            )
        except ThreadClosed as closed:
            raise ThreadNotOpen(
                str(closed), details={"threadId": str(closed.thread.id)}
            ) from closed
        message = await queue_outbound_message(
            session,
            thread=thread,
            body=render_screening_questions([question.prompt for question in questions]),
            purpose=MessagePurpose.SCREENING,
            recipient=recipient.address,
            correlation_id=correlation_id,
        )
        await publish(
            session,
            OutreachSendRequested(
                message_id=message.id,
                expert_id=expert.id,
                project_id=project.id,
                subject=f"Screening questions: {project.name}"[:500],
            ),
        )
        job_id = str(message.id)
        rows = await repository.screening_rows(session, project_id=project.id, expert_id=expert.id)
        new = set(created)
        for response, _question in rows:
            if response.id in new:
                response.dispatch_message_id = message.id
        await session.flush()
        await publish(
            session, SheetSyncRequested.for_expert(project_id=project.id, expert_id=expert.id)
        )
    rows = await repository.screening_rows(session, project_id=project.id, expert_id=expert.id)
    return ScreeningDispatchAccepted(
        accepted=True,
        job_id=job_id,
        channel=api_name(recipient.channel),
        created=len(created),
        responses=[ScreeningResponseOut.model_validate(response) for response, _ in rows],
    )


@router.post(
    "/response",
    response_model=ScreeningAnswerRecorded,
    status_code=status.HTTP_200_OK,
    responses=_ERRORS,
)
async def record_screening_response(
    body: ScreeningAnswerRequest, session: SessionDep, principal: StaffPrincipal, now: NowDep
) -> ScreeningAnswerRecorded:
    project = await repository.get_project(session, body.project_id)
    if project is None:
        raise NotFound(
            f"project {body.project_id} not found", details={"projectId": str(body.project_id)}
        )
    expert = await repository.get_expert(session, body.expert_id)
    if expert is None:
        raise NotFound(
            f"expert {body.expert_id} not found", details={"expertId": str(body.expert_id)}
        )
    question = await repository.get_question(session, body.question_id)
    if question is None:
        raise NotFound(
            f"screening question {body.question_id} not found",
            details={"questionId": str(body.question_id)},
        )
    if question.project_id != project.id:
        raise InvalidPayload(
            f"question {question.id} belongs to another project",
            details={
                "field": "questionId",
                "questionProjectId": str(question.project_id),
                "projectId": str(project.id),
            },
        )
    rows = await repository.screening_rows(
        session, project_id=project.id, expert_id=expert.id, lock=True
    )
    answered = next((response for response, q in rows if q.id == question.id), None)
    if answered is None:
        raise ScreeningNotDispatched(
            f"screening was not dispatched to expert {expert.id} for question {question.id}",
            details={"questionId": str(question.id)},
        )
    answered.response_text = body.response_text
    answered.answered_at = now
    answered.updated_at = now
    open_rows = [response for response, _ in rows if response.status in OPEN_STATUSES]
    actor = f"{principal.role.value}:{principal.user_id}"
    for response in open_rows:
        if response.status == ScreeningResponseStatus.PENDING.value:
            move(
                session,
                response,
                ScreeningResponseStatus.IN_PROGRESS,
                actor=actor,
                reason="an answer arrived",
                now=now,
            )
    remaining = sum(1 for response, q in rows if q.required and response.answered_at is None)
    if remaining == 0:
        for response in open_rows:
            move(
                session,
                response,
                ScreeningResponseStatus.COMPLETE,
                actor=actor,
                reason="every required question answered",
                now=now,
            )
            response.completed_at = now
    await session.flush()
    await publish(
        session, SheetSyncRequested.for_expert(project_id=project.id, expert_id=expert.id)
    )
    return ScreeningAnswerRecorded(
        response=ScreeningResponseOut.model_validate(answered),
        screening_status=answered.status,
        required_unanswered=remaining,
    )
