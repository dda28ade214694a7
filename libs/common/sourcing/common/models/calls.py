"""Callers, their status history and performance, call tasks, signup chases, call logs."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Date,
    Double,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sourcing.common.models.base import (
    Base,
    CreatedAt,
    Timestamps,
    UUIDPrimaryKey,
    json_array,
    json_object,
    one_of,
    sql_in,
)
from sourcing.common.models.enums import (
    MAX_SIGNUP_CHASES_PER_DAY,
    CallDirection,
    CallLogStatus,
    CallOutcome,
    CallTaskKind,
    RawEventStatus,
    values,
)
from sourcing.common.statemachines import (
    CALL_TASK,
    CALL_TASK_ACTIVE_STATUSES,
    CALL_TASK_OPEN_STATUSES,
    CALLER_ALLOCATION,
    CallerAllocationStatus,
    CallTaskStatus,
)

if TYPE_CHECKING:
    from sourcing.common.models.experts import Expert
    from sourcing.common.models.projects import Project


class Caller(UUIDPrimaryKey, Timestamps, Base):
    """A phone agent (§4.4). Email is unique case-insensitively."""

    __tablename__ = "callers"
    __table_args__ = (
        one_of("allocation_status", CALLER_ALLOCATION.states),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint("cardinality(language_codes) >= 1", name="language_codes_not_empty"),
        CheckConstraint("cardinality(region_iso_codes) >= 1", name="region_iso_codes_not_empty"),
        Index("ix_callers_allocation_status", "allocation_status"),
    )

    email: Mapped[str]
    name: Mapped[str]
    timezone: Mapped[str] = mapped_column(String(64))
    language_codes: Mapped[list[str]] = mapped_column(ARRAY(String(16)))
    region_iso_codes: Mapped[list[str]] = mapped_column(ARRAY(String(2)))
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=json_object(), default=dict
    )
    # Employment switch (an admin deactivates a caller); the scheduler works active callers only.
    is_active: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), default=True)
    allocation_status: Mapped[str] = mapped_column(
        String(32),
        server_default=CallerAllocationStatus.ACTIVE.value,
        default=CallerAllocationStatus.ACTIVE.value,
    )
    status_reason: Mapped[str | None]
    status_changed_at: Mapped[datetime | None]
    shift_started_at: Mapped[datetime | None]
    last_dial_at: Mapped[datetime | None]
    last_task_requested_at: Mapped[datetime | None]
    # Presence: the last task request or call event of an online caller; NULL when offline
    # (sourcing.people.callers.is_online).
    last_seen_at: Mapped[datetime | None]

    tasks: Mapped[list[CallTask]] = relationship(
        back_populates="caller", lazy="raise", passive_deletes=True
    )
    performance_metrics: Mapped[list[CallerPerformanceMetric]] = relationship(
        back_populates="caller", lazy="raise", passive_deletes=True
    )


Index("uq_callers_lower_email", func.lower(Caller.email), unique=True)


class CallerStatusHistory(UUIDPrimaryKey, CreatedAt, Base):
    """Every allocation status change of a caller, with why and who."""

    __tablename__ = "caller_status_history"
    __table_args__ = (
        one_of("from_status", CALLER_ALLOCATION.states),
        one_of("to_status", CALLER_ALLOCATION.states),
        Index("ix_caller_status_history_caller_id_created_at", "caller_id", "created_at"),
    )

    caller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("callers.id", ondelete="CASCADE"))
    from_status: Mapped[str | None] = mapped_column(String(32))
    to_status: Mapped[str] = mapped_column(String(32))
    reason: Mapped[str | None]
    actor: Mapped[str | None]
    metric_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("caller_performance_metrics.id", ondelete="SET NULL")
    )
    correlation_id: Mapped[str | None] = mapped_column(String(200))


class CallerPerformanceMetric(UUIDPrimaryKey, CreatedAt, Base):
    """A rolling performance snapshot of a caller (§4.4 ``performance/latest``)."""

    __tablename__ = "caller_performance_metrics"
    __table_args__ = (
        one_of("allocation_status", CALLER_ALLOCATION.states),
        one_of("previous_allocation_status", CALLER_ALLOCATION.states),
        CheckConstraint(
            "rolling_60_minute_dials >= 0 AND rolling_60_minute_connections >= 0"
            " AND short_calls_last_hour >= 0 AND timezone_mismatches_last_hour >= 0",
            name="counts_not_negative",
        ),
        Index(
            "ix_caller_performance_metrics_caller_id_computed_at",
            "caller_id",
            text("computed_at DESC"),
        ),
        Index("ix_caller_performance_metrics_computed_at", "computed_at"),
    )

    caller_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("callers.id", ondelete="CASCADE"))
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    rolling_60_minute_dials: Mapped[int] = mapped_column(Integer)
    rolling_60_minute_connections: Mapped[int] = mapped_column(Integer)
    short_calls_last_hour: Mapped[int] = mapped_column(Integer)
    timezone_mismatches_last_hour: Mapped[int] = mapped_column(Integer)
    allocation_status: Mapped[str] = mapped_column(String(32))
    previous_allocation_status: Mapped[str | None] = mapped_column(String(32))
    performance_score: Mapped[float] = mapped_column(Double)
    details: Mapped[dict[str, Any]] = mapped_column(server_default=json_object(), default=dict)
    correlation_id: Mapped[str | None] = mapped_column(String(200))

    caller: Mapped[Caller] = relationship(back_populates="performance_metrics", lazy="raise")


class CallTask(UUIDPrimaryKey, Timestamps, Base):
    """A phone call to make to an expert for a project, assigned to one caller at a time.

    Indexes carry the allocation rules: at most one ASSIGNED/DIALING task per caller, at most
    one open (PENDING/ASSIGNED/DIALING) task per expert and project, and the PENDING pool
    ordered by project priority then ranking score.
    """

    __tablename__ = "call_tasks"
    __table_args__ = (
        one_of("status", CALL_TASK.states),
        one_of("kind", values(CallTaskKind)),
        one_of("outcome", values(CallOutcome)),
        CheckConstraint(
            f"caller_id IS NOT NULL OR NOT ({sql_in('status', CALL_TASK_ACTIVE_STATUSES)})",
            name="active_has_caller",
        ),
        CheckConstraint("requeue_count >= 0", name="requeue_count_not_negative"),
        Index(
            "ix_call_tasks_pending_allocation",
            text("priority DESC"),
            text("ranking_score DESC"),
            "created_at",
            postgresql_where=text(f"status = '{CallTaskStatus.PENDING.value}'"),
        ),
        Index(
            "uq_call_tasks_active_caller_id",
            "caller_id",
            unique=True,
            postgresql_where=text(sql_in("status", CALL_TASK_ACTIVE_STATUSES)),
        ),
        Index(
            "uq_call_tasks_open_project_id_expert_id",
            "project_id",
            "expert_id",
            unique=True,
            postgresql_where=text(sql_in("status", CALL_TASK_OPEN_STATUSES)),
        ),
        Index(
            "ix_call_tasks_assigned_expires_at",
            "expires_at",
            postgresql_where=text(f"status = '{CallTaskStatus.ASSIGNED.value}'"),
        ),
        # Signup chase: tasks whose outcome sent a signup link, by when.
        Index(
            "ix_call_tasks_signup_link_outcome_at",
            "outcome_at",
            postgresql_where=text(f"outcome = '{CallOutcome.INTERESTED_SIGNUP_LINK_SENT.value}'"),
        ),
        Index("ix_call_tasks_status_created_at", "status", "created_at"),
        Index("ix_call_tasks_project_id_status_created_at", "project_id", "status", "created_at"),
        Index("ix_call_tasks_expert_id", "expert_id"),
        Index("ix_call_tasks_caller_id_updated_at", "caller_id", "updated_at"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    # RESTRICT: a caller with call history is deactivated, never deleted.
    caller_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("callers.id", ondelete="RESTRICT")
    )
    status: Mapped[str] = mapped_column(
        String(32),
        server_default=CallTaskStatus.PENDING.value,
        default=CallTaskStatus.PENDING.value,
    )
    status_reason: Mapped[str | None]
    status_changed_at: Mapped[datetime | None]
    kind: Mapped[str] = mapped_column(
        String(32), server_default=CallTaskKind.INITIAL.value, default=CallTaskKind.INITIAL.value
    )
    # Copied from the project (priority) and the latest ranking at creation, for the index.
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    ranking_score: Mapped[float] = mapped_column(Double, server_default=text("0"), default=0.0)
    region_iso: Mapped[str | None] = mapped_column(String(2))
    language_code: Mapped[str | None] = mapped_column(String(16))
    phone_number: Mapped[str | None]
    # Not allocatable before this time (retry cool-off, signup chase delay).
    available_after: Mapped[datetime | None]
    assigned_at: Mapped[datetime | None]
    # Dial deadline: an ASSIGNED task not dialled by then expires and returns to the pool.
    expires_at: Mapped[datetime | None]
    dialing_started_at: Mapped[datetime | None]
    completed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(64))
    outcome_at: Mapped[datetime | None]
    outcome_notes: Mapped[str | None]
    requeue_count: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    # The task this one retries or chases.
    chase_of_task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("call_tasks.id", ondelete="SET NULL")
    )
    correlation_id: Mapped[str | None] = mapped_column(String(200))

    project: Mapped[Project] = relationship(lazy="raise")
    expert: Mapped[Expert] = relationship(lazy="raise")
    caller: Mapped[Caller | None] = relationship(back_populates="tasks", lazy="raise")
    call_logs: Mapped[list[CallLog]] = relationship(
        back_populates="call_task", lazy="raise", passive_deletes=True
    )


class SignupChase(UUIDPrimaryKey, CreatedAt, Base):
    """A chase call task created for an expert who got a signup link but did not sign up.

    ``chase_number`` counts the chases of one expert on one (UTC) day; the unique key and the
    CHECK make "at most 3 per expert per day" hold even with two schedulers racing.
    """

    __tablename__ = "signup_chases"
    __table_args__ = (
        UniqueConstraint("expert_id", "chase_date", "chase_number"),
        UniqueConstraint("chase_call_task_id"),
        CheckConstraint(
            f"chase_number BETWEEN 1 AND {MAX_SIGNUP_CHASES_PER_DAY}", name="chase_number_range"
        ),
        Index("ix_signup_chases_source_call_task_id", "source_call_task_id"),
    )

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source_call_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("call_tasks.id", ondelete="CASCADE")
    )
    chase_call_task_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("call_tasks.id", ondelete="CASCADE")
    )
    chase_date: Mapped[date] = mapped_column(Date)
    chase_number: Mapped[int] = mapped_column(Integer)
    correlation_id: Mapped[str | None] = mapped_column(String(200))


class CallLog(UUIDPrimaryKey, Timestamps, Base):
    """One Yay call, folded from its events (any order, any number of deliveries)."""

    __tablename__ = "call_logs"
    __table_args__ = (
        UniqueConstraint("yay_call_id"),
        one_of("direction", values(CallDirection)),
        one_of("status", values(CallLogStatus)),
        CheckConstraint("duration_seconds >= 0", name="duration_not_negative"),
        CheckConstraint("talk_seconds >= 0", name="talk_not_negative"),
        # Rolling windows: a caller's calls of the last hour.
        Index("ix_call_logs_caller_id_started_at", "caller_id", "started_at"),
        Index("ix_call_logs_call_task_id", "call_task_id"),
        Index("ix_call_logs_expert_id", "expert_id"),
    )

    yay_call_id: Mapped[str] = mapped_column(String(200))
    caller_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("callers.id", ondelete="RESTRICT")
    )
    call_task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("call_tasks.id", ondelete="SET NULL")
    )
    expert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experts.id", ondelete="SET NULL")
    )
    agent_email: Mapped[str | None]
    direction: Mapped[str | None] = mapped_column(String(16))
    from_number: Mapped[str | None]
    to_number: Mapped[str | None]
    status: Mapped[str] = mapped_column(
        String(16), server_default=CallLogStatus.STARTED.value, default=CallLogStatus.STARTED.value
    )
    started_at: Mapped[datetime | None]
    ringing_at: Mapped[datetime | None]
    answered_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    failed_at: Mapped[datetime | None]
    failure_reason: Mapped[str | None]
    duration_seconds: Mapped[int | None] = mapped_column(Integer)
    talk_seconds: Mapped[int | None] = mapped_column(Integer)
    recording_url: Mapped[str | None]
    is_short_call: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), default=False
    )
    timezone_mismatch: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), default=False
    )
    # [{"flag": "SHORT_CALL", "detail": ...}, ...]
    fraud_flags: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB,
        server_default=json_array(),
        default=list,
    )
    validated_at: Mapped[datetime | None]
    last_event_at: Mapped[datetime | None]
    event_count: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=json_object(), default=dict
    )

    caller: Mapped[Caller | None] = relationship(lazy="raise")
    call_task: Mapped[CallTask | None] = relationship(back_populates="call_logs", lazy="raise")


class CallLogRaw(UUIDPrimaryKey, CreatedAt, Base):
    """A Yay webhook event exactly as received (every type, including ones we ignore)."""

    __tablename__ = "call_logs_raw"
    __table_args__ = (
        UniqueConstraint("event_id"),
        one_of("processing_status", values(RawEventStatus)),
        Index("ix_call_logs_raw_yay_call_id_occurred_at", "yay_call_id", "occurred_at"),
        Index("ix_call_logs_raw_received_at", "received_at"),
    )

    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str] = mapped_column(String(64))
    yay_call_id: Mapped[str | None] = mapped_column(String(200))
    call_log_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("call_logs.id", ondelete="SET NULL")
    )
    payload: Mapped[dict[str, Any]]
    signature_valid: Mapped[bool] = mapped_column(Boolean)
    occurred_at: Mapped[datetime | None]
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    processing_status: Mapped[str] = mapped_column(
        String(16),
        server_default=RawEventStatus.RECEIVED.value,
        default=RawEventStatus.RECEIVED.value,
    )
    processed_at: Mapped[datetime | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
