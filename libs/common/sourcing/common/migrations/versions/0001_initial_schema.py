"""Initial schema: every table, index and constraint of the platform.

Revision ID: 0001
Revises:
Create Date: 2026-11-28

Written once from the models and frozen: the CHECK constraints spell out the state lists as
they were on this date (a later state needs a new revision that replaces the constraint).
Tables are created parents first; downgrade drops them children first (their indexes and
constraints go with them). No extension is needed: gen_random_uuid() is built into PostgreSQL 13+.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Value lists as of this revision, frozen here on purpose: the models generate their CHECK
# constraints from the live enums and state machines; a later change needs a new revision.
CHANNELS = (
    "phone",
    "email",
    "linkedin",
    "whatsapp",
    "respondio",
    "sms",
    "imessage",
    "line",
    "wechat",
    "viber",
    "telegram",
    "kakaotalk",
    "voicemail",
)
PROJECT_STATUSES = ("ACTIVE", "PAUSED", "COMPLETED", "ARCHIVED")
LEAD_STATUSES = (
    "NEW",
    "ENRICHING",
    "ENRICHED",
    "ENRICHMENT_FAILED",
    "OUTREACH_PENDING",
    "CONTACTED",
    "REPLIED",
    "CONVERTED",
    "DISQUALIFIED",
)
OUTREACH_THREAD_STATUSES = ("OPEN", "CLOSED", "ARCHIVED")
SCREENING_RESPONSE_STATUSES = ("PENDING", "IN_PROGRESS", "COMPLETE", "ESCALATED")
CALL_TASK_STATUSES = (
    "PENDING",
    "ASSIGNED",
    "DIALING",
    "COMPLETED",
    "EXPIRED",
    "CANCELLED",
    "RESTRICTED",
)
CALLER_ALLOCATION_STATUSES = (
    "ACTIVE",
    "WARMUP_GRACE",
    "AT_RISK",
    "PAUSED_LOW_DIAL_RATE",
    "IDLE_NO_AVAILABLE_TASKS",
    "RESTRICTED_FRAUD",
    "SUSPENDED",
)
CONTACT_TYPES = ("EMAIL", "PHONE", "LINKEDIN", "HANDLE")
CONTACT_SOURCES = ("SALES_NAV", "ENRICHMENT", "MANUAL")
ENRICHMENT_PHASES = ("PARALLEL", "FALLBACK")
ENRICHMENT_ATTEMPT_STATUSES = (
    "SUCCESS",
    "NO_MATCH",
    "FILTERED",
    "ERROR",
    "TIMEOUT",
    "RATE_LIMITED",
    "UNAVAILABLE",
)
JOB_TITLE_SOURCES = ("APOLLO", "OPENAI", "MANUAL")
JOB_STATUSES = ("QUEUED", "RUNNING", "SUCCEEDED", "FAILED")
DIRECTIONS = ("OUTBOUND", "INBOUND")
MESSAGE_PURPOSES = ("OUTREACH", "SCREENING", "SCREENING_REMINDER")
DELIVERY_STATUSES = ("QUEUED", "SENT", "DELIVERED", "READ", "FAILED")
COOLDOWN_ACTIONS = ("ENFORCED", "OVERRIDDEN")
COOLDOWN_OVERRIDE_SOURCES = ("REQUEST", "PROJECT")
CALL_TASK_KINDS = ("INITIAL", "RETRY", "SIGNUP_CHASE")
CALL_OUTCOMES = ("INTERESTED_SIGNUP_LINK_SENT", "RETRYABLE_REJECTION", "NEVER_CONTACT_AGAIN")
CALL_LOG_STATUSES = ("STARTED", "RINGING", "ANSWERED", "ENDED", "FAILED")
RAW_EVENT_STATUSES = ("RECEIVED", "PROCESSED", "IGNORED")
SUPPRESSION_REASONS = ("NEVER_CONTACT_AGAIN", "OPT_OUT", "MANUAL")
SHEET_OPERATIONS = ("APPEND", "UPDATE")
SHEET_EXPORT_STATUSES = ("SUCCEEDED", "FAILED", "SKIPPED")
REPLAY_STATUSES = ("REQUESTED", "PUBLISHED", "FAILED")
SCHEDULER_CYCLE_STATUSES = ("RUNNING", "SUCCEEDED", "FAILED")


def one_of(column: str, values: tuple[str, ...]) -> str:
    quoted = ", ".join(f"'{value}'" for value in values)
    return f"{column} IN ({quoted})"


def upgrade() -> None:
    op.create_table(
        "callers",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("email", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("language_codes", sa.ARRAY(sa.String(length=16)), nullable=False),
        sa.Column("region_iso_codes", sa.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("is_active", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "allocation_status", sa.String(length=32), server_default="ACTIVE", nullable=False
        ),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("shift_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_dial_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_task_requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("allocation_status", CALLER_ALLOCATION_STATUSES),
            name=op.f("ck_callers_allocation_status"),
        ),
        sa.CheckConstraint(
            "cardinality(language_codes) >= 1", name=op.f("ck_callers_language_codes_not_empty")
        ),
        sa.CheckConstraint(
            "cardinality(region_iso_codes) >= 1", name=op.f("ck_callers_region_iso_codes_not_empty")
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_callers_name_not_empty")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_callers")),
    )
    op.create_index("ix_callers_allocation_status", "callers", ["allocation_status"], unique=False)
    op.create_index(
        "uq_callers_lower_email", "callers", [sa.literal_column("lower(email)")], unique=True
    )
    op.create_table(
        "dead_letter_jobs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("origin_topic", sa.String(length=249), nullable=False),
        sa.Column("origin_partition", sa.Integer(), nullable=False),
        sa.Column("origin_offset", sa.BigInteger(), nullable=False),
        sa.Column("message_key", sa.Text(), nullable=True),
        sa.Column("job_id", sa.String(length=200), nullable=True),
        sa.Column("message_type", sa.String(length=200), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("raw_value", sa.Text(), nullable=True),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("error_type", sa.String(length=200), nullable=True),
        sa.Column("stack", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "failed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("replay_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_replayed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_dead_letter_jobs_attempts_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_jobs")),
        sa.UniqueConstraint(
            "origin_topic",
            "origin_partition",
            "origin_offset",
            name=op.f("uq_dead_letter_jobs_origin_topic_origin_partition_origin_offset"),
        ),
    )
    op.create_index(
        "ix_dead_letter_jobs_correlation_id", "dead_letter_jobs", ["correlation_id"], unique=False
    )
    op.create_index("ix_dead_letter_jobs_job_id", "dead_letter_jobs", ["job_id"], unique=False)
    op.create_index(
        "ix_dead_letter_jobs_live_failed_at",
        "dead_letter_jobs",
        ["failed_at"],
        unique=False,
        postgresql_where=sa.text("archived_at IS NULL"),
    )
    op.create_index(
        "ix_dead_letter_jobs_live_origin_topic_failed_at",
        "dead_letter_jobs",
        ["origin_topic", "failed_at"],
        unique=False,
        postgresql_where=sa.text("archived_at IS NULL"),
    )
    op.create_table(
        "documentation_jobs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="QUEUED", nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("output_dir", sa.Text(), nullable=True),
        sa.Column(
            "files",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("status", JOB_STATUSES),
            name=op.f("ck_documentation_jobs_status"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_documentation_jobs")),
    )
    op.create_index(
        "ix_documentation_jobs_created_at", "documentation_jobs", ["created_at"], unique=False
    )
    op.create_table(
        "experts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("full_name", sa.Text(), nullable=False),
        sa.Column("first_name", sa.Text(), nullable=True),
        sa.Column("last_name", sa.Text(), nullable=True),
        sa.Column("linkedin_url_normalized", sa.Text(), nullable=True),
        sa.Column("primary_email", sa.Text(), nullable=True),
        sa.Column("primary_phone", sa.Text(), nullable=True),
        sa.Column("title", sa.Text(), nullable=True),
        sa.Column("company_name", sa.Text(), nullable=True),
        sa.Column("company_domain", sa.Text(), nullable=True),
        sa.Column("seniority", sa.String(length=32), nullable=True),
        sa.Column("country_iso", sa.String(length=2), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=True),
        sa.Column(
            "language_codes",
            sa.ARRAY(sa.String(length=16)),
            server_default=sa.text("'{}'::varchar[]"),
            nullable=False,
        ),
        sa.Column("preferred_channel", sa.String(length=32), nullable=True),
        sa.Column("suppressed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_up_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("preferred_channel", CHANNELS),
            name=op.f("ck_experts_preferred_channel"),
        ),
        sa.CheckConstraint(
            "country_iso IS NULL OR length(country_iso) = 2",
            name=op.f("ck_experts_country_iso_len"),
        ),
        sa.CheckConstraint(
            "linkedin_url_normalized IS NOT NULL OR primary_email IS NOT NULL",
            name=op.f("ck_experts_has_identity"),
        ),
        sa.CheckConstraint(
            "primary_email = lower(primary_email)", name=op.f("ck_experts_primary_email_lowercase")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_experts")),
    )
    op.create_index(
        "uq_experts_linkedin_url_normalized",
        "experts",
        ["linkedin_url_normalized"],
        unique=True,
        postgresql_where=sa.text("linkedin_url_normalized IS NOT NULL"),
    )
    op.create_index(
        "uq_experts_primary_email",
        "experts",
        ["primary_email"],
        unique=True,
        postgresql_where=sa.text("primary_email IS NOT NULL"),
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("topic", sa.String(length=249), nullable=False),
        sa.Column("key", sa.Text(), nullable=True),
        sa.Column("envelope", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column(
            "headers",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.CheckConstraint("attempts >= 0", name=op.f("ck_outbox_attempts_not_negative")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outbox")),
        sa.UniqueConstraint("seq", name=op.f("uq_outbox_seq")),
    )
    op.create_index("ix_outbox_published_at", "outbox", ["published_at"], unique=False)
    op.create_index(
        "ix_outbox_unpublished_seq",
        "outbox",
        ["seq"],
        unique=False,
        postgresql_where=sa.text("published_at IS NULL"),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.String(length=200), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id", name=op.f("pk_processed_events")),
    )
    op.create_index(
        "ix_processed_events_processed_at", "processed_events", ["processed_at"], unique=False
    )
    op.create_table(
        "processed_webhook_events",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=True),
        sa.Column("payload_sha256", sa.String(length=64), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_processed_webhook_events")),
        sa.UniqueConstraint(
            "source", "event_id", name=op.f("uq_processed_webhook_events_source_event_id")
        ),
    )
    op.create_index(
        "ix_processed_webhook_events_received_at",
        "processed_webhook_events",
        ["received_at"],
        unique=False,
    )
    op.create_table(
        "projects",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("target_threshold", sa.Integer(), nullable=False),
        sa.Column("geography_iso_codes", sa.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "override_cooldown", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column(
            "region_config",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("status", sa.String(length=32), server_default="ACTIVE", nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("auto_outreach_channel", sa.String(length=32), nullable=True),
        sa.Column("auto_outreach_template", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("auto_outreach_channel", CHANNELS),
            name=op.f("ck_projects_auto_outreach_channel"),
        ),
        sa.CheckConstraint(
            one_of("status", PROJECT_STATUSES),
            name=op.f("ck_projects_status"),
        ),
        sa.CheckConstraint(
            "cardinality(geography_iso_codes) >= 1", name=op.f("ck_projects_geography_not_empty")
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_projects_name_not_empty")),
        sa.CheckConstraint("priority >= 0", name=op.f("ck_projects_priority_not_negative")),
        sa.CheckConstraint(
            "target_threshold > 0", name=op.f("ck_projects_target_threshold_positive")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_projects")),
    )
    op.create_index("ix_projects_status", "projects", ["status"], unique=False)
    op.create_table(
        "scheduler_cycles",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("slot_started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("holder", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), server_default="RUNNING", nullable=False),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "steps",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("status", SCHEDULER_CYCLE_STATUSES), name=op.f("ck_scheduler_cycles_status")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_scheduler_cycles")),
        sa.UniqueConstraint("slot_started_at", name=op.f("uq_scheduler_cycles_slot_started_at")),
    )
    op.create_table(
        "system_events",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=True),
        sa.Column("entity_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "data",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_events")),
    )
    op.create_index(
        "ix_system_events_correlation_id", "system_events", ["correlation_id"], unique=False
    )
    op.create_index(
        "ix_system_events_entity",
        "system_events",
        ["entity_type", "entity_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_system_events_type_created_at", "system_events", ["type", "created_at"], unique=False
    )
    op.create_table(
        "caller_performance_metrics",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("caller_id", sa.Uuid(), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("rolling_60_minute_dials", sa.Integer(), nullable=False),
        sa.Column("rolling_60_minute_connections", sa.Integer(), nullable=False),
        sa.Column("short_calls_last_hour", sa.Integer(), nullable=False),
        sa.Column("timezone_mismatches_last_hour", sa.Integer(), nullable=False),
        sa.Column("allocation_status", sa.String(length=32), nullable=False),
        sa.Column("previous_allocation_status", sa.String(length=32), nullable=True),
        sa.Column("performance_score", sa.Double(), nullable=False),
        sa.Column(
            "details",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("allocation_status", CALLER_ALLOCATION_STATUSES),
            name=op.f("ck_caller_performance_metrics_allocation_status"),
        ),
        sa.CheckConstraint(
            one_of("previous_allocation_status", CALLER_ALLOCATION_STATUSES),
            name=op.f("ck_caller_performance_metrics_previous_allocation_status"),
        ),
        sa.CheckConstraint(
            "rolling_60_minute_dials >= 0 AND rolling_60_minute_connections >= 0"
            " AND short_calls_last_hour >= 0 AND timezone_mismatches_last_hour >= 0",
            name=op.f("ck_caller_performance_metrics_counts_not_negative"),
        ),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["callers.id"],
            name=op.f("fk_caller_performance_metrics_caller_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_performance_metrics")),
    )
    op.create_index(
        "ix_caller_performance_metrics_caller_id_computed_at",
        "caller_performance_metrics",
        ["caller_id", sa.literal_column("computed_at DESC")],
        unique=False,
    )
    op.create_table(
        "companies",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("domain", sa.Text(), nullable=True),
        sa.Column("country_iso", sa.String(length=2), nullable=True),
        sa.Column("apollo_organization_id", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "country_iso IS NULL OR length(country_iso) = 2",
            name=op.f("ck_companies_country_iso_len"),
        ),
        sa.CheckConstraint("length(name) > 0", name=op.f("ck_companies_name_not_empty")),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_companies_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_companies")),
    )
    op.create_index(
        "uq_companies_project_id_lower_name",
        "companies",
        ["project_id", sa.literal_column("lower(name)")],
        unique=True,
    )
    op.create_table(
        "dead_letter_replays",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("dead_letter_job_id", sa.Uuid(), nullable=False),
        sa.Column("target_topic", sa.String(length=249), nullable=False),
        sa.Column("envelope_id", sa.String(length=200), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="REQUESTED", nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("published_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("status", REPLAY_STATUSES),
            name=op.f("ck_dead_letter_replays_status"),
        ),
        sa.ForeignKeyConstraint(
            ["dead_letter_job_id"],
            ["dead_letter_jobs.id"],
            name=op.f("fk_dead_letter_replays_dead_letter_job_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_dead_letter_replays")),
    )
    op.create_index(
        "ix_dead_letter_replays_dead_letter_job_id",
        "dead_letter_replays",
        ["dead_letter_job_id"],
        unique=False,
    )
    op.create_table(
        "google_sheet_row_maps",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("spreadsheet_id", sa.Text(), nullable=False),
        sa.Column("sheet_tab", sa.Text(), nullable=False),
        sa.Column("row_number", sa.Integer(), nullable=False),
        sa.Column("row_hash", sa.String(length=128), nullable=True),
        sa.Column("last_exported_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "row_number >= 1", name=op.f("ck_google_sheet_row_maps_row_number_positive")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_google_sheet_row_maps_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_sheet_row_maps")),
        sa.UniqueConstraint(
            "project_id",
            "entity_type",
            "entity_id",
            name=op.f("uq_google_sheet_row_maps_project_id_entity_type_entity_id"),
        ),
        sa.UniqueConstraint(
            "spreadsheet_id",
            "sheet_tab",
            "row_number",
            name=op.f("uq_google_sheet_row_maps_spreadsheet_id_sheet_tab_row_number"),
        ),
    )
    op.create_table(
        "job_title_discovery_runs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="QUEUED", nullable=False),
        sa.Column(
            "requested_companies",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("geography_iso_codes", sa.ARRAY(sa.String(length=2)), nullable=False),
        sa.Column("requested_by", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("titles_discovered", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("status", JOB_STATUSES),
            name=op.f("ck_job_title_discovery_runs_status"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_job_title_discovery_runs_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_title_discovery_runs")),
    )
    op.create_index(
        "ix_job_title_discovery_runs_project_id_created_at",
        "job_title_discovery_runs",
        ["project_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "outreach_threads",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="OPEN", nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("external_thread_id", sa.Text(), nullable=True),
        sa.Column("last_message_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("channel", CHANNELS),
            name=op.f("ck_outreach_threads_channel"),
        ),
        sa.CheckConstraint(
            one_of("status", OUTREACH_THREAD_STATUSES), name=op.f("ck_outreach_threads_status")
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_outreach_threads_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_outreach_threads_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_threads")),
        sa.UniqueConstraint(
            "expert_id",
            "project_id",
            "channel",
            name=op.f("uq_outreach_threads_expert_id_project_id_channel"),
        ),
    )
    op.create_index(
        "ix_outreach_threads_project_id_status",
        "outreach_threads",
        ["project_id", "status"],
        unique=False,
    )
    op.create_table(
        "sales_nav_searches",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("source_url", sa.Text(), nullable=False),
        sa.Column("normalized_url", sa.Text(), nullable=False),
        sa.Column("leads_received", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_webhook_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(normalized_url) > 0",
            name=op.f("ck_sales_nav_searches_normalized_url_not_empty"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_sales_nav_searches_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sales_nav_searches")),
        sa.UniqueConstraint(
            "project_id",
            "normalized_url",
            name=op.f("uq_sales_nav_searches_project_id_normalized_url"),
        ),
    )
    op.create_table(
        "screening_questions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("prompt", sa.Text(), nullable=False),
        sa.Column("display_order", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("required", sa.Boolean(), server_default=sa.text("true"), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "length(prompt) > 0", name=op.f("ck_screening_questions_prompt_not_empty")
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_screening_questions_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_questions")),
    )
    op.create_index(
        "ix_screening_questions_project_id_display_order",
        "screening_questions",
        ["project_id", "display_order"],
        unique=False,
    )
    op.create_table(
        "caller_status_history",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("caller_id", sa.Uuid(), nullable=False),
        sa.Column("from_status", sa.String(length=32), nullable=True),
        sa.Column("to_status", sa.String(length=32), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("metric_id", sa.Uuid(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("from_status", CALLER_ALLOCATION_STATUSES),
            name=op.f("ck_caller_status_history_from_status"),
        ),
        sa.CheckConstraint(
            one_of("to_status", CALLER_ALLOCATION_STATUSES),
            name=op.f("ck_caller_status_history_to_status"),
        ),
        sa.ForeignKeyConstraint(
            ["caller_id"],
            ["callers.id"],
            name=op.f("fk_caller_status_history_caller_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["metric_id"],
            ["caller_performance_metrics.id"],
            name=op.f("fk_caller_status_history_metric_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_caller_status_history")),
    )
    op.create_index(
        "ix_caller_status_history_caller_id_created_at",
        "caller_status_history",
        ["caller_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "google_sheet_exports",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("row_map_id", sa.Uuid(), nullable=True),
        sa.Column("entity_type", sa.String(length=64), nullable=False),
        sa.Column("entity_id", sa.Uuid(), nullable=False),
        sa.Column("spreadsheet_id", sa.Text(), nullable=True),
        sa.Column("sheet_tab", sa.Text(), nullable=True),
        sa.Column("row_number", sa.Integer(), nullable=True),
        sa.Column("operation", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column(
            "row_values",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "exported_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("operation", SHEET_OPERATIONS), name=op.f("ck_google_sheet_exports_operation")
        ),
        sa.CheckConstraint(
            one_of("status", SHEET_EXPORT_STATUSES),
            name=op.f("ck_google_sheet_exports_status"),
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_google_sheet_exports_project_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["row_map_id"],
            ["google_sheet_row_maps.id"],
            name=op.f("fk_google_sheet_exports_row_map_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_google_sheet_exports")),
    )
    op.create_index(
        "ix_google_sheet_exports_entity_id", "google_sheet_exports", ["entity_id"], unique=False
    )
    op.create_index(
        "ix_google_sheet_exports_project_id_created_at",
        "google_sheet_exports",
        ["project_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "job_titles",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("company_id", sa.Uuid(), nullable=False),
        sa.Column("discovery_run_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("normalized_title", sa.Text(), nullable=False),
        sa.Column("relevance_score", sa.Double(), nullable=False),
        sa.Column("seniority", sa.String(length=32), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("rationale", sa.Text(), nullable=True),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(one_of("source", JOB_TITLE_SOURCES), name=op.f("ck_job_titles_source")),
        sa.CheckConstraint(
            "length(normalized_title) > 0", name=op.f("ck_job_titles_normalized_title_not_empty")
        ),
        sa.CheckConstraint(
            "relevance_score >= 0 AND relevance_score <= 1",
            name=op.f("ck_job_titles_relevance_range"),
        ),
        sa.ForeignKeyConstraint(
            ["company_id"],
            ["companies.id"],
            name=op.f("fk_job_titles_company_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["discovery_run_id"],
            ["job_title_discovery_runs.id"],
            name=op.f("fk_job_titles_discovery_run_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_job_titles_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_job_titles")),
        sa.UniqueConstraint(
            "company_id", "normalized_title", name=op.f("uq_job_titles_company_id_normalized_title")
        ),
    )
    op.create_index(
        "ix_job_titles_project_id_normalized_title",
        "job_titles",
        ["project_id", "normalized_title"],
        unique=False,
    )
    op.create_table(
        "leads",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("sales_nav_search_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="NEW", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("raw_name", sa.Text(), nullable=False),
        sa.Column("raw_company", sa.Text(), nullable=False),
        sa.Column("raw_title", sa.Text(), nullable=True),
        sa.Column("linkedin_url", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("phone", sa.Text(), nullable=True),
        sa.Column("company_domain", sa.Text(), nullable=True),
        sa.Column("country_iso", sa.String(length=2), nullable=True),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("ranking_score", sa.Double(), nullable=True),
        sa.Column("enriched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("status", LEAD_STATUSES),
            name=op.f("ck_leads_status"),
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"], ["experts.id"], name=op.f("fk_leads_expert_id"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"], ["projects.id"], name=op.f("fk_leads_project_id"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["sales_nav_search_id"],
            ["sales_nav_searches.id"],
            name=op.f("fk_leads_sales_nav_search_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_leads")),
        sa.UniqueConstraint(
            "expert_id", "sales_nav_search_id", name=op.f("uq_leads_expert_id_sales_nav_search_id")
        ),
    )
    op.create_index("ix_leads_expert_id", "leads", ["expert_id"], unique=False)
    op.create_index(
        "ix_leads_project_id_ranking_score",
        "leads",
        ["project_id", sa.literal_column("ranking_score DESC")],
        unique=False,
    )
    op.create_index("ix_leads_project_id_status", "leads", ["project_id", "status"], unique=False)
    op.create_index("ix_leads_sales_nav_search_id", "leads", ["sales_nav_search_id"], unique=False)
    op.create_table(
        "outreach_messages",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("thread_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("job_id", sa.String(length=200), nullable=True),
        sa.Column("direction", sa.String(length=16), server_default="OUTBOUND", nullable=False),
        sa.Column("purpose", sa.String(length=32), server_default="OUTREACH", nullable=False),
        sa.Column("recipient", sa.Text(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("delivery_status", sa.String(length=16), server_default="QUEUED", nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("provider_message_id", sa.Text(), nullable=True),
        sa.Column("attempts", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column(
            "cooldown_overridden", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("delivery_status", DELIVERY_STATUSES),
            name=op.f("ck_outreach_messages_delivery_status"),
        ),
        sa.CheckConstraint(
            one_of("direction", DIRECTIONS), name=op.f("ck_outreach_messages_direction")
        ),
        sa.CheckConstraint(
            one_of("purpose", MESSAGE_PURPOSES),
            name=op.f("ck_outreach_messages_purpose"),
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_outreach_messages_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["thread_id"],
            ["outreach_threads.id"],
            name=op.f("fk_outreach_messages_thread_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_outreach_messages")),
        sa.UniqueConstraint("job_id", name=op.f("uq_outreach_messages_job_id")),
    )
    op.create_index(
        "ix_outreach_messages_expert_id_sent_at",
        "outreach_messages",
        ["expert_id", "sent_at"],
        unique=False,
        postgresql_where=sa.text("direction = 'OUTBOUND'"),
    )
    op.create_index(
        "ix_outreach_messages_provider_message_id",
        "outreach_messages",
        ["provider_message_id"],
        unique=False,
    )
    op.create_index(
        "ix_outreach_messages_thread_id_created_at",
        "outreach_messages",
        ["thread_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "call_tasks",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("caller_id", sa.Uuid(), nullable=True),
        sa.Column("status", sa.String(length=32), server_default="PENDING", nullable=False),
        sa.Column("status_reason", sa.Text(), nullable=True),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("kind", sa.String(length=32), server_default="INITIAL", nullable=False),
        sa.Column("priority", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("ranking_score", sa.Double(), server_default=sa.text("0"), nullable=False),
        sa.Column("region_iso", sa.String(length=2), nullable=True),
        sa.Column("language_code", sa.String(length=16), nullable=True),
        sa.Column("phone_number", sa.Text(), nullable=True),
        sa.Column("available_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("dialing_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome", sa.String(length=64), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("outcome_notes", sa.Text(), nullable=True),
        sa.Column("requeue_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("chase_of_task_id", sa.Uuid(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "caller_id IS NOT NULL OR NOT (status IN ('ASSIGNED', 'DIALING'))",
            name=op.f("ck_call_tasks_active_has_caller"),
        ),
        sa.CheckConstraint(one_of("kind", CALL_TASK_KINDS), name=op.f("ck_call_tasks_kind")),
        sa.CheckConstraint(
            one_of("outcome", CALL_OUTCOMES),
            name=op.f("ck_call_tasks_outcome"),
        ),
        sa.CheckConstraint(
            one_of("status", CALL_TASK_STATUSES),
            name=op.f("ck_call_tasks_status"),
        ),
        sa.CheckConstraint(
            "requeue_count >= 0", name=op.f("ck_call_tasks_requeue_count_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["callers.id"], name=op.f("fk_call_tasks_caller_id"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["chase_of_task_id"],
            ["call_tasks.id"],
            name=op.f("fk_call_tasks_chase_of_task_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"], ["experts.id"], name=op.f("fk_call_tasks_expert_id"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"], ["leads.id"], name=op.f("fk_call_tasks_lead_id"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_call_tasks_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_tasks")),
    )
    op.create_index(
        "ix_call_tasks_assigned_expires_at",
        "call_tasks",
        ["expires_at"],
        unique=False,
        postgresql_where=sa.text("status = 'ASSIGNED'"),
    )
    op.create_index(
        "ix_call_tasks_caller_id_updated_at",
        "call_tasks",
        ["caller_id", "updated_at"],
        unique=False,
    )
    op.create_index("ix_call_tasks_expert_id", "call_tasks", ["expert_id"], unique=False)
    op.create_index(
        "ix_call_tasks_pending_allocation",
        "call_tasks",
        [sa.literal_column("priority DESC"), sa.literal_column("ranking_score DESC"), "created_at"],
        unique=False,
        postgresql_where=sa.text("status = 'PENDING'"),
    )
    op.create_index(
        "ix_call_tasks_project_id_status_created_at",
        "call_tasks",
        ["project_id", "status", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_call_tasks_signup_link_outcome_at",
        "call_tasks",
        ["outcome_at"],
        unique=False,
        postgresql_where=sa.text("outcome = 'INTERESTED_SIGNUP_LINK_SENT'"),
    )
    op.create_index(
        "ix_call_tasks_status_created_at", "call_tasks", ["status", "created_at"], unique=False
    )
    op.create_index(
        "uq_call_tasks_active_caller_id",
        "call_tasks",
        ["caller_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('ASSIGNED', 'DIALING')"),
    )
    op.create_index(
        "uq_call_tasks_open_project_id_expert_id",
        "call_tasks",
        ["project_id", "expert_id"],
        unique=True,
        postgresql_where=sa.text("status IN ('PENDING', 'ASSIGNED', 'DIALING')"),
    )
    op.create_table(
        "cooldown_logs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("outreach_message_id", sa.Uuid(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("override_source", sa.String(length=16), nullable=True),
        sa.Column("last_contacted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cooldown_ends_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "(action = 'OVERRIDDEN') = (override_source IS NOT NULL)",
            name=op.f("ck_cooldown_logs_override_iff_overridden"),
        ),
        sa.CheckConstraint(
            one_of("action", COOLDOWN_ACTIONS), name=op.f("ck_cooldown_logs_action")
        ),
        sa.CheckConstraint(
            one_of("channel", CHANNELS),
            name=op.f("ck_cooldown_logs_channel"),
        ),
        sa.CheckConstraint(
            one_of("override_source", COOLDOWN_OVERRIDE_SOURCES),
            name=op.f("ck_cooldown_logs_override_source"),
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_cooldown_logs_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["outreach_message_id"],
            ["outreach_messages.id"],
            name=op.f("fk_cooldown_logs_outreach_message_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_cooldown_logs_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_cooldown_logs")),
    )
    op.create_index(
        "ix_cooldown_logs_expert_id_created_at",
        "cooldown_logs",
        ["expert_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_cooldown_logs_project_id_created_at",
        "cooldown_logs",
        ["project_id", "created_at"],
        unique=False,
    )
    op.create_table(
        "enrichment_attempts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("run_id", sa.Uuid(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("phase", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("latency_ms", sa.Integer(), nullable=True),
        sa.Column("http_status", sa.Integer(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),
        sa.Column("response_payload", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("phase", ENRICHMENT_PHASES), name=op.f("ck_enrichment_attempts_phase")
        ),
        sa.CheckConstraint(
            one_of("status", ENRICHMENT_ATTEMPT_STATUSES),
            name=op.f("ck_enrichment_attempts_status"),
        ),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1",
            name=op.f("ck_enrichment_attempts_confidence_range"),
        ),
        sa.CheckConstraint(
            "latency_ms >= 0", name=op.f("ck_enrichment_attempts_latency_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_enrichment_attempts_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_enrichment_attempts_lead_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_enrichment_attempts")),
    )
    op.create_index(
        "ix_enrichment_attempts_expert_id_created_at",
        "enrichment_attempts",
        ["expert_id", "created_at"],
        unique=False,
    )
    op.create_index(
        "ix_enrichment_attempts_lead_id", "enrichment_attempts", ["lead_id"], unique=False
    )
    op.create_index(
        "ix_enrichment_attempts_provider_created_at",
        "enrichment_attempts",
        ["provider", "created_at"],
        unique=False,
    )
    op.create_table(
        "ranking_snapshots",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("lead_id", sa.Uuid(), nullable=True),
        sa.Column("score", sa.Double(), nullable=False),
        sa.Column(
            "components",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("formula_version", sa.String(length=32), nullable=False),
        sa.Column(
            "computed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_ranking_snapshots_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["lead_id"],
            ["leads.id"],
            name=op.f("fk_ranking_snapshots_lead_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_ranking_snapshots_project_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ranking_snapshots")),
    )
    op.create_index(
        "ix_ranking_snapshots_project_id_expert_id_computed_at",
        "ranking_snapshots",
        ["project_id", "expert_id", sa.literal_column("computed_at DESC")],
        unique=False,
    )
    op.create_index(
        "ix_ranking_snapshots_project_id_score",
        "ranking_snapshots",
        ["project_id", sa.literal_column("score DESC")],
        unique=False,
    )
    op.create_table(
        "screening_responses",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("question_id", sa.Uuid(), nullable=False),
        sa.Column("status", sa.String(length=32), server_default="PENDING", nullable=False),
        sa.Column("status_changed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_text", sa.Text(), nullable=True),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("dispatch_message_id", sa.Uuid(), nullable=True),
        sa.Column("dispatched_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reminder_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column("last_reminded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("escalated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("status", SCREENING_RESPONSE_STATUSES),
            name=op.f("ck_screening_responses_status"),
        ),
        sa.CheckConstraint(
            "reminder_count >= 0", name=op.f("ck_screening_responses_reminder_count_not_negative")
        ),
        sa.ForeignKeyConstraint(
            ["dispatch_message_id"],
            ["outreach_messages.id"],
            name=op.f("fk_screening_responses_dispatch_message_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_screening_responses_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_screening_responses_project_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["question_id"],
            ["screening_questions.id"],
            name=op.f("fk_screening_responses_question_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_responses")),
        sa.UniqueConstraint(
            "expert_id", "question_id", name=op.f("uq_screening_responses_expert_id_question_id")
        ),
    )
    op.create_index(
        "ix_screening_responses_project_id_expert_id",
        "screening_responses",
        ["project_id", "expert_id"],
        unique=False,
    )
    op.create_index(
        "ix_screening_responses_question_id", "screening_responses", ["question_id"], unique=False
    )
    op.create_index(
        "ix_screening_responses_status_updated_at",
        "screening_responses",
        ["status", "updated_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('PENDING', 'IN_PROGRESS')"),
    )
    op.create_table(
        "call_logs",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("yay_call_id", sa.String(length=200), nullable=False),
        sa.Column("caller_id", sa.Uuid(), nullable=True),
        sa.Column("call_task_id", sa.Uuid(), nullable=True),
        sa.Column("expert_id", sa.Uuid(), nullable=True),
        sa.Column("agent_email", sa.Text(), nullable=True),
        sa.Column("direction", sa.String(length=16), nullable=True),
        sa.Column("from_number", sa.Text(), nullable=True),
        sa.Column("to_number", sa.Text(), nullable=True),
        sa.Column("status", sa.String(length=16), server_default="STARTED", nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ringing_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("failure_reason", sa.Text(), nullable=True),
        sa.Column("duration_seconds", sa.Integer(), nullable=True),
        sa.Column("talk_seconds", sa.Integer(), nullable=True),
        sa.Column("recording_url", sa.Text(), nullable=True),
        sa.Column("is_short_call", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column(
            "timezone_mismatch", sa.Boolean(), server_default=sa.text("false"), nullable=False
        ),
        sa.Column(
            "fraud_flags",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'[]'::jsonb"),
            nullable=False,
        ),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_event_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("event_count", sa.Integer(), server_default=sa.text("0"), nullable=False),
        sa.Column(
            "metadata",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(one_of("direction", DIRECTIONS), name=op.f("ck_call_logs_direction")),
        sa.CheckConstraint(
            one_of("status", CALL_LOG_STATUSES),
            name=op.f("ck_call_logs_status"),
        ),
        sa.CheckConstraint(
            "duration_seconds >= 0", name=op.f("ck_call_logs_duration_not_negative")
        ),
        sa.CheckConstraint("talk_seconds >= 0", name=op.f("ck_call_logs_talk_not_negative")),
        sa.ForeignKeyConstraint(
            ["call_task_id"],
            ["call_tasks.id"],
            name=op.f("fk_call_logs_call_task_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["caller_id"], ["callers.id"], name=op.f("fk_call_logs_caller_id"), ondelete="RESTRICT"
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"], ["experts.id"], name=op.f("fk_call_logs_expert_id"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_logs")),
        sa.UniqueConstraint("yay_call_id", name=op.f("uq_call_logs_yay_call_id")),
    )
    op.create_index("ix_call_logs_call_task_id", "call_logs", ["call_task_id"], unique=False)
    op.create_index(
        "ix_call_logs_caller_id_started_at", "call_logs", ["caller_id", "started_at"], unique=False
    )
    op.create_index("ix_call_logs_expert_id", "call_logs", ["expert_id"], unique=False)
    op.create_table(
        "expert_contacts",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("value_normalized", sa.Text(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("is_professional", sa.Boolean(), nullable=True),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=True),
        sa.Column("confidence", sa.Double(), nullable=True),
        sa.Column("enrichment_attempt_id", sa.Uuid(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "updated_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("channel", CHANNELS),
            name=op.f("ck_expert_contacts_channel"),
        ),
        sa.CheckConstraint(
            one_of("source", CONTACT_SOURCES),
            name=op.f("ck_expert_contacts_source"),
        ),
        sa.CheckConstraint(one_of("type", CONTACT_TYPES), name=op.f("ck_expert_contacts_type")),
        sa.CheckConstraint(
            "confidence >= 0 AND confidence <= 1", name=op.f("ck_expert_contacts_confidence_range")
        ),
        sa.ForeignKeyConstraint(
            ["enrichment_attempt_id"],
            ["enrichment_attempts.id"],
            name=op.f("fk_expert_contacts_enrichment_attempt_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_expert_contacts_expert_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_contacts")),
        sa.UniqueConstraint(
            "expert_id",
            "type",
            "value_normalized",
            name=op.f("uq_expert_contacts_expert_id_type_value_normalized"),
        ),
    )
    op.create_index(
        "ix_expert_contacts_type_value_normalized",
        "expert_contacts",
        ["type", "value_normalized"],
        unique=False,
    )
    op.create_table(
        "expert_suppressions",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("reason", sa.String(length=32), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("linkedin_url_normalized", sa.Text(), nullable=True),
        sa.Column("email", sa.Text(), nullable=True),
        sa.Column("source_call_task_id", sa.Uuid(), nullable=True),
        sa.Column("actor", sa.Text(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("reason", SUPPRESSION_REASONS),
            name=op.f("ck_expert_suppressions_reason"),
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_expert_suppressions_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_call_task_id"],
            ["call_tasks.id"],
            name=op.f("fk_expert_suppressions_source_call_task_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_expert_suppressions")),
        sa.UniqueConstraint("expert_id", name=op.f("uq_expert_suppressions_expert_id")),
    )
    op.create_index("ix_expert_suppressions_email", "expert_suppressions", ["email"], unique=False)
    op.create_index(
        "ix_expert_suppressions_linkedin_url_normalized",
        "expert_suppressions",
        ["linkedin_url_normalized"],
        unique=False,
    )
    op.create_table(
        "screening_reminders",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("screening_response_id", sa.Uuid(), nullable=False),
        sa.Column("reminder_number", sa.Integer(), nullable=False),
        sa.Column("channel", sa.String(length=32), nullable=True),
        sa.Column("outreach_message_id", sa.Uuid(), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("channel", CHANNELS),
            name=op.f("ck_screening_reminders_channel"),
        ),
        sa.CheckConstraint(
            "reminder_number >= 1", name=op.f("ck_screening_reminders_reminder_number_positive")
        ),
        sa.ForeignKeyConstraint(
            ["outreach_message_id"],
            ["outreach_messages.id"],
            name=op.f("fk_screening_reminders_outreach_message_id"),
            ondelete="SET NULL",
        ),
        sa.ForeignKeyConstraint(
            ["screening_response_id"],
            ["screening_responses.id"],
            name=op.f("fk_screening_reminders_screening_response_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screening_reminders")),
        sa.UniqueConstraint(
            "screening_response_id",
            "reminder_number",
            name=op.f("uq_screening_reminders_screening_response_id_reminder_number"),
        ),
    )
    op.create_table(
        "signup_chases",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("expert_id", sa.Uuid(), nullable=False),
        sa.Column("project_id", sa.Uuid(), nullable=False),
        sa.Column("source_call_task_id", sa.Uuid(), nullable=False),
        sa.Column("chase_call_task_id", sa.Uuid(), nullable=False),
        sa.Column("chase_date", sa.Date(), nullable=False),
        sa.Column("chase_number", sa.Integer(), nullable=False),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            "chase_number BETWEEN 1 AND 3", name=op.f("ck_signup_chases_chase_number_range")
        ),
        sa.ForeignKeyConstraint(
            ["chase_call_task_id"],
            ["call_tasks.id"],
            name=op.f("fk_signup_chases_chase_call_task_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["expert_id"],
            ["experts.id"],
            name=op.f("fk_signup_chases_expert_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["project_id"],
            ["projects.id"],
            name=op.f("fk_signup_chases_project_id"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["source_call_task_id"],
            ["call_tasks.id"],
            name=op.f("fk_signup_chases_source_call_task_id"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signup_chases")),
        sa.UniqueConstraint("chase_call_task_id", name=op.f("uq_signup_chases_chase_call_task_id")),
        sa.UniqueConstraint(
            "expert_id",
            "chase_date",
            "chase_number",
            name=op.f("uq_signup_chases_expert_id_chase_date_chase_number"),
        ),
    )
    op.create_index(
        "ix_signup_chases_source_call_task_id",
        "signup_chases",
        ["source_call_task_id"],
        unique=False,
    )
    op.create_table(
        "call_logs_raw",
        sa.Column("id", sa.Uuid(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("event_id", sa.String(length=200), nullable=False),
        sa.Column("event_type", sa.String(length=64), nullable=False),
        sa.Column("yay_call_id", sa.String(length=200), nullable=True),
        sa.Column("call_log_id", sa.Uuid(), nullable=True),
        sa.Column("payload", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("signature_valid", sa.Boolean(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column(
            "processing_status", sa.String(length=16), server_default="RECEIVED", nullable=False
        ),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("correlation_id", sa.String(length=200), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.CheckConstraint(
            one_of("processing_status", RAW_EVENT_STATUSES),
            name=op.f("ck_call_logs_raw_processing_status"),
        ),
        sa.ForeignKeyConstraint(
            ["call_log_id"],
            ["call_logs.id"],
            name=op.f("fk_call_logs_raw_call_log_id"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_call_logs_raw")),
        sa.UniqueConstraint("event_id", name=op.f("uq_call_logs_raw_event_id")),
    )
    op.create_index("ix_call_logs_raw_received_at", "call_logs_raw", ["received_at"], unique=False)
    op.create_index(
        "ix_call_logs_raw_yay_call_id_occurred_at",
        "call_logs_raw",
        ["yay_call_id", "occurred_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_table("call_logs_raw")
    op.drop_table("signup_chases")
    op.drop_table("screening_reminders")
    op.drop_table("expert_suppressions")
    op.drop_table("expert_contacts")
    op.drop_table("call_logs")
    op.drop_table("screening_responses")
    op.drop_table("ranking_snapshots")
    op.drop_table("enrichment_attempts")
    op.drop_table("cooldown_logs")
    op.drop_table("call_tasks")
    op.drop_table("outreach_messages")
    op.drop_table("leads")
    op.drop_table("job_titles")
    op.drop_table("google_sheet_exports")
    op.drop_table("caller_status_history")
    op.drop_table("screening_questions")
    op.drop_table("sales_nav_searches")
    op.drop_table("outreach_threads")
    op.drop_table("job_title_discovery_runs")
    op.drop_table("google_sheet_row_maps")
    op.drop_table("dead_letter_replays")
    op.drop_table("companies")
    op.drop_table("caller_performance_metrics")
    op.drop_table("system_events")
    op.drop_table("scheduler_cycles")
    op.drop_table("projects")
    op.drop_table("processed_webhook_events")
    op.drop_table("processed_events")
    op.drop_table("outbox")
    op.drop_table("experts")
    op.drop_table("documentation_jobs")
    op.drop_table("dead_letter_jobs")
    op.drop_table("callers")
