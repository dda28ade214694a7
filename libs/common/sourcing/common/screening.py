"""Screening rules shared by the gateway, the screening agent and the scheduler.

Status semantics (manual §8 "Screening response status", one row per expert and question):
the rows of one expert's screening for one project move together and always show the state
of that screening as a whole; ``answered_at`` / ``response_text`` say which questions are
answered.

* dispatch creates a ``PENDING`` row per question (idempotent: existing rows are kept);
* the first answer moves every open row ``PENDING → IN_PROGRESS``;
* once every *required* question has an answer, every row moves ``IN_PROGRESS → COMPLETE``;
* after ``SCREENING_MAX_REMINDERS`` unanswered follow-ups the open rows move ``→ ESCALATED``.

The scheduler asks :func:`responses_due_follow_up` for one response per open screening (the
first open question in display order) whose rows were all untouched for ``idle_minutes``, and
publishes ``screening.follow-up.v1`` for each; the screening agent re-checks the idle time, so
publishing twice is harmless.

Recipient selection (:func:`pick_recipient`, :func:`best_recipient`) is shared by screening
dispatch and automatic outreach: which contact of an expert a channel can address.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, func, select
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import Expert, ExpertContact, ScreeningQuestion, ScreeningResponse
from sourcing.common.models.enums import Channel, ContactType
from sourcing.common.statemachines import ScreeningResponseStatus

OPEN_STATUSES = (ScreeningResponseStatus.PENDING.value, ScreeningResponseStatus.IN_PROGRESS.value)


async def responses_due_follow_up(
    session: AsyncSession,
    *,
    now: datetime,
    idle_minutes: int = 15,
    limit: int = 500,
) -> list[uuid.UUID]:
    """One response id per open screening (project + expert) untouched for ``idle_minutes``.

    The id is the first open question's response in display order; oldest screenings first.
    """
    cutoff = now - timedelta(minutes=idle_minutes)
    sr = ScreeningResponse
    is_open = sr.status.in_(OPEN_STATUSES)
    touched = func.max(sr.updated_at)
    groups = (
        select(sr.project_id, sr.expert_id, touched.label("touched"))
        .where(is_open)
        .group_by(sr.project_id, sr.expert_id)
        .having(touched <= cutoff)
        .order_by(touched)
        .limit(limit)
        .subquery()
    )
    stmt = (
        select(sr.id)
        .join(
            groups, and_(sr.project_id == groups.c.project_id, sr.expert_id == groups.c.expert_id)
        )
        .join(ScreeningQuestion, ScreeningQuestion.id == sr.question_id)
        .where(is_open)
        .ext(distinct_on(sr.project_id, sr.expert_id))
        .order_by(sr.project_id, sr.expert_id, ScreeningQuestion.display_order, sr.id)
    )
    return list((await session.execute(stmt)).scalars().all())


# --- recipients -----------------------------------------------------------------------------

_PHONE_CHANNELS = frozenset(
    {
        Channel.PHONE,
        Channel.SMS,
        Channel.VOICEMAIL,
        Channel.WHATSAPP,
        Channel.IMESSAGE,
        Channel.RESPONDIO,
    }
)
# Channel tried, in order, when the expert has no preferred channel (or no contact for it).
FALLBACK_ORDER = (
    Channel.EMAIL,
    Channel.SMS,
    Channel.WHATSAPP,
    Channel.LINKEDIN,
    Channel.TELEGRAM,
    Channel.LINE,
    Channel.WECHAT,
    Channel.VIBER,
    Channel.KAKAOTALK,
)


def _contact_type_for(channel: Channel) -> ContactType:
    if channel is Channel.EMAIL:
        return ContactType.EMAIL
    if channel in _PHONE_CHANNELS:
        return ContactType.PHONE
    if channel is Channel.LINKEDIN:
        return ContactType.LINKEDIN
    return ContactType.HANDLE


def pick_recipient(
    expert: Expert, contacts: Sequence[ExpertContact], channel: Channel
) -> str | None:
    """The best address of ``expert`` on ``channel``: a contact tagged with the channel first,
    then one of the channel's contact type (primary, professional, most confident first),
    then the expert's primary email/phone. None when the channel cannot reach them."""
    kind = _contact_type_for(channel)

    def rank(contact: ExpertContact) -> tuple[int, int, int, float]:
        return (
            0 if contact.channel == channel.value else 1,
            0 if contact.is_primary else 1,
            0 if contact.is_professional else 1,
            -(contact.confidence or 0.0),
        )

    usable = [
        c
        for c in contacts
        if c.channel == channel.value
        or (c.type == kind.value and (kind is not ContactType.HANDLE or c.channel is None))
    ]
    if kind is ContactType.HANDLE:  # an untagged handle could be any messenger's
        usable = [c for c in usable if c.channel == channel.value]
    if usable:
        return sorted(usable, key=rank)[0].value
    if kind is ContactType.EMAIL and expert.primary_email:
        return expert.primary_email
    if kind is ContactType.PHONE and expert.primary_phone:
        return expert.primary_phone
    return None


@dataclass(frozen=True, slots=True)
class Recipient:
    channel: Channel
    address: str


def best_recipient(expert: Expert, contacts: Sequence[ExpertContact]) -> Recipient | None:
    """The expert's preferred channel when it reaches them, else the first of
    :data:`FALLBACK_ORDER` that does."""
    order: list[Channel] = []
    if expert.preferred_channel:
        order.append(Channel(expert.preferred_channel))
    order.extend(channel for channel in FALLBACK_ORDER if channel not in order)
    for channel in order:
        address = pick_recipient(expert, contacts, channel)
        if address:
            return Recipient(channel=channel, address=address)
    return None


def render_screening_questions(prompts: Sequence[str], *, intro: str | None = None) -> str:
    """The text that carries the questions to the expert, numbered in display order."""
    lines = [intro or "Thank you for your interest. Please answer these screening questions:"]
    lines.extend(f"{index}. {prompt}" for index, prompt in enumerate(prompts, start=1))
    return "\n".join(lines)
