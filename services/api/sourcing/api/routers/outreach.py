"""Outreach endpoints (manual §4.7): queue a message to an expert on one of the 13 channels.

Refusals: unknown channel → 400 (listing the valid names); unknown project/expert → 404;
suppressed (never-contact) expert → 409 ``expert_suppressed``; expert in the 30-day cooldown
→ 409 ``cooldown_active`` with ``details.cooldownEndsAt``, and the refusal is logged in
``cooldown_logs`` (the 409 is answered without rolling that row back).
"""

from __future__ import annotations

import re
import uuid

from fastapi import APIRouter, status
from fastapi.responses import JSONResponse

from sourcing.api.repositories import outreach as repository
from sourcing.api.schemas_outreach import OutreachSendAccepted, OutreachSendRequest
from sourcing.common.errors import Conflict, InvalidPayload, NotFound
from sourcing.common.kafka.outbox import publish
from sourcing.common.logging import correlation_id_var
from sourcing.common.messages.outreach import OutreachSendRequested
from sourcing.common.models import Expert, Project
from sourcing.common.models.enums import Channel
from sourcing.common.policies.channels import api_name, normalize_channel
from sourcing.common.policies.cooldown import (
    ThreadClosed,
    apply_cooldown,
    link_cooldown_log,
    open_thread,
    queue_outbound_message,
)
from sourcing.common.web import NowDep, SessionDep, SettingsDep, StaffPrincipal, error_responses
from sourcing.people.suppression import is_suppressed

router = APIRouter(prefix="/api/v1/outreach", tags=["outreach"])


class CooldownActive(Conflict):
    code = "cooldown_active"


class ExpertSuppressed(Conflict):
    code = "expert_suppressed"


class ThreadNotOpen(Conflict):
    code = "thread_closed"


_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{5,20}$")
_PHONE_CHANNELS = frozenset({Channel.PHONE, Channel.SMS, Channel.VOICEMAIL, Channel.WHATSAPP})


def validate_recipient(channel: Channel, recipient: str) -> None:
    """What the channel's vendor cannot address at all is refused before anything is queued."""
    if channel is Channel.EMAIL and ("@" not in recipient or recipient.startswith("@")):
        raise InvalidPayload(
            f"recipient {recipient!r} is not an email address (channel EMAIL)",
            details={"field": "recipient", "channel": api_name(channel)},
        )
    if channel in _PHONE_CHANNELS and not _PHONE.match(recipient):
        raise InvalidPayload(
            f"recipient {recipient!r} is not a phone number (channel {api_name(channel)})",
            details={"field": "recipient", "channel": api_name(channel)},
        )


async def load_project_and_expert(
    session: SessionDep, project_id: uuid.UUID, expert_id: uuid.UUID
) -> tuple[Project, Expert]:
    project = await repository.get_project(session, project_id)
    if project is None:
        raise NotFound(f"project {project_id} not found", details={"projectId": str(project_id)})
    expert = await repository.get_expert(session, expert_id)
    if expert is None:
        raise NotFound(f"expert {expert_id} not found", details={"expertId": str(expert_id)})
    if await is_suppressed(session, expert.id):
        raise ExpertSuppressed(
            f"expert {expert_id} must never be contacted again",
            details={"expertId": str(expert_id)},
        )
    return project, expert


@router.post(
    "/send",
    response_model=OutreachSendAccepted,
    status_code=status.HTTP_202_ACCEPTED,
    responses=error_responses(400, 401, 403, 404, 409, 413),
)
async def send_outreach(
    body: OutreachSendRequest,
    session: SessionDep,
    settings: SettingsDep,
    principal: StaffPrincipal,
    now: NowDep,
) -> OutreachSendAccepted | JSONResponse:
    channel = normalize_channel(body.channel)
    validate_recipient(channel, body.recipient)
    project, expert = await load_project_and_expert(session, body.project_id, body.expert_id)
    correlation_id = correlation_id_var.get()
    decision = await apply_cooldown(
        session,
        project_id=project.id,
        expert_id=expert.id,
        channel=channel,
        now=now,
        cooldown_days=settings.OUTREACH_COOLDOWN_DAYS,
        request_override=body.override_cooldown,
        project_override=project.override_cooldown,
        actor=principal.user_id,
        correlation_id=correlation_id,
    )
    if not decision.allowed:
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
    try:
        thread = await open_thread(
            session,
            project_id=project.id,
            expert_id=expert.id,
            channel=channel,
            recipient=body.recipient,
        )
    except ThreadClosed as closed:
        raise ThreadNotOpen(
            str(closed), details={"threadId": str(closed.thread.id), "status": closed.thread.status}
        ) from closed
    message = await queue_outbound_message(
        session,
        thread=thread,
        body=body.body,
        recipient=body.recipient,
        cooldown_overridden=decision.in_cooldown,
        correlation_id=correlation_id,
    )
    await link_cooldown_log(session, decision, message)
    await repository.mark_leads_outreach_pending(
        session, project_id=project.id, expert_id=expert.id, now=now, actor=principal.user_id
    )
    await publish(
        session,
        OutreachSendRequested(
            message_id=message.id,
            expert_id=expert.id,
            project_id=project.id,
            subject=body.subject,
        ),
    )
    return OutreachSendAccepted(accepted=True, job_id=str(message.id))
