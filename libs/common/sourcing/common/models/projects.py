"""Projects and what hangs off them: companies, job titles, searches, screening questions."""

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
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from sourcing.common.models.base import (
    Base,
    Timestamps,
    UUIDPrimaryKey,
    json_array,
    json_object,
    one_of,
)
from sourcing.common.models.enums import Channel, JobStatus, JobTitleSource, values
from sourcing.common.statemachines import PROJECT, ProjectStatus

if TYPE_CHECKING:
    from sourcing.common.models.experts import Lead


class Project(UUIDPrimaryKey, Timestamps, Base):
    """A sourcing campaign (§4.3)."""

    __tablename__ = "projects"
    __table_args__ = (
        one_of("status", PROJECT.states),
        one_of("auto_outreach_channel", values(Channel)),
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint("target_threshold > 0", name="target_threshold_positive"),
        CheckConstraint("priority >= 0", name="priority_not_negative"),
        CheckConstraint("cardinality(geography_iso_codes) >= 1", name="geography_not_empty"),
        CheckConstraint(
            "enrichment_budget_credits IS NULL OR enrichment_budget_credits >= 0",
            name="enrichment_budget_not_negative",
        ),
        Index("ix_projects_status", "status"),
    )

    name: Mapped[str]
    description: Mapped[str | None]
    target_threshold: Mapped[int] = mapped_column(Integer)
    geography_iso_codes: Mapped[list[str]] = mapped_column(ARRAY(String(2)))
    priority: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    override_cooldown: Mapped[bool] = mapped_column(
        Boolean, server_default=text("false"), default=False
    )
    region_config: Mapped[dict[str, Any]] = mapped_column(
        server_default=json_object(), default=dict
    )
    status: Mapped[str] = mapped_column(
        String(32), server_default=ProjectStatus.ACTIVE.value, default=ProjectStatus.ACTIVE.value
    )
    status_changed_at: Mapped[datetime | None]
    # When set, enrichment enqueues outreach on this channel for every newly enriched lead
    # (issue 3 "when the project wants it"); NULL means outreach is sent by operators only.
    auto_outreach_channel: Mapped[str | None] = mapped_column(String(32))
    auto_outreach_template: Mapped[str | None]
    # Credits enrichment may spend on this project's leads (NULL: unlimited); once spent, its
    # leads wait for enrichment until the budget is raised.
    enrichment_budget_credits: Mapped[float | None] = mapped_column(Double)

    companies: Mapped[list[Company]] = relationship(
        back_populates="project", lazy="raise", passive_deletes=True
    )
    sales_nav_searches: Mapped[list[SalesNavSearch]] = relationship(
        back_populates="project", lazy="raise", passive_deletes=True
    )
    screening_questions: Mapped[list[ScreeningQuestion]] = relationship(
        back_populates="project",
        lazy="raise",
        passive_deletes=True,
        order_by="ScreeningQuestion.display_order",
    )
    leads: Mapped[list[Lead]] = relationship(
        back_populates="project", lazy="raise", passive_deletes=True
    )


class Company(UUIDPrimaryKey, Timestamps, Base):
    """A target company attached to a project; unique per project by case-insensitive name."""

    __tablename__ = "companies"
    __table_args__ = (
        CheckConstraint("length(name) > 0", name="name_not_empty"),
        CheckConstraint("country_iso IS NULL OR length(country_iso) = 2", name="country_iso_len"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    name: Mapped[str]
    domain: Mapped[str | None]
    country_iso: Mapped[str | None] = mapped_column(String(2))
    apollo_organization_id: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=json_object(), default=dict
    )

    project: Mapped[Project] = relationship(back_populates="companies", lazy="raise")
    job_titles: Mapped[list[JobTitle]] = relationship(
        back_populates="company", lazy="raise", passive_deletes=True
    )


# The upsert target of "attach companies": ON CONFLICT (project_id, lower(name)).
Index(
    "uq_companies_project_id_lower_name", Company.project_id, func.lower(Company.name), unique=True
)


class JobTitleDiscoveryRun(UUIDPrimaryKey, Timestamps, Base):
    """One ``POST /job-title-discovery/trigger`` and what the agent made of it (§4.6)."""

    __tablename__ = "job_title_discovery_runs"
    __table_args__ = (
        one_of("status", values(JobStatus)),
        Index("ix_job_title_discovery_runs_project_id_created_at", "project_id", "created_at"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    status: Mapped[str] = mapped_column(
        String(32), server_default=JobStatus.QUEUED.value, default=JobStatus.QUEUED.value
    )
    # The request's companies: [{"companyName": ..., "companyId": ...}].
    requested_companies: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, server_default=json_array(), default=list
    )
    geography_iso_codes: Mapped[list[str]] = mapped_column(ARRAY(String(2)))
    requested_by: Mapped[str | None]
    correlation_id: Mapped[str | None] = mapped_column(String(200))
    titles_discovered: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    error: Mapped[str | None]
    started_at: Mapped[datetime | None]
    finished_at: Mapped[datetime | None]


class JobTitle(UUIDPrimaryKey, Timestamps, Base):
    """A discovered, normalised title of a company with its relevance score (0..1)."""

    __tablename__ = "job_titles"
    __table_args__ = (
        UniqueConstraint("company_id", "normalized_title"),
        one_of("source", values(JobTitleSource)),
        CheckConstraint("relevance_score >= 0 AND relevance_score <= 1", name="relevance_range"),
        CheckConstraint("length(normalized_title) > 0", name="normalized_title_not_empty"),
        Index("ix_job_titles_project_id_normalized_title", "project_id", "normalized_title"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    company_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("companies.id", ondelete="CASCADE"))
    discovery_run_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("job_title_discovery_runs.id", ondelete="SET NULL")
    )
    title: Mapped[str]
    normalized_title: Mapped[str]
    relevance_score: Mapped[float] = mapped_column(Double)
    seniority: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(String(32))
    rationale: Mapped[str | None]
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", server_default=json_object(), default=dict
    )

    company: Mapped[Company] = relationship(back_populates="job_titles", lazy="raise")


class SalesNavSearch(UUIDPrimaryKey, Timestamps, Base):
    """A LinkedIn Sales Navigator search URL of a project (at least 6 per request, §4.3)."""

    __tablename__ = "sales_nav_searches"
    __table_args__ = (
        UniqueConstraint("project_id", "normalized_url"),
        CheckConstraint("length(normalized_url) > 0", name="normalized_url_not_empty"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    source_url: Mapped[str]
    normalized_url: Mapped[str]
    leads_received: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    last_webhook_at: Mapped[datetime | None]

    project: Mapped[Project] = relationship(back_populates="sales_nav_searches", lazy="raise")


class ScreeningQuestion(UUIDPrimaryKey, Timestamps, Base):
    """A question template of a project, sent in ``display_order``."""

    __tablename__ = "screening_questions"
    __table_args__ = (
        CheckConstraint("length(prompt) > 0", name="prompt_not_empty"),
        Index("ix_screening_questions_project_id_display_order", "project_id", "display_order"),
    )

    project_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("projects.id", ondelete="CASCADE"))
    prompt: Mapped[str]
    display_order: Mapped[int] = mapped_column(Integer, server_default=text("0"), default=0)
    required: Mapped[bool] = mapped_column(Boolean, server_default=text("true"), default=True)

    project: Mapped[Project] = relationship(back_populates="screening_questions", lazy="raise")
