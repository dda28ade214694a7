"""Every query of the outreach context: cooldown, messages and threads, leads, screening,
sheet rows."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import and_, func, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import distinct_on, insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import selectinload

from sourcing.common.models import (
    Base,
    ContactSuppression,
    CooldownLog,
    Expert,
    ExpertContact,
    GoogleSheetExport,
    GoogleSheetRowMap,
    Lead,
    OutreachMessage,
    OutreachThread,
    ProcessedWebhookEvent,
    Project,
    RankingSnapshot,
    ScreeningQuestion,
    ScreeningReminder,
    ScreeningResponse,
)
from sourcing.common.models.enums import (
    Channel,
    DeliveryStatus,
    MessageDirection,
    MessagePurpose,
    SuppressedContactKind,
    SuppressionReason,
)
from sourcing.common.statemachines import (
    LeadStatus,
    OutreachThreadStatus,
    ProjectStatus,
    ScreeningResponseStatus,
)

# The paging types only: the web kernel (FastAPI) stays out of the agent processes.
if TYPE_CHECKING:
    from sourcing.common.web import Keyset


async def add(session: AsyncSession, row: Base) -> None:
    """Insert ``row`` now (its id is known to the caller)."""
    session.add(row)
    await session.flush()


# --- cooldown -------------------------------------------------------------------------------

# Namespace of the per-expert advisory lock (hashtextextended(namespace || expert id)).
_LOCK_NAMESPACE = "outreach-cooldown:"


async def lock_expert_outreach(session: AsyncSession, expert_id: uuid.UUID) -> None:
    """Serialise outreach decisions for one expert until the transaction ends."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtextextended(:key, 0))"),
        {"key": f"{_LOCK_NAMESPACE}{expert_id}"},
    )


async def last_outreach_at(session: AsyncSession, expert_id: uuid.UUID) -> datetime | None:
    """When the expert was last sent (or queued) an outreach message that did not fail."""
    stmt = select(
        func.max(func.coalesce(OutreachMessage.sent_at, OutreachMessage.created_at))
    ).where(
        OutreachMessage.expert_id == expert_id,
        OutreachMessage.direction == MessageDirection.OUTBOUND.value,
        OutreachMessage.purpose == MessagePurpose.OUTREACH.value,
        OutreachMessage.delivery_status != DeliveryStatus.FAILED.value,
    )
    value: datetime | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def get_cooldown_log(session: AsyncSession, log_id: uuid.UUID) -> CooldownLog | None:
    return await session.get(CooldownLog, log_id)


# --- messages and threads -------------------------------------------------------------------


async def message_with_thread(
    session: AsyncSession, message_id: uuid.UUID
) -> tuple[OutreachMessage, OutreachThread] | None:
    """The message and its thread, read without locks (the vendor call comes next)."""
    stmt = (
        select(OutreachMessage, OutreachThread)
        .join(OutreachThread, OutreachThread.id == OutreachMessage.thread_id)
        .where(OutreachMessage.id == message_id)
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def count_attempt(session: AsyncSession, message_id: uuid.UUID) -> int:
    """Add one delivery attempt; returns the new count."""
    stmt = (
        update(OutreachMessage)
        .where(OutreachMessage.id == message_id)
        .values(attempts=OutreachMessage.attempts + 1)
        .returning(OutreachMessage.attempts)
    )
    return int((await session.execute(stmt)).scalar_one())


async def record_failure(
    session: AsyncSession,
    *,
    message_id: uuid.UUID,
    thread_id: uuid.UUID,
    error: str,
    final: bool,
    now: datetime,
) -> None:
    """Write the delivery error on message and thread; ``final`` also marks the message FAILED."""
    values: dict[str, object] = {"error": error[:2000]}
    if final:
        values.update(delivery_status=DeliveryStatus.FAILED.value, failed_at=now)
    await session.execute(
        update(OutreachMessage)
        .where(
            OutreachMessage.id == message_id,
            OutreachMessage.delivery_status == DeliveryStatus.QUEUED.value,
            OutreachMessage.sent_at.is_(None),
        )
        .values(**values)
    )
    await session.execute(
        update(OutreachThread)
        .where(OutreachThread.id == thread_id)
        .values(last_error=error[:2000], last_error_at=now)
    )


async def queued_messages(
    session: AsyncSession,
    *,
    project_id: uuid.UUID | None = None,
    expert_id: uuid.UUID | None = None,
    address: tuple[SuppressedContactKind, str] | None = None,
) -> Sequence[OutreachMessage]:
    """Outbound messages still waiting for the outreach agent (QUEUED, never handed to a
    vendor) of a project, an expert and/or to an address (``(kind, normalised value)``; a domain
    names every address at it), locked, oldest first."""
    stmt = (
        select(OutreachMessage)
        .join(OutreachThread, OutreachThread.id == OutreachMessage.thread_id)
        .where(
            OutreachMessage.direction == MessageDirection.OUTBOUND.value,
            OutreachMessage.delivery_status == DeliveryStatus.QUEUED.value,
            OutreachMessage.sent_at.is_(None),
        )
        .order_by(OutreachMessage.created_at, OutreachMessage.id)
        .with_for_update(of=OutreachMessage)
    )
    if project_id is not None:
        stmt = stmt.where(OutreachThread.project_id == project_id)
    if expert_id is not None:
        stmt = stmt.where(OutreachMessage.expert_id == expert_id)
    if address is not None:
        kind, value = address
        recipient = func.lower(func.coalesce(OutreachMessage.recipient, OutreachThread.recipient))
        stmt = stmt.where(
            recipient.endswith(f"@{value}", autoescape=True)
            if kind is SuppressedContactKind.DOMAIN
            else recipient == value.lower()
        )
    return (await session.execute(stmt)).scalars().all()


async def get_suppression(
    session: AsyncSession, suppression_id: uuid.UUID
) -> ContactSuppression | None:
    return await session.get(ContactSuppression, suppression_id)


async def list_suppressions(
    session: AsyncSession,
    *,
    kind: SuppressedContactKind | None,
    reason: SuppressionReason | None,
    expert_id: uuid.UUID | None,
    value_hash: str | None,
    limit: int,
    after: Keyset | None,
) -> list[ContactSuppression]:
    """Suppressions ordered by ``(created_at, id)`` ascending, after the cursor."""
    query = select(ContactSuppression)
    if kind is not None:
        query = query.where(ContactSuppression.kind == kind.value)
    if reason is not None:
        query = query.where(ContactSuppression.reason == reason.value)
    if expert_id is not None:
        query = query.where(ContactSuppression.expert_id == expert_id)
    if value_hash is not None:
        query = query.where(ContactSuppression.value_hash == value_hash)
    if after is not None:
        query = query.where(
            tuple_(ContactSuppression.created_at, ContactSuppression.id) > tuple_(*after)
        )
    query = query.order_by(ContactSuppression.created_at, ContactSuppression.id).limit(limit)
    return list((await session.scalars(query)).all())


async def delete_suppression(session: AsyncSession, suppression: ContactSuppression) -> None:
    await session.delete(suppression)
    await session.flush()


async def converted_experts(session: AsyncSession, project_id: uuid.UUID) -> int:
    """How many experts have a CONVERTED lead in the project."""
    stmt = select(func.count(func.distinct(Lead.expert_id))).where(
        Lead.project_id == project_id, Lead.status == LeadStatus.CONVERTED.value
    )
    return int((await session.execute(stmt)).scalar_one())


async def leads_in_status(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID, status: LeadStatus
) -> Sequence[Lead]:
    """The expert's leads in the project with ``status``, locked."""
    stmt = (
        select(Lead)
        .where(
            Lead.project_id == project_id,
            Lead.expert_id == expert_id,
            Lead.status == status.value,
        )
        .with_for_update()
    )
    return (await session.execute(stmt)).scalars().all()


async def ensure_thread(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    channel: Channel,
    recipient: str,
    status: OutreachThreadStatus,
) -> OutreachThread:
    """The expert's thread for project + channel, inserted with ``status`` when missing
    (race-safe), read fresh."""
    await session.execute(
        insert(OutreachThread)
        .values(
            id=uuid.uuid4(),
            project_id=project_id,
            expert_id=expert_id,
            channel=channel.value,
            status=status.value,
            recipient=recipient,
        )
        .on_conflict_do_nothing(index_elements=["expert_id", "project_id", "channel"])
    )
    stmt = (
        select(OutreachThread)
        .where(
            OutreachThread.expert_id == expert_id,
            OutreachThread.project_id == project_id,
            OutreachThread.channel == channel.value,
        )
        .execution_options(populate_existing=True)
    )
    return (await session.execute(stmt)).scalar_one()


async def find_thread(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID, channel: str
) -> OutreachThread | None:
    stmt = select(OutreachThread).where(
        OutreachThread.project_id == project_id,
        OutreachThread.expert_id == expert_id,
        OutreachThread.channel == channel,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def list_threads(
    session: AsyncSession,
    *,
    expert_id: uuid.UUID | None,
    project_id: uuid.UUID | None,
    channel: Channel | None,
    status: OutreachThreadStatus | None,
    limit: int,
    after: Keyset | None,
) -> list[OutreachThread]:
    """Threads ordered by ``(created_at, id)`` ascending (oldest first), after the cursor."""
    query = select(OutreachThread)
    if expert_id is not None:
        query = query.where(OutreachThread.expert_id == expert_id)
    if project_id is not None:
        query = query.where(OutreachThread.project_id == project_id)
    if channel is not None:
        query = query.where(OutreachThread.channel == channel.value)
    if status is not None:
        query = query.where(OutreachThread.status == status.value)
    if after is not None:
        query = query.where(tuple_(OutreachThread.created_at, OutreachThread.id) > tuple_(*after))
    query = query.order_by(OutreachThread.created_at, OutreachThread.id).limit(limit)
    return list((await session.scalars(query)).all())


async def thread_with_messages(
    session: AsyncSession, thread_id: uuid.UUID
) -> OutreachThread | None:
    """The thread with its messages loaded, oldest first."""
    stmt = (
        select(OutreachThread)
        .where(OutreachThread.id == thread_id)
        .options(selectinload(OutreachThread.messages))
    )
    return (await session.scalars(stmt)).one_or_none()


# --- projects and experts -------------------------------------------------------------------


async def get_project(session: AsyncSession, project_id: uuid.UUID) -> Project | None:
    return await session.get(Project, project_id)


async def get_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    return await session.get(Expert, expert_id)


async def share_lock_expert(session: AsyncSession, expert_id: uuid.UUID) -> Expert | None:
    """The expert, read under a share lock until the transaction ends, for a suppression check
    followed by new outreach: a suppression (which updates the expert's row) committing between
    the check and the outreach's commit would leave a message queued for a suppressed expert.
    With the lock, the suppression waits for the outreach, or the outreach for the suppression."""
    return await session.scalar(
        select(Expert)
        .where(Expert.id == expert_id)
        .with_for_update(read=True)
        .execution_options(populate_existing=True)
    )


async def list_contacts(session: AsyncSession, expert_id: uuid.UUID) -> Sequence[ExpertContact]:
    stmt = (
        select(ExpertContact)
        .where(ExpertContact.expert_id == expert_id)
        .order_by(ExpertContact.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


# --- screening ------------------------------------------------------------------------------


async def get_response(session: AsyncSession, response_id: uuid.UUID) -> ScreeningResponse | None:
    return await session.get(ScreeningResponse, response_id)


async def get_question(session: AsyncSession, question_id: uuid.UUID) -> ScreeningQuestion | None:
    return await session.get(ScreeningQuestion, question_id)


async def list_questions(
    session: AsyncSession, project_id: uuid.UUID
) -> Sequence[ScreeningQuestion]:
    stmt = (
        select(ScreeningQuestion)
        .where(ScreeningQuestion.project_id == project_id)
        .order_by(ScreeningQuestion.display_order, ScreeningQuestion.created_at)
    )
    return (await session.execute(stmt)).scalars().all()


async def create_pending_responses(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    question_ids: Sequence[uuid.UUID],
    channel: str,
    now: datetime,
    correlation_id: str | None,
) -> list[uuid.UUID]:
    """A PENDING response per question the expert has none for; returns the new ids."""
    if not question_ids:
        return []
    stmt = (
        insert(ScreeningResponse)
        .values(
            [
                {
                    "id": uuid.uuid4(),
                    "project_id": project_id,
                    "expert_id": expert_id,
                    "question_id": question_id,
                    "status": ScreeningResponseStatus.PENDING.value,
                    "channel": channel,
                    "dispatched_at": now,
                    "correlation_id": correlation_id,
                }
                for question_id in question_ids
            ]
        )
        .on_conflict_do_nothing(index_elements=["expert_id", "question_id"])
        .returning(ScreeningResponse.id)
    )
    return list((await session.execute(stmt)).scalars().all())


async def screening_rows(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID, lock: bool = False
) -> Sequence[tuple[ScreeningResponse, ScreeningQuestion]]:
    """The expert's responses in the project with their questions, in display order."""
    stmt = (
        select(ScreeningResponse, ScreeningQuestion)
        .join(ScreeningQuestion, ScreeningQuestion.id == ScreeningResponse.question_id)
        .where(
            ScreeningResponse.project_id == project_id,
            ScreeningResponse.expert_id == expert_id,
        )
        .order_by(ScreeningQuestion.display_order, ScreeningQuestion.created_at)
        .execution_options(populate_existing=True)
    )
    if lock:
        stmt = stmt.with_for_update(of=ScreeningResponse)
    return [(row[0], row[1]) for row in (await session.execute(stmt)).all()]


async def idle_screening_responses(
    session: AsyncSession, *, statuses: Sequence[str], cutoff: datetime, limit: int
) -> list[uuid.UUID]:
    """One response id per screening (project + expert) of an ACTIVE project whose rows in
    ``statuses`` were all untouched since ``cutoff``: the first such question's in display
    order, oldest first (a paused or closed project's screenings send no reminder)."""
    sr = ScreeningResponse
    is_open = sr.status.in_(statuses)
    touched = func.max(sr.updated_at)
    groups = (
        select(sr.project_id, sr.expert_id, touched.label("touched"))
        .join(Project, Project.id == sr.project_id)
        .where(is_open, Project.status == ProjectStatus.ACTIVE.value)
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


async def expert_ids_of_responses(
    session: AsyncSession, response_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, uuid.UUID]:
    if not response_ids:
        return {}
    stmt = select(ScreeningResponse.id, ScreeningResponse.expert_id).where(
        ScreeningResponse.id.in_(response_ids)
    )
    return {row.id: row.expert_id for row in (await session.execute(stmt)).all()}


async def add_reminder(
    session: AsyncSession,
    *,
    response_id: uuid.UUID,
    number: int,
    channel: str | None,
    message_id: uuid.UUID,
    correlation_id: str | None,
) -> bool:
    """Record reminder ``number``; False when it already exists (a duplicate follow-up)."""
    stmt = (
        insert(ScreeningReminder)
        .values(
            id=uuid.uuid4(),
            screening_response_id=response_id,
            reminder_number=number,
            channel=channel,
            outreach_message_id=message_id,
            correlation_id=correlation_id,
        )
        .on_conflict_do_nothing(index_elements=["screening_response_id", "reminder_number"])
        .returning(ScreeningReminder.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none() is not None


# --- sheets ---------------------------------------------------------------------------------


async def expert_leads(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> Sequence[Lead]:
    stmt = (
        select(Lead)
        .where(Lead.project_id == project_id, Lead.expert_id == expert_id)
        .order_by(Lead.updated_at.desc())
    )
    return (await session.execute(stmt)).scalars().all()


async def latest_ranking(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> float | None:
    stmt = (
        select(RankingSnapshot.score)
        .where(RankingSnapshot.project_id == project_id, RankingSnapshot.expert_id == expert_id)
        .order_by(RankingSnapshot.computed_at.desc())
        .limit(1)
    )
    value: float | None = (await session.execute(stmt)).scalar_one_or_none()
    return value


async def screening_statuses(
    session: AsyncSession, *, project_id: uuid.UUID, expert_id: uuid.UUID
) -> Sequence[ScreeningResponse]:
    stmt = select(ScreeningResponse).where(
        ScreeningResponse.project_id == project_id, ScreeningResponse.expert_id == expert_id
    )
    return (await session.execute(stmt)).scalars().all()


async def row_map(
    session: AsyncSession, *, project_id: uuid.UUID, entity_type: str, entity_id: uuid.UUID
) -> GoogleSheetRowMap | None:
    stmt = select(GoogleSheetRowMap).where(
        GoogleSheetRowMap.project_id == project_id,
        GoogleSheetRowMap.entity_type == entity_type,
        GoogleSheetRowMap.entity_id == entity_id,
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def add_export(session: AsyncSession, export: GoogleSheetExport) -> None:
    session.add(export)
    await session.flush()


# --- inbound channel events -----------------------------------------------------------------


async def claim_inbound_event(
    session: AsyncSession,
    *,
    source: str,
    event_id: str,
    event_type: str,
    received_at: datetime,
    correlation_id: str | None,
) -> bool:
    """Record a provider's event id; False when it was seen before (a replay)."""
    result = await session.execute(
        insert(ProcessedWebhookEvent)
        .values(
            id=uuid.uuid4(),
            source=source[:32],
            event_id=event_id,
            event_type=event_type[:64],
            received_at=received_at,
            correlation_id=correlation_id,
        )
        .on_conflict_do_nothing(index_elements=["source", "event_id"])
        .returning(ProcessedWebhookEvent.id)
    )
    return result.scalar_one_or_none() is not None


async def outbound_message_by_provider_id(
    session: AsyncSession, provider_message_id: str
) -> tuple[OutreachMessage, OutreachThread] | None:
    """The outbound message a provider knows by ``provider_message_id``, with its thread, locked."""
    stmt = (
        select(OutreachMessage, OutreachThread)
        .join(OutreachThread, OutreachThread.id == OutreachMessage.thread_id)
        .where(
            OutreachMessage.provider_message_id == provider_message_id,
            OutreachMessage.direction == MessageDirection.OUTBOUND.value,
        )
        .order_by(OutreachMessage.created_at.desc())
        .limit(1)
        .with_for_update()
    )
    row = (await session.execute(stmt)).first()
    return None if row is None else (row[0], row[1])


async def thread_by_external_id(
    session: AsyncSession, external_thread_id: str, channels: Sequence[Channel]
) -> OutreachThread | None:
    stmt = (
        select(OutreachThread)
        .where(
            OutreachThread.external_thread_id == external_thread_id,
            OutreachThread.channel.in_([channel.value for channel in channels]),
        )
        .order_by(OutreachThread.last_message_at.desc().nulls_last(), OutreachThread.id)
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


_NOT_DIGITS = "[^0-9]"


async def thread_by_recipient(
    session: AsyncSession, address: str, channels: Sequence[Channel], *, phone: bool
) -> OutreachThread | None:
    """The most recently active thread on ``channels`` whose recipient is ``address`` (emails
    and handles case-insensitively, phone numbers by their digits)."""
    if phone:
        digits = "".join(ch for ch in address if ch.isdigit())
        matches = func.regexp_replace(OutreachThread.recipient, _NOT_DIGITS, "", "g") == digits
    else:
        matches = func.lower(OutreachThread.recipient) == address.strip().lower()
    stmt = (
        select(OutreachThread)
        .where(matches, OutreachThread.channel.in_([channel.value for channel in channels]))
        .order_by(OutreachThread.last_message_at.desc().nulls_last(), OutreachThread.id)
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def latest_outbound_message(
    session: AsyncSession, thread_id: uuid.UUID
) -> OutreachMessage | None:
    """The thread's last outbound message that left (what a delivery report without an id is
    about)."""
    stmt = (
        select(OutreachMessage)
        .where(
            OutreachMessage.thread_id == thread_id,
            OutreachMessage.direction == MessageDirection.OUTBOUND.value,
            OutreachMessage.sent_at.is_not(None),
        )
        .order_by(OutreachMessage.sent_at.desc(), OutreachMessage.id.desc())
        .limit(1)
        .with_for_update()
    )
    return (await session.execute(stmt)).scalar_one_or_none()
