"""The one outreach cooldown rule (manual §4.7), shared by the gateway and the outreach agent.

An expert is left alone for ``OUTREACH_COOLDOWN_DAYS`` (30) after the last outreach message
queued or sent to them, on any channel and for any project (screening questions and reminders
do not count: they follow a contact the expert already accepted, and failed messages never
reached them). A send inside the cooldown is refused unless the request or the project sets
``overrideCooldown``. Every refusal (``ENFORCED``) and every send that went ahead inside the
cooldown (``OVERRIDDEN``) is a CooldownLog row.

Concurrency: :func:`apply_cooldown` takes a transaction-scoped advisory lock on the expert
before reading their last contact, and the caller inserts the new message (through
:func:`queue_outbound_message`) in the same transaction. Two sends for one expert at once are
serialised: the second sees the first's queued message and is refused.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from sourcing.common.models import CooldownLog, OutreachMessage, OutreachThread
from sourcing.common.models.enums import (
    Channel,
    CooldownAction,
    CooldownOverrideSource,
    DeliveryStatus,
    MessageDirection,
    MessagePurpose,
)
from sourcing.common.statemachines import OutreachThreadStatus

# Namespace of the per-expert advisory lock (hashtextextended(namespace || expert id)).
_LOCK_NAMESPACE = "outreach-cooldown:"


@dataclass(frozen=True, slots=True)
class CooldownDecision:
    """Whether a send may go ahead, and why."""

    allowed: bool
    in_cooldown: bool
    last_contacted_at: datetime | None
    ends_at: datetime | None
    override_source: CooldownOverrideSource | None = None
    log_id: uuid.UUID | None = None


def evaluate_cooldown(
    *,
    last_contacted_at: datetime | None,
    now: datetime,
    cooldown_days: int,
    request_override: bool = False,
    project_override: bool = False,
) -> CooldownDecision:
    """The pure rule: in cooldown when the last contact is less than ``cooldown_days`` ago."""
    if last_contacted_at is None or cooldown_days <= 0:
        return CooldownDecision(
            allowed=True, in_cooldown=False, last_contacted_at=last_contacted_at, ends_at=None
        )
    ends_at = last_contacted_at + timedelta(days=cooldown_days)
    if now >= ends_at:
        return CooldownDecision(
            allowed=True, in_cooldown=False, last_contacted_at=last_contacted_at, ends_at=ends_at
        )
    source = (
        CooldownOverrideSource.REQUEST
        if request_override
        else CooldownOverrideSource.PROJECT
        if project_override
        else None
    )
    return CooldownDecision(
        allowed=source is not None,
        in_cooldown=True,
        last_contacted_at=last_contacted_at,
        ends_at=ends_at,
        override_source=source,
    )


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


async def apply_cooldown(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    channel: Channel,
    now: datetime,
    cooldown_days: int,
    request_override: bool = False,
    project_override: bool = False,
    actor: str | None = None,
    correlation_id: str | None = None,
) -> CooldownDecision:
    """Lock the expert, evaluate the rule and log an enforcement or override.

    The lock is held until the caller's transaction ends: queue the message in the same
    transaction. An ``ENFORCED`` log must be committed by the caller even though the send is
    refused (the gateway answers 409 without rolling back).
    """
    await lock_expert_outreach(session, expert_id)
    decision = evaluate_cooldown(
        last_contacted_at=await last_outreach_at(session, expert_id),
        now=now,
        cooldown_days=cooldown_days,
        request_override=request_override,
        project_override=project_override,
    )
    if not decision.in_cooldown:
        return decision
    log = CooldownLog(
        id=uuid.uuid4(),
        project_id=project_id,
        expert_id=expert_id,
        channel=channel.value,
        action=(CooldownAction.OVERRIDDEN if decision.allowed else CooldownAction.ENFORCED).value,
        override_source=decision.override_source.value if decision.override_source else None,
        last_contacted_at=decision.last_contacted_at,
        cooldown_ends_at=decision.ends_at,
        reason=(
            f"overridden by {decision.override_source.value.lower()}"
            if decision.override_source
            else f"last contacted {decision.last_contacted_at:%Y-%m-%d}; "
            f"cooldown of {cooldown_days} days"
        ),
        actor=actor,
        correlation_id=correlation_id,
    )
    session.add(log)
    await session.flush()
    return CooldownDecision(
        allowed=decision.allowed,
        in_cooldown=True,
        last_contacted_at=decision.last_contacted_at,
        ends_at=decision.ends_at,
        override_source=decision.override_source,
        log_id=log.id,
    )


class ThreadClosed(Exception):
    """The expert's thread for this project and channel is CLOSED or ARCHIVED."""

    def __init__(self, thread: OutreachThread) -> None:
        super().__init__(f"outreach thread {thread.id} is {thread.status}")
        self.thread = thread


async def open_thread(
    session: AsyncSession,
    *,
    project_id: uuid.UUID,
    expert_id: uuid.UUID,
    channel: Channel,
    recipient: str,
) -> OutreachThread:
    """The expert's OPEN thread for project + channel, created when missing (race-safe).

    Raises :class:`ThreadClosed` when the thread exists but was closed (no way back to OPEN).
    """
    await session.execute(
        pg_insert(OutreachThread)
        .values(
            id=uuid.uuid4(),
            project_id=project_id,
            expert_id=expert_id,
            channel=channel.value,
            status=OutreachThreadStatus.OPEN.value,
            recipient=recipient,
        )
        .on_conflict_do_nothing(index_elements=["expert_id", "project_id", "channel"])
    )
    thread = (
        await session.execute(
            select(OutreachThread)
            .where(
                OutreachThread.expert_id == expert_id,
                OutreachThread.project_id == project_id,
                OutreachThread.channel == channel.value,
            )
            .execution_options(populate_existing=True)
        )
    ).scalar_one()
    if thread.status != OutreachThreadStatus.OPEN.value:
        raise ThreadClosed(thread)
    thread.recipient = recipient
    return thread


async def queue_outbound_message(
    session: AsyncSession,
    *,
    thread: OutreachThread,
    body: str,
    purpose: MessagePurpose = MessagePurpose.OUTREACH,
    recipient: str | None = None,
    cooldown_overridden: bool = False,
    correlation_id: str | None = None,
    message_id: uuid.UUID | None = None,
) -> OutreachMessage:
    """A QUEUED outbound message in ``thread`` (the row the cooldown rule counts)."""
    new_id = message_id or uuid.uuid4()
    message = OutreachMessage(
        id=new_id,
        thread_id=thread.id,
        expert_id=thread.expert_id,
        job_id=str(new_id),
        direction=MessageDirection.OUTBOUND.value,
        purpose=purpose.value,
        recipient=recipient or thread.recipient,
        body=body,
        delivery_status=DeliveryStatus.QUEUED.value,
        attempts=0,
        cooldown_overridden=cooldown_overridden,
        correlation_id=correlation_id,
    )
    session.add(message)
    await session.flush()
    return message


async def link_cooldown_log(
    session: AsyncSession, decision: CooldownDecision, message: OutreachMessage
) -> None:
    """Point an OVERRIDDEN log at the message that went ahead."""
    if decision.log_id is None:
        return
    log = await session.get(CooldownLog, decision.log_id)
    if log is not None:
        log.outreach_message_id = message.id
        await session.flush()
