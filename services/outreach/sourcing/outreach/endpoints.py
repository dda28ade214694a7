"""The outreach context's endpoints, mounted by the gateway: outreach (manual §4.7) and
screening (manual §4.8).

Outreach queues a message to an expert on one of the 13 channels. Refusals: unknown channel →
400 (listing the valid names); unknown project/expert → 404; suppressed (never-contact) expert
→ 409 ``expert_suppressed``; a project not ACTIVE → 409 ``project_not_active``; a project with
its ``targetThreshold`` of converted experts → 409 ``target_threshold_reached``; expert in the
30-day cooldown → 409 ``cooldown_active`` with
``details.cooldownEndsAt``, and the refusal is logged in ``cooldown_logs`` (the 409 is answered
without rolling that row back).

Screening dispatches a project's questions and records answers. Status semantics (see
:mod:`sourcing.outreach.service`): one row per expert and question, all rows of one expert's
screening move together ``PENDING → IN_PROGRESS`` (first answer) ``→ COMPLETE`` (every
required question answered). Dispatch is idempotent: questions that already have a row keep
it, and the questions are only sent when a new row was created. Screening messages do not
count toward, and are not blocked by, the outreach cooldown. Errors: unknown
project/expert/question → 404; question of another project → 400; suppressed expert → 409
``expert_suppressed``; project not ACTIVE (dispatch) → 409 ``project_not_active``; project
without questions → 409 ``no_screening_questions``; expert with
no reachable channel → 409 ``no_reachable_channel``; an answer before dispatch → 409
``screening_not_dispatched``.

The read side lists outreach threads (filters, one cursor style) and shows one thread with its
messages, oldest first.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Query, status
from fastapi.responses import JSONResponse, Response

from sourcing.common.errors import Conflict, InvalidPayload, NotFound, Unprocessable
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.outreach import OutreachSendRequested, SheetSyncRequested
from sourcing.common.models import ContactSuppression, Expert, OutreachThread, Project
from sourcing.common.models.enums import MessagePurpose, SuppressedContactKind, SuppressionReason
from sourcing.common.statemachines import OutreachThreadStatus
from sourcing.common.web import (
    AdminPrincipal,
    CursorQuery,
    LimitQuery,
    NowDep,
    SessionDep,
    StaffPrincipal,
    decode_cursor,
    error_responses,
    next_cursor,
    settings_of,
)
from sourcing.outreach import repository, service
from sourcing.outreach.schemas import (
    OutreachSendAccepted,
    OutreachSendRequest,
    OutreachThreadDetail,
    OutreachThreadOut,
    OutreachThreadPage,
    ScreeningAnswerRecorded,
    ScreeningAnswerRequest,
    ScreeningDispatchAccepted,
    ScreeningDispatchRequest,
    ScreeningResponseOut,
    SuppressionCreate,
    SuppressionOut,
    SuppressionPage,
)
from sourcing.outreach.settings import (
    OutreachSettings as OutreachSettings,  # the gateway's settings build on it
)
from sourcing.people.suppression import suppression_reason

outreach_router = APIRouter(prefix="/api/v1/outreach", tags=["outreach"])
screening_router = APIRouter(prefix="/api/v1/screening", tags=["screening"])
suppressions_router = APIRouter(prefix="/api/v1/suppressions", tags=["suppressions"])

OutreachSettingsDep = Annotated[OutreachSettings, Depends(settings_of(OutreachSettings))]


class CooldownActive(Conflict):
    code = "cooldown_active"


class ExpertSuppressed(Conflict):
    code = "expert_suppressed"


class ThreadNotOpen(Conflict):
    code = "thread_closed"


class RecipientRefused(Unprocessable):
    code = "recipient_refused"


class ContactSuppressed(Conflict):
    code = "contact_suppressed"


async def load_project_and_expert(
    session: SessionDep, project_id: uuid.UUID, expert_id: uuid.UUID
) -> tuple[Project, Expert]:
    project = await repository.get_project(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found", details={"projectId": str(project_id)})
    expert = await repository.share_lock_expert(session, expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    reason = await suppression_reason(session, expert.id)
    if reason is not None:
        raise ExpertSuppressed(
            f"expert {expert_id} must never be contacted again ({reason})",
            details={"expertId": str(expert_id), "reason": reason},
        )
    return project, expert


@outreach_router.post(
    "/send",
    response_model=OutreachSendAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 404, 409, 413, 422),
    summary="Send an expert one message on a channel (queued for delivery)",
)
async def send_outreach(
    body: OutreachSendRequest,
    session: SessionDep,
    settings: OutreachSettingsDep,
    principal: StaffPrincipal,
    now: NowDep,
) -> OutreachSendAccepted | JSONResponse:
    channel = service.normalize_channel(body.channel)
    service.validate_recipient(channel, body.recipient)
    project, expert = await load_project_and_expert(session, body.project_id, body.expert_id)
    refused = await service.recipient_refusal(session, expert, channel, body.recipient)
    if refused is not None:
        details = {
            "field": "recipient",
            "channel": service.api_name(channel),
            "reason": refused.reason,
            "countryIso": expert.country_iso,
        }
        if refused.suppressed:
            raise ContactSuppressed(refused.message, details=details)
        raise RecipientRefused(refused.message, details=details)
    correlation_id = correlation_id_var.get()
    try:
        queued = await service.queue_outreach(
            session,
            project=project,
            expert=expert,
            channel=channel,
            recipient=body.recipient,
            body=body.body,
            now=now,
            cooldown_days=settings.OUTREACH_COOLDOWN_DAYS,
            actor=principal.user_id,
            correlation_id=correlation_id,
            request_override=body.override_cooldown,
            subject=body.subject,
        )
    except service.ThreadClosed as closed:
        raise ThreadNotOpen(
            str(closed), details={"threadId": str(closed.thread.id), "status": closed.thread.status}
        ) from closed
    if queued.message is None:
        decision = queued.decision
        ends_at = decision.ends_at.isoformat() if decision.ends_at else None
        refusal = CooldownActive(
            f"expert {expert.id} is in the {settings.OUTREACH_COOLDOWN_DAYS}-day outreach "
            f"cooldown until {ends_at}; set overrideCooldown to send anyway",
            details={
                "expertId": str(expert.id),
                "cooldownEndsAt": ends_at,
                "lastContactedAt": decision.last_contacted_at.isoformat()
                if decision.last_contacted_at
                else None,
                "cooldownLogId": str(decision.log_id),
            },
        )
        # Returned, not raised: the unit of work commits the ENFORCED cooldown log.
        return JSONResponse(status_code=refusal.status, content=refusal.envelope())
    return OutreachSendAccepted(accepted=True, job_id=str(queued.message.id))


@outreach_router.get(
    "/threads",
    response_model=OutreachThreadPage,
    responses=error_responses(400, 401, 403),
    summary="List outreach threads (oldest first)",
    description=(
        "Filters: `expertId`, `projectId`, `channel` (any spelling `POST /outreach/send` "
        "accepts), `status`; `limit` 1-100 (default 50). Ordered by `(createdAt, id)` "
        "ascending: pass `nextCursor` back as `cursor` for the next page."
    ),
)
async def list_outreach_threads(
    session: SessionDep,
    _: StaffPrincipal,
    expert_id: Annotated[uuid.UUID | None, Query(alias="expertId")] = None,
    project_id: Annotated[uuid.UUID | None, Query(alias="projectId")] = None,
    channel: Annotated[str | None, Query(max_length=64, description="e.g. `EMAIL`")] = None,
    thread_status: Annotated[OutreachThreadStatus | None, Query(alias="status")] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> OutreachThreadPage:
    threads = await repository.list_threads(
        session,
        expert_id=expert_id,
        project_id=project_id,
        channel=service.normalize_channel(channel) if channel is not None else None,
        status=thread_status,
        limit=limit,
        after=decode_cursor(cursor),
    )
    return OutreachThreadPage(
        items=[OutreachThreadOut.model_validate(thread) for thread in threads],
        next_cursor=next_cursor(threads, limit),
    )


@outreach_router.get(
    "/threads/{thread_id}",
    response_model=OutreachThreadDetail,
    responses=error_responses(400, 401, 403, 404),
    summary="One outreach thread with its messages (oldest first)",
)
async def get_outreach_thread(
    thread_id: uuid.UUID, session: SessionDep, _: StaffPrincipal
) -> OutreachThread:
    thread = await repository.thread_with_messages(session, thread_id)
    if thread is None:
        raise NotFound(
            f"outreach thread {thread_id} not found", details={"threadId": str(thread_id)}
        )
    return thread


_ERRORS = error_responses(400, 401, 403, 404, 409, 413)


class NoScreeningQuestions(Conflict):
    code = "no_screening_questions"


class NoReachableChannel(Conflict):
    code = "no_reachable_channel"


class ScreeningNotDispatched(Conflict):
    code = "screening_not_dispatched"


@screening_router.post(
    "/dispatch",
    response_model=ScreeningDispatchAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=_ERRORS,
    summary="Send the screening questions to an expert",
)
async def dispatch_screening(
    body: ScreeningDispatchRequest, session: SessionDep, _: StaffPrincipal, now: NowDep
) -> ScreeningDispatchAccepted:
    project, expert = await load_project_and_expert(session, body.project_id, body.expert_id)
    refusal = service.project_refusal(project)
    if refusal is not None:
        raise refusal
    questions = await repository.list_questions(session, project.id)
    if not questions:
        raise NoScreeningQuestions(
            f"project {project.id} has no screening questions",
            details={"projectId": str(project.id)},
        )
    recipient = await service.choose_recipient(session, expert)
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
            thread = await service.open_thread(
                session,
                project_id=project.id,
                expert_id=expert.id,
                channel=recipient.channel,
                recipient=recipient.address,
            )
        except service.ThreadClosed as closed:
            raise ThreadNotOpen(
                str(closed), details={"threadId": str(closed.thread.id)}
            ) from closed
        message = await service.queue_outbound_message(
            session,
            thread=thread,
            body=service.render_screening_questions([question.prompt for question in questions]),
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
        channel=service.api_name(recipient.channel),
        created=len(created),
        responses=[ScreeningResponseOut.model_validate(response) for response, _ in rows],
    )


@screening_router.post(
    "/response",
    response_model=ScreeningAnswerRecorded,
    status_code=status.HTTP_200_OK,
    responses=_ERRORS,
    summary="Record an expert's answer to a screening question",
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
    remaining = await service.record_answer(
        session,
        rows,
        answered,
        text=body.response_text,
        now=now,
        actor=f"{principal.role.value}:{principal.user_id}",
    )
    await publish(
        session, SheetSyncRequested.for_expert(project_id=project.id, expert_id=expert.id)
    )
    return ScreeningAnswerRecorded(
        response=ScreeningResponseOut.model_validate(answered),
        screening_status=answered.status,
        required_unanswered=remaining,
    )


@suppressions_router.post(
    "",
    response_model=SuppressionOut,
    status_code=status.HTTP_201_CREATED,
    responses={
        200: {"model": SuppressionOut, "description": "Already suppressed: the existing row."},
        **error_responses(400, 401, 403, 413),
    },
    summary="Suppress an email, phone number, LinkedIn URL or email domain",
    description=(
        "Nothing is sent to the address again on any channel, a suppressed phone is not "
        "dialled, and a suppressed LinkedIn URL or email stops its person (no outreach, no "
        "call task; a new lead of theirs is DISQUALIFIED). Messages still queued to the "
        "address are cancelled. Idempotent: suppressing the same value again answers 200 "
        "with the existing row."
    ),
)
async def create_suppression(
    body: SuppressionCreate, session: SessionDep, principal: StaffPrincipal, now: NowDep
) -> SuppressionOut | JSONResponse:
    row, created = await service.add_suppression(
        session,
        kind=body.kind,
        value=body.value,
        reason=body.reason,
        now=now,
        actor=principal.user_id,
        note=body.note,
        expert_id=body.expert_id,
        correlation_id=correlation_id_var.get(),
    )
    out = SuppressionOut.model_validate(row)
    if created:
        return out
    return JSONResponse(
        status_code=status.HTTP_200_OK, content=out.model_dump(mode="json", by_alias=True)
    )


@suppressions_router.get(
    "",
    response_model=SuppressionPage,
    responses=error_responses(400, 401, 403),
    summary="List suppressions (oldest first)",
    description=(
        "Filters: `kind`, `reason`, `expertId`, and `value` (with `kind`: matched the way the "
        "rule matches, so `Dana@ACME.co.uk` finds `dana@acme.co.uk`, and an erased person's "
        "hashed entry is still found). `limit` 1-100 (default 50); pass `nextCursor` back as "
        "`cursor` for the next page."
    ),
)
async def list_suppressions(
    session: SessionDep,
    _: StaffPrincipal,
    kind: SuppressedContactKind | None = None,
    reason: SuppressionReason | None = None,
    expert_id: Annotated[uuid.UUID | None, Query(alias="expertId")] = None,
    value: Annotated[str | None, Query(max_length=500)] = None,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
) -> SuppressionPage:
    if value is not None and kind is None:
        raise InvalidPayload(
            "filtering by value needs the kind of the value", details={"field": "kind"}
        )
    rows = await repository.list_suppressions(
        session,
        kind=kind,
        reason=reason,
        expert_id=expert_id,
        value_hash=service.suppression_hash(kind, value) if kind and value is not None else None,
        limit=limit,
        after=decode_cursor(cursor),
    )
    return SuppressionPage(
        items=[SuppressionOut.model_validate(row) for row in rows],
        next_cursor=next_cursor(rows, limit),
    )


@suppressions_router.get(
    "/{suppression_id}",
    response_model=SuppressionOut,
    responses=error_responses(400, 401, 403, 404),
    summary="One suppression",
)
async def get_suppression(
    suppression_id: uuid.UUID, session: SessionDep, _: StaffPrincipal
) -> ContactSuppression:
    row = await repository.get_suppression(session, suppression_id)
    if row is None:
        raise NotFound(
            f"suppression {suppression_id} not found",
            details={"suppressionId": str(suppression_id)},
        )
    return row


@suppressions_router.delete(
    "/{suppression_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=error_responses(400, 401, 403, 404, 409),
    summary="Lift a suppression (admin; audited)",
    description=(
        "Writes a `contact.unsuppressed` system event (kind, reason and the value's hash, not "
        "the value). The hashed entries an erasure keeps cannot be lifted: 409 "
        "`erased_person_suppression`."
    ),
)
async def delete_suppression(
    suppression_id: uuid.UUID, session: SessionDep, principal: AdminPrincipal
) -> Response:
    await service.remove_suppression(
        session, suppression_id, actor=principal.user_id, correlation_id=correlation_id_var.get()
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
