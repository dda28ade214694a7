"""The messages of the outreach, screening and google-sheets-sync agents that take more than
one service call (testable without Kafka); the rules are in :mod:`sourcing.outreach.service`.

Delivery (``outreach.send.v1``) and the reliability contract
-------------------------------------------------------------
The agent's transaction (dedup row + business writes) is open while a handler runs, so the
handler reads the message *without locks*, calls the vendor, and only then writes. No row lock
is held across the HTTP call (the only row the transaction holds is its own new
``processed_events`` row, which blocks nobody but a duplicate of the same message).

Failures are never silent: the attempt count, the error and - for a permanent failure or the
last transient attempt - ``delivery_status=FAILED`` are written in a *separate* transaction
that commits before the error is re-raised, so they survive the rollback of the agent's own
transaction. The reliability layer then retries transient errors (429/5xx) up to
``AGENT_MAX_ATTEMPTS`` and dead-letters; a permanent one (``ChannelNotConfigured``, a vendor
4xx) goes straight to dead-letter. The thread keeps status OPEN (its machine has no failed
state) and carries ``last_error``/``last_error_at``.

A message already handed to its vendor (``sent_at`` set), FAILED or CANCELLED is not sent again
(a redelivered job is a no-op); one whose project is COMPLETED or ARCHIVED is cancelled instead
of sent, whichever of the delivery and ``project.closed.v1`` comes first. ``delivery_status``
QUEUED means "waiting for this agent"; a vendor's own "queued"/"accepted" answer is stored as
SENT with the vendor's message id.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from sourcing.common.clock import Clock, utc_now
from sourcing.common.db import session_scope
from sourcing.common.events import Envelope
from sourcing.common.kafka.outbox import publish
from sourcing.common.kafka.retry import PermanentError, is_transient
from sourcing.common.messages.outreach import (
    SHEET_EXPERT_ENTITY,
    AutoOutreachRequested,
    InboundChannelEvent,
    OutreachSendRequested,
    ProjectClosed,
    ScreeningFollowUpRequested,
    SheetSyncRequested,
)
from sourcing.common.models import (
    Expert,
    GoogleSheetExport,
    GoogleSheetRowMap,
    OutreachThread,
    ScreeningResponse,
)
from sourcing.common.models.enums import (
    Channel,
    DeliveryStatus,
    MessagePurpose,
    SheetExportStatus,
    SheetOperation,
)
from sourcing.common.statemachines import PROJECT, LeadStatus, ScreeningResponseStatus
from sourcing.outreach import repository, service
from sourcing.outreach.channels import OutboundMessage, OutreachChannel
from sourcing.outreach.settings import OutreachSettings
from sourcing.outreach.sheets import GoogleSheetsClient
from sourcing.people.suppression import is_suppressed

logger = logging.getLogger(__name__)

# The actor of what the outreach agent audits on its own account.
OUTREACH_ACTOR = "outreach"

# --- outreach -------------------------------------------------------------------------------


class OutreachHandlers:
    """``outreach.send.v1`` (deliver a queued message), ``outreach.auto.v1`` and
    ``outreach.inbound.v1`` (a provider's reply, delivery report, bounce or opt-out)."""

    def __init__(
        self,
        *,
        settings: OutreachSettings,
        sessionmaker: async_sessionmaker[AsyncSession],
        channels: Mapping[Channel, OutreachChannel],
        clock: Clock = utc_now,
    ) -> None:
        self.settings = settings
        self.sessionmaker = sessionmaker
        self.channels = channels
        self.clock = clock
        self.stop_phrases = service.stop_phrase_pattern(settings.inbound_stop_phrases)

    async def deliver(
        self, session: AsyncSession, envelope: Envelope, payload: OutreachSendRequested
    ) -> None:
        loaded = await repository.message_with_thread(session, payload.message_id)
        if loaded is None:
            raise PermanentError(f"outreach message {payload.message_id} does not exist")
        message, thread = loaded
        if message.sent_at is not None or message.delivery_status != "QUEUED":
            logger.info(
                "message %s already %s; not sent again", message.id, message.delivery_status
            )
            return
        project = await repository.get_project(session, thread.project_id)
        if project is not None and project.status in PROJECT.terminal:
            service.cancel_messages(
                session,
                [message],
                reason=f"project {project.status}",
                actor=OUTREACH_ACTOR,
                now=self.clock(),
            )
            await session.flush()
            logger.info("message %s cancelled: project %s", message.id, project.status)
            return
        channel = Channel(thread.channel)
        recipient = message.recipient or thread.recipient or ""
        expert = await repository.get_expert(session, message.expert_id)
        refusal = (
            await service.delivery_refusal(session, expert, channel, recipient)
            if expert is not None
            else "the expert no longer exists"
        )
        if refusal is not None:
            service.cancel_messages(
                session, [message], reason=refusal, actor=OUTREACH_ACTOR, now=self.clock()
            )
            await session.flush()
            logger.info("message %s cancelled, not sent: %s", message.id, refusal)
            return
        async with session_scope(self.sessionmaker) as side:
            attempts = await repository.count_attempt(side, message.id)
        outbound = OutboundMessage(
            channel=channel,
            recipient=recipient,
            body=message.body,
            idempotency_key=str(message.id),
            expert_id=message.expert_id,
            project_id=thread.project_id,
            subject=payload.subject,
            thread_ref=thread.external_thread_id,
        )
        try:
            receipt = await self.channels[channel].send(outbound)
        except Exception as exc:
            final = not is_transient(exc) or attempts >= self.settings.AGENT_MAX_ATTEMPTS
            async with session_scope(self.sessionmaker) as side:
                await repository.record_failure(
                    side,
                    message_id=message.id,
                    thread_id=thread.id,
                    error=f"{type(exc).__name__}: {exc}",
                    final=final,
                    now=self.clock(),
                )
            logger.warning(
                "delivery of message %s on %s failed (attempt %d, %s): %s",
                message.id,
                channel.name,
                attempts,
                "final" if final else "will retry",
                exc,
            )
            raise
        now = self.clock()
        message.provider = receipt.provider
        message.provider_message_id = receipt.provider_message_id
        # QUEUED means "waiting for our agent"; a vendor that queued it has it: SENT.
        status = receipt.delivery_status
        message.delivery_status = (
            DeliveryStatus.SENT.value if status is DeliveryStatus.QUEUED else status.value
        )
        message.sent_at = now
        message.error = None
        if status is DeliveryStatus.FAILED:
            message.failed_at = now
        thread.last_message_at = now
        if receipt.provider_thread_id and not thread.external_thread_id:
            thread.external_thread_id = receipt.provider_thread_id
        await session.flush()
        if message.purpose == MessagePurpose.OUTREACH.value:
            await service.mark_leads(
                session,
                project_id=thread.project_id,
                expert_id=thread.expert_id,
                from_status=LeadStatus.OUTREACH_PENDING,
                to_status=LeadStatus.CONTACTED,
                now=now,
                actor="outreach",
            )
        await publish(
            session,
            SheetSyncRequested.for_expert(project_id=thread.project_id, expert_id=thread.expert_id),
        )

    async def auto(
        self, session: AsyncSession, envelope: Envelope, payload: AutoOutreachRequested
    ) -> None:
        project = await repository.get_project(session, payload.project_id)
        expert = await repository.share_lock_expert(session, payload.expert_id)
        if project is None or expert is None:
            logger.warning("auto outreach for a missing project or expert: %s", payload)
            return
        if not project.auto_outreach_channel:
            logger.info("project %s has no auto outreach channel; nothing sent", project.id)
            return
        if await is_suppressed(session, expert.id):
            logger.info("expert %s is suppressed; no auto outreach", expert.id)
            return
        channel = Channel(project.auto_outreach_channel)
        recipient = await service.choose_recipient(session, expert, channel)
        if recipient is None:
            logger.warning(
                "expert %s has no %s contact; auto outreach skipped", expert.id, channel.name
            )
            return
        body = service.render_template(
            project.auto_outreach_template or service.DEFAULT_AUTO_TEMPLATE,
            expert=expert,
            project=project,
        )
        try:
            queued = await service.queue_outreach(
                session,
                project=project,
                expert=expert,
                channel=channel,
                recipient=recipient.address,
                body=body,
                now=self.clock(),
                cooldown_days=self.settings.OUTREACH_COOLDOWN_DAYS,
                actor="auto-outreach",
                correlation_id=envelope.correlation_id,
                lead_actor="outreach",
            )
        except service.ThreadClosed:
            logger.info(
                "thread of expert %s on %s is closed; auto outreach skipped",
                expert.id,
                channel.name,
            )
            return
        except service.OutreachStopped as stopped:
            logger.info("auto outreach to expert %s skipped: %s", expert.id, stopped.message)
            return
        if queued.message is None:
            logger.info(
                "expert %s in cooldown until %s; auto outreach refused",
                expert.id,
                queued.decision.ends_at,
            )

    async def project_closed(
        self, session: AsyncSession, envelope: Envelope, payload: ProjectClosed
    ) -> None:
        cancelled = await service.cancel_queued_outreach(
            session,
            payload.project_id,
            project_status=payload.status,
            actor=payload.actor,
            now=self.clock(),
        )
        logger.info(
            "project %s %s: %d queued messages cancelled",
            payload.project_id,
            payload.status,
            len(cancelled),
        )

    async def inbound(
        self, session: AsyncSession, envelope: Envelope, payload: InboundChannelEvent
    ) -> None:
        outcome = await service.record_inbound(
            session,
            payload,
            now=self.clock(),
            stop_phrases=self.stop_phrases,
            correlation_id=envelope.correlation_id,
        )
        logger.info(
            "inbound %s event %s (%s): %s",
            payload.provider,
            payload.event_id,
            payload.kind.value,
            outcome,
        )

    def handlers(self) -> dict[str, Any]:
        return {
            OutreachSendRequested.message_type: self.deliver,
            AutoOutreachRequested.message_type: self.auto,
            ProjectClosed.message_type: self.project_closed,
            InboundChannelEvent.message_type: self.inbound,
        }


# --- screening ------------------------------------------------------------------------------


class ScreeningHandlers:
    """``screening.follow-up.v1``: remind the expert, or escalate after the last reminder."""

    def __init__(self, *, settings: OutreachSettings, clock: Clock = utc_now) -> None:
        self.settings = settings
        self.clock = clock

    async def follow_up(
        self, session: AsyncSession, envelope: Envelope, payload: ScreeningFollowUpRequested
    ) -> None:
        response = await repository.get_response(session, payload.response_id)
        if response is None or response.status not in service.OPEN_STATUSES:
            return
        project = await repository.get_project(session, response.project_id)
        if project is None or service.project_refusal(project) is not None:
            return  # paused or closed since the sweep picked it
        rows = await repository.screening_rows(
            session, project_id=response.project_id, expert_id=response.expert_id, lock=True
        )
        open_rows = [row for row, _ in rows if row.status in service.OPEN_STATUSES]
        if not open_rows:
            return
        now = self.clock()
        cutoff = service.follow_up_cutoff(now, self.settings.SCREENING_FOLLOW_UP_IDLE_MINUTES)
        if max(row.updated_at for row in open_rows) > cutoff:
            logger.info("screening of expert %s was touched meanwhile", response.expert_id)
            return
        sent = max(row.reminder_count for row in open_rows)
        if sent >= self.settings.SCREENING_MAX_REMINDERS:
            service.move_screening(
                session,
                open_rows,
                ScreeningResponseStatus.ESCALATED,
                actor="screening-follow-up",
                reason=f"no answer after {sent} reminders",
                now=now,
            )
            await session.flush()
            logger.warning(
                "screening of expert %s in project %s escalated after %d reminders",
                response.expert_id,
                response.project_id,
                sent,
            )
            await publish(
                session,
                SheetSyncRequested.for_expert(
                    project_id=response.project_id, expert_id=response.expert_id
                ),
            )
            return
        expert = await repository.get_expert(session, response.expert_id)
        if expert is None or await is_suppressed(session, expert.id):
            return
        thread = await self._thread(session, response, expert)
        if thread is None:
            logger.warning("expert %s has no reachable channel for a reminder", expert.id)
            return
        number = sent + 1
        unanswered = [q.prompt for row, q in rows if row.answered_at is None and q.required]
        message = await service.queue_outbound_message(
            session,
            thread=thread,
            body=service.reminder_text(unanswered or [q.prompt for _, q in rows], number),
            purpose=MessagePurpose.SCREENING_REMINDER,
            correlation_id=envelope.correlation_id,
        )
        if not await repository.add_reminder(
            session,
            response_id=response.id,
            number=number,
            channel=thread.channel,
            message_id=message.id,
            correlation_id=envelope.correlation_id,
        ):
            raise PermanentError(f"reminder {number} of response {response.id} already exists")
        for row in open_rows:
            row.reminder_count = number
            row.last_reminded_at = now
            row.updated_at = now
        await session.flush()
        await publish(
            session,
            OutreachSendRequested(
                message_id=message.id, expert_id=expert.id, project_id=response.project_id
            ),
        )

    async def _thread(
        self, session: AsyncSession, response: ScreeningResponse, expert: Expert
    ) -> OutreachThread | None:
        if response.channel:
            thread = await repository.find_thread(
                session,
                project_id=response.project_id,
                expert_id=response.expert_id,
                channel=response.channel,
            )
            if thread is not None and thread.status == "OPEN":
                return thread
        recipient = await service.choose_recipient(session, expert)
        if recipient is None:
            return None
        try:
            return await service.open_thread(
                session,
                project_id=response.project_id,
                expert_id=expert.id,
                channel=recipient.channel,
                recipient=recipient.address,
            )
        except service.ThreadClosed:
            return None


# --- google sheets --------------------------------------------------------------------------


class SheetSyncHandlers:
    """``google-sheets-sync.requested.v1``: push the expert's row to the project's tab (an
    erased expert's existing row is overwritten with blanks)."""

    def __init__(
        self, *, settings: OutreachSettings, sheets: GoogleSheetsClient, clock: Clock = utc_now
    ) -> None:
        self.settings = settings
        self.sheets = sheets
        self.clock = clock
        self._disabled_logged = False

    async def sync(
        self, session: AsyncSession, envelope: Envelope, payload: SheetSyncRequested
    ) -> None:
        if not self.sheets.configured:
            if not self._disabled_logged:
                logger.info(
                    "google sheets sync disabled: set %s; requests are acknowledged and skipped",
                    ", ".join(self.sheets.missing_settings()),
                )
                self._disabled_logged = True
            return
        if payload.entity_type != SHEET_EXPERT_ENTITY:
            logger.info("sheet sync of %s rows is not supported; skipped", payload.entity_type)
            return
        project = await repository.get_project(session, payload.project_id)
        expert = await repository.get_expert(session, payload.entity_id)
        if project is None or expert is None:
            return
        mapping = await repository.row_map(
            session, project_id=project.id, entity_type=SHEET_EXPERT_ENTITY, entity_id=expert.id
        )
        if mapping is None and expert.erased_at is not None:
            return  # an erased expert's row is only ever blanked, never added
        values = await service.sheet_row(session, project, expert)
        digest = hashlib.sha256(json.dumps(values).encode()).hexdigest()
        spreadsheet_id = self.sheets.spreadsheet_id or ""
        export = GoogleSheetExport(
            project_id=project.id,
            entity_type=SHEET_EXPERT_ENTITY,
            entity_id=expert.id,
            spreadsheet_id=spreadsheet_id,
            row_values=dict(zip(service.SHEET_HEADER, values, strict=True)),
            correlation_id=envelope.correlation_id,
        )
        now = self.clock()
        if mapping is not None and mapping.row_hash == digest:
            export.row_map_id = mapping.id
            export.sheet_tab = mapping.sheet_tab
            export.row_number = mapping.row_number
            export.operation = SheetOperation.UPDATE.value
            export.status = SheetExportStatus.SKIPPED.value
            await repository.add_export(session, export)
            return
        if mapping is not None:
            # Updates go where the row already is, even if the project was renamed since.
            await self.sheets.update_row(mapping.sheet_tab, mapping.row_number, values)
            mapping.row_hash = digest
            mapping.last_exported_at = now
            export.operation = SheetOperation.UPDATE.value
        else:
            tab = service.tab_title(project)
            await self.sheets.ensure_tab(tab, service.SHEET_HEADER)
            row_number = await self.sheets.append_row(tab, values)
            mapping = GoogleSheetRowMap(
                project_id=project.id,
                entity_type=SHEET_EXPERT_ENTITY,
                entity_id=expert.id,
                spreadsheet_id=spreadsheet_id,
                sheet_tab=tab,
                row_number=row_number,
                row_hash=digest,
                last_exported_at=now,
            )
            session.add(mapping)
            await session.flush()
            export.operation = SheetOperation.APPEND.value
        export.row_map_id = mapping.id
        export.sheet_tab = mapping.sheet_tab
        export.row_number = mapping.row_number
        export.status = SheetExportStatus.SUCCEEDED.value
        export.exported_at = now
        await repository.add_export(session, export)
