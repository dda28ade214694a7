"""Reliability and operations: dedup records, outbox, dead letters, audit, jobs, scheduler."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Identity,
    Index,
    Integer,
    PrimaryKeyConstraint,
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
)
from sourcing.common.models.enums import JobStatus, ReplayStatus, SchedulerCycleStatus, values


class ProcessedWebhookEvent(UUIDPrimaryKey, CreatedAt, Base):
    """A webhook event already handled (e.g. Yay's ``x-yay-event-id``): a replay changes nothing."""

    __tablename__ = "processed_webhook_events"
    __table_args__ = (
        UniqueConstraint("source", "event_id"),
        Index("ix_processed_webhook_events_received_at", "received_at"),
    )

    source: Mapped[str] = mapped_column(String(32))  # "yay", "sales-nav"
    event_id: Mapped[str] = mapped_column(String(200))
    event_type: Mapped[str | None] = mapped_column(String(64))
    payload_sha256: Mapped[str | None] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(server_default=func.now())
    correlation_id: Mapped[str | None] = mapped_column(String(200))


class ProcessedEvent(Base):
    """Agent idempotency: (consumer, envelope id) inserted ``ON CONFLICT DO NOTHING`` in the
    same transaction as the message's business writes."""

    __tablename__ = "processed_events"
    __table_args__ = (
        PrimaryKeyConstraint("consumer", "event_id"),
        Index("ix_processed_events_processed_at", "processed_at"),
    )

    consumer: Mapped[str] = mapped_column(String(200))
    event_id: Mapped[str] = mapped_column(String(200))
    processed_at: Mapped[datetime] = mapped_column(server_default=func.now())


class IdempotencyKey(Base):
    """The first answer to a POST that carried an ``Idempotency-Key``, replayed to its retries.

    One row per (client, key). ``status_code`` is null while the first request runs; a
    request fingerprint (method, path, query, body) tells a retry from a different request
    reusing the key.
    """

    __tablename__ = "idempotency_keys"
    __table_args__ = (
        PrimaryKeyConstraint("owner", "key"),
        Index("ix_idempotency_keys_created_at", "created_at"),
    )

    owner: Mapped[str] = mapped_column(String(200))
    key: Mapped[str] = mapped_column(String(255))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int | None] = mapped_column(Integer)
    content_type: Mapped[str | None] = mapped_column(String(200))
    response_body: Mapped[str | None]  # JSON text: the erasure finds a person in it
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    completed_at: Mapped[datetime | None]


class OutboxMessage(UUIDPrimaryKey, Base):
    """A Kafka message written in the transaction that caused it; the relay publishes it.

    ``seq`` orders the relay (rows of one transaction share ``created_at``); the relay takes
    unpublished rows ``ORDER BY seq FOR UPDATE SKIP LOCKED``.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        UniqueConstraint("seq"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(
            "ix_outbox_unpublished_seq",
            "seq",
            postgresql_where=text("published_at IS NULL"),
        ),
        Index("ix_outbox_published_at", "published_at"),
    )

    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    topic: Mapped[str] = mapped_column(String(249))  # Kafka's topic name limit
    key: Mapped[str | None]
    envelope: Mapped[dict[str, Any]]
    headers: Mapped[dict[str, Any]] = mapped_column(server_default=json_object(), default=dict)
    created_at: Mapped[datetime] = mapped_column(server_default=func.now())
    published_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    last_error: Mapped[str | None]


class DeadLetterJob(UUIDPrimaryKey, CreatedAt, Base):
    """A message that failed all its attempts (or could not be decoded), kept for analysis.

    Unique on its origin (topic, partition, offset): the sink writes each message once even on
    redelivery. Archival (scheduler, 30 days) sets ``archived_at`` rather than moving the row to
    another table: the unique origin key keeps guarding redeliveries and replays keep their
    foreign key. The live table is ``archived_at IS NULL`` (partial indexes below).
    """

    __tablename__ = "dead_letter_jobs"
    __table_args__ = (
        UniqueConstraint("origin_topic", "origin_partition", "origin_offset"),
        CheckConstraint("attempts >= 0", name="attempts_not_negative"),
        Index(
            "ix_dead_letter_jobs_live_origin_topic_failed_at",
            "origin_topic",
            "failed_at",
            postgresql_where=text("archived_at IS NULL"),
        ),
        Index(
            "ix_dead_letter_jobs_live_failed_at",
            "failed_at",
            postgresql_where=text("archived_at IS NULL"),
        ),
        Index("ix_dead_letter_jobs_job_id", "job_id"),
        Index("ix_dead_letter_jobs_correlation_id", "correlation_id"),
    )

    origin_topic: Mapped[str] = mapped_column(String(249))
    origin_partition: Mapped[int] = mapped_column(Integer)
    origin_offset: Mapped[int] = mapped_column(BigInteger)
    message_key: Mapped[str | None]
    job_id: Mapped[str | None] = mapped_column(String(200))  # the envelope id
    message_type: Mapped[str | None] = mapped_column(String(200))
    # The full original envelope; NULL when the bytes were not JSON (then see raw_value).
    payload: Mapped[dict[str, Any] | None]
    raw_value: Mapped[str | None]
    headers: Mapped[dict[str, Any]] = mapped_column(server_default=json_object(), default=dict)
    error: Mapped[str]
    error_type: Mapped[str | None] = mapped_column(String(200))
    stack: Mapped[str | None]
    attempts: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    failed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    archived_at: Mapped[datetime | None]
    replay_count: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    last_replayed_at: Mapped[datetime | None]

    replays: Mapped[list[DeadLetterReplay]] = relationship(
        back_populates="dead_letter_job", lazy="raise", passive_deletes=True
    )


class DeadLetterReplay(UUIDPrimaryKey, CreatedAt, Base):
    """An admin's replay of a dead letter: the original envelope republished to its topic."""

    __tablename__ = "dead_letter_replays"
    __table_args__ = (
        one_of("status", values(ReplayStatus)),
        Index("ix_dead_letter_replays_dead_letter_job_id", "dead_letter_job_id"),
    )

    dead_letter_job_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("dead_letter_jobs.id", ondelete="CASCADE")
    )
    target_topic: Mapped[str] = mapped_column(String(249))
    # The envelope id of the republished message (the outbox row's envelope id).
    envelope_id: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(
        String(16),
        server_default=ReplayStatus.REQUESTED.value,
        default=ReplayStatus.REQUESTED.value,
    )
    requested_by: Mapped[str | None]
    reason: Mapped[str | None]
    error: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    published_at: Mapped[datetime | None]

    dead_letter_job: Mapped[DeadLetterJob] = relationship(back_populates="replays", lazy="raise")


class SystemEvent(UUIDPrimaryKey, CreatedAt, Base):
    """Audit log entry: status changes, requeues, overrides, replays (``call_task.requeued``)."""

    __tablename__ = "system_events"
    __table_args__ = (
        Index("ix_system_events_entity", "entity_type", "entity_id", "created_at"),
        Index("ix_system_events_type_created_at", "type", "created_at"),
        Index("ix_system_events_correlation_id", "correlation_id"),
        Index("ix_system_events_created_at", "created_at"),
    )

    type: Mapped[str] = mapped_column(String(100))
    entity_type: Mapped[str | None] = mapped_column(String(64))
    entity_id: Mapped[uuid.UUID | None]
    actor: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    data: Mapped[dict[str, Any]] = mapped_column(server_default=json_object(), default=dict)


class DocumentationJob(UUIDPrimaryKey, Timestamps, Base):
    """One ``POST /documentation/generate`` (§4.9) and the files it wrote."""

    __tablename__ = "documentation_jobs"
    __table_args__ = (
        one_of("status", values(JobStatus)),
        Index("ix_documentation_jobs_created_at", "created_at"),
    )

    status: Mapped[str] = mapped_column(
        String(16), server_default=JobStatus.QUEUED.value, default=JobStatus.QUEUED.value
    )
    requested_by: Mapped[str | None]
    output_dir: Mapped[str | None]
    # [{"path": "state-machines.md", "sha256": "..."}]
    files: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=json_array(), default=list
    )
    # {"state-machines.md": "# State machines..."}: what the gateway serves, wherever the
    # scheduler's files went.
    documents: Mapped[dict[str, str]] = mapped_column(
        JSONB, server_default=json_object(), default=dict
    )
    error: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class SchedulerCycle(UUIDPrimaryKey, CreatedAt, Base):
    """One maintenance cycle (§5.2). ``slot_started_at`` is the interval's start: the unique key
    lets exactly one of several scheduler replicas claim each slot."""

    __tablename__ = "scheduler_cycles"
    __table_args__ = (
        UniqueConstraint("slot_started_at"),
        one_of("status", values(SchedulerCycleStatus)),
    )

    slot_started_at: Mapped[datetime]
    holder: Mapped[str]  # replica identity (host:pid)
    status: Mapped[str] = mapped_column(
        String(16),
        server_default=SchedulerCycleStatus.RUNNING.value,
        default=SchedulerCycleStatus.RUNNING.value,
    )
    started_at: Mapped[datetime] = mapped_column(server_default=func.now())
    finished_at: Mapped[datetime | None]
    # [{"step": "dead_letter_archival", "duration_ms": 12, "affected": 3, "error": null}, ...]
    steps: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=json_array(), default=list
    )
    error: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
