"""Asynchronous enrichment attempts (Zeliq's callbacks): PENDING attempts and their request ids.

Revision ID: 0008
Revises: 0010
Create Date: 2026-12-06

An attempt placed with a provider that answers by callback is PENDING until the callback lands
or ``ZELIQ_CALLBACK_TIMEOUT_SECONDS`` passes. ``callback_request_id`` is our id in the callback
URL (unique), ``callback_jobs`` the vendor's job id per callback kind, ``answered_at`` when the
attempt was settled. The run index serves "has every provider of this run answered"; the
partial index serves the timeout sweep.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

STATUSES = ("SUCCESS", "NO_MATCH", "FILTERED", "ERROR", "TIMEOUT", "RATE_LIMITED", "UNAVAILABLE")


def _status_check(statuses: Sequence[str]) -> None:
    op.drop_constraint(op.f("ck_enrichment_attempts_status"), "enrichment_attempts", type_="check")
    quoted = ", ".join(f"'{status}'" for status in statuses)
    op.create_check_constraint(
        op.f("ck_enrichment_attempts_status"), "enrichment_attempts", f"status IN ({quoted})"
    )


def upgrade() -> None:
    _status_check((*STATUSES, "PENDING"))
    op.add_column("enrichment_attempts", sa.Column("callback_request_id", sa.Uuid(), nullable=True))
    op.add_column(
        "enrichment_attempts",
        sa.Column("callback_jobs", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
    )
    op.add_column(
        "enrichment_attempts",
        sa.Column("answered_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_unique_constraint(
        op.f("uq_enrichment_attempts_callback_request_id"),
        "enrichment_attempts",
        ["callback_request_id"],
    )
    op.create_index("ix_enrichment_attempts_run_id", "enrichment_attempts", ["run_id"])
    op.create_index(
        "ix_enrichment_attempts_pending_created_at",
        "enrichment_attempts",
        ["created_at"],
        postgresql_where=sa.text("status = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_index("ix_enrichment_attempts_pending_created_at", table_name="enrichment_attempts")
    op.drop_index("ix_enrichment_attempts_run_id", table_name="enrichment_attempts")
    op.drop_constraint(
        op.f("uq_enrichment_attempts_callback_request_id"), "enrichment_attempts", type_="unique"
    )
    op.drop_column("enrichment_attempts", "answered_at")
    op.drop_column("enrichment_attempts", "callback_jobs")
    op.drop_column("enrichment_attempts", "callback_request_id")
    op.execute(
        "UPDATE enrichment_attempts SET status = 'TIMEOUT', confidence = NULL"
        " WHERE status = 'PENDING'"
    )
    _status_check(STATUSES)
