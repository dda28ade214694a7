"""Outreach threads and messages, cooldown log, screening responses and reminders, Sheets sync."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sourcing.common.models.base import (
    Base,
    CreatedAt,
    Timestamps,
    UUIDPrimaryKey,
    json_object,
    one_of,
    sql_in,
)
from sourcing.common.models.enums import (
    Channel,
    CooldownAction,
    CooldownOverrideSource,
    DeliveryStatus,
    MessageDirection,
    MessagePurpose,
    SheetExportStatus,
    SheetOperation,
    values,
)
from sourcing.common.statemachines import (
    OUTREACH_THREAD,
    SCREENING_RESPONSE,
    OutreachThreadStatus,
    ScreeningResponseStatus,
)

if TYPE_CHECKING:
    from sourcing.common.models.projects import ScreeningQuestion


class OutreachThread(UUIDPrimaryKey, Timestamps, Base):
    """The conversation with one expert, for one project, on one channel."""

    __tablename__ = "outreach_threads"
    __table_args__ = (
        UniqueConstraint("expert_id", "project_id", "channel"),
        one_of("status", OUTREACH_THREAD.states),
        one_of("channel", values(Channel)),
        Index("ix_outreach_threads_project_id_status", "project_id", "status"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(
        String(32),
        server_default=OutreachThreadStatus.OPEN.value,
        default=OutreachThreadStatus.OPEN.value,
    )
    status_changed_at: Mapped[datetime | None]
    recipient: Mapped[str | None]
    external_thread_id: Mapped[str | None]
    last_message_at: Mapped[datetime | None]
    # The last delivery failure on this thread ("thread and message marked failed", issue 5).
    last_error: Mapped[str | None]
    last_error_at: Mapped[datetime | None]

    messages: Mapped[list[OutreachMessage]] = relationship(
        back_populates="thread",
        lazy="raise",
        passive_deletes=True,
        order_by="[OutreachMessage.created_at, OutreachMessage.id]",
    )


class OutreachMessage(UUIDPrimaryKey, Timestamps, Base):
    """One message sent (or received) in a thread, with provider id and delivery status."""

    __tablename__ = "outreach_messages"
    __table_args__ = (
        # The outreach job id (envelope id): a redelivered job updates its message, never adds one.
        UniqueConstraint("job_id"),
        one_of("direction", values(MessageDirection)),
        one_of("purpose", values(MessagePurpose)),
        one_of("delivery_status", values(DeliveryStatus)),
        Index("ix_outreach_messages_thread_id_created_at", "thread_id", "created_at"),
        # Cooldown: "last outbound send to this expert" within 30 days.
        Index(
            "ix_outreach_messages_expert_id_sent_at",
            "expert_id",
            "sent_at",
            postgresql_where=text("direction = 'OUTBOUND'"),
        ),
        Index("ix_outreach_messages_provider_message_id", "provider_message_id"),
    )

    thread_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("outreach_threads.id", ondelete="CASCADE")
    )
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    job_id: Mapped[str | None] = mapped_column(String(200))
    direction: Mapped[str] = mapped_column(
        String(16),
        server_default=MessageDirection.OUTBOUND.value,
        default=MessageDirection.OUTBOUND.value,
    )
    purpose: Mapped[str] = mapped_column(
        String(32),
        server_default=MessagePurpose.OUTREACH.value,
        default=MessagePurpose.OUTREACH.value,
    )
    recipient: Mapped[str | None]
    body: Mapped[str]
    delivery_status: Mapped[str] = mapped_column(
        String(16), server_default=DeliveryStatus.QUEUED.value, default=DeliveryStatus.QUEUED.value
    )
    provider: Mapped[str | None] = mapped_column(String(64))
    provider_message_id: Mapped[str | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    error: Mapped[str | None]
    cooldown_overridden: Mapped[bool] = mapped_column(server_default=text("false"), default=False)
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    sent_at: Mapped[datetime | None]
    delivered_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]

    thread: Mapped[OutreachThread] = relationship(back_populates="messages", lazy="raise")


class CooldownLog(UUIDPrimaryKey, CreatedAt, Base):
    """Every cooldown enforcement (refused send) and override (send inside the cooldown)."""

    __tablename__ = "cooldown_logs"
    __table_args__ = (
        one_of("action", values(CooldownAction)),
        one_of("override_source", values(CooldownOverrideSource)),
        one_of("channel", values(Channel)),
        CheckConstraint(
            "(action = 'OVERRIDDEN') = (override_source IS NOT NULL)",
            name="override_iff_overridden",
        ),
        Index("ix_cooldown_logs_expert_id_created_at", "expert_id", "created_at"),
        Index("ix_cooldown_logs_project_id_created_at", "project_id", "created_at"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    outreach_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_messages.id", ondelete="SET NULL")
    )
    channel: Mapped[str | None] = mapped_column(String(32))
    action: Mapped[str] = mapped_column(String(16))
    override_source: Mapped[str | None] = mapped_column(String(16))
    last_contacted_at: Mapped[datetime | None]
    cooldown_ends_at: Mapped[datetime | None]
    reason: Mapped[str | None]
    actor: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))


class ScreeningResponse(UUIDPrimaryKey, Timestamps, Base):
    """An expert's answer to one screening question (one row per expert and question)."""

    __tablename__ = "screening_responses"
    __table_args__ = (
        UniqueConstraint("expert_id", "question_id"),
        one_of("status", SCREENING_RESPONSE.states),
        CheckConstraint("reminder_count >= 0", name="reminder_count_not_negative"),
        # Follow-ups: open responses untouched for 15+ minutes (§5.2 step 4).
        Index(
            "ix_screening_responses_status_updated_at",
            "status",
            "updated_at",
            postgresql_where=text(
                sql_in(
                    "status",
                    (ScreeningResponseStatus.PENDING, ScreeningResponseStatus.IN_PROGRESS),
                )
            ),
        ),
        Index("ix_screening_responses_project_id_expert_id", "project_id", "expert_id"),
        Index("ix_screening_responses_question_id", "question_id"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    question_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("screening_questions.id", ondelete="CASCADE")
    )
    status: Mapped[str] = mapped_column(
        String(32),
        server_default=ScreeningResponseStatus.PENDING.value,
        default=ScreeningResponseStatus.PENDING.value,
    )
    status_changed_at: Mapped[datetime | None]
    response_text: Mapped[str | None]
    channel: Mapped[str | None] = mapped_column(String(32))
    dispatch_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_messages.id", ondelete="SET NULL")
    )
    dispatched_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    reminder_count: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    last_reminded_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    escalated_at: Mapped[datetime | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))

    question: Mapped[ScreeningQuestion] = relationship(lazy="raise")
    reminders: Mapped[list[ScreeningReminder]] = relationship(
        back_populates="response", lazy="raise", passive_deletes=True
    )


class ScreeningReminder(UUIDPrimaryKey, CreatedAt, Base):
    """One follow-up reminder for an open screening response; numbered, so sending is idempotent."""

    __tablename__ = "screening_reminders"
    __table_args__ = (
        UniqueConstraint("screening_response_id", "reminder_number"),
        CheckConstraint("reminder_number >= 1", name="reminder_number_positive"),
        one_of("channel", values(Channel)),
    )

    screening_response_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("screening_responses.id", ondelete="CASCADE")
    )
    reminder_number: Mapped[int] = mapped_column(Integer)
    channel: Mapped[str | None] = mapped_column(String(32))
    outreach_message_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("outreach_messages.id", ondelete="SET NULL")
    )
    correlation_id: Mapped[str | None] = mapped_column(String(200))

    response: Mapped[ScreeningResponse] = relationship(back_populates="reminders", lazy="raise")


class GoogleSheetRowMap(UUIDPrimaryKey, Timestamps, Base):
    """Which sheet tab and row an entity occupies, so updates overwrite instead of appending."""

    __tablename__ = "google_sheet_row_maps"
    __table_args__ = (
        UniqueConstraint("project_id", "entity_type", "entity_id"),
        UniqueConstraint("spreadsheet_id", "sheet_tab", "row_number"),
        CheckConstraint("row_number >= 1", name="row_number_positive"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID]
    spreadsheet_id: Mapped[str]
    sheet_tab: Mapped[str]
    row_number: Mapped[int] = mapped_column(Integer)
    # Hash of the last pushed row values: an unchanged row is not pushed again.
    row_hash: Mapped[str | None] = mapped_column(String(128))
    last_exported_at: Mapped[datetime | None]


class GoogleSheetExport(UUIDPrimaryKey, CreatedAt, Base):
    """One push of one row to Google Sheets."""

    __tablename__ = "google_sheet_exports"
    __table_args__ = (
        one_of("operation", values(SheetOperation)),
        one_of("status", values(SheetExportStatus)),
        Index("ix_google_sheet_exports_project_id_created_at", "project_id", "created_at"),
        Index("ix_google_sheet_exports_entity_id", "entity_id"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    row_map_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("google_sheet_row_maps.id", ondelete="SET NULL")
    )
    entity_type: Mapped[str] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID]
    spreadsheet_id: Mapped[str | None]
    sheet_tab: Mapped[str | None]
    row_number: Mapped[int | None] = mapped_column(Integer)
    operation: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    row_values: Mapped[dict[str, Any]] = mapped_column(server_default=json_object(), default=dict)
    error: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    exported_at: Mapped[datetime] = mapped_column(server_default=func.now())
