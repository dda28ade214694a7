"""People: deduplicated experts, contacts, leads, enrichment attempts, rankings, suppressions."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    Double,
    ForeignKey,
    Index,
    Integer,
    PrimaryKeyConstraint,
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
)
from sourcing.common.models.enums import (
    Channel,
    CircuitState,
    ContactSource,
    ContactType,
    EnrichmentAttemptStatus,
    EnrichmentPhase,
    SuppressedContactKind,
    SuppressionReason,
    values,
)
from sourcing.common.statemachines import LEAD, LeadStatus

if TYPE_CHECKING:
    from sourcing.common.models.projects import Project, SalesNavSearch


class Expert(UUIDPrimaryKey, Timestamps, Base):
    """One real person, deduplicated across searches and projects.

    Identity: the normalised LinkedIn URL, else the primary email (stored lower-case); each is
    unique where present, and every expert has at least one of them.
    """

    __tablename__ = "experts"
    __table_args__ = (
        one_of("preferred_channel", values(Channel)),
        # An erased expert (a tombstone) has no identity left.
        CheckConstraint(
            "linkedin_url_normalized IS NOT NULL OR primary_email IS NOT NULL"
            " OR erased_at IS NOT NULL",
            name="has_identity",
        ),
        CheckConstraint("primary_email = lower(primary_email)", name="primary_email_lowercase"),
        CheckConstraint("country_iso IS NULL OR length(country_iso) = 2", name="country_iso_len"),
        Index(
            "uq_experts_linkedin_url_normalized",
            "linkedin_url_normalized",
            unique=True,
            postgresql_where=text("linkedin_url_normalized IS NOT NULL"),
        ),
        Index(
            "uq_experts_primary_email",
            "primary_email",
            unique=True,
            postgresql_where=text("primary_email IS NOT NULL"),
        ),
    )

    full_name: Mapped[str]
    first_name: Mapped[str | None]
    last_name: Mapped[str | None]
    linkedin_url_normalized: Mapped[str | None]
    primary_email: Mapped[str | None]
    primary_phone: Mapped[str | None]
    title: Mapped[str | None]
    company_name: Mapped[str | None]
    company_domain: Mapped[str | None]
    seniority: Mapped[str | None] = mapped_column(String(32))
    country_iso: Mapped[str | None] = mapped_column(String(2))
    timezone: Mapped[str | None] = mapped_column(String(64))  # IANA, from the country
    language_codes: Mapped[list[str]] = mapped_column(
        ARRAY(String(16)), server_default=text("'{}'::varchar[]"), default=list
    )
    preferred_channel: Mapped[str | None] = mapped_column(String(32))
    # Denormalised from expert_suppressions so every hot query can filter without a join.
    suppressed_at: Mapped[datetime | None]
    # When the person's data was erased (GDPR Art. 17 / CCPA): the row is a tombstone, its
    # personal fields cleared, kept so call tasks and callers' statistics keep their ids.
    erased_at: Mapped[datetime | None]
    # When the expert completed the signup the callers' link points to (stops signup chases).
    signed_up_at: Mapped[datetime | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=json_object(), default=dict
    )

    contacts: Mapped[list[ExpertContact]] = relationship(
        back_populates="expert", lazy="raise", passive_deletes=True
    )
    leads: Mapped[list[Lead]] = relationship(
        back_populates="expert", lazy="raise", passive_deletes=True
    )
    suppression: Mapped[ExpertSuppression | None] = relationship(
        back_populates="expert", lazy="raise", passive_deletes=True
    )


class ExpertContact(UUIDPrimaryKey, Timestamps, Base):
    """An email, phone, LinkedIn profile or messenger handle of an expert, with its provenance."""

    __tablename__ = "expert_contacts"
    __table_args__ = (
        UniqueConstraint("expert_id", "type", "value_normalized"),
        one_of("type", values(ContactType)),
        one_of("source", values(ContactSource)),
        one_of("channel", values(Channel)),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
        Index("ix_expert_contacts_type_value_normalized", "type", "value_normalized"),
    )

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str | None] = mapped_column(String(32))
    value: Mapped[str]
    value_normalized: Mapped[str]
    is_primary: Mapped[bool] = mapped_column(Boolean, server_default=text("false"), default=False)
    # Emails only: a company domain rather than gmail/outlook/... (region rule, §9).
    is_professional: Mapped[bool | None]
    # Phones only: value_normalized is E.164 (True), or the number could not be read and is
    # kept as given (False): shown to operators, never dialled (no call task from it).
    is_dialable: Mapped[bool | None]
    source: Mapped[str] = mapped_column(String(32))
    provider: Mapped[str | None] = mapped_column(String(64))
    confidence: Mapped[float | None] = mapped_column(Double)
    enrichment_attempt_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("enrichment_attempts.id", ondelete="SET NULL")
    )

    expert: Mapped[Expert] = relationship(back_populates="contacts", lazy="raise")


class ExpertSuppression(UUIDPrimaryKey, CreatedAt, Base):
    """Never contact this expert again: no outreach, no calls, no revival by re-ingestion.

    One row per expert (idempotent). The identities are copied so a later ingestion that
    somehow produced a different expert row can still be matched.
    """

    __tablename__ = "expert_suppressions"
    __table_args__ = (
        UniqueConstraint("expert_id"),
        one_of("reason", values(SuppressionReason)),
        Index("ix_expert_suppressions_linkedin_url_normalized", "linkedin_url_normalized"),
        Index("ix_expert_suppressions_email", "email"),
    )

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None]
    linkedin_url_normalized: Mapped[str | None]
    email: Mapped[str | None]
    source_call_task_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("call_tasks.id", ondelete="SET NULL")
    )
    actor: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))

    expert: Mapped[Expert] = relationship(back_populates="suppression", lazy="raise")


class ContactSuppression(UUIDPrimaryKey, CreatedAt, Base):
    """Never use this email, phone, LinkedIn profile or email domain again, whoever it belongs to.

    Matched by ``value_hash`` (SHA-256 of the normalised value), so the row still works once
    ``value`` is cleared by an erasure: the person is recognised, their data is gone.
    """

    __tablename__ = "contact_suppressions"
    __table_args__ = (
        UniqueConstraint("kind", "value_hash"),
        one_of("kind", values(SuppressedContactKind)),
        one_of("reason", values(SuppressionReason)),
        Index("ix_contact_suppressions_expert_id", "expert_id"),
        Index("ix_contact_suppressions_created_at", "created_at"),
    )

    kind: Mapped[str] = mapped_column(String(16))
    value_hash: Mapped[str] = mapped_column(String(64))
    value: Mapped[str | None]
    reason: Mapped[str] = mapped_column(String(32))
    note: Mapped[str | None]
    expert_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("experts.id", ondelete="SET NULL")
    )
    actor: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))


class Lead(UUIDPrimaryKey, Timestamps, Base):
    """A person as one Sales Nav search delivered them, linked to the deduplicated Expert.

    Same person from two searches or two projects: one Expert, two Leads.
    """

    __tablename__ = "leads"
    __table_args__ = (
        UniqueConstraint("expert_id", "sales_nav_search_id"),
        one_of("status", LEAD.states),
        Index("ix_leads_project_id_status", "project_id", "status"),
        Index("ix_leads_project_id_ranking_score", "project_id", text("ranking_score DESC")),
        Index("ix_leads_expert_id", "expert_id"),
        Index("ix_leads_sales_nav_search_id", "sales_nav_search_id"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    sales_nav_search_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("sales_nav_searches.id", ondelete="CASCADE")
    )
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(
        String(32), server_default=LeadStatus.NEW.value, default=LeadStatus.NEW.value
    )
    # Why the lead is where it is (e.g. "no provider reached confidence 0.7", "suppressed").
    status_reason: Mapped[str | None]
    status_changed_at: Mapped[datetime | None]
    # The lead as delivered (unknown extra fields kept).
    raw_name: Mapped[str]
    raw_company: Mapped[str]
    raw_title: Mapped[str | None]
    linkedin_url: Mapped[str | None]
    email: Mapped[str | None]
    phone: Mapped[str | None]
    company_domain: Mapped[str | None]
    country_iso: Mapped[str | None] = mapped_column(String(2))
    payload: Mapped[dict[str, Any]] = mapped_column(server_default=json_object(), default=dict)
    # Latest RankingSnapshot score, denormalised for "sorted by latest ranking score".
    ranking_score: Mapped[float | None] = mapped_column(Double)
    enriched_at: Mapped[datetime | None]
    contacted_at: Mapped[datetime | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))

    project: Mapped[Project] = relationship(back_populates="leads", lazy="raise")
    sales_nav_search: Mapped[SalesNavSearch] = relationship(lazy="raise")
    expert: Mapped[Expert] = relationship(back_populates="leads", lazy="raise")


class EnrichmentAttempt(UUIDPrimaryKey, CreatedAt, Base):
    """One enrichment provider call (§9); history drives provider selection by success rate."""

    __tablename__ = "enrichment_attempts"
    __table_args__ = (
        one_of("status", values(EnrichmentAttemptStatus)),
        one_of("phase", values(EnrichmentPhase)),
        CheckConstraint("confidence >= 0 AND confidence <= 1", name="confidence_range"),
        CheckConstraint("latency_ms >= 0", name="latency_not_negative"),
        CheckConstraint("credits >= 0", name="credits_not_negative"),
        Index("ix_enrichment_attempts_provider_created_at", "provider", "created_at"),
        Index("ix_enrichment_attempts_expert_id_created_at", "expert_id", "created_at"),
        Index("ix_enrichment_attempts_lead_id", "lead_id"),
        Index("ix_enrichment_attempts_run_id", "run_id"),
        UniqueConstraint("callback_request_id"),
        Index(
            "ix_enrichment_attempts_pending_created_at",
            "created_at",
            postgresql_where=text(f"status = '{EnrichmentAttemptStatus.PENDING.value}'"),
        ),
    )

    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    # Kept when the lead goes: provider statistics outlive leads.
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    # Groups the attempts of one waterfall run.
    run_id: Mapped[uuid.UUID]
    provider: Mapped[str] = mapped_column(String(64))
    phase: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(32))
    confidence: Mapped[float | None] = mapped_column(Double)
    latency_ms: Mapped[int | None] = mapped_column(Integer)
    http_status: Mapped[int | None] = mapped_column(Integer)
    error: Mapped[str | None]
    response_payload: Mapped[dict[str, Any] | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    # An asynchronous provider's request (Zeliq): our id in the callback URL, the vendor's job
    # id per callback kind ({"email": jobId, "phone": jobId}), and when the last one landed.
    callback_request_id: Mapped[uuid.UUID | None]
    callback_jobs: Mapped[dict[str, Any] | None]
    answered_at: Mapped[datetime | None]
    # Credits the lookup cost: as the provider reported it, else its declared cost per lookup.
    credits: Mapped[float] = mapped_column(Double, server_default=text("0"), default=0.0)


class ProviderCircuit(Base):
    """One enrichment process's circuit breaker for one provider, as it last changed. The
    breaker lives in that process's memory (each replica keeps its own); this row lets the
    gateway show it (``GET /api/v1/providers``)."""

    __tablename__ = "provider_circuits"
    __table_args__ = (
        PrimaryKeyConstraint("provider", "instance"),
        one_of("state", values(CircuitState)),
    )

    provider: Mapped[str] = mapped_column(String(64))
    # The enrichment process (host and pid) whose breaker this is.
    instance: Mapped[str] = mapped_column(String(200))
    state: Mapped[str] = mapped_column(String(16))
    # Failures counted in the breaker's window when it last changed.
    failures: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    # OPEN until then (a probe may go through after it).
    open_until: Mapped[datetime | None]
    updated_at: Mapped[datetime] = mapped_column(server_default=func.now())


class RankingSnapshot(UUIDPrimaryKey, CreatedAt, Base):
    """An expert's priority score within a project at one moment, with its components."""

    __tablename__ = "ranking_snapshots"
    __table_args__ = (
        Index(
            "ix_ranking_snapshots_project_id_expert_id_computed_at",
            "project_id",
            "expert_id",
            text("computed_at DESC"),
        ),
        Index("ix_ranking_snapshots_project_id_score", "project_id", text("score DESC")),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    expert_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("experts.id", ondelete="CASCADE"))
    lead_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("leads.id", ondelete="SET NULL"))
    score: Mapped[float] = mapped_column(Double)
    components: Mapped[dict[str, Any]] = mapped_column(server_default=json_object(), default=dict)
    formula_version: Mapped[str] = mapped_column(String(32))
    computed_at: Mapped[datetime] = mapped_column(server_default=func.now())
    correlation_id: Mapped[str | None] = mapped_column(String(200))
